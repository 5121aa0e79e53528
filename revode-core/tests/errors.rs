//! Every typed error is reachable, and random invalid input gives an error, never a panic.

mod common;
use common::*;
use proptest::prelude::*;
use revode_core::prelude::*;

type Map = Rk<OdeTerm<Mlp<f64>>>;

fn map() -> Map {
    Rk::new(OdeTerm::new(mlp(1)), Tableau::rk4())
}

fn rev(lambda: f64) -> Result<Reversible<Map>> {
    Reversible::new(map(), lambda)
}

fn grad_with(
    opts: &SolveOptions,
    times: &[f64],
    y0: &[f64],
) -> Result<Gradient<Vec<f64>, Vec<f64>>> {
    gradient(
        &rev(0.999)?,
        &y0.to_vec(),
        times,
        opts,
        &GradientMethod::Reversible.into(),
        loss,
    )
}

#[test]
fn each_error_is_reachable() {
    let y0 = y0_3();
    let fixed = SolveOptions::fixed(0.1);
    assert!(matches!(rev(0.0), Err(Error::InvalidCoupling { .. })));
    assert!(matches!(rev(1.5), Err(Error::InvalidCoupling { .. })));
    assert!(matches!(rev(f64::NAN), Err(Error::InvalidCoupling { .. })));
    assert!(matches!(
        grad_with(&fixed, &[0.0, f64::NAN], &y0),
        Err(Error::NonFinite { .. })
    ));
    assert!(matches!(
        grad_with(&fixed, &[0.0, 1.0], &[0.1, f64::INFINITY, 0.0]),
        Err(Error::NonFinite { index: 1, .. })
    ));
    assert!(matches!(
        grad_with(&fixed, &[], &y0),
        Err(Error::Empty { .. })
    ));
    assert!(matches!(
        grad_with(&fixed, &[0.0, 1.0], &[]),
        Err(Error::Empty { .. })
    ));
    assert!(matches!(
        grad_with(&SolveOptions::fixed(0.0), &[0.0, 1.0], &y0),
        Err(Error::InvalidStepSize { .. })
    ));
    assert!(matches!(
        grad_with(&SolveOptions::fixed(-1.0), &[0.0, 1.0], &y0),
        Err(Error::InvalidStepSize { .. })
    ));
    assert!(matches!(
        grad_with(&fixed, &[1.0, 0.0], &y0),
        Err(Error::InvalidInterval { .. })
    ));
    assert!(matches!(
        grad_with(&fixed, &[0.0, 0.5, 0.5, 1.0], &y0),
        Err(Error::UnsortedTimes { index: 2, .. })
    ));
    assert!(matches!(
        grad_with(&fixed, &[0.0, 1.0], &[1.0, 2.0]),
        Err(Error::ShapeMismatch {
            expected: 3,
            found: 2,
            ..
        })
    ));
    assert!(matches!(
        grad_with(&fixed.clone().with_max_steps(5), &[0.0, 1.0], &y0),
        Err(Error::MaxStepsExceeded { max_steps: 5, .. })
    ));
    // Adaptive: a tolerance no step can meet above h_min.
    let mut tight = Adaptive::new(1e-14, 1e-14);
    tight.h_min = 1e-3;
    let opts = SolveOptions::adaptive(tight);
    let s = Reversible::new(Rk::new(OdeTerm::new(mlp(1)), Tableau::bosh3()), 0.999).unwrap();
    let r = gradient(
        &s,
        &y0,
        &[0.0, 1.0],
        &opts,
        &GradientMethod::Reversible.into(),
        loss,
    );
    assert!(matches!(r, Err(Error::StepSizeUnderflow { .. })), "{r:?}");
    // Adaptive steps with a method without an error estimate.
    let r = grad_with(
        &SolveOptions::adaptive(Adaptive::new(1e-6, 1e-6)),
        &[0.0, 1.0],
        &y0,
    );
    assert!(matches!(r, Err(Error::Config { .. })), "{r:?}");
    // Blow-up: y' = y² from y = 1 is infinite at t = 1.
    struct Square;
    impl VectorField for Square {
        type Scalar = f64;
        fn dim(&self) -> usize {
            1
        }
        fn params(&self) -> &[f64] {
            &[]
        }
        fn params_mut(&mut self) -> &mut [f64] {
            &mut []
        }
        fn eval(&self, _t: f64, y: &[f64], o: &mut [f64]) {
            o[0] = y[0] * y[0];
        }
        fn vjp(&self, _t: f64, y: &[f64], c: &[f64], s: f64, yb: &mut [f64], _p: &mut [f64]) {
            yb[0] += s * 2.0 * y[0] * c[0];
        }
    }
    let blow = Plain::new(Rk::new(OdeTerm::new(Square), Tableau::euler()));
    let r = solve(&blow, &vec![1.0], &[0.0, 3.0], &SolveOptions::fixed(0.1));
    assert!(matches!(r, Err(Error::NonFiniteState { .. })), "{r:?}");
    // Reconstruction drift above the user's tolerance.
    let s = Reversible::new(map(), 0.3).unwrap();
    let strict = GradientOptions {
        drift: DriftCheck::Tolerance(1e-14),
        ..GradientMethod::Reversible.into()
    };
    let r = gradient(
        &s,
        &y0,
        &[0.0, 2.0],
        &SolveOptions::fixed(0.01),
        &strict,
        loss,
    );
    assert!(matches!(r, Err(Error::ReconstructionDrift { .. })), "{r:?}");
    // A non-finite loss or cotangent.
    let r = gradient(
        &s,
        &y0,
        &[0.0, 1.0],
        &fixed,
        &GradientMethod::Direct.into(),
        |_, _| f64::NAN,
    );
    assert!(matches!(r, Err(Error::NonFiniteGradient { .. })), "{r:?}");
    let r = gradient(
        &s,
        &y0,
        &[0.0, 1.0],
        &fixed,
        &GradientMethod::Direct.into(),
        |_, c| {
            c[1][0] = f64::INFINITY;
            0.0
        },
    );
    assert!(matches!(r, Err(Error::NonFiniteGradient { .. })), "{r:?}");
    // Methods that need what the scheme cannot do.
    let plain = Plain::new(map());
    let r = gradient(
        &plain,
        &y0,
        &[0.0, 1.0],
        &fixed,
        &GradientMethod::Reversible.into(),
        loss,
    );
    assert!(matches!(r, Err(Error::Unsupported(_))), "{r:?}");
    // Bad configuration values.
    for method in [
        GradientMethod::Checkpointed { snapshots: Some(0) },
        GradientMethod::CheckpointedReversible { every: 0 },
    ] {
        let r = gradient(&s, &y0, &[0.0, 1.0], &fixed, &method.into(), loss);
        assert!(matches!(r, Err(Error::Config { .. })), "{r:?}");
    }
    assert!(matches!(
        Tableau::by_name("rk45"),
        Err(Error::Config { .. })
    ));
}

#[test]
fn user_tableaux_are_validated() {
    let ok = Tableau::new(
        "mine",
        vec![vec![0.0, 0.0], vec![0.5, 0.0]],
        vec![0.0, 1.0],
        vec![0.0, 0.5],
        2,
        None,
    );
    assert_eq!(ok.unwrap().order(), 2);
    let bad = |a: Vec<Vec<f64>>, b: Vec<f64>, c: Vec<f64>, p: u32| {
        let r = Tableau::new("bad", a, b, c, p, None);
        assert!(matches!(r, Err(Error::InvalidTableau { .. })), "{r:?}");
    };
    bad(
        vec![vec![0.0, 1.0], vec![0.5, 0.0]],
        vec![0.0, 1.0],
        vec![1.0, 0.5],
        2,
    ); // implicit
    bad(
        vec![vec![0.0, 0.0], vec![0.5, 0.0]],
        vec![0.0, 1.0],
        vec![0.0, 0.7],
        2,
    ); // c ≠ row sum
    bad(
        vec![vec![0.0, 0.0], vec![0.5, 0.0]],
        vec![0.2, 0.7],
        vec![0.0, 0.5],
        1,
    ); // Σb ≠ 1
    bad(
        vec![vec![0.0, 0.0], vec![0.5, 0.0]],
        vec![0.0, 1.0],
        vec![0.0, 0.5],
        3,
    ); // order claim
    bad(vec![vec![0.0]], vec![1.0, 0.0], vec![0.0], 1); // shapes
    bad(vec![], vec![], vec![], 1); // empty
    bad(
        vec![vec![0.0, 0.0], vec![f64::NAN, 0.0]],
        vec![0.0, 1.0],
        vec![0.0, 0.5],
        1,
    );
    // Every built-in satisfies the order it claims, and its embedded method too.
    for t in Tableau::all_builtin() {
        let p = revode_core::tableau::satisfied_order(t.a(), t.b(), t.c());
        assert!(p >= t.order(), "{}: satisfies order {p}", t.name());
        if let (Some(e), Some(p)) = (t.error_weights(), t.embedded_order()) {
            let bh: Vec<f64> = t.b().iter().zip(e).map(|(b, e)| b - e).collect();
            let q = revode_core::tableau::satisfied_order(t.a(), &bh, t.c());
            assert!(q >= p && q < t.order(), "{}: embedded order {q}", t.name());
        }
    }
}

fn any_f64() -> impl Strategy<Value = f64> {
    prop_oneof![
        Just(f64::NAN),
        Just(f64::INFINITY),
        Just(f64::NEG_INFINITY),
        Just(0.0),
        Just(-0.0),
        -10.0..10.0f64,
        any::<f64>(),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    /// Arbitrary λ, times, h, y0 and method: invalid inputs give an error; valid inputs in the
    /// healthy regime (λ ≥ 0.999, so that the drift ε·λ^{−N} stays tiny over the ≤ 4000 steps
    /// here; h ≥ 0.001; rtol in [1e-8, 1e-2]) succeed with a finite gradient equal
    /// to the full tape's (backsolve: close to it); never a panic.
    #[test]
    fn random_inputs_never_panic(
        lambda in prop_oneof![any_f64(), 0.05..=1.0f64, 0.999..=1.0f64],
        times in prop_oneof![
            proptest::collection::vec(any_f64(), 0..5),
            proptest::collection::vec(0.01..1.0f64, 1..5).prop_map(|d| {
                d.iter().scan(0.0, |t, x| { *t += x; Some(*t) }).collect::<Vec<f64>>()
            }),
        ],
        h in prop_oneof![any_f64(), 0.001..0.5f64],
        y0 in prop_oneof![
            proptest::collection::vec(any_f64(), 0..5),
            proptest::collection::vec(-2.0..2.0f64, 3..=3),
        ],
        method in 0usize..5,
        snapshots in 0usize..4,
        adaptive in any::<bool>(),
        rtol in prop_oneof![any_f64(), 1e-8..1e-2f64],
    ) {
        let Ok(scheme) = Reversible::new(Rk::new(OdeTerm::new(mlp(1)), Tableau::bosh3()), lambda) else {
            prop_assert!(!(lambda > 0.0 && lambda <= 1.0));
            return Ok(());
        };
        let mut opts = if adaptive {
            let mut a = Adaptive::new(rtol, 1e-6);
            a.h0 = Some(h);
            SolveOptions::adaptive(a)
        } else {
            SolveOptions::fixed(h)
        }.with_max_steps(20_000);
        opts.stability_check_dim = 8;
        let m = match method {
            0 => GradientMethod::Reversible,
            1 => GradientMethod::Direct,
            2 => GradientMethod::Checkpointed { snapshots: Some(snapshots) },
            3 => GradientMethod::Backsolve,
            _ => GradientMethod::CheckpointedReversible { every: snapshots },
        };
        let run = |m: GradientMethod| gradient(&scheme, &y0, &times, &opts, &m.into(), |ys, c| {
            for (y, g) in ys.iter().zip(c.iter_mut()) { g.copy_from_slice(y); }
            ys.iter().flatten().map(|v| 0.5 * v * v).sum()
        });
        let r = run(m.clone());
        let valid_times = times.len() >= 2
            && times.iter().all(|t| t.is_finite())
            && times.windows(2).all(|w| w[1] > w[0]);
        let valid_y0 = y0.len() == 3 && y0.iter().all(|v| v.is_finite());
        let valid_h = h > 0.0 && h.is_finite();
        let valid_rtol = !adaptive || (rtol >= 0.0 && rtol.is_finite());
        let valid_method = snapshots >= 1 || !matches!(method, 2 | 4);
        if !(valid_times && valid_y0 && valid_h && valid_rtol && valid_method) {
            prop_assert!(r.is_err(), "accepted invalid input: {r:?}");
            return Ok(());
        }
        // The healthy regime also bounds the interval (≤ 5, so ≤ 5000 fixed steps): arbitrary
        // finite times such as [0, 5e109] are valid input that no step budget can cover.
        let span = times[times.len() - 1] - times[0];
        // It also bounds y0 (|y0| ≤ 1e6): the loss ½‖y‖² overflows from |y| ≈ 1.3e154, and
        // refusing that with a typed error is the right answer, not a failure.
        let healthy = lambda >= 0.999
            && y0.iter().all(|v| v.abs() <= 1e6)
            && h >= 1e-3
            && span <= 5.0
            && (!adaptive || (1e-8..=1e-2).contains(&rtol));
        if !healthy {
            // Extreme but valid: a typed error (drift, steps) or a finite result.
            if let Ok(g) = &r {
                prop_assert!(g.y0.iter().chain(&g.params).all(|v| v.is_finite()));
            }
            return Ok(());
        }
        let g = r.map_err(|e| TestCaseError::fail(format!("{m:?} refused valid input: {e}")))?;
        let direct = run(GradientMethod::Direct).unwrap();
        let d = rel(&g.params, &direct.params).max(rel(&g.y0, &direct.y0));
        let tol = if m == GradientMethod::Backsolve { 0.5 } else { 1e-7 };
        prop_assert!(d < tol, "{m:?}: {d:e} from the full tape");
    }
}
