//! Training the SDE-GAN through the one [`Trainer`](revode_core::train::Trainer): a
//! [`TrainState`] over `[generator | critic]` with AdamW parameter groups, the recipe's
//! [`TrainConfig`], and the simultaneous loss-and-gradient.
//!
//! ```no_run
//! # fn main() -> revode_core::Result<()> {
//! use revode_core::train::Trainer;
//! use revode_sde::datasets::OuProcess;
//! use revode_sde::gan::{GanConfig, SdeGan};
//! let data = OuProcess::default().sample(8192, 1)?;
//! let gan = SdeGan::new(GanConfig::default(), &data)?;
//! let mut state = gan.train_state(7)?;
//! Trainer::new(gan.train_config(2000)).run_with(&mut state, gan.objective(&data, 3)?)?;
//! let generated = gan.sample(state.final_params(), 1000, 99)?;
//! # Ok(()) }
//! ```

use super::SdeGan;
use revode_cde::TimeSeries;
use revode_core::random::SplitMix64;
use revode_core::train::{LossAndGrad, Schedule, TrainConfig, TrainState};
use revode_core::{Error, Result};
use std::sync::Mutex;

/// [`SdeGan::step_gradient`] on fixed data, as a [`LossAndGrad`]; its "loss" is the
/// Wasserstein estimate (the trainer's history is then that curve).
pub struct GanObjective<'a> {
    gan: &'a SdeGan,
    real: Vec<f64>,
    seed: u64,
}

impl LossAndGrad for GanObjective<'_> {
    fn loss_and_grad(&mut self, step: usize, params: &[f64], grad: &mut [f64]) -> Result<f64> {
        Ok(self
            .gan
            .step_gradient(step, params, grad, &self.real, self.seed)?
            .wasserstein)
    }
}

/// What one training step measured.
#[derive(Clone, Copy, Debug)]
pub struct GanStep {
    /// Mean critic score on real minus on generated paths (the Wasserstein estimate).
    pub wasserstein: f64,
    /// The gradient penalty.
    pub penalty: f64,
    /// Peak stored states of the generator's gradient (reversible: constant).
    pub stored_states: usize,
}

impl SdeGan {
    /// A fresh training state from `seed`: AdamW (β₁ from the config) with two parameter
    /// groups, the generator at the schedule's learning rate and the critic at
    /// `lr_critic / lr_generator` times it; the model record holds the data's normalisation.
    pub fn train_state(&self, seed: u64) -> Result<TrainState> {
        let c = &self.config;
        let model = serde_json::json!({
            "kind": "sde-gan",
            "channels": self.channels,
            "shift": self.shift,
            "scale": self.scale,
            "data_times": self.data_times,
            "hidden": c.hidden,
            "width": c.width,
            "critic_hidden": c.critic_hidden,
            "critic_width": c.critic_width,
        });
        let mut state = TrainState::new(self.init(seed)?, c.lr_generator, 0.0, model)?;
        state.opt.beta1 = c.adam_beta1;
        state.opt = state.opt.clone().with_groups(vec![
            (self.generator_len(), 1.0),
            (self.critic_len()?, c.lr_critic / c.lr_generator),
        ])?;
        Ok(state)
    }

    /// The recipe's trainer settings for `steps` steps: learning rates decayed linearly to a
    /// tenth; both players' parameters averaged exponentially with decay `average_decay`
    /// from a quarter of the run on (or, with `None`, uniformly over the second half); an
    /// evaluation scores the average and then the unaveraged parameters and keeps the better
    /// (the average can blur a generator that still moves); without an evaluation, sampling
    /// uses the average.
    pub fn train_config(&self, steps: usize) -> TrainConfig {
        let decay = self.config.average_decay;
        TrainConfig {
            average_from: Some(if decay.is_some() {
                steps / 4
            } else {
                steps / 2
            }),
            average_decay: decay,
            eval_unaveraged: true,
            ..TrainConfig::new(steps, Schedule::linear(self.config.lr_generator, 0.1))
        }
    }

    /// The loss-and-gradient on `data` for
    /// [`Trainer::run_with`](revode_core::train::Trainer::run_with): step `k` draws its real
    /// batch and noise from `(seed, k)`.
    pub fn objective<'a>(&'a self, data: &TimeSeries, seed: u64) -> Result<GanObjective<'a>> {
        Ok(GanObjective {
            gan: self,
            real: self.scaled(data)?,
            seed,
        })
    }

    /// Both players' gradients at the same parameters `p = [generator | critic]`, written
    /// into `g`: the generator's of `−mean D(fake)` (reversible, through the critic's data
    /// gradient), the critic's of `mean D(fake) − mean D(real) + penalty`. `real` holds scaled
    /// paths (`paths × times × C`).
    pub fn step_gradient(
        &self,
        step: usize,
        p: &[f64],
        g: &mut [f64],
        real: &[f64],
        seed: u64,
    ) -> Result<GanStep> {
        let ng = self.generator_len();
        let nc = self.critic_len()?;
        if p.len() != ng + nc || g.len() != p.len() {
            return Err(Error::ShapeMismatch {
                what: "gan parameters [generator | critic]".into(),
                expected: ng + nc,
                found: if p.len() != ng + nc { p.len() } else { g.len() },
            });
        }
        let per = self.times.len() * self.channels;
        let paths = real.len() / per;
        if paths == 0 {
            return Err(Error::Empty {
                what: "gan real data".into(),
            });
        }
        let (gen, critic) = p.split_at(ng);
        let (g_gen, g_critic) = g.split_at_mut(ng);
        let b = self.config.batch;
        let w = 1.0 / b as f64;
        let seed = seed
            .wrapping_mul(0x9E37_79B9_7F4A_7C15)
            .wrapping_add(step as u64);
        let mut pick = SplitMix64::new(seed);
        let mut real_batch = Vec::with_capacity(b * per);
        for _ in 0..b {
            let i = (pick.next_u64() % paths as u64) as usize;
            real_batch.extend_from_slice(&real[i * per..(i + 1) * per]);
        }
        // Generator: −mean D(fake); the critic's gradient of the same pass is kept per chunk.
        let slots = Mutex::new(vec![Vec::new(); self.chunks(b).len()]);
        let loss = |i: usize, y: &[f64], y_bar: &mut [f64]| -> Result<f64> {
            let (score, gc, yb) = self.critic_chunk(critic, y, -w, true)?;
            y_bar.copy_from_slice(&yb.unwrap_or_default());
            slots
                .lock()
                .map_err(|_| Error::config("gan", "a chunk panicked"))?[i] = gc;
            Ok(score)
        };
        let fake = self.generator_gradient(gen, b, seed ^ 1, &loss)?;
        g_gen.copy_from_slice(&fake.grad);
        // Critic: mean D(fake) − mean D(real) + penalty.
        let slots = slots
            .into_inner()
            .map_err(|_| Error::config("gan", "a chunk panicked"))?;
        g_critic.iter_mut().for_each(|v| *v = 0.0);
        for s in &slots {
            g_critic.iter_mut().zip(s).for_each(|(a, v)| *a -= v);
        }
        let (neg_real, g_real, _) = self.critic_gradient(critic, &real_batch, -w, false)?;
        g_critic.iter_mut().zip(&g_real).for_each(|(a, v)| *a += v);
        // Interpolates Ŷ_b = α_b·real_b + (1 − α_b)·fake_b, α_b ~ U[0, 1].
        let mut yhat = Vec::with_capacity(b * per);
        for (r, f) in real_batch
            .chunks_exact(per)
            .zip(fake.paths.chunks_exact(per))
        {
            let a = pick.uniform();
            yhat.extend(r.iter().zip(f).map(|(x, y)| a * x + (1.0 - a) * y));
        }
        let (penalty, g_pen) = self.penalty_gradient(critic, &yhat)?;
        g_critic.iter_mut().zip(&g_pen).for_each(|(a, v)| *a += v);
        Ok(GanStep {
            wasserstein: -neg_real + fake.loss,
            penalty,
            stored_states: fake.stored_states,
        })
    }
}
