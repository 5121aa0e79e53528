//! Inputs a careless or hostile user could give, each of which once returned `Ok` with a wrong
//! result: NaN pullbacks, ill-shaped cotangents, a field that goes NaN under adaptive steps,
//! large states beyond the stability limit, unstable couplings. Every case must end in a typed
//! error of the right kind, or in a correct result.

mod common;
use common::*;
use proptest::prelude::*;
use revode_core::prelude::*;
use revode_core::stability;

/// Wraps a field and poisons one part of it with NaN on the time window `[from, to)`.
#[derive(Clone)]
struct Poisoned {
    inner: Mlp<f64>,
    part: Part,
    from: f64,
    to: f64,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Part {
    /// f(t, y) itself.
    Value,
    /// The pullback's state cotangent.
    StateCotangent,
    /// The pullback's parameter cotangent only.
    ParamCotangent,
}

impl VectorField for Poisoned {
    type Scalar = f64;
    fn dim(&self) -> usize {
        self.inner.dim()
    }
    fn params(&self) -> &[f64] {
        self.inner.params()
    }
    fn params_mut(&mut self) -> &mut [f64] {
        self.inner.params_mut()
    }
    fn eval(&self, t: f64, y: &[f64], out: &mut [f64]) {
        self.inner.eval(t, y, out);
        if self.part == Part::Value && (self.from..self.to).contains(&t) {
            out[0] = f64::NAN;
        }
    }
    fn vjp(&self, t: f64, y: &[f64], cot: &[f64], s: f64, yb: &mut [f64], pb: &mut [f64]) {
        self.inner.vjp(t, y, cot, s, yb, pb);
        if (self.from..self.to).contains(&t) {
            match self.part {
                Part::StateCotangent => yb[1] = f64::NAN,
                Part::ParamCotangent => pb[2] = f64::NAN,
                Part::Value => {}
            }
        }
    }
}

fn poisoned(part: Part, from: f64, to: f64) -> Poisoned {
    Poisoned {
        inner: mlp(3),
        part,
        from,
        to,
    }
}

fn all_methods() -> Vec<GradientMethod> {
    vec![
        GradientMethod::Reversible,
        GradientMethod::Direct,
        GradientMethod::Checkpointed { snapshots: Some(4) },
        GradientMethod::Backsolve,
        GradientMethod::CheckpointedReversible { every: 7 },
        GradientMethod::CheckpointedReversibleAuto { tolerance: 1e-10 },
    ]
}

#[test]
fn nan_in_a_pullback_is_an_error_naming_the_part_and_step() {
    let times = [0.0, 0.5, 1.0];
    let opts = SolveOptions::fixed(0.01);
    for (part, expect) in [
        (Part::ParamCotangent, "dL/dθ"),
        (Part::StateCotangent, "dL/dy0"),
    ] {
        let scheme = Reversible::new(
            Rk::new(OdeTerm::new(poisoned(part, 0.3, 0.31)), Tableau::midpoint()),
            0.999,
        )
        .unwrap();
        for m in all_methods() {
            let r = gradient(&scheme, &y0_3(), &times, &opts, &m.clone().into(), loss);
            match r {
                Err(Error::NonFiniteGradient { what, step }) => {
                    assert!(what.starts_with(expect), "{m:?}: {what}");
                    if part == Part::StateCotangent {
                        // The pullback of step 30 ([0.30, 0.31]) is the first to see the NaN;
                        // reversible pullbacks also evaluate at the step's end points.
                        let n = step.unwrap_or_else(|| panic!("{m:?}: no step"));
                        assert!((29..=31).contains(&n), "{m:?}: step {n}");
                        if m == GradientMethod::Direct {
                            assert_eq!(n, 30);
                        }
                    }
                }
                other => panic!("{m:?} with NaN in {part:?}: {other:?}"),
            }
        }
    }
}

#[test]
fn cotangents_of_the_wrong_shape_are_refused() {
    let scheme = Reversible::new(map(), 0.999).unwrap();
    let times = [0.0, 0.5, 1.0];
    let opts = SolveOptions::fixed(0.05);
    for m in all_methods() {
        // The SDE guide's old pattern: replacing a buffer by a collected vector of another length.
        for (k, len) in [(1, 0), (2, 5), (0, 2)] {
            let r = gradient(
                &scheme,
                &y0_3(),
                &times,
                &opts,
                &m.clone().into(),
                |ys, c| {
                    c[k] = vec![1.0; len];
                    ys[2][0]
                },
            );
            match r {
                Err(Error::ShapeMismatch {
                    expected, found, ..
                }) => assert_eq!((expected, found), (3, len)),
                other => panic!("{m:?}, cotangent {k} of length {len}: {other:?}"),
            }
        }
    }
}

fn map() -> Rk<OdeTerm<Mlp<f64>>> {
    Rk::new(OdeTerm::new(mlp(1)), Tableau::bosh3())
}

#[test]
fn adaptive_steps_report_a_nan_field_as_the_cause() {
    let scheme = Plain::new(Rk::new(
        OdeTerm::new(poisoned(Part::Value, 0.5, f64::INFINITY)),
        Tableau::bosh3(),
    ));
    let opts = SolveOptions::adaptive(Adaptive::new(1e-6, 1e-6));
    match solve(&scheme, &y0_3(), &[0.0, 1.0], &opts) {
        Err(Error::NonFiniteState { t, .. }) => assert!((0.5..=1.0).contains(&t), "t = {t}"),
        other => panic!("expected the non-finite state as the cause, got {other:?}"),
    }
}

/// The 1-D heat equation u_t = u_xx on (0, 1), zero Dirichlet ends, n interior cells: a
/// 256-entry state, beyond the dense check's 64. Eigenvalues −(4/dx²) sin²(kπ/(2(n+1))).
struct Heat {
    n: usize,
}

impl Heat {
    fn dx(&self) -> f64 {
        1.0 / (self.n as f64 + 1.0)
    }
    /// The most negative eigenvalue.
    fn alpha_max(&self) -> f64 {
        let s = (self.n as f64 * std::f64::consts::PI / (2.0 * (self.n as f64 + 1.0))).sin();
        4.0 * s * s / (self.dx() * self.dx())
    }
}

impl VectorField for Heat {
    type Scalar = f64;
    fn dim(&self) -> usize {
        self.n
    }
    fn params(&self) -> &[f64] {
        &[]
    }
    fn params_mut(&mut self) -> &mut [f64] {
        &mut []
    }
    fn eval(&self, _t: f64, u: &[f64], out: &mut [f64]) {
        let c = 1.0 / (self.dx() * self.dx());
        for i in 0..self.n {
            let l = if i > 0 { u[i - 1] } else { 0.0 };
            let r = if i + 1 < self.n { u[i + 1] } else { 0.0 };
            out[i] = c * (l - 2.0 * u[i] + r);
        }
    }
    fn vjp(&self, t: f64, _u: &[f64], cot: &[f64], s: f64, yb: &mut [f64], _pb: &mut [f64]) {
        // The Laplacian is symmetric: Jᵀ cot = J cot.
        let mut tmp = vec![0.0; self.n];
        self.eval(t, cot, &mut tmp);
        yb.iter_mut().zip(&tmp).for_each(|(b, v)| *b += s * v);
    }
}

#[test]
fn large_states_beyond_the_stability_limit_are_flagged() {
    let heat = Heat { n: 256 };
    // Explicit Euler is stable on the negative real axis for h·α ≤ 2.
    let limit = 2.0 / heat.alpha_max();
    let u0: Vec<f64> = (0..256)
        .map(|i| ((i + 1) as f64 * heat.dx() * std::f64::consts::PI).sin())
        .collect();
    let scheme = Plain::new(Rk::new(OdeTerm::new(heat), Tableau::euler()));
    for (factor, unstable) in [(0.9, false), (1.2, true), (3.0, true)] {
        let h = factor * limit;
        let sol = solve(&scheme, &u0, &[0.0, 40.0 * h], &SolveOptions::fixed(h)).unwrap();
        let flagged = sol
            .stats
            .warnings
            .iter()
            .any(|w| matches!(w, Warning::OutsideStabilityRegion { .. }));
        assert_eq!(flagged, unstable, "h = {factor} × limit: {:?}", sol.stats);
    }
}

#[test]
fn ritz_values_find_the_outer_eigenvalues() {
    let heat = Heat { n: 256 };
    let mut op = |v: &[f64], out: &mut [f64]| {
        out.iter_mut().for_each(|o| *o = 0.0);
        heat.vjp(0.0, v, v, 1.0, out, &mut []);
    };
    let xs = stability::ritz_values(256, 24, &mut op).unwrap();
    let most = xs.iter().map(|x| x.norm()).fold(0.0, f64::max);
    let exact = heat.alpha_max();
    // The Lanczos estimate lies inside the spectrum and, after 24 steps, within 1 %.
    assert!(
        most <= exact * (1.0 + 1e-12) && most > 0.99 * exact,
        "{most} vs {exact}"
    );
    // With m ≥ n the Ritz values are the eigenvalues (a non-symmetric 12 × 12 example).
    let n = 12;
    let mut seed: u64 = 7;
    let a: Vec<f64> = (0..n * n)
        .map(|_| {
            seed = seed
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (seed >> 11) as f64 / (1u64 << 53) as f64 - 0.5
        })
        .collect();
    let mut op = |v: &[f64], out: &mut [f64]| {
        for i in 0..n {
            out[i] = (0..n).map(|j| a[i * n + j] * v[j]).sum();
        }
    };
    let ritz = stability::ritz_values(n, n, &mut op).unwrap();
    let dense = stability::eigenvalues(&a, n).unwrap();
    assert_eq!(ritz.len(), n);
    for d in &dense {
        let nearest = ritz
            .iter()
            .map(|r| (r - d).norm())
            .fold(f64::INFINITY, f64::min);
        assert!(
            nearest < 1e-8,
            "eigenvalue {d}: nearest Ritz value {nearest:e} away"
        );
    }
}

#[test]
fn an_unstable_coupling_is_an_error_by_default() {
    // λ = 0.5 over 50 steps of a small tanh MLP: the reconstruction drifts by 1e-2 or more.
    let scheme = Reversible::new(map_midpoint(), 0.5).unwrap();
    let times = [0.0, 5.0];
    let opts = SolveOptions::fixed(0.1);
    let r = gradient(
        &scheme,
        &y0_3(),
        &times,
        &opts,
        &GradientMethod::Reversible.into(),
        loss,
    );
    match r {
        Err(Error::ReconstructionDrift { error, tolerance }) => {
            assert!(
                error > tolerance && tolerance == f64::EPSILON.sqrt(),
                "{error} {tolerance}"
            )
        }
        other => panic!("expected a drift error, got {other:?}"),
    }
    // Opting out is explicit, and then the drift is reported.
    let off = GradientOptions {
        drift: DriftCheck::Off,
        ..GradientMethod::Reversible.into()
    };
    let g = gradient(&scheme, &y0_3(), &times, &opts, &off, loss).unwrap();
    assert!(g.stats.reconstruction_error.unwrap() > f64::EPSILON.sqrt());
}

fn map_midpoint() -> Rk<OdeTerm<Mlp<f64>>> {
    Rk::new(OdeTerm::new(mlp(2)), Tableau::midpoint())
}

fn rel_diff(a: &[f64], b: &[f64]) -> f64 {
    let scale = b.iter().map(|v| v.abs()).fold(1.0, f64::max);
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f64::max)
        / scale
}

fn extreme_lambda() -> impl Strategy<Value = f64> {
    prop_oneof![
        Just(1e-300),
        Just(1e-10),
        Just(0.01),
        Just(0.5),
        Just(1.0 - 1e-15),
        Just(1.0),
        0.9..=1.0f64,
    ]
}

fn extreme_h() -> impl Strategy<Value = f64> {
    prop_oneof![
        Just(1e-300),
        Just(1e-7),
        Just(1e3),
        Just(1e300),
        Just(f64::MAX),
        0.005..0.5f64,
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 120, ..ProptestConfig::default() })]

    /// Extreme λ and h, poisoned fields and ill-shaped cotangents: a typed error of the
    /// expected kind, or a gradient equal to the full tape of the same scheme.
    #[test]
    fn typed_error_or_correct_gradient(
        lambda in extreme_lambda(),
        h in extreme_h(),
        method in 0usize..5,
        poison in 0usize..4,
        bad_cot in proptest::option::of((0usize..3, 0usize..6)),
    ) {
        let part = [None, Some(Part::Value), Some(Part::StateCotangent), Some(Part::ParamCotangent)][poison];
        let field = match part {
            None => poisoned(Part::Value, f64::INFINITY, f64::INFINITY),
            Some(p) => poisoned(p, 0.2, 0.7),
        };
        let scheme = Reversible::new(Rk::new(OdeTerm::new(field), Tableau::midpoint()), lambda).unwrap();
        let m = [
            GradientMethod::Reversible,
            GradientMethod::Direct,
            GradientMethod::Checkpointed { snapshots: Some(3) },
            GradientMethod::CheckpointedReversible { every: 5 },
            GradientMethod::CheckpointedReversibleAuto { tolerance: 1e-9 },
        ][method].clone();
        let times = [0.0, 0.5, 1.0];
        let opts = SolveOptions::fixed(h).with_max_steps(100_000);
        let run = |m: GradientMethod| gradient(&scheme, &y0_3(), &times, &opts, &m.into(), |ys, c| {
            let l = loss(ys, c);
            if let Some((k, len)) = bad_cot {
                if len != 3 { c[k] = vec![0.5; len]; }
            }
            l
        });
        match run(m.clone()) {
            Ok(g) => {
                prop_assert!(g.y0.iter().chain(&g.params).all(|v| v.is_finite()));
                prop_assert!(part.is_none() && bad_cot.is_none_or(|(_, len)| len == 3),
                    "Ok despite poison {part:?} / cotangent {bad_cot:?}");
                let direct = run(GradientMethod::Direct).unwrap();
                let d = rel_diff(&g.params, &direct.params).max(rel_diff(&g.y0, &direct.y0));
                prop_assert!(d < 1e-6, "{m:?} λ = {lambda} h = {h}: {d:e} from the full tape");
            }
            Err(Error::ShapeMismatch { .. }) => prop_assert!(bad_cot.is_some()),
            Err(Error::NonFiniteGradient { .. }) | Err(Error::NonFiniteState { .. }) => {}
            Err(Error::ReconstructionDrift { .. }) => prop_assert!(lambda < 1.0),
            Err(Error::MaxStepsExceeded { .. }) | Err(Error::InvalidStepSize { .. }) => {
                prop_assert!(h < 1e-5)
            }
            Err(e) => prop_assert!(false, "unexpected error {e}"),
        }
    }
}

#[test]
fn the_default_drift_check_raises_no_false_alarms() {
    // Healthy couplings: every built-in tableau, 10 random MLP fields, λ = 0.999 over 1000 steps
    // and λ = 0.9 over 100 steps (drift ≈ ε·λ^{−N}: ≤ 3e-15 and ≤ 8e-12 respectively).
    let mut checked = 0;
    for tableau in Tableau::all_builtin() {
        for seed in 0..10 {
            for (lambda, h) in [(0.999, 0.002), (0.9, 0.02)] {
                let scheme =
                    Reversible::new(Rk::new(OdeTerm::new(mlp(seed)), tableau.clone()), lambda)
                        .unwrap();
                let g = gradient(
                    &scheme,
                    &y0_3(),
                    &[0.0, 1.0, 2.0],
                    &SolveOptions::fixed(h),
                    &GradientMethod::Reversible.into(),
                    loss,
                )
                .unwrap_or_else(|e| panic!("{} seed {seed} λ = {lambda}: {e}", tableau.name()));
                let drift = g.stats.reconstruction_error.unwrap();
                assert!(
                    drift < 1e-10,
                    "{} λ = {lambda}: drift {drift:e}",
                    tableau.name()
                );
                checked += 1;
            }
        }
    }
    assert!(checked >= 160);
}
