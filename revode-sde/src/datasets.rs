//! Experiment data (docs/src/sde.md): Ornstein–Uhlenbeck processes sampled as
//! [`TimeSeries`], for the SDE-GAN's acceptance tests.

use crate::{BrownianPath, Calculus, Diffusion, Noise, SdeSolver, SdeTerm};
use ndarray::{Array2, Array3};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use revode_cde::TimeSeries;
use revode_core::{solve, Error, Plain, Result, SolveOptions, VectorField};

/// A time-dependent Ornstein–Uhlenbeck process in `d` correlated channels:
/// `dX = (μt − θX) dt + σ(t) L dW`, `σ(t) = σ₀(1 + t/T)`, `L Lᵀ = R` with `R` the
/// equicorrelation matrix (1 on the diagonal, ρ off it), `X0 ~ U[−1, 1]^d` independently,
/// observed at `times` uniform points on `[0, T]`. With `d = 1` it is the SDE-GAN experiment's
/// process; with `d = 2, ρ ≠ 0` its multi-channel check.
#[derive(Clone, Debug)]
pub struct OuProcess {
    /// μ.
    pub mu: f64,
    /// θ.
    pub theta: f64,
    /// σ₀ (the noise doubles over the horizon).
    pub sigma0: f64,
    /// Horizon T.
    pub horizon: f64,
    /// Observation times (uniform on `[0, T]`).
    pub times: usize,
    /// Channels d.
    pub channels: usize,
    /// Correlation ρ of the channels' noises (|ρ| < 1; ρ > −1/(d − 1)).
    pub rho: f64,
}

impl Default for OuProcess {
    /// One channel: μ = 0.02, θ = 0.1, σ₀ = 0.4, T = 63, 64 times.
    fn default() -> Self {
        OuProcess {
            mu: 0.02,
            theta: 0.1,
            sigma0: 0.4,
            horizon: 63.0,
            times: 64,
            channels: 1,
            rho: 0.0,
        }
    }
}

/// Drift `μt − θX` (no parameters).
struct Drift {
    n: usize,
    mu: f64,
    theta: f64,
}

impl VectorField for Drift {
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
    fn eval(&self, t: f64, y: &[f64], out: &mut [f64]) {
        for (o, &y) in out.iter_mut().zip(y) {
            *o = self.mu * t - self.theta * y;
        }
    }
    fn vjp(&self, _t: f64, _y: &[f64], c: &[f64], s: f64, yb: &mut [f64], _pb: &mut [f64]) {
        for (b, &c) in yb.iter_mut().zip(c) {
            *b -= s * self.theta * c;
        }
    }
}

/// Additive noise `σ₀(1 + t/T) L` (no parameters), shared by the batch.
struct Noisy {
    d: usize,
    l: Vec<f64>,
    sigma0: f64,
    horizon: f64,
}

impl Diffusion for Noisy {
    type Scalar = f64;
    fn noise(&self) -> Noise {
        Noise::Additive
    }
    fn channels(&self) -> usize {
        self.d
    }
    fn params(&self) -> &[f64] {
        &[]
    }
    fn params_mut(&mut self) -> &mut [f64] {
        &mut []
    }
    fn eval(&self, t: f64, _y: &[f64], out: &mut [f64], _cache: Option<&mut [f64]>) {
        let s = self.sigma0 * (1.0 + t / self.horizon);
        out.iter_mut().zip(&self.l).for_each(|(o, l)| *o = s * l);
    }
    #[allow(clippy::too_many_arguments)]
    fn vjp(&self, _: f64, _: &[f64], _: &[f64], _: &[f64], _: f64, _: &mut [f64], _: &mut [f64]) {}
}

impl OuProcess {
    /// The observation times.
    pub fn grid(&self) -> Vec<f64> {
        let n = self.times.saturating_sub(1).max(1);
        (0..self.times)
            .map(|k| self.horizon * k as f64 / n as f64)
            .collect()
    }

    /// Cholesky factor of the equicorrelation matrix (row-major d × d).
    fn factor(&self) -> Result<Vec<f64>> {
        let d = self.channels;
        let mut l = vec![0.0; d * d];
        for i in 0..d {
            for j in 0..=i {
                let r = if i == j { 1.0 } else { self.rho };
                let s = r - (0..j).map(|k| l[i * d + k] * l[j * d + k]).sum::<f64>();
                if i == j {
                    if s.is_nan() || s <= 0.0 {
                        return Err(Error::config(
                            "ou process rho",
                            format!(
                                "ρ = {} is not a valid correlation for {d} channels",
                                self.rho
                            ),
                        ));
                    }
                    l[i * d + i] = s.sqrt();
                } else {
                    l[i * d + j] = s / l[j * d + j];
                }
            }
        }
        Ok(l)
    }

    /// `paths` sample paths, simulated with Stratonovich Heun at 16 steps per observation
    /// interval (additive noise: Itô = Stratonovich, strong order 1), as a [`TimeSeries`]
    /// (paths × times × channels, no labels).
    pub fn sample(&self, paths: usize, seed: u64) -> Result<TimeSeries> {
        let d = self.channels;
        if paths == 0 || self.times < 2 || d == 0 {
            return Err(Error::config(
                "ou process",
                format!(
                    "need paths ≥ 1, times ≥ 2, channels ≥ 1 (got {paths}, {}, {d})",
                    self.times
                ),
            ));
        }
        if !(self.horizon > 0.0 && self.horizon.is_finite()) {
            return Err(Error::config(
                "ou process horizon",
                "must be positive and finite",
            ));
        }
        let l = self.factor()?;
        let times = self.grid();
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let y0: Vec<f64> = (0..paths * d)
            .map(|_| 2.0 * rng.gen::<f64>() - 1.0)
            .collect();
        let path = BrownianPath::new(0.0, self.horizon, paths, d, seed ^ 0x0005_DEEC_E66D)?;
        let drift = Drift {
            n: paths * d,
            mu: self.mu,
            theta: self.theta,
        };
        let noise = Noisy {
            d,
            l,
            sigma0: self.sigma0,
            horizon: self.horizon,
        };
        let term = SdeTerm::new(drift, noise, path, Calculus::Stratonovich)?;
        let map = crate::step_map(term, SdeSolver::Heun)?;
        let h = (times[1] - times[0]) / 16.0;
        let sol = solve(&Plain::new(map), &y0, &times, &SolveOptions::fixed(h))?;
        let n = times.len();
        let values = Array3::from_shape_fn((paths, n, d), |(p, k, c)| sol.ys[k][p * d + c]);
        let grid = Array2::from_shape_vec((1, n), times)
            .map_err(|e| Error::config("ou grid", e.to_string()))?;
        TimeSeries::new(values, grid, None, Vec::new())
    }
}
