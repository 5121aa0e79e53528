//! Stability analysis against direct simulation of the coupled recurrence.

mod common;
use common::*;
use num_complex::Complex64;
use revode_core::prelude::*;
use revode_core::stability::*;

/// Simulates the reversible scheme on y' = αy for complex α (as the real 2 × 2 system
/// [[a, −b], [b, a]]) with h = 1 and returns ‖y_N‖ for y_0 = (1, 0).
fn simulate(t: &Tableau, x: Complex64, lambda: f64, n: usize) -> f64 {
    let field = Linear2 {
        a: [x.re, -x.im, x.im, x.re],
    };
    let scheme = Reversible::new(Rk::new(OdeTerm::new(field), t.clone()), lambda).unwrap();
    let y0 = vec![1.0, 0.0];
    let mut s = scheme.new_scratch(&y0);
    let mut st = Stats::default();
    let mut c = scheme.init(Start { t0: 0.0, y0: &y0 }, &mut s, &mut st);
    for k in 0..n {
        scheme.step(
            k as f64,
            (k + 1) as f64,
            &mut c,
            None,
            None,
            &mut s,
            &mut st,
        );
        if !c.all_finite() {
            return f64::INFINITY;
        }
    }
    c.y.iter().chain(&c.z).map(|v| v * v).sum::<f64>().sqrt()
}

#[test]
fn predicted_stability_agrees_with_simulation() {
    let mut rng = 0x1234_5678_u64;
    let mut uniform = || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        (rng >> 11) as f64 / (1u64 << 53) as f64
    };
    for t in [Tableau::euler(), Tableau::midpoint(), Tableau::rk4()] {
        let (mut checked, mut stable) = (0, 0);
        while checked < 300 {
            let x = Complex64::new(-3.0 * uniform(), 3.0 * (2.0 * uniform() - 1.0));
            let lambda = 0.05 + 0.95 * uniform();
            let rho = spectral_radius(&t, x, lambda);
            // Skip points within 2 % of the boundary, where a finite run cannot decide.
            if (rho - 1.0).abs() < 0.02 {
                continue;
            }
            checked += 1;
            // ρ^N separates the cases by many orders of magnitude for N = 3000 (0.98^3000 ≈ 1e-26).
            let norm = simulate(&t, x, lambda, 3000);
            let predicted = is_stable(&t, x, lambda);
            assert_eq!(
                predicted,
                is_stable_closed_form(&t, x, lambda),
                "{} x={x} λ={lambda}",
                t.name()
            );
            if predicted {
                stable += 1;
                assert!(
                    norm < 1e-6,
                    "{} x={x} λ={lambda}: predicted stable, ‖y_N‖={norm:e}",
                    t.name()
                );
            } else {
                assert!(
                    norm > 1e6,
                    "{} x={x} λ={lambda}: predicted unstable, ‖y_N‖={norm:e}",
                    t.name()
                );
            }
        }
        assert!(
            stable > 10 && stable < 290,
            "{}: {stable} stable points of 300",
            t.name()
        );
    }
}

#[test]
fn reversible_euler_at_default_lambda_is_unstable_for_decay() {
    let t = Tableau::euler();
    let x = Complex64::new(-0.01, 0.0); // α = −1, h = 0.01
    assert!(!is_stable(&t, x, 0.999));
    assert!(is_stable(&t, x, 0.9));
    // And it blows up over 10 000 steps of the real solver at λ = 0.999, but not at 0.9.
    let run = |lambda: f64| {
        let scheme = Reversible::new(
            Rk::new(OdeTerm::new(Scalar1 { k: -1.0 }), t.clone()),
            lambda,
        )
        .unwrap();
        solve(
            &scheme,
            &vec![1.0],
            &[0.0, 100.0],
            &SolveOptions::fixed(0.01),
        )
        .unwrap()
    };
    let bad = run(0.999);
    assert!(bad.ys[1][0].abs() > 1e10, "λ = 0.999: {}", bad.ys[1][0]);
    assert!(
        matches!(
            bad.stats.warnings.first(),
            Some(Warning::OutsideStabilityRegion { .. })
        ),
        "the solve records a stability warning"
    );
    let good = run(0.9);
    assert!(good.ys[1][0].abs() < 1e-10, "λ = 0.9: {}", good.ys[1][0]);
    assert!(good.stats.warnings.is_empty());
}

#[test]
fn lambda_one_is_never_asymptotically_stable() {
    for t in [Tableau::euler(), Tableau::midpoint(), Tableau::rk4()] {
        for x in [
            Complex64::new(-0.1, 0.0),
            Complex64::new(-0.5, 0.3),
            Complex64::new(-1.0, -1.0),
        ] {
            assert!(
                spectral_radius(&t, x, 1.0) >= 1.0 - 1e-12,
                "{} {x}",
                t.name()
            );
        }
    }
}

#[test]
fn advice_finds_the_boundary() {
    let t = Tableau::euler();
    let spectrum = [Complex64::new(-1.0, 0.0)];
    let h = max_stable_step(&t, 0.999, &spectrum, 10.0)
        .unwrap()
        .expect("small h is stable");
    // Just inside is stable, just outside is not.
    assert!(is_stable(&t, spectrum[0] * (0.99 * h), 0.999));
    assert!(!is_stable(&t, spectrum[0] * (1.01 * h), 0.999));
    assert!(
        h < 0.01,
        "h = 0.01 is unstable at λ = 0.999, so the limit is below it: {h}"
    );
    let ranges = stable_lambda_range(&t, 0.01, &spectrum, 2000).unwrap();
    let (lo, hi) = ranges[0];
    assert!(lo < 0.9 && hi > 0.9 && hi < 0.999, "{ranges:?}");
    assert!(is_stable(&t, Complex64::new(-0.01, 0.0), hi * 0.999));
    // An undamped oscillator: "acceptable" means no faster growth than the exact flow (|eˣ| = 1).
    let osc = [Complex64::new(0.0, 1.0), Complex64::new(0.0, -1.0)];
    let h = max_stable_step(&t, 0.9, &osc, 1.0).unwrap().unwrap();
    assert!(spectral_radius(&t, Complex64::new(0.0, 0.99 * h), 0.9) <= 1.0 + 1e-12);
    assert!(spectral_radius(&t, Complex64::new(0.0, 1.01 * h), 0.9) > 1.0);
    // At λ = 1 the Euler coupling is a symplectic-Euler-like pair: |μ| = 1 for h < 2.
    let h1 = max_stable_step(&t, 1.0, &osc, 10.0).unwrap().unwrap();
    assert!((h1 - 2.0).abs() < 1e-6, "{h1}");
}

#[test]
fn eigenvalues_of_a_jacobian() {
    // [[0, 1], [−2, −3]] has eigenvalues −1 and −2.
    let mut ev = eigenvalues(&[0.0, 1.0, -2.0, -3.0], 2).unwrap();
    ev.sort_by(|a, b| a.re.partial_cmp(&b.re).unwrap());
    assert!((ev[0] - Complex64::new(-2.0, 0.0)).norm() < 1e-12);
    assert!((ev[1] - Complex64::new(-1.0, 0.0)).norm() < 1e-12);
    assert!(matches!(
        eigenvalues(&[1.0, 2.0, 3.0], 2),
        Err(Error::ShapeMismatch { .. })
    ));
}

#[test]
fn region_is_sampled() {
    let r = region(&Tableau::rk4(), 0.5, (-3.0, 0.5), (-3.0, 3.0), 64).unwrap();
    let f = r.stable_fraction();
    assert!(f > 0.02 && f < 0.9, "{f}");
    // Shrinks as λ → 1 (METHOD.md §5).
    let r2 = region(&Tableau::rk4(), 0.99, (-3.0, 0.5), (-3.0, 3.0), 64).unwrap();
    assert!(r2.stable_fraction() < f);
}
