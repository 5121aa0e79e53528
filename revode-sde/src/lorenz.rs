//! Parameter fitting of a stochastic Lorenz system (docs/src/sde.md) by matching the mean and
//! variance of every coordinate at every observation time, with the reversible gradient.
//!
//! `dx = a(y − x) dt + σ₁ dW₁`, `dy = (x(b − z) − y) dt + σ₂ dW₂`, `dz = (xy − cz) dt + σ₃ dW₃`;
//! the truth is `(a, b, c) = (10, 28, 8/3)`, `σ = (0.1, 0.28, 0.3)`. The model simulates its own
//! paths on a fixed Brownian path (common random numbers), so the objective is deterministic.

use crate::{step_map, BrownianPath, Calculus, Diagonal, SdeSolver, SdeTerm};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};
use revode_core::train::{Schedule, TrainConfig, TrainState, Trainer};
use revode_core::{
    gradient, solve, GradientMethod, Plain, Result, Reversible, SolveOptions, VectorField,
};

/// The Lorenz drift on a batch of 3-vectors. Parameters `[a, b, c]`.
#[derive(Clone, Debug)]
pub struct LorenzDrift {
    /// Samples.
    pub batch: usize,
    /// `[a, b, c]`.
    pub p: [f64; 3],
}

impl VectorField for LorenzDrift {
    type Scalar = f64;
    fn dim(&self) -> usize {
        3 * self.batch
    }
    fn params(&self) -> &[f64] {
        &self.p
    }
    fn params_mut(&mut self) -> &mut [f64] {
        &mut self.p
    }
    fn eval(&self, _t: f64, y: &[f64], out: &mut [f64]) {
        let [a, b, c] = self.p;
        for (s, o) in y.chunks_exact(3).zip(out.chunks_exact_mut(3)) {
            o[0] = a * (s[1] - s[0]);
            o[1] = s[0] * (b - s[2]) - s[1];
            o[2] = s[0] * s[1] - c * s[2];
        }
    }
    fn vjp(&self, _t: f64, y: &[f64], cot: &[f64], k: f64, yb: &mut [f64], pb: &mut [f64]) {
        let [a, b, c] = self.p;
        for ((s, g), bar) in y
            .chunks_exact(3)
            .zip(cot.chunks_exact(3))
            .zip(yb.chunks_exact_mut(3))
        {
            bar[0] += k * (-a * g[0] + (b - s[2]) * g[1] + s[1] * g[2]);
            bar[1] += k * (a * g[0] - g[1] + s[0] * g[2]);
            bar[2] += k * (-s[0] * g[1] - c * g[2]);
            pb[0] += k * (s[1] - s[0]) * g[0];
            pb[1] += k * s[0] * g[1];
            pb[2] -= k * s[2] * g[2];
        }
    }
}

/// Constant diagonal noise `σ_i`, shared by the batch. Parameters `[σ₁, σ₂, σ₃]`.
#[derive(Clone, Debug)]
pub struct ConstantNoise {
    /// Samples.
    pub batch: usize,
    /// Noise scale per coordinate.
    pub sigma: [f64; 3],
}

impl VectorField for ConstantNoise {
    type Scalar = f64;
    fn dim(&self) -> usize {
        3 * self.batch
    }
    fn params(&self) -> &[f64] {
        &self.sigma
    }
    fn params_mut(&mut self) -> &mut [f64] {
        &mut self.sigma
    }
    fn eval(&self, _t: f64, _y: &[f64], out: &mut [f64]) {
        for o in out.chunks_exact_mut(3) {
            o.copy_from_slice(&self.sigma);
        }
    }
    fn vjp(&self, _t: f64, _y: &[f64], cot: &[f64], k: f64, _yb: &mut [f64], pb: &mut [f64]) {
        for g in cot.chunks_exact(3) {
            for i in 0..3 {
                pb[i] += k * g[i];
            }
        }
    }
}

/// Settings of the Lorenz fit.
#[derive(Clone, Debug)]
pub struct LorenzFitOptions {
    /// Paths of the data.
    pub data_paths: usize,
    /// Paths the model simulates per gradient.
    pub model_paths: usize,
    /// Observation times on `[0, 2]` (after t = 0).
    pub observations: usize,
    /// Fixed step.
    pub h: f64,
    /// Coupling λ of the reversible Heun-coupled scheme.
    pub lambda: f64,
    /// Gradient method.
    pub method: GradientMethod,
    /// Adam iterations.
    pub iterations: usize,
    /// Adam learning rate.
    pub lr: f64,
    /// Initial guess `[a, b, c, σ₁, σ₂, σ₃]`.
    pub initial: [f64; 6],
}

impl Default for LorenzFitOptions {
    fn default() -> Self {
        LorenzFitOptions {
            data_paths: 1024,
            model_paths: 256,
            observations: 100,
            h: 0.01,
            lambda: 0.5,
            method: GradientMethod::CheckpointedReversibleAuto { tolerance: 1e-8 },
            iterations: 300,
            lr: 0.05,
            initial: [8.0, 24.0, 2.0, 0.2, 0.2, 0.2],
        }
    }
}

/// The outcome of a Lorenz fit.
#[derive(Clone, Debug, serde::Serialize)]
pub struct LorenzFit {
    /// True `[a, b, c, σ₁, σ₂, σ₃]`.
    pub truth: [f64; 6],
    /// Initial guess.
    pub initial: [f64; 6],
    /// Fitted parameters.
    pub fitted: [f64; 6],
    /// Loss per iteration.
    pub losses: Vec<f64>,
    /// Peak stored states of the last gradient.
    pub stored_states: usize,
    /// Checkpoint interval the gradient used.
    pub checkpoint_interval: Option<usize>,
    /// Solver steps per gradient.
    pub steps: usize,
}

/// The true parameters.
pub const LORENZ_TRUTH: [f64; 6] = [10.0, 28.0, 8.0 / 3.0, 0.1, 0.28, 0.3];

type LorenzTerm = SdeTerm<LorenzDrift, Diagonal<ConstantNoise>>;

fn term(p: &[f64; 6], batch: usize, seed: u64) -> Result<LorenzTerm> {
    let drift = LorenzDrift {
        batch,
        p: [p[0], p[1], p[2]],
    };
    let noise = ConstantNoise {
        batch,
        sigma: [p[3], p[4], p[5]],
    };
    let path = BrownianPath::new(0.0, 2.0, batch, 3, seed)?;
    SdeTerm::new(drift, Diagonal(noise), path, Calculus::Stratonovich)
}

fn initial_states(batch: usize, seed: u64) -> Vec<f64> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..3 * batch)
        .map(|_| StandardNormal.sample(&mut rng))
        .collect()
}

/// Mean and variance of each coordinate over the batch: `[m₁, m₂, m₃, v₁, v₂, v₃]`.
fn moments(y: &[f64]) -> [f64; 6] {
    let n = (y.len() / 3) as f64;
    let mut out = [0.0; 6];
    for s in y.chunks_exact(3) {
        for i in 0..3 {
            out[i] += s[i] / n;
        }
    }
    for s in y.chunks_exact(3) {
        for i in 0..3 {
            out[3 + i] += (s[i] - out[i]).powi(2) / (n - 1.0);
        }
    }
    out
}

/// Fits the Lorenz parameters to data simulated from the truth.
pub fn fit_lorenz(opts: &LorenzFitOptions) -> Result<LorenzFit> {
    let times: Vec<f64> = (0..=opts.observations)
        .map(|k| 2.0 * k as f64 / opts.observations as f64)
        .collect();
    let solve_opts = SolveOptions::fixed(opts.h);
    // Data: the truth simulated with Stratonovich Heun (additive noise: Itô = Stratonovich).
    let truth_map = step_map(term(&LORENZ_TRUTH, opts.data_paths, 7)?, SdeSolver::Heun)?;
    let data = solve(
        &Plain::new(truth_map),
        &initial_states(opts.data_paths, 8),
        &times,
        &SolveOptions::fixed(opts.h / 4.0),
    )?;
    let targets: Vec<[f64; 6]> = data.ys.iter().map(|y| moments(y)).collect();
    // Standardised mismatch: mean errors in units of the coordinate's (time-averaged) variance,
    // variance errors in units of its square, so sampling noise weighs the same everywhere.
    let mut scale = [0.0; 6];
    for t in &targets[1..] {
        for i in 0..3 {
            scale[i] += t[3 + i] / (targets.len() - 1) as f64;
        }
    }
    for i in 0..3 {
        scale[3 + i] = scale[i] * scale[i];
    }
    let y0 = initial_states(opts.model_paths, 9);
    // The trainer works on log θ, so each parameter moves by about lr × its own size; the
    // gradient with respect to log θ_i is θ_i ∂L/∂θ_i.
    let logp0: Vec<f64> = opts
        .initial
        .iter()
        .map(|p| p.abs().max(1e-6).ln())
        .collect();
    let mut state = TrainState::new(logp0, opts.lr, 0.0, serde_json::Value::Null)?;
    let (mut stored, mut interval, mut steps) = (0, None, 0);
    let b = opts.model_paths as f64;
    let mut method = opts.method.clone();
    let config = TrainConfig::new(opts.iterations, Schedule::constant(opts.lr));
    Trainer::new(config).run(&mut state, |_, logp, grad| {
        let p: [f64; 6] = std::array::from_fn(|i| logp[i].exp());
        let scheme = Reversible::new(
            step_map(term(&p, opts.model_paths, 10)?, SdeSolver::Heun)?,
            opts.lambda,
        )?;
        let g = gradient(
            &scheme,
            &y0,
            &times,
            &solve_opts,
            &method.clone().into(),
            |ys, cots| {
                let mut loss = 0.0;
                for ((y, c), target) in ys.iter().zip(cots.iter_mut()).zip(&targets).skip(1) {
                    let m = moments(y);
                    let mut dm = [0.0; 6];
                    for i in 0..6 {
                        let r = (m[i] - target[i]) / scale[i].max(1e-12);
                        loss += (m[i] - target[i]) * r;
                        dm[i] = 2.0 * r;
                    }
                    for (s, cs) in y.chunks_exact(3).zip(c.chunks_exact_mut(3)) {
                        for i in 0..3 {
                            cs[i] = dm[i] / b + dm[3 + i] * 2.0 * (s[i] - m[i]) / (b - 1.0);
                        }
                    }
                }
                loss
            },
        )?;
        stored = g.stats.peak_stored_states;
        interval = g.stats.checkpoint_interval;
        steps = g.steps;
        // Keep the interval the automatic search found (the drift is re-measured each pass).
        if let (GradientMethod::CheckpointedReversibleAuto { .. }, Some(k)) = (&method, interval) {
            method = GradientMethod::CheckpointedReversible { every: k };
        }
        for i in 0..6 {
            grad[i] = g.params[i] * p[i];
        }
        Ok(g.loss)
    })?;
    let params: Vec<f64> = state.params.iter().map(|l| l.exp()).collect();
    let losses = state.history;
    Ok(LorenzFit {
        truth: LORENZ_TRUTH,
        initial: opts.initial,
        fitted: params.try_into().expect("six parameters"),
        losses,
        stored_states: stored,
        checkpoint_interval: interval,
        steps,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_short_fit_lowers_the_moment_mismatch() {
        // 25 iterations on small batches: the mismatch must fall well below its start and the
        // drift parameters move toward the truth (from [8, 24, 2] to [10, 28, 8/3]).
        let fit = fit_lorenz(&LorenzFitOptions {
            data_paths: 256,
            model_paths: 64,
            observations: 20,
            iterations: 25,
            ..Default::default()
        })
        .unwrap();
        assert_eq!(fit.losses.len(), 25);
        assert!(fit.losses.iter().all(|l| l.is_finite()));
        assert!(
            fit.losses[24] < 0.5 * fit.losses[0],
            "{} → {}",
            fit.losses[0],
            fit.losses[24]
        );
        for i in 0..3 {
            let before = (fit.initial[i] - fit.truth[i]).abs();
            let after = (fit.fitted[i] - fit.truth[i]).abs();
            assert!(after < before, "parameter {i}: {:?}", fit.fitted);
        }
    }
}
