//! Reconstruction: N forward then N backward steps of the coupling return (y0, z0).

mod common;
use common::*;
use revode_core::prelude::*;

/// Runs N forward and N backward steps with h = 0.01 and returns the max relative error of
/// the reconstructed (y0, z0).
fn round_trip(lambda: f64, n: usize, t: Tableau) -> f64 {
    let scheme = Reversible::new(Rk::new(OdeTerm::new(mlp(21)), t), lambda).unwrap();
    let y0 = y0_3();
    let mut scratch = scheme.new_scratch(&y0);
    let mut stats = Stats::default();
    let mut carry = scheme.init(Start { t0: 0.0, y0: &y0 }, &mut scratch, &mut stats);
    let h = 0.01;
    for k in 0..n {
        let (a, b) = (k as f64 * h, (k + 1) as f64 * h);
        scheme.step(a, b, &mut carry, None, None, &mut scratch, &mut stats);
    }
    for k in (0..n).rev() {
        let (a, b) = (k as f64 * h, (k + 1) as f64 * h);
        scheme
            .reconstruct(a, b, &mut carry, &mut scratch, &mut stats)
            .unwrap();
    }
    rel(&carry.y, &y0).max(rel(&carry.z, &y0))
}

#[test]
fn thousand_steps_return_to_round_off_at_default_lambda() {
    for t in [Tableau::midpoint(), Tableau::rk4(), Tableau::dopri5()] {
        let err = round_trip(0.999, 1000, t.clone());
        assert!(err <= 1e-12, "{}: {err:e}", t.name());
    }
}

#[test]
fn drift_grows_as_lambda_shrinks() {
    // Each backward step divides by λ, so round-off can grow like λ^{-N}. Measure it.
    let lambdas = [0.999, 0.99, 0.9, 0.5];
    let errs: Vec<f64> = lambdas
        .iter()
        .map(|&l| round_trip(l, 1000, Tableau::midpoint()))
        .collect();
    for (l, e) in lambdas.iter().zip(&errs) {
        println!("λ = {l}: reconstruction error after 1000 + 1000 steps = {e:e}");
    }
    assert!(errs[0] <= 1e-12);
    // Bounded by round-off times the worst-case amplification λ^{-N}.
    for (l, e) in lambdas.iter().zip(&errs) {
        let bound = 1e3 * f64::EPSILON * l.powi(-1000);
        assert!(
            !e.is_finite() || *e <= bound || bound.is_infinite(),
            "λ={l}: {e:e} > {bound:e}"
        );
    }
    // λ = 0.5 over 1000 steps is hopeless (2^1000): the error is O(1) or worse.
    assert!(
        errs[3].is_nan() || errs[3] >= 1e-3,
        "λ = 0.5: {:e}",
        errs[3]
    );
    // Monotone in λ among the finite ones.
    assert!(errs[1] >= errs[0] * 0.5 && errs[2] > errs[1]);
}

#[test]
fn reversible_gradient_reports_drift_and_honours_the_tolerance() {
    let scheme = Reversible::new(Rk::new(OdeTerm::new(mlp(2)), Tableau::midpoint()), 0.5).unwrap();
    let opts = SolveOptions::fixed(0.01);
    let times = [0.0, 1.0];
    // By default the drift is an error; opting out reports it.
    let default = gradient(
        &scheme,
        &y0_3(),
        &times,
        &opts,
        &GradientMethod::Reversible.into(),
        loss,
    );
    assert!(
        matches!(default, Err(Error::ReconstructionDrift { .. })),
        "{default:?}"
    );
    let off = GradientOptions {
        drift: DriftCheck::Off,
        ..GradientMethod::Reversible.into()
    };
    let g = gradient(&scheme, &y0_3(), &times, &opts, &off, loss).unwrap();
    let drift = g.stats.reconstruction_error.unwrap();
    assert!(
        drift > 1e-10,
        "100 steps at λ = 0.5 amplify round-off by 2^100: {drift:e}"
    );
    let strict = GradientOptions {
        drift: DriftCheck::Tolerance(1e-12),
        ..GradientMethod::Reversible.into()
    };
    let err = gradient(&scheme, &y0_3(), &times, &opts, &strict, loss).unwrap_err();
    assert!(matches!(err, Error::ReconstructionDrift { .. }), "{err}");
    // Checkpointing the carry every 10 steps caps the amplification at 2^10.
    let capped = GradientOptions {
        drift: DriftCheck::Tolerance(1e-9),
        ..GradientMethod::CheckpointedReversible { every: 10 }.into()
    };
    let g = gradient(&scheme, &y0_3(), &times, &opts, &capped, loss).unwrap();
    assert!(g.stats.reconstruction_error.unwrap() < 1e-9);
}

#[test]
fn a_drifted_reconstruction_reports_its_drift() {
    // y′ = −50 y at h = 0.02 with λ = 0.5: each backward step amplifies round-off; after 2000
    // steps the reconstruction overflows. The drift must say so (NaN or ∞), not read as exact.
    let scheme = Reversible::new(
        Rk::new(OdeTerm::new(Scalar1 { k: -50.0 }), Tableau::midpoint()),
        0.5,
    )
    .unwrap();
    let opts = SolveOptions::fixed(0.02);
    let off = GradientOptions {
        drift: DriftCheck::Off,
        ..GradientMethod::Reversible.into()
    };
    let g = gradient(&scheme, &vec![1.0], &[0.0, 400.0], &opts, &off, |ys, c| {
        c[1][0] = 2.0 * ys[1][0];
        ys[1][0] * ys[1][0]
    });
    // Unchecked, the overflowed reconstruction either reports its drift or, when the adjoint
    // overflowed too, is a non-finite-gradient error: never an exact-looking Ok.
    match g {
        Ok(g) => {
            let d = g.stats.reconstruction_error.unwrap();
            assert!(d.is_nan() || d > 1e-8, "drift {d}");
        }
        Err(e) => assert!(matches!(e, Error::NonFiniteGradient { .. }), "{e}"),
    }
    // With a tolerance the same run is an error.
    let tol = GradientOptions {
        drift: DriftCheck::Tolerance(1e-8),
        ..GradientMethod::Reversible.into()
    };
    assert!(
        gradient(&scheme, &vec![1.0], &[0.0, 400.0], &opts, &tol, |ys, c| {
            c[1][0] = 2.0 * ys[1][0];
            ys[1][0] * ys[1][0]
        })
        .is_err()
    );
}

#[test]
fn final_z_is_the_coupled_state_of_a_hand_written_loop() {
    // Reversible midpoint on y' = −0.8y, λ = 0.9, h = 0.1 (METHOD.md §2), written out:
    //   y ← λy + (1 − λ)z + Ψ_h(z),   z ← z − Ψ_{−h}(y),
    // with midpoint's Ψ_h(x) = h·f(x + ½·h·f(x)) and f(x) = −0.8x.
    let (k, lambda, h) = (-0.8, 0.9, 0.1);
    let psi = |x: f64, h: f64| {
        let k1 = k * x * h;
        k * (x + 0.5 * k1) * h
    };
    let (mut y, mut z) = (1.0f64, 1.0f64);
    for _ in 0..10 {
        y = lambda * y + (1.0 - lambda) * z + psi(z, h);
        z -= psi(y, -h);
    }
    let map = Rk::new(OdeTerm::new(Scalar1 { k }), Tableau::midpoint());
    let sol = solve(
        &Reversible::new(map.clone(), lambda).unwrap(),
        &vec![1.0],
        &[0.0, 0.4, 1.0],
        &SolveOptions::fixed(h),
    )
    .unwrap();
    let z_n = sol
        .final_z
        .expect("the reversible scheme has a coupled state")[0];
    assert!((z_n - z).abs() <= 1e-14 * z.abs(), "{z_n} vs {z}");
    assert!((sol.ys[2][0] - y).abs() <= 1e-14 * y.abs());
    // z_N − y_N ≈ −6.5e-5, far above round-off: the test tells z from y.
    assert!((z - y).abs() > 1e-5);
    // The plain scheme has no coupled state.
    let plain = solve(
        &Plain::new(map),
        &vec![1.0],
        &[0.0, 1.0],
        &SolveOptions::fixed(h),
    );
    assert!(plain.unwrap().final_z.is_none());
}

#[test]
fn final_z_of_an_adaptive_solve_is_the_last_accepted_carry() {
    // Rejected steps restore (y, z); replaying the accepted steps reproduces z_N exactly.
    let map = Rk::new(OdeTerm::new(mlp(4)), Tableau::bosh3());
    let scheme = Reversible::new(map, 0.999).unwrap();
    let opts = SolveOptions::adaptive(Adaptive::new(1e-7, 1e-7).with_h0(0.5));
    let sol = solve(&scheme, &y0_3(), &[0.0, 0.5, 1.5], &opts).unwrap();
    assert!(sol.stats.rejected_steps > 0, "{:?}", sol.stats);
    let y0 = y0_3();
    let mut scratch = scheme.new_scratch(&y0);
    let mut stats = Stats::default();
    let mut carry = scheme.init(Start { t0: 0.0, y0: &y0 }, &mut scratch, &mut stats);
    for w in sol.step_times.windows(2) {
        scheme.step(w[0], w[1], &mut carry, None, None, &mut scratch, &mut stats);
    }
    assert_eq!(sol.final_z.as_ref(), Some(&carry.z));
    assert_eq!(sol.ys[2], carry.y);
    // Reversible Heun's coupled state is ŷ.
    let rh = ReversibleHeun::new(OdeTerm::new(mlp(4))).unwrap();
    let sol = solve(&rh, &y0_3(), &[0.0, 1.0], &SolveOptions::fixed(0.1)).unwrap();
    assert!(sol.final_z.is_some_and(|z| z != sol.ys[1]));
}
