//! Training helpers: AdamW on a flat parameter view, a training loop with a progress bar and
//! loss history, and checkpoints (one safetensors file with its metadata in the header,
//! written atomically, hash-checked on load) that resume bit for bit.

use crate::checkpoint::{self, Checkpoint};
use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// AdamW (Loshchilov & Hutter): Adam with decoupled weight decay, on flat `f64` parameters.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AdamW {
    /// Learning rate.
    pub lr: f64,
    /// First-moment decay.
    pub beta1: f64,
    /// Second-moment decay.
    pub beta2: f64,
    /// Denominator offset.
    pub eps: f64,
    /// Decoupled weight decay.
    pub weight_decay: f64,
    /// Steps taken.
    pub t: u64,
    #[serde(skip)]
    m: Vec<f64>,
    #[serde(skip)]
    v: Vec<f64>,
}

impl AdamW {
    /// AdamW for `n` parameters (β = (0.9, 0.999), ε = 1e-8).
    pub fn new(n: usize, lr: f64, weight_decay: f64) -> Result<Self> {
        if !(lr > 0.0 && lr.is_finite() && weight_decay >= 0.0 && weight_decay.is_finite()) {
            return Err(Error::config(
                "adamw",
                format!(
                    "need lr > 0 and weight_decay ≥ 0 (lr = {lr}, weight_decay = {weight_decay})"
                ),
            ));
        }
        Ok(AdamW {
            lr,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay,
            t: 0,
            m: vec![0.0; n],
            v: vec![0.0; n],
        })
    }

    /// One update of `params` with `grads`.
    pub fn step(&mut self, params: &mut [f64], grads: &[f64]) -> Result<()> {
        if params.len() != self.m.len() || grads.len() != self.m.len() {
            return Err(Error::ShapeMismatch {
                what: "AdamW parameters/gradients".into(),
                expected: self.m.len(),
                found: if params.len() != self.m.len() {
                    params.len()
                } else {
                    grads.len()
                },
            });
        }
        self.t += 1;
        let (b1, b2) = (self.beta1, self.beta2);
        let c1 = 1.0 - b1.powi(self.t as i32);
        let c2 = 1.0 - b2.powi(self.t as i32);
        for i in 0..params.len() {
            let g = grads[i];
            self.m[i] = b1 * self.m[i] + (1.0 - b1) * g;
            self.v[i] = b2 * self.v[i] + (1.0 - b2) * g * g;
            let mh = self.m[i] / c1;
            let vh = self.v[i] / c2;
            params[i] -= self.lr * (mh / (vh.sqrt() + self.eps) + self.weight_decay * params[i]);
        }
        Ok(())
    }
}

/// Everything a training run needs to continue exactly where it stopped.
#[derive(Clone, Debug, PartialEq)]
pub struct TrainState {
    /// Flat parameters.
    pub params: Vec<f64>,
    /// Optimiser state.
    pub opt: AdamW,
    /// Loss at each completed step.
    pub history: Vec<f64>,
    /// Free-form description of the model (e.g. its `MlpSpec`), stored in the metadata.
    pub model: serde_json::Value,
}

impl TrainState {
    /// A fresh run from `params` with AdamW(lr, weight_decay).
    pub fn new(
        params: Vec<f64>,
        lr: f64,
        weight_decay: f64,
        model: serde_json::Value,
    ) -> Result<Self> {
        crate::error::check_finite("initial parameters", &params)?;
        Ok(TrainState {
            opt: AdamW::new(params.len(), lr, weight_decay)?,
            params,
            history: Vec::new(),
            model,
        })
    }
    /// Completed steps.
    pub fn step(&self) -> usize {
        self.history.len()
    }
    /// Lowest loss so far.
    pub fn best(&self) -> f64 {
        self.history.iter().copied().fold(f64::INFINITY, f64::min)
    }
}

/// Metadata stored in the checkpoint header.
#[derive(Serialize, Deserialize)]
struct Meta {
    step: usize,
    adamw: AdamW,
    model: serde_json::Value,
}

pub use crate::checkpoint::write_atomic;

fn io(path: &Path, e: impl std::fmt::Display) -> Error {
    Error::Io {
        path: path.display().to_string(),
        message: e.to_string(),
    }
}

/// Saves a checkpoint as one file, `base.safetensors` (parameters, AdamW moments and loss
/// history as tensors; step, optimiser settings and model description in its header),
/// written atomically: a reader sees the previous checkpoint or this one, never a mix.
pub fn save(state: &TrainState, base: &Path) -> Result<()> {
    let meta = Meta {
        step: state.step(),
        adamw: state.opt.clone(),
        model: state.model.clone(),
    };
    let file = checkpoint::file_of(base);
    let ckpt = Checkpoint {
        meta: serde_json::to_value(&meta).map_err(|e| io(&file, e))?,
        tensors: vec![
            ("params".into(), state.params.clone()),
            ("adamw.m".into(), state.opt.m.clone()),
            ("adamw.v".into(), state.opt.v.clone()),
            ("history".into(), state.history.clone()),
        ],
    };
    checkpoint::write(&ckpt, base)
}

/// Loads a checkpoint written by [`save`]. A truncated, corrupted or inconsistent one is
/// [`Error::Checkpoint`] naming the file; a missing one is [`Error::Io`].
pub fn load(base: &Path) -> Result<TrainState> {
    let file = checkpoint::file_of(base);
    let ckpt = checkpoint::read(base)?;
    let bad = |message: String| Error::Checkpoint {
        files: file.display().to_string(),
        message,
    };
    let meta: Meta =
        serde_json::from_value(ckpt.meta.clone()).map_err(|e| bad(format!("metadata: {e}")))?;
    let params = ckpt.tensor("params", &file)?.to_vec();
    let m = ckpt.tensor("adamw.m", &file)?.to_vec();
    let v = ckpt.tensor("adamw.v", &file)?.to_vec();
    let history = ckpt.tensor("history", &file)?.to_vec();
    if m.len() != params.len() || v.len() != params.len() || history.len() != meta.step {
        return Err(bad(format!(
            "inconsistent: {} parameters, {}/{} moments, {} losses for step {}",
            params.len(),
            m.len(),
            v.len(),
            history.len(),
            meta.step
        )));
    }
    let mut opt = meta.adamw;
    opt.m = m;
    opt.v = v;
    Ok(TrainState {
        params,
        opt,
        history,
        model: meta.model,
    })
}

/// Options of [`train`].
#[derive(Clone, Debug, Default)]
pub struct TrainOptions {
    /// Total number of steps the run should reach (resumed runs continue up to it).
    pub steps: usize,
    /// Show an indicatif progress bar on stderr.
    pub progress: bool,
    /// Save a checkpoint to this base path every `checkpoint_every` steps and at the end.
    pub checkpoint: Option<PathBuf>,
    /// Interval between checkpoints (0: only at the end).
    pub checkpoint_every: usize,
}

/// Runs AdamW from `state.step()` up to `opts.steps`. `loss_and_grad(params)` returns the loss
/// and its gradient. A non-finite loss or gradient stops the run with an error naming the step.
pub fn train(
    state: &mut TrainState,
    opts: &TrainOptions,
    mut loss_and_grad: impl FnMut(&[f64]) -> Result<(f64, Vec<f64>)>,
) -> Result<()> {
    let bar = if opts.progress {
        let b = indicatif::ProgressBar::new(opts.steps as u64);
        b.set_style(
            indicatif::ProgressStyle::with_template(
                "{prefix} [{bar:30}] {pos}/{len} {per_sec} loss {msg}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        b.set_prefix("training");
        b.set_position(state.step() as u64);
        b
    } else {
        indicatif::ProgressBar::hidden()
    };
    while state.step() < opts.steps {
        let k = state.step();
        let (loss, grads) = loss_and_grad(&state.params)?;
        if !loss.is_finite() {
            return Err(Error::NonFiniteGradient {
                what: format!("loss at training step {k}"),
                step: None,
            });
        }
        if let Some(i) = grads.iter().position(|g| !g.is_finite()) {
            return Err(Error::NonFiniteGradient {
                what: format!("gradient entry {i} at training step {k}"),
                step: None,
            });
        }
        state.opt.step(&mut state.params, &grads)?;
        state.history.push(loss);
        bar.set_message(format!("{loss:.4e}"));
        bar.inc(1);
        if let Some(base) = &opts.checkpoint {
            let done = state.step();
            if done == opts.steps
                || (opts.checkpoint_every > 0 && done.is_multiple_of(opts.checkpoint_every))
            {
                save(state, base)?;
            }
        }
    }
    bar.finish_and_clear();
    Ok(())
}
