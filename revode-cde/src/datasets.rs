//! Experiment-only data sets (not needed to use the library): the spirals of docs/src/cde.md,
//! clockwise vs anticlockwise 2-D spirals with noise.

use crate::PathData;

/// `n` spirals of `len` points on t ∈ [0, 1], channels (x, y), labels 0 (anticlockwise) and 1
/// (clockwise), alternating, deterministic in `seed`. Gaussian noise of standard deviation
/// `noise` is added to every point.
pub fn spirals(n: usize, len: usize, noise: f64, seed: u64) -> (PathData, Vec<usize>) {
    let mut rng = revode_core::random::SplitMix64::new(seed ^ 0xD1B5_4A32_D192_ED03);
    let mut uniform = || rng.uniform();
    let times: Vec<f64> = (0..len)
        .map(|k| k as f64 / (len - 1).max(1) as f64)
        .collect();
    let mut values = Vec::with_capacity(n * len * 2);
    let mut labels = Vec::with_capacity(n);
    for i in 0..n {
        let label = i % 2;
        let dir = if label == 0 { 1.0 } else { -1.0 };
        let phase = std::f64::consts::TAU * uniform();
        for &t in &times {
            let r = 0.3 + t;
            let theta = phase + dir * 3.0 * std::f64::consts::PI * t;
            // Box–Muller for the two noise components.
            let (u1, u2) = (uniform(), uniform());
            let m = (-2.0 * u1.ln()).sqrt();
            let (n1, n2) = (
                m * (std::f64::consts::TAU * u2).cos(),
                m * (std::f64::consts::TAU * u2).sin(),
            );
            values.push(r * theta.cos() + noise * n1);
            values.push(r * theta.sin() + noise * n2);
        }
        labels.push(label);
    }
    (
        PathData {
            times,
            batch: n,
            channels: 2,
            values,
        },
        labels,
    )
}
