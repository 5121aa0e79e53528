//! Brownian path: determinism, exact antisymmetry, additivity, law (KS), bounded cost.

mod common;

use common::assert_all_pass;
use revode_core::random::SplitMix64;
use revode_sde::stats::ks_normal;
use revode_sde::BrownianPath;

fn bits(v: &[f64]) -> Vec<u64> {
    v.iter().map(|x| x.to_bits()).collect()
}

fn query_all(path: &BrownianPath, qs: &[(f64, f64)]) -> Vec<Vec<u64>> {
    let mut out = vec![0.0; path.len()];
    qs.iter()
        .map(|&(a, b)| {
            path.increment(a, b, &mut out).unwrap();
            bits(&out)
        })
        .collect()
}

fn random_queries(n: usize, seed: u64) -> Vec<(f64, f64)> {
    let mut r = SplitMix64::new(seed);
    (0..n)
        .map(|i| {
            if i % 3 == 0 {
                // dyadic times
                let a = (r.next_u64() % 1025) as f64 / 1024.0;
                let b = (r.next_u64() % 1025) as f64 / 1024.0;
                (a, b)
            } else {
                (r.uniform(), r.uniform())
            }
        })
        .collect()
}

#[test]
fn bitwise_identical_whatever_the_order_threads_or_cache() {
    let qs = random_queries(400, 1);
    let reference = {
        let p = BrownianPath::new(0.0, 1.0, 3, 2, 42).unwrap();
        query_all(&p, &qs)
    };
    // Fresh path per query (empty cache every time).
    for (i, &(a, b)) in qs.iter().enumerate().step_by(7) {
        let p = BrownianPath::new(0.0, 1.0, 3, 2, 42).unwrap();
        let mut out = vec![0.0; 6];
        p.increment(a, b, &mut out).unwrap();
        assert_eq!(bits(&out), reference[i], "query {i} with an empty cache");
    }
    // Shuffled order on one path.
    let p = BrownianPath::new(0.0, 1.0, 3, 2, 42).unwrap();
    let mut order: Vec<usize> = (0..qs.len()).collect();
    let mut r = SplitMix64::new(9);
    for i in (1..order.len()).rev() {
        order.swap(i, (r.next_u64() % (i as u64 + 1)) as usize);
    }
    let mut out = vec![0.0; 6];
    for &i in &order {
        p.increment(qs[i].0, qs[i].1, &mut out).unwrap();
        assert_eq!(bits(&out), reference[i], "query {i} in shuffled order");
    }
    // Two threads hammering one shared path in different orders.
    let shared = BrownianPath::new(0.0, 1.0, 3, 2, 42).unwrap();
    std::thread::scope(|s| {
        let h1 = s.spawn(|| query_all(&shared, &qs));
        let rev: Vec<_> = qs.iter().rev().copied().collect();
        let shared = &shared;
        let h2 = s.spawn(move || {
            let mut v = query_all(shared, &rev);
            v.reverse();
            v
        });
        assert_eq!(h1.join().unwrap(), reference);
        assert_eq!(h2.join().unwrap(), reference);
    });
}

#[test]
fn reversed_query_is_the_exact_negative_and_increments_add_up() {
    let p = BrownianPath::new(-1.0, 2.5, 4, 3, 7).unwrap();
    let n = p.len();
    let (mut ab, mut ba, mut su, mut ut, mut st) = (
        vec![0.0f64; n],
        vec![0.0f64; n],
        vec![0.0f64; n],
        vec![0.0f64; n],
        vec![0.0f64; n],
    );
    let mut r = SplitMix64::new(3);
    for _ in 0..500 {
        let (a, b) = (-1.0 + 3.5 * r.uniform(), -1.0 + 3.5 * r.uniform());
        p.increment(a, b, &mut ab).unwrap();
        p.increment(b, a, &mut ba).unwrap();
        for (x, y) in ab.iter().zip(&ba) {
            assert_eq!(x.to_bits(), (-y).to_bits());
        }
        let mut ts = [
            -1.0 + 3.5 * r.uniform(),
            -1.0 + 3.5 * r.uniform(),
            -1.0 + 3.5 * r.uniform(),
        ];
        ts.sort_by(f64::total_cmp);
        p.increment(ts[0], ts[1], &mut su).unwrap();
        p.increment(ts[1], ts[2], &mut ut).unwrap();
        p.increment(ts[0], ts[2], &mut st).unwrap();
        for i in 0..n {
            assert!(
                (su[i] + ut[i] - st[i]).abs() <= 1e-12,
                "additivity {}",
                su[i] + ut[i] - st[i]
            );
        }
    }
    let mut w0 = vec![1.0; n];
    p.evaluate(-1.0, &mut w0).unwrap();
    assert!(w0.iter().all(|&v| v == 0.0), "W(t0) = 0");
}

#[test]
fn increments_and_bridge_conditionals_have_the_gaussian_law() {
    // 4000 independent channels; dyadic and non-dyadic-in-the-tree configurations.
    let p = BrownianPath::with_levels(0.0, 2.0, 1000, 4, 2024, 12).unwrap();
    let n = p.len();
    let w = |t: f64| {
        let mut v = vec![0.0; n];
        p.evaluate(t, &mut v).unwrap();
        v
    };
    let normalised = |a: &[f64], b: &[f64], dt: f64| -> Vec<f64> {
        a.iter().zip(b).map(|(x, y)| (y - x) / dt.sqrt()).collect()
    };
    let (w0, w1, w2) = (w(0.0), w(0.375), w(1.25));
    let w3 = w(2.0);
    let mut tests = vec![
        ("W(0.375)", ks_normal(&normalised(&w0, &w1, 0.375))),
        (
            "W(1.25) − W(0.375)",
            ks_normal(&normalised(&w1, &w2, 0.875)),
        ),
        ("W(2) − W(1.25)", ks_normal(&normalised(&w2, &w3, 0.75))),
    ];
    // Bridge conditional: W(t) given W(s), W(u) has mean on the chord and variance
    // (t−s)(u−t)/(u−s); s, u are not a node's endpoints for t.
    let (s, t, u): (f64, f64, f64) = (0.25, 0.8125, 1.75);
    let (ws, wt, wu) = (w(s), w(t), w(u));
    let sd: f64 = ((t - s) * (u - t) / (u - s)).sqrt();
    let z: Vec<f64> = (0..n)
        .map(|i| (wt[i] - ws[i] - (t - s) / (u - s) * (wu[i] - ws[i])) / sd)
        .collect();
    tests.push(("bridge W(0.8125) | W(0.25), W(1.75)", ks_normal(&z)));
    // Independence of disjoint increments: their normalised product has the law of a product
    // of two independent normals; test via the sum (x+y)/√2 ~ N(0,1) and (x−y)/√2 ~ N(0,1).
    let a = normalised(&w0, &w1, 0.375);
    let b = normalised(&w1, &w2, 0.875);
    let plus: Vec<f64> = a
        .iter()
        .zip(&b)
        .map(|(x, y)| (x + y) / 2f64.sqrt())
        .collect();
    let minus: Vec<f64> = a
        .iter()
        .zip(&b)
        .map(|(x, y)| (x - y) / 2f64.sqrt())
        .collect();
    tests.push(("(ΔW₁ + ΔW₂)/√2", ks_normal(&plus)));
    tests.push(("(ΔW₁ − ΔW₂)/√2", ks_normal(&minus)));
    // Different seeds are independent paths: the same increment across 4000 seeds.
    let across: Vec<f64> = (0..4000u64)
        .map(|seed| {
            let p = BrownianPath::new(0.0, 1.0, 1, 1, seed).unwrap();
            let mut v = [0.0];
            p.increment(0.3, 0.7, &mut v).unwrap();
            v[0] / 0.4f64.sqrt()
        })
        .collect();
    tests.push(("W(0.7) − W(0.3) across seeds", ks_normal(&across)));
    assert_all_pass(&tests);
}

#[test]
fn ks_rejects_a_wrong_law() {
    // The test must be able to fail: increments scaled by 1.1 are rejected.
    let p = BrownianPath::new(0.0, 1.0, 4000, 1, 5).unwrap();
    let mut v = vec![0.0; 4000];
    p.increment(0.0, 0.5, &mut v).unwrap();
    let wrong: Vec<f64> = v.iter().map(|x| 1.1 * x / 0.5f64.sqrt()).collect();
    assert!(ks_normal(&wrong).p_value < 1e-3);
}

#[test]
fn sweeps_draw_a_bounded_number_of_nodes_in_either_direction() {
    let n = 1024;
    let h = 1.0 / n as f64;
    let fwd = BrownianPath::new(0.0, 1.0, 2, 2, 11).unwrap();
    let mut out = vec![0.0; 4];
    for i in 0..n {
        fwd.increment(i as f64 * h, (i + 1) as f64 * h, &mut out)
            .unwrap();
    }
    let rev = BrownianPath::new(0.0, 1.0, 2, 2, 11).unwrap();
    for i in (0..n).rev() {
        rev.increment((i + 1) as f64 * h, i as f64 * h, &mut out)
            .unwrap();
    }
    let (f, r) = (fwd.node_draws(), rev.node_draws());
    // A sweep over 2^k steps needs each of the 2^k − 1 interior nodes once; allow re-draws
    // at subtree boundaries (≤ 2 per step).
    assert!(
        f <= 2 * n as u64 && r <= 2 * n as u64,
        "forward {f}, reversed {r}"
    );
    assert!(r <= 2 * f, "reversed sweep {r} draws vs forward {f}");
}

#[test]
fn bad_input_is_a_typed_error() {
    assert!(BrownianPath::new(1.0, 1.0, 1, 1, 0).is_err());
    assert!(BrownianPath::new(0.0, f64::NAN, 1, 1, 0).is_err());
    assert!(BrownianPath::new(0.0, 1.0, 0, 1, 0).is_err());
    assert!(BrownianPath::with_levels(0.0, 1.0, 1, 1, 0, 99).is_err());
    let p = BrownianPath::new(0.0, 1.0, 2, 1, 0).unwrap();
    let mut out = vec![0.0; 2];
    let e = p.increment(0.0, 1.5, &mut out).unwrap_err();
    assert!(e.to_string().contains("outside"), "{e}");
    assert!(p.increment(0.0, f64::NAN, &mut out).is_err());
    let mut wrong = vec![0.0; 3];
    assert!(p.increment(0.0, 0.5, &mut wrong).is_err());
}
