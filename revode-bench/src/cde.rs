//! Neural CDE experiments: spirals (docs/src/cde.md) and JapaneseVowels (docs/src/cde.md).

use crate::report::{self, fmt_bytes, fmt_time, BenchResult, Series, Table};
use crate::Ctx;
use revode_cde::datasets::spirals;
use revode_cde::*;
use revode_core::loss::accuracy;
use revode_core::train::{Schedule, TrainConfig, TrainState, Trainer};
use revode_core::{GradientMethod, SolveOptions, Tableau};
use serde::Serialize;
use std::time::Instant;

#[derive(Serialize, Clone)]
pub(crate) struct Run {
    pub(crate) task: String,
    pub(crate) method: String,
    pub(crate) train_steps: usize,
    pub(crate) test_accuracy: f64,
    pub(crate) train_accuracy: f64,
    pub(crate) final_loss: f64,
    pub(crate) seconds: f64,
    pub(crate) peak_bytes: usize,
    pub(crate) stored_states: usize,
    pub(crate) solver_steps: usize,
    pub(crate) history: Vec<f64>,
    /// (training step, test accuracy) every [`EVAL_EVERY`] steps.
    pub(crate) test_curve: Vec<(usize, f64)>,
}

/// Training steps between test-set evaluations (the accuracy curves).
const EVAL_EVERY: usize = 25;

/// Records the test accuracy of `p` every [`EVAL_EVERY`] calls (a training-step callback).
struct Curve<'a> {
    model: &'a NcdeClassifier,
    test: (&'a Path, &'a [usize], &'a SolveOptions),
    calls: usize,
    points: Vec<(usize, f64)>,
    /// Seconds spent evaluating (excluded from the training time).
    spent: f64,
}

impl<'a> Curve<'a> {
    fn new(model: &'a NcdeClassifier, test: (&'a Path, &'a [usize], &'a SolveOptions)) -> Self {
        Curve {
            model,
            test,
            calls: 0,
            points: Vec::new(),
            spent: 0.0,
        }
    }
    /// Called before each training step with the parameters it starts from.
    fn step(&mut self, p: &[f64]) -> revode_core::Result<()> {
        if self.calls.is_multiple_of(EVAL_EVERY) {
            let start = Instant::now();
            let (path, labels, opts) = self.test;
            let pred = self.model.predict(p, path, opts)?;
            self.points.push((self.calls, accuracy(&pred, labels)?));
            self.spent += start.elapsed().as_secs_f64();
        }
        self.calls += 1;
        Ok(())
    }
}

/// The result row of a finished run: test accuracy on the test path, timing since `start`.
#[allow(clippy::too_many_arguments)]
fn finish(
    task: &str,
    method: String,
    model: &NcdeClassifier,
    state: TrainState,
    start: Instant,
    train_accuracy: f64,
    (probe, peak): (&BatchResult, usize),
    (test_path, test_labels, opts): (&Path, &[usize], &SolveOptions),
    (mut test_curve, eval_seconds): (Vec<(usize, f64)>, f64),
) -> BenchResult<Run> {
    let seconds = start.elapsed().as_secs_f64() - eval_seconds;
    let pred = model.predict(&state.params, test_path, opts)?;
    let test_accuracy = accuracy(&pred, test_labels)?;
    test_curve.push((state.history.len(), test_accuracy));
    Ok(Run {
        task: task.into(),
        method,
        train_steps: state.history.len(),
        test_accuracy,
        train_accuracy,
        final_loss: *state.history.last().unwrap_or(&f64::NAN),
        seconds,
        peak_bytes: peak,
        stored_states: probe.stored_states,
        solver_steps: probe.steps,
        history: state.history,
        test_curve,
    })
}

#[allow(clippy::too_many_arguments)]
pub(crate) fn fit(
    seed: u64,
    task: &str,
    model: &NcdeClassifier,
    train_path: &Path,
    train_labels: &[usize],
    test_path: &Path,
    test_labels: &[usize],
    opts: &SolveOptions,
    method: GradientMethod,
    steps: usize,
    lr: f64,
    weight_decay: f64,
) -> BenchResult<Run> {
    let p0 = model.init(seed)?;
    let mut state = TrainState::new(p0.clone(), lr, weight_decay, serde_json::Value::Null)?;
    // Peak heap of one gradient (counting allocator).
    let (probe, peak, _) = crate::alloc::measure(|| {
        model.loss_and_grad(&p0, train_path, train_labels, opts, method.clone())
    });
    let probe = probe?;
    let mut curve = Curve::new(model, (test_path, test_labels, opts));
    let start = Instant::now();
    let mut last_acc = 0.0;
    Trainer::new(TrainConfig::new(steps, Schedule::constant(lr))).run(&mut state, |_, p, g| {
        curve.step(p)?;
        let r = model.loss_and_grad(p, train_path, train_labels, opts, method.clone())?;
        last_acc = r.accuracy;
        g.copy_from_slice(&r.grad);
        Ok(r.loss)
    })?;
    finish(
        task,
        method.label(),
        model,
        state,
        start,
        last_acc,
        (&probe, peak),
        (test_path, test_labels, opts),
        (curve.points, curve.spent),
    )
}

/// The field backend a `--field` value names.
pub fn backend(name: &str) -> FieldBackend {
    if name == "native" {
        FieldBackend::Native
    } else {
        FieldBackend::Dfdx
    }
}

pub(crate) fn backend_name(b: FieldBackend) -> &'static str {
    match b {
        FieldBackend::Native => "native",
        FieldBackend::Dfdx => "dfdx",
    }
}

/// Peak heap and time of one full-batch gradient on the JapaneseVowels training set as the
/// solver takes more steps per observation (reversible memory is flat, the tape's grows).
pub(crate) fn solver_steps_probe(
    ctx: &Ctx,
    model: &NcdeClassifier,
    path: &Path,
    labels: &[usize],
    pad: usize,
) -> BenchResult<()> {
    let p = model.init(0)?;
    let mut table = Table::new(&[
        "steps per observation",
        "solver steps",
        "method",
        "peak heap / gradient",
        "time / gradient",
        "direct ÷ reversible (heap)",
    ]);
    let mut rows = Vec::new();
    let per_obs: &[usize] = if ctx.full { &[1, 4, 8, 16] } else { &[1, 4, 8] };
    let bar = ctx.bar(2 * per_obs.len() as u64, "JV steps");
    for &k in per_obs {
        let opts = SolveOptions::fixed(1.0 / ((pad - 1) * k) as f64);
        let mut peaks = Vec::new();
        for m in [GradientMethod::Reversible, GradientMethod::Direct] {
            let start = Instant::now();
            let (r, peak, _) =
                crate::alloc::measure(|| model.loss_and_grad(&p, path, labels, &opts, m.clone()));
            let seconds = start.elapsed().as_secs_f64();
            let r = r?;
            peaks.push(peak);
            let ratio = if peaks.len() == 2 {
                format!("{:.1}×", peaks[1] as f64 / peaks[0].max(1) as f64)
            } else {
                String::new()
            };
            table.row(vec![
                k.to_string(),
                r.steps.to_string(),
                m.label(),
                fmt_bytes(peak),
                fmt_time(seconds),
                ratio,
            ]);
            rows.push(serde_json::json!({
                "steps_per_observation": k,
                "solver_steps": r.steps,
                "method": m.label(),
                "peak_bytes": peak,
                "seconds": seconds,
            }));
            bar.inc(1);
        }
    }
    bar.finish_and_clear();
    let series = |key: &str, scale: f64| -> Vec<Series> {
        ["reversible", "direct"]
            .iter()
            .map(|m| Series {
                label: m.to_string(),
                points: rows
                    .iter()
                    .filter(|r| r["method"] == *m)
                    .map(|r| {
                        let steps = r["solver_steps"].as_f64().unwrap_or(f64::NAN);
                        (steps, r[key].as_f64().unwrap_or(f64::NAN) * scale)
                    })
                    .collect(),
            })
            .collect()
    };
    report::plot_loglog(
        &ctx.out.join("japanese_vowels_memory.svg"),
        "JapaneseVowels: peak heap of one full-batch gradient",
        "solver steps per series",
        "peak heap (MiB)",
        &series("peak_bytes", 1.0 / (1024.0 * 1024.0)),
    )?;
    report::plot_loglog(
        &ctx.out.join("japanese_vowels_time.svg"),
        "JapaneseVowels: time of one full-batch gradient",
        "solver steps per series",
        "seconds",
        &series("seconds", 1.0),
    )?;
    ctx.emit(
        "japanese_vowels_steps",
        &format!(
            "## JapaneseVowels: memory against solver steps\n\nOne full-batch gradient (270 series) of the model above at \
             initialisation, with k solver steps per observation (h = 1/(28k)).\n\n{}\n",
            table.render()
        ),
    )?;
    report::write_json(&ctx.out, "japanese_vowels_steps.json", &rows).map(|_| ())
}

/// The CDE rows of the cross-family benchmark: a neural CDE over 64 spirals (hidden 8, field
/// 8 → 16 → 8 × 3), every gradient method, N steps over the path's 100 knots.
pub fn family_rows(ctx: &Ctx) -> BenchResult<Vec<crate::measure::Row>> {
    use crate::measure::{family_rows, Family};
    use revode_core::{Plain, Reversible, Rk};
    let ns: Vec<usize> = if ctx.full {
        vec![99, 297, 990, 2970]
    } else {
        vec![99, 297, 990]
    };
    let (data, _) = spirals(64, 100, 0.05, 7);
    let path = Path::new(
        &data,
        &PathOptions {
            time_channel: true,
            ..Default::default()
        },
    )?;
    let field = CdeMlp::new(8, path.channels(), 16, 1, false, 3)?;
    let term = CdeTerm::new(field, path.clone())?;
    let map = Rk::new(term, Tableau::midpoint());
    let z0: Vec<f64> = (0..64 * 8)
        .map(|i| 0.1 * ((i as f64) * 0.37).sin())
        .collect();
    let times = path.knots().to_vec();
    let bar = ctx.bar(ns.len() as u64, "CDE");
    let mut rows = Vec::new();
    for &n in &ns {
        let opts = SolveOptions::fixed(1.0 / n as f64);
        let rev = Reversible::new(map.clone(), 0.999)?;
        let every = (n as f64).sqrt().ceil() as usize;
        let family = Family {
            family: "CDE",
            problem: "spirals NCDE 8-16-8x3",
            min_time: ctx.min_time,
            max_reps: 20,
        };
        rows.extend(family_rows(
            &family,
            &rev,
            &Plain::new(map.clone()),
            &z0,
            &times,
            &opts,
            &[
                GradientMethod::Reversible,
                GradientMethod::CheckpointedReversible { every },
            ],
            crate::ode::final_square,
        )?);
        bar.inc(1);
    }
    bar.finish_and_clear();
    Ok(rows)
}
