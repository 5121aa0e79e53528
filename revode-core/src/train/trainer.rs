//! The one training loop. Each step k: the schedule sets the rate; the loss-and-gradient
//! closure fills the minibatch gradient g; the [`Combine`] hook merges it across workers (the
//! identity in one process); non-finite values stop the run with a typed error; g is clipped to
//! a global norm; AdamW updates θ; the running average θ̄ ← θ̄ + w(θ − θ̄) advances (uniform,
//! w = 1/(n + 1), or exponential with decay β, w = max(1/(n + 1), 1 − β));
//! every `eval_every` steps the evaluation callback scores the parameters (lower is better;
//! the average, and with `eval_unaveraged` θ too), the best are kept, and `patience`
//! evaluations without improvement stop the run early; checkpoints are written atomically.
//! Which gradient method (reversible, checkpointed, direct) the closure uses is the user's
//! configuration, not a different loop. θ, g and the optimiser's moments are any
//! [`FlatParams`]: host vectors ([`Trainer::new`]) or a dfdx model's device tensors
//! ([`Trainer::for_params`]), where only the loss and ‖g‖₂ reach the host.

use super::{save, Best, FlatParams, Schedule, TrainState};
use crate::{Error, Result};
use std::path::PathBuf;

/// Options of a [`Trainer`].
#[derive(Clone, Debug, PartialEq)]
pub struct TrainConfig {
    /// Total steps the run should reach (a resumed run continues up to it).
    pub steps: usize,
    /// Learning-rate schedule over `steps`.
    pub schedule: Schedule,
    /// Clip the gradient to this global 2-norm (`None`: no clipping).
    pub clip_norm: Option<f64>,
    /// Keep a running average of the parameters after this many steps.
    pub average_from: Option<usize>,
    /// `None`: the average is uniform over every step since `average_from`. `Some(β)`,
    /// `0 ≤ β < 1`: exponential, `θ̄ ← β θ̄ + (1 − β) θ` once it holds `1/(1 − β)` steps
    /// (uniform before, so the start point does not dominate): it follows parameters that
    /// still drift, e.g. a GAN's generator (Yazıcı et al. 2019, arXiv 1806.04498).
    pub average_decay: Option<f64>,
    /// Evaluate every this many steps and at the end (0: never).
    pub eval_every: usize,
    /// With an average kept, score the unaveraged θ as well at each evaluation (after the
    /// average) and keep whichever scores lower: a candidate the validation metric chooses,
    /// for runs whose average can lag or blur parameters that still move (a GAN's).
    pub eval_unaveraged: bool,
    /// Stop after this many evaluations without a new best (`None`: never stop early).
    pub patience: Option<usize>,
    /// Show an indicatif progress bar on stderr.
    pub progress: bool,
    /// Save a checkpoint to this base path every `checkpoint_every` steps and at the end.
    pub checkpoint: Option<PathBuf>,
    /// Interval between checkpoints (0: only at the end).
    pub checkpoint_every: usize,
}

impl TrainConfig {
    /// `steps` steps with `schedule`; no clipping, averaging, evaluation or checkpoints.
    pub fn new(steps: usize, schedule: Schedule) -> Self {
        TrainConfig {
            steps,
            schedule,
            clip_norm: None,
            average_from: None,
            average_decay: None,
            eval_every: 0,
            eval_unaveraged: false,
            patience: None,
            progress: false,
            checkpoint: None,
            checkpoint_every: 0,
        }
    }
}

/// Where the gradient of a minibatch is combined before the update: the identity in one
/// process ([`Local`]); a sum over processes in a distributed run.
pub trait Combine<V: FlatParams = Vec<f64>> {
    /// Combines `loss` and `grad` of step `step` in place.
    fn combine(&mut self, step: usize, loss: &mut f64, grad: &mut V::View) -> Result<()>;
}

/// One process: the gradient is used as computed.
#[derive(Clone, Copy, Debug, Default)]
pub struct Local;

impl<V: FlatParams> Combine<V> for Local {
    fn combine(&mut self, _step: usize, _loss: &mut f64, _grad: &mut V::View) -> Result<()> {
        Ok(())
    }
}

/// The loss and gradient of step `step`'s minibatch at θ: returns the loss and writes the
/// gradient into `grad` (zeroed beforehand). Implemented by closures
/// `FnMut(step, θ, grad) -> Result<f64>` and by [`Sharded`](super::Sharded).
pub trait LossAndGrad<V: FlatParams = Vec<f64>> {
    /// The loss; the gradient goes into `grad`.
    fn loss_and_grad(&mut self, step: usize, params: &V::View, grad: &mut V::View) -> Result<f64>;
}

impl<V: FlatParams, F: FnMut(usize, &V::View, &mut V::View) -> Result<f64>> LossAndGrad<V> for F {
    fn loss_and_grad(&mut self, step: usize, params: &V::View, grad: &mut V::View) -> Result<f64> {
        self(step, params, grad)
    }
}

type EvalFn<'a, V> = Box<dyn FnMut(usize, &<V as FlatParams>::View) -> Result<f64> + 'a>;

/// The training loop ([module docs](self)) over parameters of type `V`.
pub struct Trainer<'a, V: FlatParams = Vec<f64>> {
    config: TrainConfig,
    eval: Option<EvalFn<'a, V>>,
    combine: Box<dyn Combine<V> + 'a>,
}

impl<'a> Trainer<'a> {
    /// A trainer of host parameters with `config`, no evaluation, combining locally.
    pub fn new(config: TrainConfig) -> Self {
        Trainer::for_params(config)
    }
    /// Scores the parameters every `config.eval_every` steps: `eval(completed steps, θ)`
    /// returns a metric, lower is better (e.g. validation loss, or 1 − accuracy). The
    /// running average is scored instead of θ when one is kept.
    pub fn with_eval(self, eval: impl FnMut(usize, &[f64]) -> Result<f64> + 'a) -> Self {
        self.with_eval_of(eval)
    }
    /// Trains `state` from its current step up to `config.steps` (or an early stop).
    /// `loss_and_grad(step, θ, g)` returns the minibatch loss and writes its gradient into `g`
    /// (zeroed beforehand). A non-finite loss, gradient or metric is an error naming the step.
    pub fn run(
        &mut self,
        state: &mut TrainState,
        loss_and_grad: impl FnMut(usize, &[f64], &mut [f64]) -> Result<f64>,
    ) -> Result<()> {
        self.run_with(state, loss_and_grad)
    }
}

impl<'a, V: FlatParams> Trainer<'a, V> {
    /// A trainer of parameters of type `V` (e.g. a dfdx model's device tensor, see
    /// [`Layer::resident_params`](crate::Layer::resident_params)) with `config`, no
    /// evaluation, combining locally; `V` is the type of the state passed to
    /// [`Trainer::run_with`].
    pub fn for_params(config: TrainConfig) -> Self {
        Trainer {
            config,
            eval: None,
            combine: Box::new(Local),
        }
    }
    /// [`Trainer::with_eval`] for any parameter type: `eval` sees θ where it lives.
    pub fn with_eval_of(mut self, eval: impl FnMut(usize, &V::View) -> Result<f64> + 'a) -> Self {
        self.eval = Some(Box::new(eval));
        self
    }
    /// Replaces the gradient-combination hook.
    pub fn with_combine(mut self, combine: impl Combine<V> + 'a) -> Self {
        self.combine = Box::new(combine);
        self
    }
    /// The configuration.
    pub fn config(&self) -> &TrainConfig {
        &self.config
    }

    fn check(&self) -> Result<()> {
        let c = &self.config;
        c.schedule.validate()?;
        if c.clip_norm.is_some_and(|n| !(n > 0.0 && n.is_finite())) {
            return Err(Error::config("clip_norm", "must be finite and > 0"));
        }
        if c.average_decay.is_some_and(|b| !(0.0..1.0).contains(&b)) {
            return Err(Error::config("average_decay", "must lie in [0, 1)"));
        }
        if c.patience.is_some() && (c.eval_every == 0 || self.eval.is_none()) {
            return Err(Error::config(
                "patience",
                "early stopping needs an evaluation callback and eval_every > 0",
            ));
        }
        Ok(())
    }

    /// [`Trainer::run`] with any [`LossAndGrad`] (e.g. a [`Sharded`](super::Sharded) one) and
    /// any parameter type.
    pub fn run_with(
        &mut self,
        state: &mut TrainState<V>,
        mut loss_and_grad: impl LossAndGrad<V>,
    ) -> Result<()> {
        self.check()?;
        let steps = self.config.steps;
        let bar = progress_bar(self.config.progress, steps, state.step());
        let mut grad = state.params.zeros_like();
        while state.step() < steps && !state.stopped_early {
            let k = state.step();
            grad.set_zero();
            let mut loss = loss_and_grad.loss_and_grad(k, state.params.view(), grad.view_mut())?;
            self.combine.combine(k, &mut loss, grad.view_mut())?;
            if !loss.is_finite() {
                return Err(Error::NonFiniteGradient {
                    what: format!("loss {loss} at training step {k}"),
                    step: None,
                });
            }
            // A non-finite entry makes ‖g‖ non-finite, so finite g costs one reduction; a
            // finite g whose norm overflows (f32 entries above ~1e19) is refused as well,
            // since clipping by c/∞ would silently zero it.
            let norm = grad.sum_squares().sqrt();
            if !norm.is_finite() {
                return Err(Error::NonFiniteGradient {
                    what: match grad.first_non_finite() {
                        Some(i) => format!("gradient entry {i} at training step {k}"),
                        None => format!("gradient norm {norm} (overflow) at training step {k}"),
                    },
                    step: None,
                });
            }
            if let Some(c) = self.config.clip_norm {
                if norm > c {
                    grad.scale(c / norm);
                }
            }
            // Set only now, so that a step that fails leaves the state as it was.
            state.opt.lr = self.config.schedule.at(k, steps);
            state.opt.update(&mut state.params, &grad)?;
            state.history.push(loss);
            state.grad_norms.push(norm);
            let done = k + 1;
            if self.config.average_from.is_some_and(|a| done > a) {
                let (avg, n) = state
                    .average
                    .get_or_insert_with(|| (state.params.clone(), 0));
                let uniform = 1.0 / (*n + 1) as f64;
                let w = self
                    .config
                    .average_decay
                    .map_or(uniform, |b| uniform.max(1.0 - b));
                avg.lerp_towards(&state.params, w)?;
                *n += 1;
            }
            let mut metric = None;
            if self.config.eval_every > 0
                && (done.is_multiple_of(self.config.eval_every) || done == steps)
            {
                if let Some(eval) = self.eval.as_mut() {
                    metric = Some(evaluate(eval, state, done, &self.config)?);
                }
            }
            bar.set_message(match metric {
                Some(m) => format!("{loss:.4e}, eval {m:.4e}"),
                None => format!("{loss:.4e}"),
            });
            bar.inc(1);
            if let Some(base) = &self.config.checkpoint {
                let every = self.config.checkpoint_every;
                if done == steps || state.stopped_early || (every > 0 && done.is_multiple_of(every))
                {
                    save(state, base)?;
                }
            }
        }
        bar.finish_and_clear();
        Ok(())
    }
}

/// Scores the parameters after `done` steps (the average if one is kept, then θ itself if
/// `eval_unaveraged`; the lower counts), keeps the best and decides an early stop.
fn evaluate<V: FlatParams>(
    eval: &mut EvalFn<'_, V>,
    state: &mut TrainState<V>,
    done: usize,
    config: &TrainConfig,
) -> Result<f64> {
    let averaged = matches!(&state.average, Some((_, n)) if *n > 0);
    let mut scored = match &state.average {
        Some((avg, _)) if averaged => avg.clone(),
        _ => state.params.clone(),
    };
    let mut m = score(eval, done, &scored)?;
    if averaged && config.eval_unaveraged {
        let raw = score(eval, done, &state.params)?;
        if raw < m {
            (m, scored) = (raw, state.params.clone());
        }
    }
    state.evals.push((done, m));
    if state.best.as_ref().is_none_or(|b| m < b.value) {
        state.best = Some(Best {
            step: done,
            value: m,
            params: scored,
        });
    } else if let (Some(p), Some(b)) = (config.patience, &state.best) {
        let since = state.evals.iter().filter(|e| e.0 > b.step).count();
        state.stopped_early = since >= p;
    }
    Ok(m)
}

/// `eval(done, θ)`, refused unless finite.
fn score<V: FlatParams>(eval: &mut EvalFn<'_, V>, done: usize, params: &V) -> Result<f64> {
    let m = eval(done, params.view())?;
    if !m.is_finite() {
        return Err(Error::NonFiniteGradient {
            what: format!("evaluation metric {m} after training step {done}"),
            step: None,
        });
    }
    Ok(m)
}

fn progress_bar(show: bool, steps: usize, at: usize) -> indicatif::ProgressBar {
    if !show {
        return indicatif::ProgressBar::hidden();
    }
    let b = indicatif::ProgressBar::new(steps as u64);
    b.set_style(
        indicatif::ProgressStyle::with_template(
            "{prefix} [{bar:30}] {pos}/{len} {per_sec} loss {msg}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    b.set_prefix("training");
    b.set_position(at as u64);
    b
}
