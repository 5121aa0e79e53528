//! Convergence orders fitted from data, for every base method and its reversible wrapping.

mod common;
use common::*;
use revode_core::prelude::*;

fn error_at<F: VectorField<Scalar = f64> + Clone>(
    field: &F,
    t: &Tableau,
    lambda: Option<f64>,
    y0: &[f64],
    t1: f64,
    h: f64,
    exact: &[f64],
) -> f64 {
    let map = Rk::new(OdeTerm::new(field.clone()), t.clone());
    let times = [0.0, t1];
    let opts = SolveOptions::fixed(h);
    let y = match lambda {
        Some(l) => solve(
            &Reversible::new(map, l).unwrap(),
            &y0.to_vec(),
            &times,
            &opts,
        )
        .unwrap()
        .ys[1]
            .clone(),
        None => solve(&Plain::new(map), &y0.to_vec(), &times, &opts)
            .unwrap()
            .ys[1]
            .clone(),
    };
    rel(&y, exact)
}

/// Which problem a range is for.
#[derive(Clone, Copy, PartialEq)]
enum Problem {
    Growth,
    Rotation,
}

/// Step sizes h = 2^{-k} in each method's asymptotic range: errors between ~1e-2 and ~100× the
/// round-off floor (measured tables in docs/src/core.md).
fn ks(t: &Tableau, p: Problem) -> Option<std::ops::RangeInclusive<i32>> {
    use Problem::*;
    Some(match (t.name(), p) {
        ("euler", Growth) => 5..=11,
        ("euler", Rotation) => 6..=11,
        ("midpoint" | "heun" | "ralston2", _) => 4..=12,
        ("ralston3" | "bosh3", Growth) => 3..=10,
        ("ralston3" | "bosh3", Rotation) => 4..=10,
        ("rk4", Growth) => 2..=7,
        ("rk4", Rotation) => 4..=9,
        ("dopri5", Growth) => 2..=6,
        ("dopri5", Rotation) => 4..=8,
        // On y' = 0.5y, T = 5, Tsit5's error reaches round-off (1e-13 at h = 1/32) while still
        // pre-asymptotic (local ratios 12 → 30 per halving): no order-5 range exists there.
        ("tsit5", Growth) => return None,
        ("tsit5", Rotation) => 5..=8,
        _ => return None,
    })
}

/// For λ = 0.999 the coupling mixes y and z at rate 1 − λ per step. Fit the order where
/// N(1 − λ) ≤ 1/4 (the λ ≈ 1 regime, where the scheme is nearly symmetric) or, for Euler,
/// where N(1 − λ) ≥ 50 (fully mixed); between the two, the error changes sign.
fn ks_coupled(
    t: &Tableau,
    p: Problem,
    t1: f64,
    lambda: f64,
) -> Option<std::ops::RangeInclusive<i32>> {
    let k_of_n = |n: f64| (n / t1).log2();
    if t.order() == 1 {
        let k0 = k_of_n(50.0 / (1.0 - lambda)).ceil() as i32;
        return Some(k0..=k0 + 4);
    }
    let cap = k_of_n(0.25 / (1.0 - lambda)).floor() as i32;
    let r = ks(t, p)?;
    let (lo, hi) = (*r.start(), (*r.end()).min(cap));
    if t.order() == 5 {
        // The order-5 pairs are already at ≤ 1e-9 when N(1 − λ) ≤ 1/4 on these problems and
        // super-converge pre-asymptotically; they are covered at λ = 0.5 instead.
        return None;
    }
    (hi - lo >= 2).then_some(lo..=hi)
}

fn check<F: VectorField<Scalar = f64> + Clone>(
    field: F,
    y0: &[f64],
    t1: f64,
    exact: &[f64],
    p: Problem,
    what: &str,
) {
    let mut tested = 0;
    for t in Tableau::all_builtin() {
        for lambda in [None, Some(0.5), Some(0.999)] {
            let range = match lambda {
                Some(l) if l > 0.95 => ks_coupled(&t, p, t1, l),
                _ => ks(&t, p),
            };
            let Some(range) = range else { continue };
            let hs: Vec<f64> = range.map(|k| 2f64.powi(-k)).collect();
            let errs: Vec<f64> = hs
                .iter()
                .map(|&h| error_at(&field, &t, lambda, y0, t1, h, exact))
                .collect();
            let fitted = revode_core::tableau::observed_order(&hs, &errs).unwrap();
            let label = format!(
                "{what}: {} {}",
                lambda.map_or("plain".into(), |l| format!("reversible λ={l}")),
                t.name()
            );
            println!("{label}: fitted order {fitted:.3}");
            assert!(
                (fitted - t.order() as f64).abs() <= 0.15,
                "{label}: fitted order {fitted} vs {} ({errs:?})",
                t.order()
            );
            tested += 1;
        }
    }
    assert!(tested >= 18, "{what}: only {tested} fits");
}

#[test]
fn growth_equation_orders() {
    // y' = 0.5 y, y(0) = 1, T = 5: exact e^{2.5}.
    check(
        Scalar1 { k: 0.5 },
        &[1.0],
        5.0,
        &[2.5f64.exp()],
        Problem::Growth,
        "y'=0.5y",
    );
}

#[test]
fn linear_system_orders() {
    // y' = A y with A = [[-0.5, -2], [2, -0.5]]: y(t) = e^{-0.5t} R(2t) y0.
    let a = Linear2 {
        a: [-0.5, -2.0, 2.0, -0.5],
    };
    let t1: f64 = 2.0;
    let (c, s) = ((2.0 * t1).cos(), (2.0 * t1).sin());
    let d = (-0.5 * t1).exp();
    let y0 = [1.0, 0.5];
    let exact = [d * (c * y0[0] - s * y0[1]), d * (s * y0[0] + c * y0[1])];
    check(a, &y0, t1, &exact, Problem::Rotation, "y'=Ay");
}

/// The observed order recovers an exact power law and refuses data it cannot fit.
#[test]
fn observed_order_of_a_power_law_and_its_errors() {
    use revode_core::tableau::observed_order;
    let hs = [0.1, 0.05, 0.025, 0.0125];
    let errs: Vec<f64> = hs.iter().map(|h: &f64| 3.0 * h.powf(2.5)).collect();
    assert!((observed_order(&hs, &errs).unwrap() - 2.5).abs() < 1e-12);
    assert!(observed_order(&hs, &errs[..3]).is_err());
    assert!(observed_order(&hs[..1], &errs[..1]).is_err());
    assert!(observed_order(&[0.1, 0.1], &[1.0, 2.0]).is_err());
    assert!(observed_order(&[0.1, 0.0], &[1.0, 2.0]).is_err());
    assert!(observed_order(&[0.1, 0.05], &[1.0, f64::NAN]).is_err());
}
