//! Space-time Lévy area: the exact joint law of `(W, H)` (KS), the midpoint split's conditional
//! law, the additivity rule, reversal, determinism, typed errors.

mod common;

use common::assert_all_pass;
use revode_core::random::SplitMix64;
use revode_sde::stats::ks_normal;
use revode_sde::BrownianPath;

fn levy(p: &BrownianPath, a: f64, b: f64) -> (Vec<f64>, Vec<f64>) {
    let (mut w, mut h) = (vec![0.0; p.len()], vec![0.0; p.len()]);
    p.levy_area(a, b, &mut w, &mut h).unwrap();
    (w, h)
}

fn bits(v: &[f64]) -> Vec<u64> {
    v.iter().map(|x| x.to_bits()).collect()
}

fn scaled(v: &[f64], sd: f64) -> Vec<f64> {
    v.iter().map(|x| x / sd).collect()
}

fn rotate(a: &[f64], b: &[f64], sign: f64) -> Vec<f64> {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x + sign * y) / 2f64.sqrt())
        .collect()
}

#[test]
fn increments_and_levy_areas_have_the_joint_gaussian_law() {
    // 4000 independent channels; H ~ N(0, h/12) independent of W ~ N(0, h), on dyadic and
    // non-dyadic intervals, and disjoint intervals independent.
    let p = BrownianPath::new(0.0, 2.0, 1000, 4, 77)
        .unwrap()
        .with_space_time_levy_area();
    let mut tests = Vec::new();
    let intervals = [
        (0.0, 2.0),
        (0.0, 0.375),
        (0.375, 1.25),
        (0.3, 1.1),
        (1.1, 1.9),
    ];
    let mut normalised = Vec::new();
    for &(a, b) in &intervals {
        let (w, h) = levy(&p, a, b);
        let (wn, hn) = (
            scaled(&w, (b - a).sqrt()),
            scaled(&h, ((b - a) / 12.0).sqrt()),
        );
        tests.push((format!("W[{a}, {b}]"), ks_normal(&wn)));
        tests.push((format!("H[{a}, {b}]"), ks_normal(&hn)));
        tests.push((
            format!("(W + H)[{a}, {b}]"),
            ks_normal(&rotate(&wn, &hn, 1.0)),
        ));
        tests.push((
            format!("(W − H)[{a}, {b}]"),
            ks_normal(&rotate(&wn, &hn, -1.0)),
        ));
        normalised.push(hn);
    }
    // H on [0.3, 1.1] and on [1.1, 1.9] are independent.
    tests.push((
        "H₁ + H₂".into(),
        ks_normal(&rotate(&normalised[3], &normalised[4], 1.0)),
    ));
    tests.push((
        "H₁ − H₂".into(),
        ks_normal(&rotate(&normalised[3], &normalised[4], -1.0)),
    ));
    // The midpoint split given the root's (W, H): W(1) = ½W + 3⁄2·H + Z, Z ~ N(0, h/16), and
    // H[0, 1] = ¼H − ½Z + X, X ~ N(0, h/48) independent of Z.
    let (w, h) = levy(&p, 0.0, 2.0);
    let (w1, h1) = levy(&p, 0.0, 1.0);
    let z: Vec<f64> = (0..p.len())
        .map(|i| w1[i] - 0.5 * w[i] - 1.5 * h[i])
        .collect();
    let x: Vec<f64> = (0..p.len())
        .map(|i| h1[i] - 0.25 * h[i] + 0.5 * z[i])
        .collect();
    let (zn, xn) = (
        scaled(&z, (2.0f64 / 16.0).sqrt()),
        scaled(&x, (2.0f64 / 48.0).sqrt()),
    );
    tests.push(("Z | (W, H)".into(), ks_normal(&zn)));
    tests.push(("X | (W, H)".into(), ks_normal(&xn)));
    tests.push(("(Z + X)/√2".into(), ks_normal(&rotate(&zn, &xn, 1.0))));
    assert_all_pass(&tests);
    // Z and X are uncorrelated with the root's H and W (sample correlations of independent
    // normals are ≈ N(0, 1/n): 4.5/√n is a p ≈ 7e-6 bound each).
    let hn = scaled(&h, (2.0f64 / 12.0).sqrt());
    let wn = scaled(&w, 2.0f64.sqrt());
    let corr =
        |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f64>() / a.len() as f64;
    let bound = 4.5 / (p.len() as f64).sqrt();
    for (name, a, b) in [
        ("Z·H", &zn, &hn),
        ("X·H", &xn, &hn),
        ("Z·W", &zn, &wn),
        ("X·W", &xn, &wn),
    ] {
        assert!(
            corr(a, b).abs() < bound,
            "{name}: correlation {}",
            corr(a, b)
        );
    }
    // The tests can fail: H with the variance of W is rejected.
    let (_, h) = levy(&p, 0.3, 1.1);
    assert!(ks_normal(&scaled(&h, 0.8f64.sqrt())).p_value < 1e-6);
}

#[test]
fn levy_area_adds_up_reverses_and_matches_the_increments() {
    // Low resolution too: the finest intervals' interpolant must obey the same rules.
    for levels in [3, 30] {
        let p = BrownianPath::with_levels(-1.0, 2.0, 3, 2, 11, levels)
            .unwrap()
            .with_space_time_levy_area();
        let n = p.len();
        let mut r = SplitMix64::new(levels as u64);
        let mut inc = vec![0.0; n];
        for _ in 0..300 {
            let mut ts = [
                -1.0 + 3.0 * r.uniform(),
                -1.0 + 3.0 * r.uniform(),
                -1.0 + 3.0 * r.uniform(),
            ];
            ts.sort_by(f64::total_cmp);
            let [s, u, t] = ts;
            let (w1, h1) = levy(&p, s, u);
            let (w2, h2) = levy(&p, u, t);
            let (w, h) = levy(&p, s, t);
            let (l1, l2) = (u - s, t - u);
            for i in 0..n {
                // Increments add; (t − s)·H = h₁H₁ + h₂H₂ + (h₂W₁ − h₁W₂)/2.
                assert!((w1[i] + w2[i] - w[i]).abs() <= 1e-12);
                let rhs = l1 * h1[i] + l2 * h2[i] + 0.5 * (l2 * w1[i] - l1 * w2[i]);
                assert!(
                    ((t - s) * h[i] - rhs).abs() <= 1e-12,
                    "levels {levels}: {} vs {rhs}",
                    (t - s) * h[i]
                );
            }
            // Reversal: W is the exact negative, H is unchanged.
            let (wr, hr) = levy(&p, t, s);
            assert_eq!(bits(&wr), bits(&w.iter().map(|v| -v).collect::<Vec<_>>()));
            assert_eq!(bits(&hr), bits(&h));
            // The solvers' increments are the same path's.
            p.increment(s, t, &mut inc).unwrap();
            assert_eq!(bits(&inc), bits(&w));
        }
    }
}

#[test]
fn inside_a_finest_interval_the_path_is_its_conditional_mean() {
    // levels 3 on [−1, 2]: finest intervals of width 3/8. Inside one, W is the quadratic
    // W_a + σW + 6σ(1−σ)H (σ the position in the interval): a piece of length h has the
    // increment of that quadratic and Lévy area H·(h/L)² (the area of a parabola).
    let p = BrownianPath::with_levels(-1.0, 2.0, 2, 2, 4, 3)
        .unwrap()
        .with_space_time_levy_area();
    let big_l = 3.0 / 8.0;
    let mut r = SplitMix64::new(8);
    for k in 0..8 {
        let a = -1.0 + k as f64 * big_l;
        let (w, h) = levy(&p, a, a + big_l);
        for _ in 0..20 {
            let (mut u, mut v) = (r.uniform(), r.uniform());
            if u > v {
                std::mem::swap(&mut u, &mut v);
            }
            let (wp, hp) = levy(&p, a + u * big_l, a + v * big_l);
            let q = |s: f64| s * (1.0 - s);
            for i in 0..p.len() {
                let w_expect = (v - u) * w[i] + 6.0 * h[i] * (q(v) - q(u));
                assert!((wp[i] - w_expect).abs() <= 1e-12, "{} vs {w_expect}", wp[i]);
                let h_expect = h[i] * (v - u) * (v - u);
                assert!((hp[i] - h_expect).abs() <= 1e-12, "{} vs {h_expect}", hp[i]);
            }
        }
    }
}

#[test]
fn levy_area_is_bitwise_identical_whatever_the_order_or_thread() {
    let mut r = SplitMix64::new(5);
    let qs: Vec<(f64, f64)> = (0..200)
        .map(|_| (r.uniform(), r.uniform()))
        .filter(|(a, b)| a != b)
        .collect();
    let make = || {
        BrownianPath::new(0.0, 1.0, 2, 2, 99)
            .unwrap()
            .with_space_time_levy_area()
    };
    let run = |p: &BrownianPath, order: &[usize]| {
        let mut out = vec![(Vec::new(), Vec::new()); qs.len()];
        for &i in order {
            let (w, h) = levy(p, qs[i].0, qs[i].1);
            out[i] = (bits(&w), bits(&h));
        }
        out
    };
    let forward: Vec<usize> = (0..qs.len()).collect();
    let reference = run(&make(), &forward);
    let backward: Vec<usize> = forward.iter().rev().copied().collect();
    assert_eq!(run(&make(), &backward), reference);
    for i in (0..qs.len()).step_by(17) {
        assert_eq!(
            run(&make(), &[i])[i],
            reference[i],
            "query {i} on a fresh path"
        );
    }
    let shared = make();
    std::thread::scope(|s| {
        let a = s.spawn(|| run(&shared, &forward));
        let b = s.spawn(|| run(&shared, &backward));
        assert_eq!(a.join().unwrap(), reference);
        assert_eq!(b.join().unwrap(), reference);
    });
}

#[test]
fn levy_area_errors_are_typed() {
    let plain = BrownianPath::new(0.0, 1.0, 2, 1, 1).unwrap();
    let (mut w, mut h) = (vec![0.0; 2], vec![0.0; 2]);
    let err = plain.levy_area(0.1, 0.2, &mut w, &mut h).unwrap_err();
    assert!(err.to_string().contains("Lévy area"), "{err}");
    let p = plain.with_space_time_levy_area();
    assert!(p.has_levy_area());
    assert!(p.levy_area(0.3, 0.3, &mut w, &mut h).is_err());
    assert!(p.levy_area(0.3, 1.5, &mut w, &mut h).is_err());
    assert!(p.levy_area(0.1, 0.2, &mut w, &mut [0.0; 3]).is_err());
}
