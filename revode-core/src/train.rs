//! Training helpers: AdamW on a flat parameter view, a training loop with a progress bar and
//! loss history, and checkpoints (safetensors + JSON metadata, written atomically) that resume
//! bit for bit.

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

/// Metadata written next to the tensors.
#[derive(Serialize, Deserialize)]
struct Meta {
    format: String,
    step: usize,
    adamw: AdamW,
    history: Vec<f64>,
    model: serde_json::Value,
}

const FORMAT: &str = "revode-checkpoint-1";

fn io(path: &Path, e: impl std::fmt::Display) -> Error {
    Error::Io {
        path: path.display().to_string(),
        message: e.to_string(),
    }
}

/// Writes `bytes` to `path` atomically (temporary file in the same directory, then rename).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    std::fs::write(&tmp, bytes).map_err(|e| io(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| io(path, e))
}

fn paths(base: &Path) -> (PathBuf, PathBuf) {
    (
        base.with_extension("safetensors"),
        base.with_extension("json"),
    )
}

fn f64_bytes(v: &[f64]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// Saves a checkpoint as `base.safetensors` (params, AdamW moments) and `base.json`.
pub fn save(state: &TrainState, base: &Path) -> Result<()> {
    use safetensors::tensor::{Dtype, TensorView};
    let (st, js) = paths(base);
    let n = state.params.len();
    let bufs = [
        f64_bytes(&state.params),
        f64_bytes(&state.opt.m),
        f64_bytes(&state.opt.v),
    ];
    let mut views = Vec::new();
    for (name, b) in ["params", "adamw.m", "adamw.v"].iter().zip(&bufs) {
        let view =
            TensorView::new(Dtype::F64, vec![n], b).map_err(|e| io(&st, format!("{e:?}")))?;
        views.push((name.to_string(), view));
    }
    let bytes = safetensors::serialize(views, &None).map_err(|e| io(&st, format!("{e:?}")))?;
    let meta = Meta {
        format: FORMAT.into(),
        step: state.step(),
        adamw: state.opt.clone(),
        history: state.history.clone(),
        model: state.model.clone(),
    };
    let text = serde_json::to_vec_pretty(&meta).map_err(|e| io(&js, e))?;
    // Tensors first, metadata last: a reader that finds the metadata finds matching tensors.
    write_atomic(&st, &bytes)?;
    write_atomic(&js, &text)
}

/// Loads a checkpoint written by [`save`].
pub fn load(base: &Path) -> Result<TrainState> {
    let (st, js) = paths(base);
    let text = std::fs::read(&js).map_err(|e| io(&js, e))?;
    let meta: Meta = serde_json::from_slice(&text).map_err(|e| Error::Parse {
        file: js.display().to_string(),
        line: e.line(),
        column: e.column(),
        message: e.to_string(),
    })?;
    if meta.format != FORMAT {
        return Err(Error::config(
            "format",
            format!(
                "{}: unknown checkpoint format '{}'",
                js.display(),
                meta.format
            ),
        ));
    }
    let bytes = std::fs::read(&st).map_err(|e| io(&st, e))?;
    let tensors =
        safetensors::SafeTensors::deserialize(&bytes).map_err(|e| io(&st, format!("{e:?}")))?;
    let read = |name: &str| -> Result<Vec<f64>> {
        let t = tensors
            .tensor(name)
            .map_err(|e| io(&st, format!("tensor '{name}': {e:?}")))?;
        if t.dtype() != safetensors::tensor::Dtype::F64 || t.shape().len() != 1 {
            return Err(io(&st, format!("tensor '{name}' must be a 1-D f64 tensor")));
        }
        Ok(t.data()
            .chunks_exact(8)
            .map(|c| f64::from_le_bytes(c.try_into().unwrap_or([0; 8])))
            .collect())
    };
    let params = read("params")?;
    let (m, v) = (read("adamw.m")?, read("adamw.v")?);
    if m.len() != params.len() || v.len() != params.len() || meta.history.len() != meta.step {
        return Err(io(
            &st,
            "inconsistent checkpoint: tensor lengths or step count disagree",
        ));
    }
    let mut opt = meta.adamw;
    opt.m = m;
    opt.v = v;
    Ok(TrainState {
        params,
        opt,
        history: meta.history,
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
            });
        }
        if let Some(i) = grads.iter().position(|g| !g.is_finite()) {
            return Err(Error::NonFiniteGradient {
                what: format!("gradient entry {i} at training step {k}"),
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
