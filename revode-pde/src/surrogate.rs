//! Neural surrogates: learn an unknown part of the dynamics from reference trajectories.
//!
//! - [`FisherSurrogate`]: `u_t = ν u_xx + g_θ(u)` with the reaction `g_θ` a pointwise MLP.
//! - [`BurgersClosure`]: coarse-grid Burgers plus a learned conservative closure flux
//!   `G_θ(u_L, u_R)` at every face, so mass stays conserved exactly.
//!
//! Both are core vector fields: training uses the core's gradient methods unchanged.

use crate::grid::{Grid1d, Source};
use crate::ops::{self, Rusanov};
use crate::{Pde, PdeTerm};
use num_complex::Complex64;
use revode_core::stability::Spectrum;
use revode_core::train::{Schedule, TrainConfig, TrainState, Trainer};
use revode_core::{
    gradient, solve, Error, GradientMethod, GradientOptions, Mlp, MlpSpec, Result, Reversible, Rk,
    SolveOptions, Tableau, VectorField,
};
use serde_json::Value;

/// A pointwise network `ℝ^k → ℝ`: revode-core's native [`Mlp`] with one tanh hidden layer of
/// width `w` and one output, evaluated one point at a time. Parameters (the [`MlpSpec`]
/// layout): `W1 (w × k, row-major) | b1 (w) | w2 (w) | b2`.
#[derive(Clone, Debug)]
pub struct PointMlp {
    net: Mlp<f64>,
}

impl PointMlp {
    /// Uniform ±1/√fan_in initialisation from `seed`.
    pub fn new(inputs: usize, width: usize, seed: u64) -> Result<Self> {
        if inputs == 0 || width == 0 {
            return Err(Error::config(
                "point mlp",
                "inputs and width must be positive",
            ));
        }
        let spec = MlpSpec {
            outputs: Some(1),
            ..MlpSpec::new(inputs, width)
        };
        // The draw of the original implementation, kept so that seeds give the same models.
        let mut rng = revode_core::random::SplitMix64::new(seed);
        let mut params = Vec::with_capacity(spec.num_params());
        let b1 = 1.0 / (inputs as f64).sqrt();
        params.extend((0..width * (inputs + 1)).map(|_| rng.symmetric(b1)));
        let b2 = 1.0 / (width as f64).sqrt();
        params.extend((0..=width).map(|_| rng.symmetric(b2)));
        Ok(PointMlp {
            net: Mlp::from_spec(spec, 1)?.with_params(&params)?,
        })
    }
    /// Number of parameters.
    pub fn num_params(&self) -> usize {
        self.net.params().len()
    }
    /// Scalars one evaluation keeps for its pullback.
    pub fn cache_len(&self) -> usize {
        self.net.cache_len()
    }
    /// `g(x)`; writes what the pullback needs into `cache` (length [`PointMlp::cache_len`]).
    #[inline]
    pub fn forward(&self, x: &[f64], cache: &mut [f64]) -> f64 {
        let mut out = [0.0];
        self.net.eval_cached(0.0, x, &mut out, cache);
        out[0]
    }
    /// The output of the forward pass that filled `cache` (from its hidden activations).
    #[inline]
    pub fn output_from(&self, cache: &[f64]) -> f64 {
        let w = self.net.spec().hidden;
        let p = self.net.params();
        let (w2, b2) = (&p[p.len() - 1 - w..p.len() - 1], p[p.len() - 1]);
        // The row cache holds (z, a) of the hidden layer; a is the second half.
        b2 + cache[w..2 * w]
            .iter()
            .zip(w2)
            .map(|(a, b)| a * b)
            .sum::<f64>()
    }
    /// Pullback at `x` with `cache`: `x_bar += g_bar·∂g/∂x`, `p_bar += g_bar·∂g/∂θ`.
    #[inline]
    pub fn backward(
        &self,
        x: &[f64],
        cache: &[f64],
        g_bar: f64,
        x_bar: &mut [f64],
        p_bar: &mut [f64],
    ) {
        self.net
            .vjp_cached(0.0, x, cache, &[1.0], g_bar, x_bar, p_bar);
    }
    fn params(&self) -> &[f64] {
        self.net.params()
    }
    fn params_mut(&mut self) -> &mut [f64] {
        self.net.params_mut()
    }
}

/// Fisher–KPP with a learned reaction: `u_t = ν u_xx + g_θ(u)`. Parameters: the MLP's.
#[derive(Clone, Debug)]
pub struct FisherSurrogate {
    /// The grid.
    pub grid: Grid1d,
    /// Fields in the batch.
    pub batch: usize,
    /// The known diffusivity.
    pub nu: f64,
    /// Bound on |g'(u)| used for the stability limit.
    pub reaction_bound: f64,
    /// The reaction network.
    pub reaction: PointMlp,
    /// `g(u) = u·MLP(u)` (no reaction without population) instead of `g(u) = MLP(u)`.
    pub through_origin: bool,
}

impl FisherSurrogate {
    #[inline]
    fn g(&self, u: f64, act: &mut [f64]) -> f64 {
        let m = self.reaction.forward(&[u], act);
        if self.through_origin {
            u * m
        } else {
            m
        }
    }
    /// Adds `g_bar·∂g/∂u` to `u_bar` and `g_bar·∂g/∂θ` to `p_bar`.
    #[inline]
    fn g_vjp(&self, u: f64, act: &[f64], g_bar: f64, u_bar: &mut f64, p_bar: &mut [f64]) {
        let mut xb = [0.0];
        if self.through_origin {
            // g = u·m(u): ∂g/∂u = m + u·m', ∂g/∂θ = u·∂m/∂θ.
            let m = self.reaction.output_from(act);
            self.reaction.backward(&[u], act, g_bar * u, &mut xb, p_bar);
            *u_bar += xb[0] + g_bar * m;
        } else {
            self.reaction.backward(&[u], act, g_bar, &mut xb, p_bar);
            *u_bar += xb[0];
        }
    }
}

impl VectorField for FisherSurrogate {
    type Scalar = f64;
    fn dim(&self) -> usize {
        self.batch * self.grid.n()
    }
    fn params(&self) -> &[f64] {
        self.reaction.params()
    }
    fn params_mut(&mut self) -> &mut [f64] {
        self.reaction.params_mut()
    }
    fn eval(&self, _t: f64, y: &[f64], out: &mut [f64]) {
        let mut act = vec![0.0; self.reaction.cache_len()];
        for (o, &u) in out.iter_mut().zip(y) {
            *o = self.g(u, &mut act);
        }
        ops::laplacian(&self.grid, self.nu, y, out);
    }
    fn vjp(&self, t: f64, y: &[f64], cot: &[f64], s: f64, yb: &mut [f64], pb: &mut [f64]) {
        revode_core::field::vjp_through_cache(self, t, y, cot, s, yb, pb);
    }
    fn cache_len(&self) -> usize {
        self.dim() * self.reaction.cache_len()
    }
    fn eval_cached(&self, _t: f64, y: &[f64], out: &mut [f64], cache: &mut [f64]) {
        let w = self.reaction.cache_len();
        for ((o, &u), act) in out.iter_mut().zip(y).zip(cache.chunks_exact_mut(w)) {
            *o = self.g(u, act);
        }
        ops::laplacian(&self.grid, self.nu, y, out);
    }
    fn vjp_cached(
        &self,
        _t: f64,
        y: &[f64],
        cache: &[f64],
        cot: &[f64],
        s: f64,
        yb: &mut [f64],
        pb: &mut [f64],
    ) {
        let w = self.reaction.cache_len();
        for (((&u, &c), act), b) in y
            .iter()
            .zip(cot)
            .zip(cache.chunks_exact(w))
            .zip(yb.iter_mut())
        {
            self.g_vjp(u, act, s * c, b, pb);
        }
        ops::laplacian_vjp(&self.grid.homogeneous(), s * self.nu, cot, yb);
    }
}

impl Pde for FisherSurrogate {
    /// `nu` and `reaction_bound` finite and ≥ 0 (the network's weights are unconstrained).
    fn check_params(&self) -> Result<()> {
        crate::terms::check_param("nu", self.nu, true)?;
        crate::terms::check_param("reaction_bound", self.reaction_bound, true)
    }
    fn spectrum(&self) -> Vec<Complex64> {
        let dx = self.grid.dx();
        let r = self.reaction_bound;
        Spectrum::real_interval(-4.0 * self.nu / (dx * dx) - r, r, 64)
    }
    fn step_numbers(&self, h: f64) -> String {
        let dx = self.grid.dx();
        format!("diffusion number νh/Δx² = {:.4}", self.nu * h / (dx * dx))
    }
}

/// Coarse-grid viscous Burgers with a learned closure flux:
/// `u_t = −∂_x(u²/2)_Rusanov + ν u_xx − ∂_x G_θ(u_L, u_R)`. Parameters: the MLP's.
#[derive(Clone, Debug)]
pub struct BurgersClosure {
    /// The (coarse) grid.
    pub grid: Grid1d,
    /// Fields in the batch.
    pub batch: usize,
    /// Viscosity.
    pub nu: f64,
    /// Bound on |u| (CFL limit).
    pub max_speed: f64,
    /// The closure flux network (2 inputs).
    pub closure: PointMlp,
}

impl BurgersClosure {
    fn faces(&self) -> usize {
        self.grid.n() + 1
    }
    fn face_states(&self, u: &[f64], f: usize) -> ([f64; 2], [Option<usize>; 2]) {
        let (l, r) = self.grid.face(f);
        let val = |s: Source| match s {
            Source::Cell(k) => (u[k], Some(k)),
            Source::Fixed(v) => (v, None),
        };
        let ((a, ia), (b, ib)) = (val(l), val(r));
        ([a, b], [ia, ib])
    }
}

impl VectorField for BurgersClosure {
    type Scalar = f64;
    fn dim(&self) -> usize {
        self.batch * self.grid.n()
    }
    fn params(&self) -> &[f64] {
        self.closure.params()
    }
    fn params_mut(&mut self) -> &mut [f64] {
        self.closure.params_mut()
    }
    fn eval(&self, t: f64, y: &[f64], out: &mut [f64]) {
        let mut cache = vec![0.0; self.cache_len()];
        self.eval_cached(t, y, out, &mut cache);
    }
    fn vjp(&self, t: f64, y: &[f64], cot: &[f64], s: f64, yb: &mut [f64], pb: &mut [f64]) {
        revode_core::field::vjp_through_cache(self, t, y, cot, s, yb, pb);
    }
    fn cache_len(&self) -> usize {
        self.batch * self.faces() * self.closure.cache_len()
    }
    fn eval_cached(&self, _t: f64, y: &[f64], out: &mut [f64], cache: &mut [f64]) {
        out.fill(0.0);
        ops::divergence(&self.grid, &Rusanov, -1.0, y, out);
        ops::laplacian(&self.grid, self.nu, y, out);
        let (n, w, nf) = (self.grid.n(), self.closure.cache_len(), self.faces());
        let inv = 1.0 / self.grid.dx();
        for b in 0..self.batch {
            let (u, o) = (&y[b * n..(b + 1) * n], &mut out[b * n..(b + 1) * n]);
            let c = &mut cache[b * nf * w..(b + 1) * nf * w];
            let mut prev = 0.0;
            for f in 0..nf {
                let (x, _) = self.face_states(u, f);
                let g = self.closure.forward(&x, &mut c[f * w..(f + 1) * w]);
                if f > 0 {
                    o[f - 1] -= inv * (g - prev);
                }
                prev = g;
            }
        }
    }
    fn vjp_cached(
        &self,
        _t: f64,
        y: &[f64],
        cache: &[f64],
        cot: &[f64],
        s: f64,
        yb: &mut [f64],
        pb: &mut [f64],
    ) {
        ops::divergence_vjp(&self.grid, &Rusanov, -s, y, cot, yb);
        ops::laplacian_vjp(&self.grid.homogeneous(), s * self.nu, cot, yb);
        let (n, w, nf) = (self.grid.n(), self.closure.cache_len(), self.faces());
        let inv = 1.0 / self.grid.dx();
        for b in 0..self.batch {
            let u = &y[b * n..(b + 1) * n];
            let cb = &cot[b * n..(b + 1) * n];
            let c = &cache[b * nf * w..(b + 1) * nf * w];
            let ub = &mut yb[b * n..(b + 1) * n];
            for f in 0..nf {
                // out_i −= (G_{i+1} − G_i)/Δx: G_f enters out_f with +1/Δx, out_{f−1} with −1/Δx.
                let mut gbar = 0.0;
                if f < n {
                    gbar += cb[f];
                }
                if f > 0 {
                    gbar -= cb[f - 1];
                }
                if gbar == 0.0 {
                    continue;
                }
                let (x, idx) = self.face_states(u, f);
                let mut xb = [0.0; 2];
                self.closure
                    .backward(&x, &c[f * w..(f + 1) * w], s * inv * gbar, &mut xb, pb);
                for (i, v) in idx.iter().zip(xb) {
                    if let Some(k) = i {
                        ub[*k] += v;
                    }
                }
            }
        }
    }
}

impl Pde for BurgersClosure {
    /// `nu` and `max_speed` finite and ≥ 0 (the network's weights are unconstrained).
    fn check_params(&self) -> Result<()> {
        crate::terms::check_param("nu", self.nu, true)?;
        crate::terms::check_param("max_speed", self.max_speed, true)
    }
    fn spectrum(&self) -> Vec<Complex64> {
        let dx = self.grid.dx();
        // Rusanov + viscosity, with room for the closure's own numerical viscosity.
        let r = 1.5 * self.max_speed / dx + 2.0 * self.nu / (dx * dx);
        Spectrum::disc(Complex64::new(-r, 0.0), r, 64)
    }
    fn step_numbers(&self, h: f64) -> String {
        let dx = self.grid.dx();
        format!(
            "CFL number max|u|h/Δx = {:.4}, diffusion number νh/Δx² = {:.4}",
            self.max_speed * h / dx,
            self.nu * h / (dx * dx)
        )
    }
}

/// Reference trajectories: fields `batch × n` at each observation time.
#[derive(Clone, Debug)]
pub struct Trajectories {
    /// Observation times.
    pub times: Vec<f64>,
    /// The state at each observation time (the first is the initial condition).
    pub states: Vec<Vec<f64>>,
}

/// Rollout errors against a reference.
#[derive(Clone, Copy, Debug, serde::Serialize)]
pub struct Metrics {
    /// `‖pred − ref‖₂ / ‖ref‖₂` over every observation after the first.
    pub nrmse: f64,
    /// Largest pointwise error.
    pub max_error: f64,
    /// Largest difference of the total mass `Σu` between prediction and reference at any
    /// observation, relative to `Σ|u|` of the initial state.
    pub mass_error: f64,
}

/// Errors of `pred` against `reference` (same times and shapes).
pub fn metrics(pred: &[Vec<f64>], reference: &[Vec<f64>]) -> Metrics {
    let (mut num, mut den, mut max) = (0.0, 0.0, 0.0f64);
    let mass = |v: &[f64]| v.iter().sum::<f64>();
    let m0 = reference[0]
        .iter()
        .map(|v| v.abs())
        .sum::<f64>()
        .max(1e-300);
    let mut mass_error = 0.0f64;
    for (p, r) in pred.iter().zip(reference).skip(1) {
        for (a, b) in p.iter().zip(r) {
            num += (a - b) * (a - b);
            den += b * b;
            max = max.max((a - b).abs());
        }
        mass_error = mass_error.max((mass(p) - mass(r)).abs() / m0);
    }
    Metrics {
        nrmse: (num / den.max(1e-300)).sqrt(),
        max_error: max,
        mass_error,
    }
}

/// Settings of a surrogate fit.
#[derive(Clone, Debug)]
pub struct FitOptions {
    /// Gradient method (reversible, checkpointed-reversible…).
    pub method: GradientMethod,
    /// Base tableau of the reversible scheme.
    pub tableau: Tableau,
    /// Coupling λ.
    pub lambda: f64,
    /// Adam iterations.
    pub iterations: usize,
    /// Initial learning rate (cosine-decayed to 1 % of it).
    pub lr: f64,
    /// How the reversible gradients' reconstruction drift is checked (see
    /// [`revode_core::gradient::DriftCheck`]; the default refuses drift above √ε).
    pub drift: revode_core::gradient::DriftCheck,
}

/// What a fit did.
#[derive(Clone, Debug)]
pub struct FitReport {
    /// Loss per iteration.
    pub losses: Vec<f64>,
    /// Peak stored states of the last gradient.
    pub stored_states: usize,
    /// Checkpoint interval used (checkpointed-reversible).
    pub checkpoint_interval: Option<usize>,
    /// Solver steps per gradient.
    pub steps: usize,
}

/// The reversible scheme over a PDE field (a [`PdeTerm`]: steps beyond the stability limit
/// are refused).
pub fn scheme<F: Pde>(
    field: F,
    tableau: &Tableau,
    lambda: f64,
) -> Result<Reversible<Rk<PdeTerm<F>>>> {
    Reversible::new(Rk::new(PdeTerm::new(field), tableau.clone()), lambda)
}

/// Fits `field`'s parameters to `data` (mean squared error at the observation times, relative
/// to the data's mean square) with the trainer (AdamW, cosine decay to 1 % of `opts.lr`); `opts.h`
/// from the stability limit.
pub fn fit<F: Pde + Clone>(
    field: &mut F,
    data: &Trajectories,
    opts: &FitOptions,
) -> Result<FitReport> {
    let mut state = TrainState::new(field.params().to_vec(), opts.lr, 0.0, Value::Null)?;
    let scale: f64 = data.states[1..]
        .iter()
        .flat_map(|s| s.iter())
        .map(|v| v * v)
        .sum::<f64>()
        .max(1e-300);
    let mut report = FitReport {
        losses: Vec::with_capacity(opts.iterations),
        stored_states: 0,
        checkpoint_interval: None,
        steps: 0,
    };
    let solve_opts = crate::step_options(&*field, &opts.tableau, Some(opts.lambda), None)?;
    let config = TrainConfig::new(opts.iterations, Schedule::cosine(opts.lr, 0.01));
    Trainer::new(config).run(&mut state, |_, params, grad| {
        field.params_mut().copy_from_slice(params);
        let s = scheme(field.clone(), &opts.tableau, opts.lambda)?;
        let g = gradient(
            &s,
            &data.states[0],
            &data.times,
            &solve_opts,
            &GradientOptions {
                drift: opts.drift,
                ..GradientOptions::from(opts.method.clone())
            },
            |ys, cots| {
                let mut l = 0.0;
                for ((y, r), c) in ys.iter().zip(&data.states).zip(cots.iter_mut()).skip(1) {
                    for ((&a, &b), c) in y.iter().zip(r).zip(c.iter_mut()) {
                        l += (a - b) * (a - b) / scale;
                        *c = 2.0 * (a - b) / scale;
                    }
                }
                l
            },
        )?;
        report.stored_states = g.stats.peak_stored_states;
        report.checkpoint_interval = g.stats.checkpoint_interval;
        report.steps = g.steps;
        grad.copy_from_slice(&g.params);
        Ok(g.loss)
    })?;
    report.losses = state.history;
    field.params_mut().copy_from_slice(&state.params);
    Ok(report)
}

/// Rolls `field` out from `data`'s initial state through its times with classical RK4 (a
/// fixed step beyond RK4's stability limit is refused).
pub fn rollout<F: Pde + Clone>(
    field: &F,
    data: &Trajectories,
    opts: &SolveOptions,
) -> Result<Vec<Vec<f64>>> {
    let s = revode_core::Plain::new(Rk::new(PdeTerm::new(field.clone()), Tableau::rk4()));
    Ok(solve(&s, &data.states[0], &data.times, opts)?.ys)
}

/// Reference trajectories of `truth` from `u0` at `times`: classical RK4 at a tenth of its
/// explicit stability limit.
pub fn reference<F: Pde + Clone>(truth: &F, u0: &[f64], times: &[f64]) -> Result<Trajectories> {
    let h = 0.1 * crate::max_step(truth, &Tableau::rk4(), None)?;
    let s = revode_core::Plain::new(Rk::new(PdeTerm::new(truth.clone()), Tableau::rk4()));
    let sol = solve(&s, &u0.to_vec(), times, &SolveOptions::fixed(h))?;
    Ok(Trajectories {
        times: times.to_vec(),
        states: sol.ys,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::datasets::random_bumps;
    use crate::{Boundary, FisherKpp};

    #[test]
    fn a_short_fisher_fit_lowers_the_loss() {
        // 40 iterations of the reaction surrogate on 2 training fields of the true Fisher–KPP:
        // the relative squared error must fall below a third of its start.
        let grid = Grid1d::new(32, 0.0, 1.0, Boundary::Neumann).unwrap();
        let (nu, rho) = (0.002, 5.0);
        let times: Vec<f64> = (0..=4).map(|k| 0.1 * k as f64).collect();
        let truth = FisherKpp::new(grid, 2, nu, rho).unwrap();
        let data = reference(&truth, &random_bumps(&grid, 2, 1), &times).unwrap();
        let mut model = FisherSurrogate {
            grid,
            batch: 2,
            nu,
            reaction_bound: 2.0 * rho,
            through_origin: true,
            reaction: PointMlp::new(1, 8, 3).unwrap(),
        };
        let report = fit(
            &mut model,
            &data,
            &FitOptions {
                method: GradientMethod::Reversible,
                tableau: Tableau::heun(),
                lambda: 0.5,
                iterations: 40,
                lr: 0.03,
                drift: revode_core::gradient::DriftCheck::Tolerance(1e-4),
            },
        )
        .unwrap();
        let l = &report.losses;
        assert_eq!(l.len(), 40);
        assert!(l[39] < l[0] / 3.0, "{} → {}", l[0], l[39]);
    }
}
