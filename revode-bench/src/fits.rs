//! Training one neural-ODE fitting problem, over several seeds, and reporting the runs as
//! mean ± sd tables (used by the experiments in `training.rs`).

use crate::report::{self, fmt_time, BenchResult, Series, Table};
use crate::Ctx;
use revode_core::fit::{Solver, TrajectoryFit};
use revode_core::mlp::MlpSpec;
use revode_core::prelude::*;
use revode_core::train::{Schedule, TrainConfig, TrainState, Trainer};
use serde::Serialize;
use std::time::Instant;

/// How a model is solved and differentiated.
#[derive(Clone, Debug, Serialize)]
pub enum Variant {
    /// Reversible coupling with λ, reversible gradient.
    Reversible {
        /// Base method.
        tableau: String,
        /// Coupling.
        lambda: f64,
    },
    /// Plain base method, recursive checkpointing with c snapshots.
    Checkpointed {
        /// Base method.
        tableau: String,
        /// Snapshots.
        c: usize,
    },
}

impl Variant {
    fn tableau(&self) -> String {
        match self {
            Variant::Reversible { tableau, .. } | Variant::Checkpointed { tableau, .. } => {
                tableau.clone()
            }
        }
    }
    fn label(&self) -> String {
        match self {
            Variant::Reversible { tableau, lambda } => format!("reversible {tableau} (λ={lambda})"),
            Variant::Checkpointed { tableau, c } => format!("checkpointed {tableau} (c={c})"),
        }
    }
    /// The reversible variant and checkpointed variants with each c, for one base method.
    pub fn family(tableau: &str, cs: &[usize]) -> Vec<Variant> {
        let mut v = vec![Variant::Reversible {
            tableau: tableau.into(),
            lambda: 0.999,
        }];
        v.extend(cs.iter().map(|&c| Variant::Checkpointed {
            tableau: tableau.into(),
            c,
        }));
        v
    }
    /// The library configuration this variant names for `problem`: the reversible coupling
    /// with the reversible gradient, or the plain method with checkpointing.
    pub fn trajectory_fit(&self, problem: &Problem) -> Result<TrajectoryFit> {
        let tableau = Tableau::by_name(&self.tableau())?;
        let (solver, method) = match self {
            Variant::Reversible { lambda, .. } => (
                Solver::Reversible {
                    tableau,
                    lambda: *lambda,
                },
                GradientMethod::Reversible,
            ),
            Variant::Checkpointed { c, .. } => (
                Solver::Plain { tableau },
                GradientMethod::Checkpointed {
                    snapshots: Some(*c),
                },
            ),
        };
        let mut fit = TrajectoryFit::new(problem.spec.clone(), solver, problem.solve.clone())
            .with_method(method);
        fit.grad.observe_steps = problem.observe_steps;
        Ok(fit)
    }
}

/// A loss of (output times, outputs) that writes cotangents
/// (e.g. [`revode_core::fit::mse_after_first`]).
pub type LossFn = Box<dyn Fn(&[f64], &[Vec<f64>], &mut [Vec<f64>]) -> Result<f64> + Sync>;

/// A fitting problem: MLP field, initial state, observation times, targets, step control.
pub struct Problem {
    /// Field shape.
    pub spec: MlpSpec,
    /// Initial state.
    pub y0: Vec<f64>,
    /// Observation times (t0 first).
    pub times: Vec<f64>,
    /// Loss: receives output times and states, writes cotangents, returns the loss.
    pub loss: LossFn,
    /// Step control.
    pub solve: SolveOptions,
    /// Whether the loss sees every accepted step (adaptive interpolation protocol).
    pub observe_steps: bool,
}

/// Optimiser settings of a run.
#[derive(Clone, Debug, Serialize)]
pub struct Hyper {
    /// Training steps.
    pub steps: usize,
    /// Initial AdamW learning rate.
    pub lr: f64,
    /// Decoupled weight decay.
    pub weight_decay: f64,
    /// The learning rate decays linearly from `lr` to `lr · lr_final` over the run (1: constant).
    pub lr_final: f64,
    /// Clip the gradient to this Euclidean norm before the AdamW step (None: no clipping).
    pub clip: Option<f64>,
}

impl Hyper {
    /// The paper's setting: AdamW lr 1e-2, weight decay 1e-5, constant rate, no clipping.
    pub fn paper(steps: usize) -> Self {
        Hyper {
            steps,
            lr: 1e-2,
            weight_decay: 1e-5,
            lr_final: 1.0,
            clip: None,
        }
    }
    /// One line for a report.
    pub fn describe(&self) -> String {
        let mut s = format!(
            "AdamW lr {:e}, weight decay {:e}, {} full-batch steps",
            self.lr, self.weight_decay, self.steps
        );
        if self.lr_final != 1.0 {
            s.push_str(&format!(
                ", learning rate decayed linearly to {:e}",
                self.lr * self.lr_final
            ));
        }
        if let Some(c) = self.clip {
            s.push_str(&format!(", gradient clipped to norm {c}"));
        }
        s
    }
}

/// The outcome of one training run.
#[derive(Clone, Debug, Serialize)]
pub struct Fit {
    /// Which variant.
    pub variant: String,
    /// Base method.
    pub tableau: String,
    /// Seed of the initialisation.
    pub seed: u64,
    /// Loss per step.
    pub history: Vec<f64>,
    /// Lowest loss.
    pub best: f64,
    /// Wall time of the whole run.
    pub seconds: f64,
    /// Accepted solver steps in the last gradient.
    pub accepted_steps: usize,
    /// Accepted solver steps of every gradient (adaptive problems only).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub steps_history: Vec<usize>,
    /// Euclidean norm of every gradient, before clipping (adaptive problems only).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub grad_norm_history: Vec<f64>,
    /// Error, if the run stopped early.
    pub error: Option<String>,
}

impl Fit {
    /// Loss after the last step.
    pub fn last(&self) -> f64 {
        self.history.last().copied().unwrap_or(f64::NAN)
    }
}

/// Trains one variant from `seed` with the settings `hyper`.
pub fn fit(problem: &Problem, variant: &Variant, seed: u64, hyper: &Hyper) -> Fit {
    let start = Instant::now();
    let trace = problem.observe_steps;
    let (mut steps_history, mut grad_norm_history) = (Vec::new(), Vec::new());
    let failed = |e: Error| Fit {
        variant: variant.label(),
        tableau: variant.tableau(),
        seed,
        history: vec![],
        best: f64::NAN,
        seconds: 0.0,
        accepted_steps: 0,
        steps_history: vec![],
        grad_norm_history: vec![],
        error: Some(e.to_string()),
    };
    let mut state = match TrainState::new(
        problem.spec.init_uniform(seed),
        hyper.lr,
        hyper.weight_decay,
        serde_json::to_value(&problem.spec).unwrap_or_default(),
    ) {
        Ok(s) => s,
        Err(e) => return failed(e),
    };
    let model = match variant.trajectory_fit(problem) {
        Ok(m) => m,
        Err(e) => return failed(e),
    };
    let mut accepted = 0;
    let config = TrainConfig {
        clip_norm: hyper.clip,
        ..TrainConfig::new(hyper.steps, Schedule::linear(hyper.lr, hyper.lr_final))
    };
    let error = Trainer::new(config)
        .run(&mut state, |_, p, g| {
            let r = model.gradient(p, &problem.y0, &problem.times, &problem.loss)?;
            g.copy_from_slice(&r.params);
            accepted = r.steps;
            if trace {
                steps_history.push(r.steps);
            }
            Ok(r.loss)
        })
        .err()
        .map(|e| e.to_string());
    if trace {
        grad_norm_history = state.grad_norms.clone();
    }
    Fit {
        variant: variant.label(),
        tableau: variant.tableau(),
        seed,
        best: state.best_loss(),
        history: state.history,
        seconds: start.elapsed().as_secs_f64(),
        accepted_steps: accepted,
        steps_history,
        grad_norm_history,
        error,
    }
}

/// Every variant from every seed, with a progress bar.
pub fn fit_all(
    ctx: &Ctx,
    what: &str,
    problem: &Problem,
    variants: &[Variant],
    seeds: &[u64],
    hyper: &Hyper,
) -> Vec<Fit> {
    let bar = ctx.bar((variants.len() * seeds.len()) as u64, what);
    let mut fits = Vec::new();
    for seed in seeds {
        for v in variants {
            fits.push(fit(problem, v, *seed, hyper));
            bar.inc(1);
        }
    }
    bar.finish_and_clear();
    fits
}

/// Mean and sample standard deviation (the sd of a single value is NaN).
pub fn mean_sd(xs: &[f64]) -> (f64, f64) {
    let n = xs.len() as f64;
    let m = xs.iter().sum::<f64>() / n;
    let sd = if xs.len() > 1 {
        (xs.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (n - 1.0)).sqrt()
    } else {
        f64::NAN
    };
    (m, sd)
}

/// "m ± sd" with `f` formatting each number.
pub fn pm(xs: &[f64], f: impl Fn(f64) -> String) -> String {
    let (m, sd) = mean_sd(xs);
    if sd.is_nan() {
        f(m)
    } else {
        format!("{} ± {}", f(m), f(sd))
    }
}

#[derive(Serialize)]
struct ExperimentOut<'a> {
    command: String,
    experiment: String,
    hyper: &'a Hyper,
    fits: Vec<Fit>,
}

/// Writes `{name}.json`, `{name}_loss.svg` and a mean ± sd table (one row per variant) plus
/// a per-seed table into the report.
pub fn report_fits(
    ctx: &Ctx,
    name: &str,
    title: &str,
    intro: &str,
    hyper: &Hyper,
    fits: Vec<Fit>,
) -> BenchResult<()> {
    let seeds: Vec<u64> = {
        let mut s: Vec<u64> = fits.iter().map(|f| f.seed).collect();
        s.sort_unstable();
        s.dedup();
        s
    };
    let mut labels: Vec<String> = Vec::new();
    for f in &fits {
        if !labels.contains(&f.variant) {
            labels.push(f.variant.clone());
        }
    }
    // Time ratios against the reversible run with the same base method and seed.
    let ratio = |f: &Fit| {
        fits.iter()
            .find(|r| {
                r.variant.starts_with("reversible") && r.tableau == f.tableau && r.seed == f.seed
            })
            .map_or(f64::NAN, |r| f.seconds / r.seconds)
    };
    let mut table = Table::new(&[
        "variant",
        "seeds",
        "best loss",
        "final loss",
        "train time",
        "÷ reversible",
        "accepted steps",
        "failed",
    ]);
    for l in &labels {
        let runs: Vec<&Fit> = fits.iter().filter(|f| &f.variant == l).collect();
        let col = |g: &dyn Fn(&Fit) -> f64| runs.iter().map(|f| g(f)).collect::<Vec<f64>>();
        table.row(vec![
            l.clone(),
            runs.len().to_string(),
            pm(&col(&|f| f.best), |x| format!("{x:.2e}")),
            pm(&col(&|f| f.last()), |x| format!("{x:.2e}")),
            pm(&col(&|f| f.seconds), fmt_time),
            pm(&col(&ratio), |x| format!("{x:.2}")),
            pm(&col(&|f| f.accepted_steps as f64), |x| format!("{x:.0}")),
            runs.iter()
                .filter(|f| f.error.is_some())
                .count()
                .to_string(),
        ]);
    }
    let mut per_seed = Table::new(&[
        "variant",
        "seed",
        "best loss",
        "final loss",
        "train time",
        "error",
    ]);
    for f in &fits {
        per_seed.row(vec![
            f.variant.clone(),
            f.seed.to_string(),
            format!("{:.4e}", f.best),
            format!("{:.4e}", f.last()),
            fmt_time(f.seconds),
            f.error.clone().unwrap_or_default(),
        ]);
    }
    let seed_list: Vec<String> = seeds.iter().map(|s| s.to_string()).collect();
    ctx.emit(
        name,
        &format!(
            "## {title}\n\n{intro} {}.\n\nMean ± sample sd over seeds {} (initialisations); \"failed\": runs stopped by an error.\n\n{}\n\
             ### Per seed\n\n{}\n",
            hyper.describe(),
            seed_list.join(", "),
            table.render(),
            per_seed.render()
        ),
    )?;
    // Every 10th step keeps the plot small.
    let series: Vec<Series> = fits
        .iter()
        .map(|f| Series {
            label: format!("{} s{}", f.variant, f.seed),
            points: f
                .history
                .iter()
                .enumerate()
                .filter(|(k, _)| k % 10 == 0 || *k + 1 == f.history.len())
                .map(|(k, &l)| ((k + 1) as f64, l))
                .collect(),
        })
        .collect();
    report::plot_loglog(
        &ctx.out.join(format!("{name}_loss.svg")),
        &format!("{title}: training loss"),
        "step",
        "loss",
        &series,
    )?;
    report::write_json(
        &ctx.out,
        &format!("{name}.json"),
        &ExperimentOut {
            command: ctx.command.clone(),
            experiment: title.into(),
            hyper,
            fits,
        },
    )
    .map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::{mean_sd, pm};

    #[test]
    fn mean_and_sample_sd() {
        let (m, sd) = mean_sd(&[1.0, 2.0, 3.0]);
        assert_eq!(m, 2.0);
        assert!((sd - 1.0).abs() < 1e-15);
        assert!(mean_sd(&[4.0]).1.is_nan());
        assert_eq!(pm(&[4.0], |x| format!("{x}")), "4");
        assert_eq!(pm(&[1.0, 3.0], |x| format!("{x:.1}")), "2.0 ± 1.4");
    }
}
