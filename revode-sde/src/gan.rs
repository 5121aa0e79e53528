//! SDE-GAN (Kidger et al. 2021; docs/src/sde.md): a neural SDE generator trained with the
//! reversible gradient against a neural CDE discriminator (Wasserstein loss; Lipschitz control
//! by a gradient penalty, or by weight clipping).
//!
//! Generator: `x0 = ζ(V)`, `V ~ N(0, I)`; `dx = μ(t, x) dt + σ(t, x) ∘ dW` with diagonal noise,
//! solved by reversible Heun on a fresh Brownian path per batch (regenerated exactly on the
//! backward pass); samples `Y_k = w·x(t_k) + c`. Discriminator: `h0 = ξ(t0, Y0)`,
//! `dh = f(h) dX` over the linear path of `(t, Y, Y²)`, score `m·h(T) + c`. The generator's
//! cotangent is the discriminator's gradient with respect to the path's data values.

use crate::{BrownianPath, Calculus, Diagonal, SdeTerm};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};
use rayon::prelude::*;
use revode_cde::{CdeField, CdeMlp, CdeTerm, Interpolation, Path, PathData, PathOptions};
use revode_core::mlp::{Activation, MlpSpec};
use revode_core::train::AdamW;
use revode_core::{
    gradient, solve, Error, GradientMethod, Mlp, Plain, Result, Rk, SolveOptions, Tableau,
    VectorField,
};

/// The time-dependent Ornstein–Uhlenbeck process of the SDE-GAN experiment (docs/src/sde.md):
/// `dX = (μt − θX) dt + σ(t) dW`, `σ(t) = σ₀(1 + t/T)`, `X0 ~ U[−1, 1]`, on `[0, T]`.
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
}

impl Default for OuProcess {
    fn default() -> Self {
        OuProcess {
            mu: 0.02,
            theta: 0.1,
            sigma0: 0.4,
            horizon: 63.0,
            times: 64,
        }
    }
}

/// Sample paths on a shared grid: `paths × times`, row-major.
#[derive(Clone, Debug)]
pub struct Samples {
    /// Observation times.
    pub times: Vec<f64>,
    /// Number of paths.
    pub paths: usize,
    /// Values, `paths × times`.
    pub values: Vec<f64>,
}

impl Samples {
    /// The values of every path at observation `k`.
    pub fn marginal(&self, k: usize) -> Vec<f64> {
        let n = self.times.len();
        (0..self.paths).map(|p| self.values[p * n + k]).collect()
    }
}

/// Drift `μt − θX` of the OU process (no parameters).
struct OuDrift {
    n: usize,
    mu: f64,
    theta: f64,
}

impl VectorField for OuDrift {
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

/// σ(t) on the diagonal.
struct OuNoise {
    n: usize,
    sigma0: f64,
    horizon: f64,
}

impl VectorField for OuNoise {
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
    fn eval(&self, t: f64, _y: &[f64], out: &mut [f64]) {
        out.fill(self.sigma0 * (1.0 + t / self.horizon));
    }
    fn vjp(&self, _: f64, _: &[f64], _: &[f64], _: f64, _: &mut [f64], _: &mut [f64]) {}
}

impl OuProcess {
    /// The observation times.
    pub fn grid(&self) -> Vec<f64> {
        let n = self.times - 1;
        (0..self.times)
            .map(|k| self.horizon * k as f64 / n as f64)
            .collect()
    }

    /// `paths` sample paths, simulated with Stratonovich Heun at 16 steps per observation
    /// interval (additive noise: Itô = Stratonovich, strong order 1).
    pub fn sample(&self, paths: usize, seed: u64) -> Result<Samples> {
        let times = self.grid();
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let y0: Vec<f64> = (0..paths)
            .map(|_| 2.0 * rand::Rng::gen::<f64>(&mut rng) - 1.0)
            .collect();
        let path = BrownianPath::new(0.0, self.horizon, paths, 1, seed ^ 0x0005_DEEC_E66D)?;
        let drift = OuDrift {
            n: paths,
            mu: self.mu,
            theta: self.theta,
        };
        let noise = Diagonal(OuNoise {
            n: paths,
            sigma0: self.sigma0,
            horizon: self.horizon,
        });
        let term = SdeTerm::new(drift, noise, path, Calculus::Stratonovich)?;
        let map = crate::step_map(term, crate::SdeSolver::Heun)?;
        let h = (times[1] - times[0]) / 16.0;
        let sol = solve(
            &revode_core::Plain::new(map),
            &y0,
            &times,
            &SolveOptions::fixed(h),
        )?;
        let n = times.len();
        let mut values = vec![0.0; paths * n];
        for (k, y) in sol.ys.iter().enumerate() {
            for (p, &v) in y.iter().enumerate() {
                values[p * n + k] = v;
            }
        }
        Ok(Samples {
            times,
            paths,
            values,
        })
    }
}

/// Sizes and training settings of the SDE-GAN.
#[derive(Clone, Debug)]
pub struct GanConfig {
    /// Generator hidden state (= noise channels, diagonal noise).
    pub hidden: usize,
    /// Width of the generator's MLPs.
    pub width: usize,
    /// Discriminator hidden state.
    pub disc_hidden: usize,
    /// Width of the discriminator's field.
    pub disc_width: usize,
    /// Paths per training batch.
    pub batch: usize,
    /// Generator learning rate.
    pub lr_generator: f64,
    /// Discriminator learning rate.
    pub lr_discriminator: f64,
    /// Discriminator weights are clipped to `[−clip, clip]` (Lipschitz control) when there is
    /// no gradient penalty; the initial weights are clipped either way.
    pub clip: f64,
    /// Solver steps per observation interval (generator and discriminator).
    pub steps_per_interval: usize,
    /// Critic updates per generator update.
    pub critic_steps: usize,
    /// The critic also reads `Y²` as a path channel (lets a Lipschitz-bounded critic compare
    /// second moments).
    pub square_channel: bool,
    /// Adam's first-moment decay for both players (GANs train more stably with little
    /// momentum; 0.9 is Adam's default).
    pub adam_beta1: f64,
    /// Bounds the drift by the number of time intervals `n` and the diffusion by `√n` (the
    /// generator then moves per data-time unit what a unit-bounded SDE moves per model-time
    /// unit, as in data-time parametrisations), with the drift and diffusion networks
    /// initialised at half scale; off: both bounded by 1.
    pub time_gain: bool,
    /// Model-time length of the Brownian path `[0, horizon]`: observation `k` is at model time
    /// `k·horizon/2^m` (`2^m` ≥ the number of observations), a node of the Brownian tree. With drift and diffusion
    /// bounded by 1, the horizon sets how far and how noisily the SDE can move over the data.
    pub horizon: f64,
    /// Lipschitz control by a gradient penalty `λ·mean_b (‖∇_Y D(Ŷ_b)‖ − 1)²` at random
    /// interpolates `Ŷ` of real and generated paths (Gulrajani et al. 2017) instead of weight
    /// clipping, when set to `Some(λ)`. See [`SdeGan::penalty_gradient`].
    pub gradient_penalty: Option<f64>,
    /// Multiplies the initial-condition network's initial parameters (Kidger et al. use 3: a
    /// wide initial spread for the critic to shape, rather than one to grow).
    pub initial_scale: f64,
    /// The critic scores `m·tanh(A h(T) + a) + c` (a nonlinear readout) instead of
    /// `m·h(T) + c`.
    pub critic_mlp_readout: bool,
    /// The critic scores the mean readout over every observation time,
    /// `c + (1/n) Σ_k m·h(t_k)`, rather than the final state's alone: every marginal then
    /// reaches the score through its own term.
    pub critic_all_times: bool,
    /// Normalise the data by an affine-in-time trend `a + b·t` fitted by least squares (and the
    /// residuals' standard deviation) instead of by the overall mean: the generator and the
    /// critic then work on paths without a drift dominating every other statistic.
    pub detrend: bool,
    /// The batch is split into this many chunks, each with its own noise and Brownian path,
    /// solved in parallel (rayon); results depend on the chunk count, not on the thread count.
    pub chunks: usize,
}

impl Default for GanConfig {
    /// The recipe of docs/src/sde.md: data detrended by a least-squares line, model-time
    /// horizon 8, gradient penalty 10, two critic steps per generator step, Adam β₁ = 0.5,
    /// learning rates 5e-4 (generator) and 1e-3 (critic), a Y² channel.
    fn default() -> Self {
        GanConfig {
            hidden: 16,
            width: 16,
            disc_hidden: 16,
            disc_width: 16,
            batch: 256,
            lr_generator: 5e-4,
            lr_discriminator: 1e-3,
            clip: 0.1,
            steps_per_interval: 1,
            square_channel: true,
            critic_steps: 2,
            adam_beta1: 0.5,
            time_gain: false,
            horizon: 8.0,
            gradient_penalty: Some(10.0),
            initial_scale: 1.0,
            critic_mlp_readout: false,
            critic_all_times: false,
            detrend: true,
            chunks: 4,
        }
    }
}

/// An SDE-GAN: generator and discriminator parameters, their optimisers, and the data scaling.
#[derive(Clone, Debug)]
pub struct SdeGan {
    /// Settings.
    pub config: GanConfig,
    /// Generator parameters `[ζ | μ | σ | readout]`.
    pub generator: Vec<f64>,
    /// Discriminator parameters `[ξ | f | readout]`.
    pub discriminator: Vec<f64>,
    opt_g: AdamW,
    opt_d: AdamW,
    /// Data at observation `k` are modelled as `(X − shift[k])/scale`.
    pub shift: Vec<f64>,
    /// See `shift`.
    pub scale: f64,
    /// Model time of each observation (`k·horizon/2^m`, inside the Brownian path's domain).
    pub times: Vec<f64>,
    /// Observation times of the data.
    pub data_times: Vec<f64>,
    /// Running average of the generator's parameters (stochastic weight averaging), once
    /// started; sampling uses it.
    pub averaged: Option<(Vec<f64>, u64)>,
    step: u64,
}

/// What one training step measured.
#[derive(Clone, Copy, Debug)]
pub struct GanStep {
    /// Mean critic score on real minus on generated paths (the Wasserstein estimate).
    pub wasserstein: f64,
    /// Peak stored states of the generator's gradient (reversible: constant).
    pub stored_states: usize,
    /// The gradient penalty of the last critic update (0 with weight clipping).
    pub penalty: f64,
}

/// An MLP with a scaled tanh on its output, `gain·tanh(MLP(t, y))` (bounded drift and
/// diffusion, as in Kidger et al.'s generator). The cache holds the MLP's cache and the tanh.
#[derive(Clone, Debug)]
pub struct Bounded {
    /// The network.
    pub mlp: Mlp<f64>,
    /// The output bound.
    pub gain: f64,
}

thread_local! {
    /// The cotangent behind the tanh, reused across pullbacks (no allocation per stage).
    static INNER_COT: std::cell::RefCell<Vec<f64>> = const { std::cell::RefCell::new(Vec::new()) };
}

impl VectorField for Bounded {
    type Scalar = f64;
    fn dim(&self) -> usize {
        self.mlp.dim()
    }
    fn params(&self) -> &[f64] {
        self.mlp.params()
    }
    fn params_mut(&mut self) -> &mut [f64] {
        self.mlp.params_mut()
    }
    fn eval(&self, t: f64, y: &[f64], out: &mut [f64]) {
        self.mlp.eval(t, y, out);
        out.iter_mut().for_each(|v| *v = self.gain * v.tanh());
    }
    fn vjp(&self, t: f64, y: &[f64], cot: &[f64], s: f64, yb: &mut [f64], pb: &mut [f64]) {
        revode_core::field::vjp_through_cache(self, t, y, cot, s, yb, pb);
    }
    fn cache_len(&self) -> usize {
        self.mlp.cache_len() + self.mlp.dim()
    }
    fn eval_cached(&self, t: f64, y: &[f64], out: &mut [f64], cache: &mut [f64]) {
        let (inner, outs) = cache.split_at_mut(self.mlp.cache_len());
        self.mlp.eval_cached(t, y, out, inner);
        for (o, c) in out.iter_mut().zip(outs.iter_mut()) {
            *c = o.tanh();
            *o = self.gain * *c;
        }
    }
    fn vjp_cached(
        &self,
        t: f64,
        y: &[f64],
        cache: &[f64],
        cot: &[f64],
        s: f64,
        yb: &mut [f64],
        pb: &mut [f64],
    ) {
        let (inner, outs) = cache.split_at(self.mlp.cache_len());
        INNER_COT.with(|buf| {
            let mut inner_cot = buf.borrow_mut();
            inner_cot.clear();
            inner_cot.extend(
                cot.iter()
                    .zip(outs)
                    .map(|(c, o)| self.gain * c * (1.0 - o * o)),
            );
            self.mlp.vjp_cached(t, y, inner, &inner_cot, s, yb, pb);
        });
    }
}

fn mlp_spec(dim: usize, width: usize, time: bool) -> MlpSpec {
    MlpSpec {
        dim,
        hidden: width,
        depth: 1,
        activation: Activation::Tanh,
        time,
        time_first: false,
        outputs: None,
    }
}

/// The per-time shift and the variance of the residuals: the overall mean, or (`detrend`) the
/// least-squares line `a + b·t` through every value.
fn normalisation(real: &Samples, detrend: bool) -> Result<(Vec<f64>, f64)> {
    let n = real.times.len();
    if n < 2 || real.paths == 0 || real.values.len() != real.paths * n {
        return Err(Error::config(
            "gan data",
            format!(
                "need at least one path and two times with paths × times values (got {} paths, {} times, {} values)",
                real.paths,
                n,
                real.values.len()
            ),
        ));
    }
    let count = real.values.len() as f64;
    let mean = real.values.iter().sum::<f64>() / count;
    let (a, b) = if detrend {
        let t_mean = real.times.iter().sum::<f64>() / n as f64;
        let (mut sty, mut stt) = (0.0, 0.0);
        for (i, &v) in real.values.iter().enumerate() {
            let dt = real.times[i % n] - t_mean;
            sty += dt * (v - mean);
            stt += dt * dt;
        }
        let b = if stt > 0.0 { sty / stt } else { 0.0 };
        (mean - b * t_mean, b)
    } else {
        (mean, 0.0)
    };
    let shift: Vec<f64> = real.times.iter().map(|t| a + b * t).collect();
    let var = real
        .values
        .iter()
        .enumerate()
        .map(|(i, v)| (v - shift[i % n]).powi(2))
        .sum::<f64>()
        / count;
    if !var.is_finite() {
        return Err(Error::config("gan data", "values must be finite"));
    }
    Ok((shift, var))
}

/// The noise seed of chunk `i` (chunk 0 keeps `seed`).
fn chunk_seed(seed: u64, i: usize) -> u64 {
    seed ^ (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

fn normals(n: usize, seed: u64) -> Vec<f64> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..n).map(|_| StandardNormal.sample(&mut rng)).collect()
}

impl SdeGan {
    /// A fresh GAN for data `real` (used for the scaling and the time grid).
    pub fn new(config: GanConfig, real: &Samples, seed: u64) -> Result<Self> {
        if config.batch == 0
            || config.hidden == 0
            || config.steps_per_interval == 0
            || config.chunks == 0
        {
            return Err(Error::config(
                "gan",
                "batch, hidden, steps_per_interval and chunks must be positive",
            ));
        }
        if config.clip.is_nan() || config.clip <= 0.0 {
            return Err(Error::config("gan clip", "must be positive"));
        }
        if let Some(l) = config.gradient_penalty {
            if !(l > 0.0 && l.is_finite()) {
                return Err(Error::config(
                    "gan gradient_penalty",
                    format!("λ = {l} must be positive and finite"),
                ));
            }
        }
        if config.critic_all_times && config.critic_mlp_readout {
            return Err(Error::config(
                "gan critic_all_times",
                "the per-time readout is linear: it cannot be combined with critic_mlp_readout",
            ));
        }
        let (shift, var) = normalisation(real, config.detrend)?;
        let (h, w) = (config.hidden, config.width);
        if !(config.initial_scale > 0.0 && config.initial_scale.is_finite()) {
            return Err(Error::config(
                "gan initial_scale",
                "must be positive and finite",
            ));
        }
        let mut generator: Vec<f64> = mlp_spec(h, w, false)
            .init_uniform(seed)
            .iter()
            .map(|v| config.initial_scale * v)
            .collect();
        let field_scale = if config.time_gain { 0.5 } else { 1.0 };
        for k in [1, 2] {
            let p = mlp_spec(h, w, true).init_uniform(seed + k);
            generator.extend(p.iter().map(|v| field_scale * v));
        }
        let mut rng = revode_core::random::SplitMix64::new(seed + 3);
        let b = 1.0 / (h as f64).sqrt();
        // A small readout: generated paths start near the data's centre with little spread,
        // and the critic grows what is missing rather than undoing a large random scale.
        generator.extend((0..h).map(|_| rng.symmetric(0.1 * b)));
        generator.push(0.0);
        let dh = config.disc_hidden;
        let ch = 2 + config.square_channel as usize;
        let field = CdeMlp::new(dh, ch, config.disc_width, 1, false, seed + 4)?;
        let mut discriminator: Vec<f64> = (0..dh * (ch + 1)).map(|_| rng.symmetric(0.5)).collect();
        discriminator.extend(field.params());
        let readout_len = if config.critic_mlp_readout {
            dh * dh + 2 * dh + 1
        } else {
            dh + 1
        };
        discriminator.extend((0..readout_len).map(|_| rng.symmetric(b)));
        for p in &mut discriminator {
            *p = p.clamp(-config.clip, config.clip);
        }
        // Model time k/2^m for observation k: the Brownian tree's own nodes, so every query
        // is exact and costs O(1) node draws.
        let m = real.times.len().next_power_of_two() as f64;
        if !(config.horizon > 0.0 && config.horizon.is_finite()) {
            return Err(Error::config(
                "gan horizon",
                format!("{} must be positive and finite", config.horizon),
            ));
        }
        let horizon = config.horizon;
        if !(0.0..1.0).contains(&config.adam_beta1) {
            return Err(Error::config("gan adam_beta1", "must lie in [0, 1)"));
        }
        let mut opt_g = AdamW::new(generator.len(), config.lr_generator, 0.0)?;
        let mut opt_d = AdamW::new(discriminator.len(), config.lr_discriminator, 0.0)?;
        opt_g.beta1 = config.adam_beta1;
        opt_d.beta1 = config.adam_beta1;
        Ok(SdeGan {
            opt_g,
            opt_d,
            generator,
            discriminator,
            shift,
            scale: var.sqrt().max(1e-12),
            times: (0..real.times.len())
                .map(|k| k as f64 * (horizon / m))
                .collect(),
            data_times: real.times.clone(),
            averaged: None,
            config,
            step: 0,
        })
    }

    fn gen_split(&self) -> [std::ops::Range<usize>; 4] {
        let (h, w) = (self.config.hidden, self.config.width);
        let a = mlp_spec(h, w, false).num_params();
        let b = a + mlp_spec(h, w, true).num_params();
        let c = b + mlp_spec(h, w, true).num_params();
        [0..a, a..b, b..c, c..c + h + 1]
    }

    /// Path channels of the critic: time, Y and optionally Y².
    fn channels(&self) -> usize {
        2 + self.config.square_channel as usize
    }

    fn disc_split(&self) -> [std::ops::Range<usize>; 3] {
        let dh = self.config.disc_hidden;
        let a = dh * (self.channels() + 1);
        let readout_len = if self.config.critic_mlp_readout {
            dh * dh + 2 * dh + 1
        } else {
            dh + 1
        };
        let f = self.discriminator.len() - readout_len;
        [a..f, 0..a, f..self.discriminator.len()]
    }

    fn opts(&self) -> SolveOptions {
        let dt = self.times[1] - self.times[0];
        SolveOptions::fixed(dt / self.config.steps_per_interval as f64)
    }

    /// The generator for `batch` paths on the Brownian path of `seed`, and its initial state.
    #[allow(clippy::type_complexity)]
    fn generator_parts(
        &self,
        params: &[f64],
        batch: usize,
        seed: u64,
    ) -> Result<(
        crate::SdeMap<Bounded, Diagonal<Bounded>>,
        Mlp<f64>,
        Vec<f64>,
        Vec<f64>,
    )> {
        let h = self.config.hidden;
        let w = self.config.width;
        let [z, mu, sg, _] = self.gen_split();
        let zeta = Mlp::from_spec(mlp_spec(h, w, false), batch)?.with_params(&params[z])?;
        // An observation interval is 1/n of model time; bounds n (drift) and √n (diffusion)
        // let the SDE move as far as one in data-time units with unit bounds.
        let n = if self.config.time_gain {
            1.0 / self.times[1]
        } else {
            1.0
        };
        let drift = Bounded {
            mlp: Mlp::from_spec(mlp_spec(h, w, true), batch)?.with_params(&params[mu])?,
            gain: n,
        };
        let diff = Bounded {
            mlp: Mlp::from_spec(mlp_spec(h, w, true), batch)?.with_params(&params[sg])?,
            gain: n.sqrt(),
        };
        let v = normals(batch * h, seed);
        let mut x0 = vec![0.0; batch * h];
        zeta.eval(0.0, &v, &mut x0);
        let path = BrownianPath::new(
            0.0,
            self.config.horizon,
            batch,
            h,
            seed ^ 0xB5AD_4ECE_DA1C_E2A9,
        )?;
        let term = SdeTerm::new(drift, Diagonal(diff), path, Calculus::Stratonovich)?;
        Ok((revode_core::Rk::new(term, Tableau::euler()), zeta, v, x0))
    }

    fn readout(&self, params: &[f64], x: &[f64], out: &mut [f64]) {
        let h = self.config.hidden;
        let r = &params[self.gen_split()[3].clone()];
        for (o, row) in out.iter_mut().zip(x.chunks_exact(h)) {
            *o = r[h] + row.iter().zip(r).map(|(a, b)| a * b).sum::<f64>();
        }
    }

    /// Scales both learning rates to `scale ×` the configured ones (a schedule: e.g. a linear
    /// decay over the training budget damps the players' late oscillation).
    pub fn set_learning_rate_scale(&mut self, scale: f64) -> Result<()> {
        if !(scale > 0.0 && scale.is_finite()) {
            return Err(Error::config(
                "gan learning-rate scale",
                format!("{scale} must be positive and finite"),
            ));
        }
        self.opt_g.lr = scale * self.config.lr_generator;
        self.opt_d.lr = scale * self.config.lr_discriminator;
        Ok(())
    }

    /// Starts (or restarts) averaging the generator's parameters over the following steps.
    pub fn start_averaging(&mut self) {
        self.averaged = Some((self.generator.clone(), 1));
    }

    /// The generator's parameters used for sampling: the running average once started.
    pub fn sampling_params(&self) -> &[f64] {
        self.averaged.as_ref().map_or(&self.generator, |(a, _)| a)
    }

    /// `batch` generated paths (scaled units) from noise `seed`, with the live parameters.
    fn generate_scaled(&self, batch: usize, seed: u64) -> Result<Vec<f64>> {
        self.generate_with(&self.generator, batch, seed)
    }

    /// `(start, len)` of each chunk of a batch of `batch` paths.
    fn chunks(&self, batch: usize) -> Vec<(usize, usize)> {
        let c = self.config.chunks.clamp(1, batch.max(1));
        (0..c)
            .map(|i| (i * batch / c, (i + 1) * batch / c - i * batch / c))
            .collect()
    }

    /// Generated paths, chunk by chunk in parallel (chunk `i` draws from `chunk_seed(seed, i)`).
    fn generate_with(&self, params: &[f64], batch: usize, seed: u64) -> Result<Vec<f64>> {
        let parts = self
            .chunks(batch)
            .par_iter()
            .enumerate()
            .map(|(i, &(_, len))| self.generate_chunk(params, len, chunk_seed(seed, i)))
            .collect::<Result<Vec<_>>>()?;
        Ok(parts.concat())
    }

    fn generate_chunk(&self, params: &[f64], batch: usize, seed: u64) -> Result<Vec<f64>> {
        let (map, _, _, x0) = self.generator_parts(params, batch, seed)?;
        let scheme = revode_core::ReversibleHeun::new(map.into_term())?;
        let sol = solve(&scheme, &x0, &self.times, &self.opts())?;
        let n = self.times.len();
        let mut y = vec![0.0; batch * n];
        let mut col = vec![0.0; batch];
        for (k, x) in sol.ys.iter().enumerate() {
            self.readout(params, x, &mut col);
            for (b, &v) in col.iter().enumerate() {
                y[b * n + k] = v;
            }
        }
        Ok(y)
    }

    /// `paths` generated sample paths in the data's units.
    pub fn sample(&self, paths: usize, seed: u64) -> Result<Samples> {
        let mut values = Vec::with_capacity(paths * self.times.len());
        let chunk = 2048;
        let mut done = 0;
        while done < paths {
            let b = chunk.min(paths - done);
            let y =
                self.generate_with(self.sampling_params(), b, seed.wrapping_add(done as u64))?;
            let n = self.times.len();
            values.extend(
                y.iter()
                    .enumerate()
                    .map(|(i, v)| v * self.scale + self.shift[i % n]),
            );
            done += b;
        }
        Ok(Samples {
            times: self.data_times.clone(),
            paths,
            values,
        })
    }

    /// Critic scores of scaled paths `y` (`batch × times`), with the gradient of
    /// `Σ_b weight·D(y_b)` with respect to the critic's parameters and (optionally) to `y`;
    /// chunks in parallel, summed in chunk order.
    fn critic(
        &self,
        y: &[f64],
        weight: f64,
        data_grad: bool,
    ) -> Result<(f64, Vec<f64>, Option<Vec<f64>>)> {
        let n = self.times.len();
        let parts = self
            .chunks(y.len() / n)
            .par_iter()
            .map(|&(s, len)| self.critic_chunk(&y[s * n..(s + len) * n], weight, data_grad))
            .collect::<Result<Vec<_>>>()?;
        let mut score = 0.0;
        let mut grad = vec![0.0; self.discriminator.len()];
        let mut y_bar = data_grad.then(|| Vec::with_capacity(y.len()));
        for (sc, g, yb) in parts {
            score += sc;
            grad.iter_mut().zip(&g).for_each(|(a, b)| *a += b);
            if let (Some(all), Some(yb)) = (y_bar.as_mut(), yb) {
                all.extend(yb);
            }
        }
        Ok((score, grad, y_bar))
    }

    fn critic_chunk(
        &self,
        y: &[f64],
        weight: f64,
        data_grad: bool,
    ) -> Result<(f64, Vec<f64>, Option<Vec<f64>>)> {
        let n = self.times.len();
        let batch = y.len() / n;
        let dh = self.config.disc_hidden;
        let [field_r, xi_r, read_r] = self.disc_split();
        let (xi, read) = (
            &self.discriminator[xi_r.clone()],
            &self.discriminator[read_r.clone()],
        );
        let ch = self.channels();
        let c_in = ch - 1;
        let values: Vec<f64> = if self.config.square_channel {
            y.iter().flat_map(|&v| [v, v * v]).collect()
        } else {
            y.to_vec()
        };
        let data = PathData {
            times: self.times.clone(),
            batch,
            channels: c_in,
            values,
        };
        let path = Path::new(
            &data,
            &PathOptions {
                interpolation: Interpolation::Linear,
                time_channel: true,
                ..Default::default()
            },
        )?;
        let field = CdeMlp::new(dh, ch, self.config.disc_width, 1, false, 0)?
            .with_params(&self.discriminator[field_r.clone()])?;
        let mut term = CdeTerm::new(field, path)?;
        if data_grad {
            term = term.with_data_gradient()?;
        }
        // The critic's solves are short (one step per observation): its full tape is small, and
        // direct backpropagation costs a third of the reversible gradient's evaluations.
        let scheme = Plain::new(Rk::new(term, Tableau::midpoint()));
        // h0 = ξ · (t0, X0) + b
        let t0 = self.times[0];
        let x0 = |b: usize| -> Vec<f64> {
            let v = y[b * n];
            if self.config.square_channel {
                vec![t0, v, v * v]
            } else {
                vec![t0, v]
            }
        };
        let mut h0 = vec![0.0; batch * dh];
        for b in 0..batch {
            let x = x0(b);
            for i in 0..dh {
                h0[b * dh + i] =
                    xi[ch * dh + i] + (0..ch).map(|j| xi[ch * i + j] * x[j]).sum::<f64>();
            }
        }
        let mut read_grad = vec![0.0; read.len()];
        let times = if self.config.critic_all_times {
            self.times.clone()
        } else {
            vec![self.times[0], self.times[n - 1]]
        };
        let g = gradient(
            &scheme,
            &h0,
            &times,
            &self.opts(),
            &GradientMethod::Direct.into(),
            |hs, cots| {
                let hl = &hs[hs.len() - 1];
                let mut total = 0.0;
                if self.config.critic_mlp_readout {
                    // read = [A (dh × dh) | a | m | c]; D = m·tanh(A h + a) + c.
                    let (a_w, rest) = read.split_at(dh * dh);
                    let (a_b, rest) = rest.split_at(dh);
                    let (m, c) = rest.split_at(dh);
                    let mut r = vec![0.0; dh];
                    for b in 0..batch {
                        let row = &hl[b * dh..(b + 1) * dh];
                        for j in 0..dh {
                            let u = a_b[j]
                                + a_w[j * dh..(j + 1) * dh]
                                    .iter()
                                    .zip(row)
                                    .map(|(w, z)| w * z)
                                    .sum::<f64>();
                            r[j] = u.tanh();
                        }
                        total += weight * (c[0] + r.iter().zip(m).map(|(x, y)| x * y).sum::<f64>());
                        read_grad[dh * dh + 2 * dh] += weight;
                        for j in 0..dh {
                            read_grad[dh * dh + dh + j] += weight * r[j];
                            let du = weight * m[j] * (1.0 - r[j] * r[j]);
                            read_grad[dh * dh + j] += du;
                            for i in 0..dh {
                                read_grad[j * dh + i] += du * row[i];
                                cots[1][b * dh + i] += du * a_w[j * dh + i];
                            }
                        }
                    }
                    return total;
                }
                // Linear readout of h(T), or of the mean of h over every observation time.
                let first = if self.config.critic_all_times { 0 } else { 1 };
                let share = weight / (hs.len() - first) as f64;
                for b in 0..batch {
                    total += weight * read[dh];
                    read_grad[dh] += weight;
                    for (h, cot) in hs.iter().zip(cots.iter_mut()).skip(first) {
                        let row = &h[b * dh..(b + 1) * dh];
                        total += share * row.iter().zip(read).map(|(a, c)| a * c).sum::<f64>();
                        for i in 0..dh {
                            read_grad[i] += share * row[i];
                            cot[b * dh + i] = share * read[i];
                        }
                    }
                }
                total
            },
        )?;
        let mut grad = vec![0.0; self.discriminator.len()];
        let nf = field_r.len();
        grad[field_r].copy_from_slice(&g.params[..nf]);
        grad[read_r].copy_from_slice(&read_grad);
        // Data cotangent per value (Y, and Y² folded back through 2Y).
        let mut y_bar = data_grad.then(|| {
            let d = &g.params[nf..];
            (0..batch * n)
                .map(|i| {
                    if self.config.square_channel {
                        d[2 * i] + 2.0 * y[i] * d[2 * i + 1]
                    } else {
                        d[i]
                    }
                })
                .collect::<Vec<f64>>()
        });
        for b in 0..batch {
            let x = x0(b);
            for i in 0..dh {
                let hb = g.y0[b * dh + i];
                grad[xi_r.start + ch * dh + i] += hb;
                for j in 0..ch {
                    grad[xi_r.start + ch * i + j] += hb * x[j];
                }
                if let Some(yb) = y_bar.as_mut() {
                    let mut d = xi[ch * i + 1];
                    if self.config.square_channel {
                        d += 2.0 * x[1] * xi[ch * i + 2];
                    }
                    yb[b * n] += hb * d;
                }
            }
        }
        Ok((g.loss, grad, y_bar))
    }

    /// The gradient penalty `λ·mean_b (‖∇_Y D(Ŷ_b)‖ − 1)²` at scaled paths `yhat`
    /// (`batch × times`) and its gradient with respect to the critic's parameters.
    ///
    /// The gradient needs `∂²D/∂θ∂Y`. With `u_b = 2λ(‖g_b‖ − 1)/(B‖g_b‖)·g_b`, `g = ∇_Y D`,
    /// held fixed, the penalty's θ-gradient is `∇_θ (g·u)`, and `g·u` is the derivative of
    /// `Σ_b D` along `u`: so it is the central difference of two first-order critic gradients
    /// at `Ŷ ± εu` (a Hessian–vector product), with `ε‖u‖_∞ = 10⁻⁴`: error O(ε²).
    pub fn penalty_gradient(&self, yhat: &[f64]) -> Result<(f64, Vec<f64>)> {
        let lambda = self.config.gradient_penalty.unwrap_or(0.0);
        let n = self.times.len();
        let batch = yhat.len() / n;
        let (_, _, g) = self.critic(yhat, 1.0, true)?;
        let g = g.unwrap_or_default();
        let mut u = vec![0.0; yhat.len()];
        let mut penalty = 0.0;
        for b in 0..batch {
            let gb = &g[b * n..(b + 1) * n];
            let norm = gb.iter().map(|v| v * v).sum::<f64>().sqrt();
            penalty += lambda * (norm - 1.0).powi(2) / batch as f64;
            if norm > 0.0 {
                let c = 2.0 * lambda * (norm - 1.0) / (batch as f64 * norm);
                for (uk, gk) in u[b * n..(b + 1) * n].iter_mut().zip(gb) {
                    *uk = c * gk;
                }
            }
        }
        let umax = u.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        if umax == 0.0 {
            return Ok((penalty, vec![0.0; self.discriminator.len()]));
        }
        let eps = 1e-4 / umax;
        let shifted = |sign: f64| -> Vec<f64> {
            yhat.iter()
                .zip(&u)
                .map(|(y, d)| y + sign * eps * d)
                .collect()
        };
        let (_, up, _) = self.critic(&shifted(1.0), 1.0, false)?;
        let (_, down, _) = self.critic(&shifted(-1.0), 1.0, false)?;
        let grad = up
            .iter()
            .zip(&down)
            .map(|(a, b)| (a - b) / (2.0 * eps))
            .collect();
        Ok((penalty, grad))
    }

    /// The generator's loss `−mean D(fake)` on `batch` paths from noise `seed`, its gradient with
    /// respect to `gen` (reversible: the SDE is reconstructed backwards on its regenerated
    /// Brownian path), and the peak stored states.
    pub fn generator_gradient(
        &self,
        gen: &[f64],
        b: usize,
        seed: u64,
    ) -> Result<(f64, Vec<f64>, usize)> {
        let parts = self
            .chunks(b)
            .par_iter()
            .enumerate()
            .map(|(i, &(_, len))| {
                self.generator_gradient_chunk(gen, len, 1.0 / b as f64, chunk_seed(seed, i))
            })
            .collect::<Result<Vec<_>>>()?;
        let mut loss = 0.0;
        let mut grad = vec![0.0; gen.len()];
        let mut stored = 0;
        for (l, g, s) in parts {
            loss += l;
            grad.iter_mut().zip(&g).for_each(|(a, b)| *a += b);
            stored = stored.max(s);
        }
        Ok((loss, grad, stored))
    }

    /// One chunk of [`SdeGan::generator_gradient`]: `b` paths, each weighted `w`.
    fn generator_gradient_chunk(
        &self,
        gen: &[f64],
        b: usize,
        w: f64,
        seed: u64,
    ) -> Result<(f64, Vec<f64>, usize)> {
        let n = self.times.len();
        let (map, zeta, v, x0) = self.generator_parts(gen, b, seed)?;
        let scheme = revode_core::ReversibleHeun::new(map.into_term())?;
        let h = self.config.hidden;
        let read_r = self.gen_split()[3].clone();
        let mut read_grad = vec![0.0; h + 1];
        let mut critic_err = None;
        let g = gradient(
            &scheme,
            &x0,
            &self.times,
            &self.opts(),
            &GradientMethod::Reversible.into(),
            |xs, cots| {
                let mut y = vec![0.0; b * n];
                let mut col = vec![0.0; b];
                for (k, x) in xs.iter().enumerate() {
                    self.readout(gen, x, &mut col);
                    for (j, &v) in col.iter().enumerate() {
                        y[j * n + k] = v;
                    }
                }
                let (score, _, y_bar) = match self.critic_chunk(&y, -w, true) {
                    Ok(r) => r,
                    Err(e) => {
                        critic_err = Some(e);
                        return f64::NAN;
                    }
                };
                let y_bar = y_bar.unwrap_or_default();
                let r = &gen[read_r.clone()];
                for (k, (x, cot)) in xs.iter().zip(cots.iter_mut()).enumerate() {
                    for j in 0..b {
                        let yb = y_bar[j * n + k];
                        read_grad[h] += yb;
                        for i in 0..h {
                            read_grad[i] += yb * x[j * h + i];
                            cot[j * h + i] = yb * r[i];
                        }
                    }
                }
                score
            },
        );
        if let Some(e) = critic_err {
            return Err(e);
        }
        let g = g?;
        let [z_r, mu_r, sg_r, _] = self.gen_split();
        let mut grad_g = vec![0.0; gen.len()];
        let mut v_bar = vec![0.0; v.len()];
        zeta.vjp(0.0, &v, &g.y0, 1.0, &mut v_bar, &mut grad_g[z_r]);
        let nmu = mu_r.len();
        grad_g[mu_r.start..sg_r.end].copy_from_slice(&g.params[..nmu + sg_r.len()]);
        grad_g[read_r].copy_from_slice(&read_grad);
        Ok((g.loss, grad_g, g.stats.peak_stored_states))
    }

    /// The generator's loss alone (forward solves only), for checks.
    pub fn generator_loss(&self, gen: &[f64], b: usize, seed: u64) -> Result<f64> {
        let y = self.generate_with(gen, b, seed)?;
        Ok(self.critic(&y, -1.0 / b as f64, false)?.0)
    }

    /// One training step: a critic update on `real` (scaled internally) against a fresh
    /// generated batch, then a generator update through the reversible gradient.
    pub fn train_step(&mut self, real: &Samples, rng_seed: u64) -> Result<GanStep> {
        let b = self.config.batch;
        let n = self.times.len();
        if real.times.len() != n {
            return Err(Error::ShapeMismatch {
                what: "real samples' observation times".into(),
                expected: n,
                found: real.times.len(),
            });
        }
        self.step += 1;
        let seed = rng_seed
            .wrapping_mul(0x9E37_79B9_7F4A_7C15)
            .wrapping_add(self.step);
        // Critic: minimise mean D(fake) − mean D(real).
        let mut pick = revode_core::random::SplitMix64::new(seed);
        let w = 1.0 / b as f64;
        let (mut d_fake, mut d_real, mut penalty) = (0.0, 0.0, 0.0);
        for c in 0..self.config.critic_steps.max(1) {
            let mut real_batch = Vec::with_capacity(b * n);
            for _ in 0..b {
                let p = (pick.next_u64() % real.paths as u64) as usize;
                real_batch.extend(
                    real.values[p * n..(p + 1) * n]
                        .iter()
                        .zip(&self.shift)
                        .map(|(v, s)| (v - s) / self.scale),
                );
            }
            let fake = self.generate_scaled(b, seed ^ (1 + 2 * c as u64 + 2))?;
            let (df, g_fake, _) = self.critic(&fake, w, false)?;
            let (dr, g_real, _) = self.critic(&real_batch, -w, false)?;
            (d_fake, d_real) = (df, dr);
            let mut grad_d: Vec<f64> = g_fake.iter().zip(&g_real).map(|(a, c)| a + c).collect();
            if self.config.gradient_penalty.is_some() {
                // Interpolates Ŷ_b = α_b·real_b + (1 − α_b)·fake_b, α_b ~ U[0, 1].
                let mut yhat = Vec::with_capacity(b * n);
                for (r, f) in real_batch.chunks_exact(n).zip(fake.chunks_exact(n)) {
                    let a = (pick.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
                    yhat.extend(r.iter().zip(f).map(|(x, y)| a * x + (1.0 - a) * y));
                }
                let (pen, g_pen) = self.penalty_gradient(&yhat)?;
                penalty = pen;
                grad_d.iter_mut().zip(&g_pen).for_each(|(g, p)| *g += p);
                self.opt_d.step(&mut self.discriminator, &grad_d)?;
            } else {
                self.opt_d.step(&mut self.discriminator, &grad_d)?;
                let clip = self.config.clip;
                self.discriminator
                    .iter_mut()
                    .for_each(|p| *p = p.clamp(-clip, clip));
            }
        }
        // Generator: minimise −mean D(fake), through the reversible gradient of the SDE.
        let gen = self.generator.clone();
        let (_, grad_g, stored_states) = self.generator_gradient(&gen, b, seed ^ 1)?;
        self.opt_g.step(&mut self.generator, &grad_g)?;
        if let Some((avg, count)) = self.averaged.as_mut() {
            *count += 1;
            let w = 1.0 / *count as f64;
            avg.iter_mut()
                .zip(&self.generator)
                .for_each(|(a, &p)| *a += w * (p - *a));
        }
        Ok(GanStep {
            wasserstein: -(d_real + d_fake),
            stored_states,
            penalty,
        })
    }
}
