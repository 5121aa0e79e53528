//! What a training run carries from step to step, and its checkpoint: one safetensors file
//! (parameters, optimiser moments, histories, the running average and the best parameters as
//! tensors; counters and settings in its header), written atomically and hash-checked on load,
//! so that a resumed run is bit-identical to an uninterrupted one. The parameters, moments,
//! average and best parameters live where θ lives ([`FlatParams`]); a checkpoint copies them
//! to the host, and [`TrainState::moved_like`] puts a loaded one back on a device.

use super::{AdamW, FlatParams};
use crate::checkpoint::{self, Checkpoint};
use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// The best validation metric so far, the step it was measured after and the parameters then.
#[derive(Clone, Debug, PartialEq)]
pub struct Best<V = Vec<f64>> {
    /// Completed steps when it was measured.
    pub step: usize,
    /// The metric (lower is better).
    pub value: f64,
    /// The parameters it was measured with.
    pub params: V,
}

/// Everything a training run needs to continue exactly where it stopped.
#[derive(Clone, Debug, PartialEq)]
pub struct TrainState<V = Vec<f64>> {
    /// Flat parameters.
    pub params: V,
    /// Optimiser state.
    pub opt: AdamW<V>,
    /// Loss at each completed step.
    pub history: Vec<f64>,
    /// Gradient norm ‖g‖₂ at each completed step (before clipping).
    pub grad_norms: Vec<f64>,
    /// Validation metric after each evaluation: (completed steps, value).
    pub evals: Vec<(usize, f64)>,
    /// The best evaluation so far.
    pub best: Option<Best<V>>,
    /// Running uniform average of the parameters, and how many steps it holds.
    pub average: Option<(V, usize)>,
    /// Set when early stopping ended the run.
    pub stopped_early: bool,
    /// Free-form description of the model (e.g. its `MlpSpec`), stored in the metadata.
    pub model: serde_json::Value,
}

impl<V: FlatParams> TrainState<V> {
    /// A fresh run from `params` (host or device) with AdamW(lr, weight_decay); the trainer's
    /// schedule sets the rate of each step.
    pub fn new(params: V, lr: f64, weight_decay: f64, model: serde_json::Value) -> Result<Self> {
        if let Some(index) = params.first_non_finite() {
            return Err(Error::NonFinite {
                what: "initial parameters".into(),
                index,
            });
        }
        Ok(TrainState {
            opt: AdamW::like(&params, lr, weight_decay)?,
            params,
            history: Vec::new(),
            grad_norms: Vec::new(),
            evals: Vec::new(),
            best: None,
            average: None,
            stopped_early: false,
            model,
        })
    }
    /// Completed steps.
    pub fn step(&self) -> usize {
        self.history.len()
    }
    /// Lowest training loss so far.
    pub fn best_loss(&self) -> f64 {
        self.history.iter().copied().fold(f64::INFINITY, f64::min)
    }
    /// The parameters to use after training: the best validated ones if evaluations ran, else
    /// the running average if one was kept, else the last.
    pub fn final_params(&self) -> &V::View {
        match (&self.best, &self.average) {
            (Some(b), _) => b.params.view(),
            (None, Some((avg, n))) if *n > 0 => avg.view(),
            _ => self.params.view(),
        }
    }

    /// A host copy of the whole state (what a checkpoint holds).
    pub fn to_host(&self) -> TrainState {
        TrainState {
            params: self.params.to_host(),
            opt: self.opt.to_host(),
            history: self.history.clone(),
            grad_norms: self.grad_norms.clone(),
            evals: self.evals.clone(),
            best: self.best.as_ref().map(|b| Best {
                step: b.step,
                value: b.value,
                params: b.params.to_host(),
            }),
            average: self.average.as_ref().map(|(a, n)| (a.to_host(), *n)),
            stopped_early: self.stopped_early,
            model: self.model.clone(),
        }
    }
}

impl TrainState {
    /// The same state with every vector placed like `like` (e.g. a loaded checkpoint moved to
    /// a model's device); sizes are checked.
    pub fn moved_like<V: FlatParams>(&self, like: &V) -> Result<TrainState<V>> {
        Ok(TrainState {
            params: like.placed(&self.params)?,
            opt: self.opt.moved_like(like)?,
            history: self.history.clone(),
            grad_norms: self.grad_norms.clone(),
            evals: self.evals.clone(),
            best: match &self.best {
                Some(b) => Some(Best {
                    step: b.step,
                    value: b.value,
                    params: like.placed(&b.params)?,
                }),
                None => None,
            },
            average: match &self.average {
                Some((a, n)) => Some((like.placed(a)?, *n)),
                None => None,
            },
            stopped_early: self.stopped_early,
            model: self.model.clone(),
        })
    }
}

/// Metadata stored in the checkpoint header.
#[derive(Serialize, Deserialize)]
struct Meta {
    step: usize,
    adamw: AdamW,
    model: serde_json::Value,
    best: Option<(usize, f64)>,
    averaged: Option<usize>,
    stopped_early: bool,
}

pub use crate::checkpoint::write_atomic;

fn io(path: &Path, e: impl std::fmt::Display) -> Error {
    Error::Io {
        path: path.display().to_string(),
        message: e.to_string(),
    }
}

/// Saves a checkpoint as one file, `base.safetensors`, written atomically: a reader sees the
/// previous checkpoint or this one, never a mix. A device state is copied to the host first.
pub fn save<V: FlatParams>(state: &TrainState<V>, base: &Path) -> Result<()> {
    save_host(&state.to_host(), base)
}

fn save_host(state: &TrainState, base: &Path) -> Result<()> {
    let meta = Meta {
        step: state.step(),
        adamw: state.opt.clone(),
        model: state.model.clone(),
        best: state.best.as_ref().map(|b| (b.step, b.value)),
        averaged: state.average.as_ref().map(|a| a.1),
        stopped_early: state.stopped_early,
    };
    let file = checkpoint::file_of(base);
    let mut tensors = vec![
        ("params".into(), state.params.clone()),
        ("adamw.m".into(), state.opt.m.clone()),
        ("adamw.v".into(), state.opt.v.clone()),
        ("history".into(), state.history.clone()),
        ("grad_norms".into(), state.grad_norms.clone()),
        (
            "evals.step".into(),
            state.evals.iter().map(|e| e.0 as f64).collect(),
        ),
        (
            "evals.value".into(),
            state.evals.iter().map(|e| e.1).collect(),
        ),
    ];
    if let Some(b) = &state.best {
        tensors.push(("best.params".into(), b.params.clone()));
    }
    if let Some((avg, _)) = &state.average {
        tensors.push(("average".into(), avg.clone()));
    }
    let ckpt = Checkpoint {
        meta: serde_json::to_value(&meta).map_err(|e| io(&file, e))?,
        tensors,
    };
    checkpoint::write(&ckpt, base)
}

/// Loads a checkpoint written by [`save`] onto the host ([`TrainState::moved_like`] puts it on
/// a device). A truncated, corrupted or inconsistent one is [`Error::Checkpoint`] naming the
/// file; a missing one is [`Error::Io`].
pub fn load(base: &Path) -> Result<TrainState> {
    let file = checkpoint::file_of(base);
    let ckpt = checkpoint::read(base)?;
    let bad = |message: String| Error::Checkpoint {
        files: file.display().to_string(),
        message,
    };
    let meta: Meta =
        serde_json::from_value(ckpt.meta.clone()).map_err(|e| bad(format!("metadata: {e}")))?;
    let t = |name: &str| ckpt.tensor(name, &file).map(|v| v.to_vec());
    let params = t("params")?;
    let n = params.len();
    let (m, v, history, grad_norms) = (
        t("adamw.m")?,
        t("adamw.v")?,
        t("history")?,
        t("grad_norms")?,
    );
    let (eval_steps, eval_values) = (t("evals.step")?, t("evals.value")?);
    let best = match meta.best {
        Some((step, value)) => Some(Best {
            step,
            value,
            params: t("best.params")?,
        }),
        None => None,
    };
    let average = match meta.averaged {
        Some(k) => Some((t("average")?, k)),
        None => None,
    };
    let sizes_ok = m.len() == n
        && v.len() == n
        && history.len() == meta.step
        && grad_norms.len() == meta.step
        && eval_steps.len() == eval_values.len()
        && best.as_ref().is_none_or(|b| b.params.len() == n)
        && average.as_ref().is_none_or(|a| a.0.len() == n)
        && (meta.adamw.groups.is_empty()
            || meta.adamw.groups.iter().map(|g| g.0).sum::<usize>() == n);
    if !sizes_ok {
        return Err(bad(format!(
            "inconsistent sizes: {n} parameters, {}/{} moments, {} losses and {} norms for step \
             {}, AdamW groups {:?}",
            m.len(),
            v.len(),
            history.len(),
            grad_norms.len(),
            meta.step,
            meta.adamw.groups
        )));
    }
    let mut opt = meta.adamw;
    opt.m = m;
    opt.v = v;
    Ok(TrainState {
        params,
        opt,
        history,
        grad_norms,
        evals: eval_steps
            .iter()
            .zip(eval_values)
            .map(|(&s, v)| (s as usize, v))
            .collect(),
        best,
        average,
        stopped_early: meta.stopped_early,
        model: meta.model,
    })
}
