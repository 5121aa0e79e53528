//! Backsolve is the same Runge–Kutta method run over the adjoint system: its gradient equals,
//! to round-off, a plain backwards solve of the explicitly stacked ODE `(y, a, θ̄)` with the
//! same tableau and step.

mod common;
use common::*;
use revode_core::prelude::*;

const T_END: f64 = 1.5;

/// `(y, a, θ̄)' = (f(t, y), −(∂f/∂y)ᵀa, −(∂f/∂θ)ᵀa)` for an MLP field, as one flat vector field
/// in reversed time `s = T − t` (so a forward solve in `s` runs it from `T` back to 0).
struct Stacked {
    f: Mlp<f64>,
}

impl VectorField for Stacked {
    type Scalar = f64;
    fn dim(&self) -> usize {
        2 * self.f.dim() + self.f.params().len()
    }
    fn params(&self) -> &[f64] {
        &[]
    }
    fn params_mut(&mut self) -> &mut [f64] {
        &mut []
    }
    fn eval(&self, s: f64, u: &[f64], out: &mut [f64]) {
        let t = T_END - s;
        let d = self.f.dim();
        let (y, a) = (&u[..d], &u[d..2 * d]);
        let (fy, rest) = out.split_at_mut(d);
        let (abar, pbar) = rest.split_at_mut(d);
        self.f.eval(t, y, fy);
        abar.iter_mut().for_each(|v| *v = 0.0);
        pbar.iter_mut().for_each(|v| *v = 0.0);
        self.f.vjp(t, y, a, -1.0, abar, pbar);
        // d/ds = −d/dt.
        out.iter_mut().for_each(|v| *v = -*v);
    }
    /// Not needed by the reference's results (it needs second derivatives of the MLP); only
    /// the solve's stability diagnostic looks at it, so it reports a zero Jacobian.
    fn vjp(&self, _: f64, _: &[f64], _: &[f64], _: f64, _: &mut [f64], _: &mut [f64]) {}
}

/// L = |y(T)|² + Σ 0.3(i+1)·y_i(T), observed at T only.
fn final_loss(ys: &[Vec<f64>], cots: &mut [Vec<f64>]) -> f64 {
    let n = ys.len() - 1;
    cots.iter_mut()
        .for_each(|c| c.iter_mut().for_each(|v| *v = 0.0));
    let mut l = 0.0;
    for (i, (&v, g)) in ys[n].iter().zip(cots[n].iter_mut()).enumerate() {
        let c = 0.3 * (i as f64 + 1.0);
        l += v * v + c * v;
        *g = 2.0 * v + c;
    }
    l
}

#[test]
fn backsolve_is_the_same_tableau_over_the_adjoint_system() {
    let h = 0.05;
    let opts = SolveOptions::fixed(h);
    // Midpoint has b₁ = 0 (a stage that feeds later stages but not the update); Bosh3's
    // embedded stage is outside the solution stages.
    for tableau in [
        Tableau::euler(),
        Tableau::midpoint(),
        Tableau::ralston2(),
        Tableau::rk4(),
        Tableau::bosh3(),
    ] {
        let name = tableau.name().to_string();
        let f = mlp(11);
        let scheme = Plain::new(Rk::new(OdeTerm::new(f.clone()), tableau.clone()));
        let g = gradient(
            &scheme,
            &y0_3(),
            &[0.0, T_END],
            &opts,
            &GradientMethod::Backsolve.into(),
            final_loss,
        )
        .unwrap();

        // The reference: y(T) by the forward solve, then the stacked system from T back to 0.
        let y_t = solve(&scheme, &y0_3(), &[0.0, T_END], &opts).unwrap().ys[1].clone();
        let d = y_t.len();
        let p = f.params().len();
        let mut u = y_t.clone();
        u.extend(
            y_t.iter()
                .enumerate()
                .map(|(i, v)| 2.0 * v + 0.3 * (i as f64 + 1.0)),
        );
        u.extend(std::iter::repeat_n(0.0, p));
        let stacked = Plain::new(Rk::new(OdeTerm::new(Stacked { f }), tableau));
        let back = solve(&stacked, &u, &[0.0, T_END], &SolveOptions::fixed(h)).unwrap();
        let u0 = &back.ys[1];
        let (a0, p0) = (&u0[d..2 * d], &u0[2 * d..]);

        let (ey, ep) = (rel(&g.y0, a0), rel(&g.params, p0));
        assert!(
            ey <= 1e-13 && ep <= 1e-13,
            "{name}: dL/dy0 {ey:e}, dL/dθ {ep:e}"
        );
        // Same evaluation count as the stacked solve: one field evaluation and one pullback
        // per stage, on top of the forward pass.
        assert_eq!(
            g.stats.pullbacks, back.stats.evaluations,
            "{name}: one pullback per adjoint stage"
        );
    }
}
