//! Experiment-only data (not needed to use the library): seeded random initial conditions for
//! the surrogate experiments and examples.

use crate::Grid1d;

/// Smooth random initial conditions in `[0, 1]`: one to three Gaussian bumps per field.
pub fn random_bumps(grid: &Grid1d, batch: usize, seed: u64) -> Vec<f64> {
    let mut rng = revode_core::random::SplitMix64::new(seed);
    let xs = grid.points();
    let (lo, len) = (grid.lo(), grid.hi() - grid.lo());
    let mut out = Vec::with_capacity(batch * xs.len());
    for _ in 0..batch {
        let bumps = 1 + (rng.next_u64() % 3) as usize;
        let spec: Vec<(f64, f64, f64)> = (0..bumps)
            .map(|_| {
                (
                    lo + len * (0.15 + 0.7 * rng.uniform()),
                    len * (0.03 + 0.07 * rng.uniform()),
                    0.3 + 0.6 * rng.uniform(),
                )
            })
            .collect();
        out.extend(xs.iter().map(|&x| {
            let v: f64 = spec
                .iter()
                .map(|&(c, w, a)| a * (-(x - c).powi(2) / (2.0 * w * w)).exp())
                .sum();
            v.min(1.0)
        }));
    }
    out
}
