//! SDE-GAN (Kidger et al. 2021; docs/src/sde.md): a neural SDE generator trained with the
//! reversible gradient against a neural CDE critic, on any multi-channel [`TimeSeries`]
//! observed on one time grid, through revode-core's one [`Trainer`](revode_core::train::Trainer).
//!
//! - Generator ([`generator`]): `x0 = ζ(V)`, `V ~ N(0, I)`;
//!   `dx = μ(t, x) dt + σ(t, x) ∘ dW` with diagonal noise and tanh-bounded drift and
//!   diffusion, solved by reversible Heun on a fresh Brownian path per batch (regenerated
//!   exactly on the backward pass); samples `Y(t_k) = A x(t_k) + a` in every data channel.
//! - Critic ([`critic`]): the neural-CDE model the classifier uses
//!   ([`revode_cde::NcdeClassifier`]) with one output: `h0 = ξ(X(t0))`, `dh = f(h) dX` over the
//!   linear path of `(t, Y, Y_i Y_j)`, score `m·h(T) + c`; Lipschitz control by a gradient
//!   penalty.
//! - Training ([`training`]): one parameter vector `[generator | critic]`; each step takes both
//!   players' gradients at the same parameters (simultaneous gradient descent–ascent, as in
//!   Kidger et al.'s torchsde example), the critic's with a larger learning rate (AdamW
//!   parameter groups); the parameters are averaged exponentially (decay `average_decay`)
//!   from a quarter of the run on, and sampling uses the generator's average.

pub mod critic;
pub mod generator;
pub mod training;

use revode_cde::{FieldBackend, NcdeClassifier, TimeSeries};
use revode_core::mlp::{Activation, MlpSpec};
use revode_core::{Error, Result, Tableau};

/// Sizes and training settings of the SDE-GAN.
#[derive(Clone, Debug)]
pub struct GanConfig {
    /// Generator hidden state (= noise channels, diagonal noise).
    pub hidden: usize,
    /// Width of the generator's MLPs.
    pub width: usize,
    /// Critic hidden state.
    pub critic_hidden: usize,
    /// Width of the critic's CDE field.
    pub critic_width: usize,
    /// Paths per training batch.
    pub batch: usize,
    /// Generator learning rate.
    pub lr_generator: f64,
    /// Critic learning rate.
    pub lr_critic: f64,
    /// Adam's first-moment decay for both players (GANs train more stably with little
    /// momentum; 0.9 is Adam's default).
    pub adam_beta1: f64,
    /// The critic's initial parameters are clipped to `[−c, c]` (a small start).
    pub critic_init_clip: f64,
    /// Coupling λ of the critic's reversible Euler scheme (one step per observation interval).
    pub critic_lambda: f64,
    /// Solver steps per observation interval (generator).
    pub steps_per_interval: usize,
    /// The critic also reads every product `Y_i Y_j` (`i ≤ j`; `Y²` for one channel) as path
    /// channels: a Lipschitz-bounded critic can then compare variances and cross-correlations.
    pub square_channel: bool,
    /// Model-time length of the Brownian path `[0, horizon]`: observation `k` is at model time
    /// `k·horizon/2^m` (`2^m` ≥ the number of observations), a node of the Brownian tree.
    pub horizon: f64,
    /// Gradient penalty λ: the critic's loss gains `λ·mean_b (‖∇_Y D(Ŷ_b)‖ − 1)²` at random
    /// interpolates `Ŷ` of real and generated paths (Gulrajani et al. 2017).
    pub gradient_penalty: f64,
    /// Multiplies the initial-condition network's initial parameters.
    pub initial_scale: f64,
    /// Normalise each channel by a least-squares line in time `a + b·t` (and the residuals'
    /// standard deviation) instead of by its overall mean.
    pub detrend: bool,
    /// Decay β of the exponential parameter average kept from a quarter of the run on
    /// ([`TrainConfig::average_decay`](revode_core::train::TrainConfig::average_decay));
    /// `None`: a uniform average over the second half.
    pub average_decay: Option<f64>,
    /// The batch is split into this many chunks, each with its own noise and Brownian path,
    /// solved in parallel (rayon); results depend on the chunk count, not on the thread count.
    pub chunks: usize,
}

impl Default for GanConfig {
    /// The recipe of docs/src/sde.md.
    fn default() -> Self {
        GanConfig {
            hidden: 16,
            width: 16,
            critic_hidden: 16,
            critic_width: 16,
            batch: 128,
            lr_generator: 5e-4,
            lr_critic: 2e-3,
            adam_beta1: 0.5,
            critic_init_clip: 0.1,
            critic_lambda: 0.999,
            steps_per_interval: 1,
            square_channel: true,
            horizon: 8.0,
            gradient_penalty: 10.0,
            initial_scale: 1.0,
            detrend: true,
            average_decay: Some(0.999),
            chunks: 4,
        }
    }
}

/// An SDE-GAN for one data set: its sizes, the data's normalisation and time grid. The
/// parameters live outside (a [`revode_core::train::TrainState`]), laid out
/// `[generator | critic]`.
#[derive(Clone, Debug)]
pub struct SdeGan {
    /// Settings.
    pub config: GanConfig,
    /// Data channels C.
    pub channels: usize,
    /// Data at observation `k`, channel `c` are modelled as `(X − shift[k·C + c]) / scale[c]`.
    pub shift: Vec<f64>,
    /// See `shift`.
    pub scale: Vec<f64>,
    /// Model time of each observation (`k·horizon/2^m`, inside the Brownian path's domain).
    pub times: Vec<f64>,
    /// Observation times of the data.
    pub data_times: Vec<f64>,
    critic: NcdeClassifier,
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

/// The shared time grid of `data` and its values `series × times × C` (row-major); errors
/// for per-series grids, missing values or fewer than two times.
fn grid_and_values(data: &TimeSeries) -> Result<(Vec<f64>, Vec<f64>)> {
    let (n, k, _) = data.values.dim();
    if k < 2 {
        return Err(Error::config(
            "gan data",
            format!("need ≥ 2 observation times (got {k})"),
        ));
    }
    let first = data.times.row(0);
    if let Some(i) = (1..n).find(|&i| data.times.row(i) != first) {
        return Err(Error::config(
            "gan data",
            format!("every series must share one time grid (series {i} differs from series 0)"),
        ));
    }
    if let Some(i) = data.values.iter().position(|v| !v.is_finite()) {
        return Err(Error::NonFinite {
            what: "gan data values (missing values are not supported)".into(),
            index: i,
        });
    }
    Ok((first.to_vec(), data.values.iter().copied().collect()))
}

/// Per channel, the shift at every time (`times × C`) and the residuals' standard deviation:
/// the overall mean, or (`detrend`) the least-squares line `a + b·t` through every value.
fn normalisation(times: &[f64], values: &[f64], c: usize, detrend: bool) -> (Vec<f64>, Vec<f64>) {
    let k = times.len();
    let count = (values.len() / c) as f64;
    let at = |i: usize| times[(i / c) % k];
    let mut shift = vec![0.0; k * c];
    let mut scale = vec![0.0; c];
    for ch in 0..c {
        let vals = || values.iter().enumerate().skip(ch).step_by(c);
        let mean = vals().map(|(_, v)| v).sum::<f64>() / count;
        let (a, b) = if detrend {
            let t_mean = times.iter().sum::<f64>() / k as f64;
            let (mut sty, mut stt) = (0.0, 0.0);
            for (i, v) in vals() {
                let dt = at(i) - t_mean;
                sty += dt * (v - mean);
                stt += dt * dt;
            }
            let b = if stt > 0.0 { sty / stt } else { 0.0 };
            (mean - b * t_mean, b)
        } else {
            (mean, 0.0)
        };
        for j in 0..k {
            shift[j * c + ch] = a + b * times[j];
        }
        let var = vals()
            .map(|(i, v)| (v - a - b * at(i)).powi(2))
            .sum::<f64>()
            / count;
        scale[ch] = var.sqrt().max(1e-12);
    }
    (shift, scale)
}

impl SdeGan {
    /// An SDE-GAN for `data` (its normalisation and time grid; every series on one grid, no
    /// missing values).
    pub fn new(config: GanConfig, data: &TimeSeries) -> Result<Self> {
        let positive = |v: f64| v > 0.0 && v.is_finite();
        if config.batch == 0
            || config.hidden == 0
            || config.width == 0
            || config.steps_per_interval == 0
            || config.chunks == 0
        {
            return Err(Error::config(
                "gan",
                "batch, hidden, width, steps_per_interval and chunks must be positive",
            ));
        }
        for (what, v) in [
            ("gan gradient_penalty", config.gradient_penalty),
            ("gan horizon", config.horizon),
            ("gan initial_scale", config.initial_scale),
            ("gan critic_init_clip", config.critic_init_clip),
            ("gan lr_generator", config.lr_generator),
            ("gan lr_critic", config.lr_critic),
        ] {
            if !positive(v) {
                return Err(Error::config(
                    what,
                    format!("{v} must be positive and finite"),
                ));
            }
        }
        if !(0.0..1.0).contains(&config.adam_beta1) {
            return Err(Error::config("gan adam_beta1", "must lie in [0, 1)"));
        }
        if config
            .average_decay
            .is_some_and(|b| !(0.0..1.0).contains(&b))
        {
            return Err(Error::config("gan average_decay", "must lie in [0, 1)"));
        }
        let c = data.channels();
        let (data_times, values) = grid_and_values(data)?;
        let (shift, scale) = normalisation(&data_times, &values, c, config.detrend);
        if let Some(i) = shift.iter().chain(&scale).position(|v| !v.is_finite()) {
            return Err(Error::NonFinite {
                what: "gan data normalisation (values too large)".into(),
                index: i,
            });
        }
        // Model time k·horizon/2^m for observation k: the Brownian tree's own nodes, so every
        // query is exact and costs O(1) node draws.
        let m = data_times.len().next_power_of_two() as f64;
        let critic = NcdeClassifier {
            hidden: config.critic_hidden,
            channels: 1 + c + config.square_channel as usize * c * (c + 1) / 2,
            classes: 1,
            width: config.critic_width,
            depth: 1,
            tableau: Tableau::euler(),
            lambda: Some(config.critic_lambda),
            backend: FieldBackend::Native,
        };
        critic.validate()?;
        Ok(SdeGan {
            times: (0..data_times.len())
                .map(|k| k as f64 * (config.horizon / m))
                .collect(),
            data_times,
            channels: c,
            shift,
            scale,
            critic,
            config,
        })
    }

    /// The critic model (a one-output [`NcdeClassifier`]).
    pub fn critic_model(&self) -> &NcdeClassifier {
        &self.critic
    }

    /// Lengths of the generator's blocks `[ζ | μ | σ | readout A, a]`.
    fn generator_blocks(&self) -> [usize; 4] {
        let (h, w) = (self.config.hidden, self.config.width);
        [
            mlp_spec(h, w, false).num_params(),
            mlp_spec(h, w, true).num_params(),
            mlp_spec(h, w, true).num_params(),
            self.channels * (h + 1),
        ]
    }

    /// Number of generator parameters.
    pub fn generator_len(&self) -> usize {
        self.generator_blocks().iter().sum()
    }

    /// Number of critic parameters.
    pub fn critic_len(&self) -> Result<usize> {
        self.critic.num_params()
    }

    /// Initial parameters `[generator | critic]` from `seed`: ζ scaled by `initial_scale`, a
    /// small generator readout (generated paths start near the data's centre, and the critic
    /// grows what is missing rather than undoing a large random scale), the critic clipped to
    /// `critic_init_clip`.
    pub fn init(&self, seed: u64) -> Result<Vec<f64>> {
        let (h, w) = (self.config.hidden, self.config.width);
        let mut p: Vec<f64> = mlp_spec(h, w, false)
            .init_uniform(seed)
            .iter()
            .map(|v| self.config.initial_scale * v)
            .collect();
        for k in [1, 2] {
            p.extend(mlp_spec(h, w, true).init_uniform(seed + k));
        }
        let mut rng = revode_core::random::SplitMix64::new(seed + 3);
        let b = 0.1 / (h as f64).sqrt();
        p.extend((0..self.channels * h).map(|_| rng.symmetric(b)));
        p.extend(std::iter::repeat_n(0.0, self.channels));
        let clip = self.config.critic_init_clip;
        p.extend(
            self.critic
                .init(seed + 4)?
                .into_iter()
                .map(|v| v.clamp(-clip, clip)),
        );
        Ok(p)
    }

    /// `(X − shift)/scale` for values laid out `paths × times × C`.
    fn to_model(&self, values: &[f64]) -> Vec<f64> {
        let kc = self.shift.len();
        values
            .iter()
            .enumerate()
            .map(|(i, v)| (v - self.shift[i % kc]) / self.scale[i % self.channels])
            .collect()
    }

    /// Scaled values of `data` (`series × times × C`, checked against this GAN's grid and
    /// channels): what [`SdeGan::step_gradient`] takes as real paths.
    pub fn scaled(&self, data: &TimeSeries) -> Result<Vec<f64>> {
        if data.channels() != self.channels {
            return Err(Error::ShapeMismatch {
                what: "gan data channels".into(),
                expected: self.channels,
                found: data.channels(),
            });
        }
        let (times, values) = grid_and_values(data)?;
        if times != self.data_times {
            return Err(Error::config(
                "gan data",
                "the observation times differ from the data the GAN was built for",
            ));
        }
        Ok(self.to_model(&values))
    }
}
