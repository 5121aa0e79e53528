//! Forward-over-reverse through the native MLP: the tangent `ḟ = J_y f·ẏ` equals the pullback's
//! transpose to round-off, and the pullback of `(f, ḟ)` equals the first-order pullback (for
//! `ẏ`) and central differences of `cot·f + cot_dot·ḟ` (for `y` and the parameters), for random
//! shapes and every smooth activation.

mod common;
use common::rel;
use proptest::prelude::*;
use revode_core::mlp::{Activation, MlpSpec};
use revode_core::prelude::*;

fn values(n: usize, seed: u64) -> Vec<f64> {
    (0..n)
        .map(|i| ((i as f64 + 1.0) * 0.7361 + seed as f64 * 0.113).sin())
        .collect()
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// `cot·f + cot_dot·ḟ` at `(y, ẏ)`.
fn pair_loss(m: &Mlp<f64>, t: f64, y: &[f64], yd: &[f64], cot: &[f64], cot_dot: &[f64]) -> f64 {
    let (mut f, mut fd) = (vec![0.0; cot.len()], vec![0.0; cot.len()]);
    let mut cache = vec![0.0; m.tangent_cache_len()];
    m.eval_tangent(t, y, yd, &mut f, &mut fd, &mut cache);
    dot(cot, &f) + dot(cot_dot, &fd)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]
    #[test]
    fn tangent_and_its_pullback_are_exact(
        dim in 1usize..5,
        outputs in 1usize..5,
        hidden in 1usize..12,
        depth in 1usize..4,
        act in prop_oneof![
            Just(Activation::Tanh),
            Just(Activation::Softplus),
            Just(Activation::LipSwish),
            Just(Activation::Relu),
        ],
        time in any::<bool>(),
        time_first in any::<bool>(),
        rows in 1usize..4,
        seed in 0u64..1000,
    ) {
        let spec = MlpSpec { dim, hidden, depth, activation: act, time, time_first, outputs: Some(outputs) };
        let m: Mlp<f64> = Mlp::from_spec(spec, rows).unwrap().init_uniform(seed);
        // Larger weights than the ±1/√fan_in start, so second derivatives matter.
        let p: Vec<f64> = m.params().iter().map(|v| 2.5 * v).collect();
        let m = m.with_params(&p).unwrap();
        let t = 0.4;
        let (y, yd) = (values(rows * dim, seed), values(rows * dim, seed + 3));
        let (cot, cot_dot) = (values(rows * outputs, seed + 5), values(rows * outputs, seed + 9));
        let (mut f, mut fd) = (vec![0.0; cot.len()], vec![0.0; cot.len()]);
        let mut cache = vec![0.0; m.tangent_cache_len()];
        m.eval_tangent(t, &y, &yd, &mut f, &mut fd, &mut cache);
        // The value is the network's.
        let mut f0 = vec![0.0; cot.len()];
        m.eval(t, &y, &mut f0);
        prop_assert!(rel(&f, &f0) < 1e-13, "value {:e}", rel(&f, &f0));
        // cot_dot·(J ẏ) = (Jᵀ cot_dot)·ẏ, the first-order pullback.
        let (mut jt, mut pb1) = (vec![0.0; y.len()], vec![0.0; p.len()]);
        m.vjp(t, &y, &cot_dot, 1.0, &mut jt, &mut pb1);
        let (lhs, rhs) = (dot(&cot_dot, &fd), dot(&jt, &yd));
        prop_assert!((lhs - rhs).abs() <= 1e-12 * (1.0 + rhs.abs()), "tangent {lhs} vs {rhs}");
        // The pair's pullback.
        let (mut yb, mut ydb, mut pb) = (vec![0.0; y.len()], vec![0.0; y.len()], vec![0.0; p.len()]);
        m.vjp_tangent(t, &y, &yd, &cache, &cot, &cot_dot, &mut yb, &mut ydb, &mut pb);
        prop_assert!(rel(&ydb, &jt) < 1e-12, "ẏ pullback {:e}", rel(&ydb, &jt));
        if act == Activation::Relu {
            // σ'' = 0 almost everywhere; differences across a kink would not be derivatives.
            return Ok(());
        }
        // y and θ against central differences of the pair's loss: error O(h²) + O(ε/h).
        let h = 1e-5;
        let scale = 1.0 + yb.iter().chain(&pb).fold(0.0f64, |a, v| a.max(v.abs()));
        for i in 0..y.len() {
            let at = |d: f64| {
                let mut yy = y.clone();
                yy[i] += d;
                pair_loss(&m, t, &yy, &yd, &cot, &cot_dot)
            };
            let fdiff = (at(h) - at(-h)) / (2.0 * h);
            prop_assert!((fdiff - yb[i]).abs() <= 1e-7 * scale, "y[{i}]: {fdiff} vs {}", yb[i]);
        }
        for i in 0..p.len() {
            let at = |d: f64| {
                let mut pp = p.clone();
                pp[i] += d;
                let mm = m.clone().with_params(&pp).unwrap();
                pair_loss(&mm, t, &y, &yd, &cot, &cot_dot)
            };
            let fdiff = (at(h) - at(-h)) / (2.0 * h);
            prop_assert!((fdiff - pb[i]).abs() <= 1e-7 * scale, "θ[{i}]: {fdiff} vs {}", pb[i]);
        }
    }
}
