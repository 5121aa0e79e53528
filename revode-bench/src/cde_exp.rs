//! The neural-CDE training experiments over several seeds: spirals and JapaneseVowels
//! (docs/src/cde.md). JapaneseVowels chooses its weight decay on a validation split carved
//! from the training set; the test set is used only for the reported accuracy.

use crate::cde::{backend_name, fit, solver_steps_probe, Run};
use crate::fits::pm;
use crate::report::{self, fmt_bytes, fmt_time, BenchResult, Series, Table};
use crate::Ctx;
use revode_cde::datasets::spirals;
use revode_cde::*;
use revode_core::{GradientMethod, SolveOptions, Tableau};
use serde::Serialize;

/// One run with the seed of its initialisation.
#[derive(Serialize)]
struct SeededRun {
    seed: u64,
    #[serde(flatten)]
    run: Run,
}

/// A mean ± sd table (one row per task and method), the per-seed loss and accuracy plots, and
/// `{name}.json` with every run.
fn report_seeded(
    ctx: &Ctx,
    name: &str,
    title: &str,
    intro: &str,
    runs: Vec<SeededRun>,
    extra: &impl Serialize,
) -> BenchResult<()> {
    let mut keys: Vec<(String, String)> = Vec::new();
    for r in &runs {
        let k = (r.run.task.clone(), r.run.method.clone());
        if !keys.contains(&k) {
            keys.push(k);
        }
    }
    let mut table = Table::new(&[
        "task",
        "method",
        "seeds",
        "test accuracy",
        "train accuracy",
        "final loss",
        "train time",
        "peak heap / gradient",
        "stored",
        "solver steps",
    ]);
    for (task, method) in &keys {
        let rs: Vec<&Run> = runs
            .iter()
            .map(|r| &r.run)
            .filter(|r| &r.task == task && &r.method == method)
            .collect();
        let col = |f: &dyn Fn(&Run) -> f64| rs.iter().map(|r| f(r)).collect::<Vec<f64>>();
        table.row(vec![
            task.clone(),
            method.clone(),
            rs.len().to_string(),
            pm(&col(&|r| 100.0 * r.test_accuracy), |x| format!("{x:.1} %")),
            pm(&col(&|r| 100.0 * r.train_accuracy), |x| format!("{x:.1} %")),
            pm(&col(&|r| r.final_loss), |x| format!("{x:.2e}")),
            pm(&col(&|r| r.seconds), fmt_time),
            fmt_bytes(rs[0].peak_bytes),
            rs[0].stored_states.to_string(),
            rs[0].solver_steps.to_string(),
        ]);
    }
    let seeds: Vec<String> = {
        let mut s: Vec<u64> = runs.iter().map(|r| r.seed).collect();
        s.sort_unstable();
        s.dedup();
        s.iter().map(|x| x.to_string()).collect()
    };
    ctx.emit(
        name,
        &format!(
            "## {title}\n\n{intro}\n\nMean ± sample sd over the initialisation seeds {}.\n\n{}\n",
            seeds.join(", "),
            table.render()
        ),
    )?;
    let label = |r: &SeededRun| format!("{} {} s{}", r.run.task, r.run.method, r.seed);
    let loss: Vec<Series> = runs
        .iter()
        .map(|r| Series {
            label: label(r),
            points: r
                .run
                .history
                .iter()
                .enumerate()
                .map(|(k, &l)| ((k + 1) as f64, l))
                .collect(),
        })
        .collect();
    report::plot_loglog(
        &ctx.out.join(format!("{name}_loss.svg")),
        &format!("{title}: training loss"),
        "step",
        "cross-entropy",
        &loss,
    )?;
    let acc: Vec<Series> = runs
        .iter()
        .map(|r| Series {
            label: label(r),
            points: r
                .run
                .test_curve
                .iter()
                .map(|&(k, a)| (k as f64, 100.0 * a))
                .collect(),
        })
        .collect();
    report::plot_lines(
        &ctx.out.join(format!("{name}_accuracy.svg")),
        &format!("{title}: test accuracy during training"),
        "step",
        "test accuracy (%)",
        &acc,
    )?;
    #[derive(Serialize)]
    struct Out<'a, E: Serialize> {
        command: &'a str,
        settings: &'a E,
        runs: Vec<SeededRun>,
    }
    report::write_json(
        &ctx.out,
        &format!("{name}.json"),
        &Out {
            command: &ctx.command,
            settings: extra,
            runs,
        },
    )
    .map(|_| ())
}

/// Spirals, reversible vs full-tape training, over seeds of the initialisation.
pub fn spirals_experiment(ctx: &Ctx, field: FieldBackend) -> BenchResult<()> {
    let (n, len) = (256, 100);
    let steps = if ctx.full { 1000 } else { 300 };
    let seeds = ctx.seeds(if ctx.full { 3 } else { 1 });
    let (train_data, train_labels) = spirals(n, len, 0.05, 1);
    let (test_data, test_labels) = spirals(n, len, 0.05, 2);
    let po = PathOptions {
        time_channel: true,
        ..Default::default()
    };
    let train_path = Path::new(&train_data, &po)?;
    let test_path = Path::new(&test_data, &po)?;
    let model = NcdeClassifier {
        hidden: 8,
        channels: train_path.channels(),
        classes: 2,
        width: 16,
        depth: 1,
        tableau: Tableau::midpoint(),
        lambda: Some(0.999),
        backend: field,
    };
    let opts = SolveOptions::fixed(1.0 / (len - 1) as f64);
    let mut runs = Vec::new();
    let bar = ctx.bar(2 * seeds.len() as u64, "spirals");
    for &seed in &seeds {
        for m in [GradientMethod::Reversible, GradientMethod::Direct] {
            let run = fit(
                seed,
                "spirals",
                &model,
                &train_path,
                &train_labels,
                &test_path,
                &test_labels,
                &opts,
                m,
                steps,
                1e-2,
                1e-5,
            )?;
            runs.push(SeededRun { seed, run });
            bar.inc(1);
        }
    }
    bar.finish_and_clear();
    let intro = format!(
        "{n} train and {n} test spirals (clockwise vs anticlockwise, noise σ = 0.05; one fixed data set), {len} points on [0, 1], \
         channels (t, x, y), backward-Hermite cubic path. Neural CDE: z0 = linear(x(0)), hidden 8, field MLP 8 → 16 → 8 × 3 (tanh, {} field), \
         midpoint (reversible with λ = 0.999 for both rows; \"direct\" differentiates the same solve through a full tape), one step per knot, \
         linear readout, cross-entropy; AdamW lr 1e-2, weight decay 1e-5, {steps} full-batch steps.",
        backend_name(field)
    );
    report_seeded(
        ctx,
        "spirals",
        "Spirals (docs/src/cde.md)",
        &intro,
        runs,
        &serde_json::json!({ "steps": steps, "lr": 1e-2, "weight_decay": 1e-5 }),
    )
}

/// The series `cases` of `d` standardised by `st`, with each series' observations after its
/// first dropped at rate `drop` (seeded), as a path and their labels.
fn jv_path(
    d: &TimeSeries,
    cases: &[usize],
    st: &Standardiser,
    drop: f64,
    seed: u64,
    po: &PathOptions,
) -> BenchResult<(Path, Vec<usize>)> {
    let mut sub = d.select(cases)?;
    sub.standardise(st)?;
    if drop > 0.0 {
        sub.drop_points(drop, seed)?;
    }
    let rows: Vec<usize> = (0..sub.len()).collect();
    Ok(sub.path(&rows, po)?)
}

#[derive(Serialize)]
struct Selection {
    drop: f64,
    weight_decay: f64,
    validation_accuracy: f64,
    validation_cases: usize,
}

/// JapaneseVowels at 0 / 30 / 50 / 70 % of points dropped, weight decay chosen per drop rate
/// on a validation split of the training set, then every seed trained on the whole training set.
pub fn japanese_vowels(ctx: &Ctx, field: FieldBackend, memory_only: bool) -> BenchResult<()> {
    let dir = crate::data::data_dir().join("uea");
    // One time grid for both sets (sample k at t = k/(K − 1)), padded to the longest series.
    let (train, test) = TimeSeries::read_ts_pair(
        &dir.join("JapaneseVowels_TRAIN.ts"),
        &dir.join("JapaneseVowels_TEST.ts"),
    )?;
    let steps = if ctx.full { 500 } else { 150 };
    let seeds = ctx.seeds(if ctx.full { 3 } else { 1 });
    let drops = [0.0, 0.3, 0.5, 0.7];
    let wds = [1e-5, 1e-3];
    let (hidden, width) = (32, 32);
    let all: Vec<usize> = (0..train.len()).collect();
    let test_cases: Vec<usize> = (0..test.len()).collect();
    let pad = train.time_len();
    let jv_model = |channels: usize| NcdeClassifier {
        hidden,
        channels,
        classes: 9,
        width,
        depth: 1,
        tableau: Tableau::midpoint(),
        lambda: Some(0.999),
        backend: field,
    };
    for &drop in &drops {
        let channels = 1 + train.channels() * (1 + (drop > 0.0) as usize);
        jv_model(channels).validate()?;
    }
    let opts = SolveOptions::fixed(1.0 / (pad - 1) as f64);
    let (fit_idx, val_idx) = train.random_split(0.2, 99)?;
    let mut runs = Vec::new();
    let mut chosen = Vec::new();
    let total = drops.len() * (wds.len() + seeds.len());
    let bar = ctx.bar(if memory_only { 0 } else { total as u64 }, "JapaneseVowels");
    for &drop in drops.iter().filter(|_| !memory_only) {
        let po = PathOptions {
            time_channel: true,
            count_channels: drop > 0.0,
            ..Default::default()
        };
        let path = |d: &TimeSeries, cases: &[usize], st: &Standardiser, seed: u64| {
            jv_path(d, cases, st, drop, seed, &po)
        };
        let task = format!("{:.0} % dropped", 100.0 * drop);
        // Model selection: train on 80 % of the training set, score on the other 20 %.
        let st = train.fit_standardiser(&fit_idx)?;
        let (fit_path, fit_labels) = path(&train, &fit_idx, &st, 10)?;
        let (val_path, val_labels) = path(&train, &val_idx, &st, 11)?;
        let model = jv_model(fit_path.channels());
        let mut best = (f64::NEG_INFINITY, wds[0]);
        for &wd in &wds {
            let r = fit(
                0,
                &task,
                &model,
                &fit_path,
                &fit_labels,
                &val_path,
                &val_labels,
                &opts,
                GradientMethod::Reversible,
                steps,
                1e-2,
                wd,
            )?;
            // Ties go to the smaller weight decay (listed first).
            if r.test_accuracy > best.0 {
                best = (r.test_accuracy, wd);
            }
            bar.inc(1);
        }
        chosen.push(Selection {
            drop,
            weight_decay: best.1,
            validation_accuracy: best.0,
            validation_cases: val_idx.len(),
        });
        // Final runs: the whole training set, the chosen weight decay, scored on the test set.
        let st = train.fit_standardiser(&all)?;
        let (train_path, train_labels) = path(&train, &all, &st, 10)?;
        let (test_path, test_labels) = path(&test, &test_cases, &st, 20)?;
        for &seed in &seeds {
            let run = fit(
                seed,
                &task,
                &model,
                &train_path,
                &train_labels,
                &test_path,
                &test_labels,
                &opts,
                GradientMethod::Reversible,
                steps,
                1e-2,
                best.1,
            )?;
            runs.push(SeededRun { seed, run });
            bar.inc(1);
        }
    }
    bar.finish_and_clear();
    if !memory_only {
        let mut sel = Table::new(&["task", "weight decay chosen", "validation accuracy"]);
        for s in &chosen {
            sel.row(vec![
                format!("{:.0} % dropped", 100.0 * s.drop),
                format!("{:e}", s.weight_decay),
                format!("{:.1} %", 100.0 * s.validation_accuracy),
            ]);
        }
        let intro = format!(
            "UEA JapaneseVowels (Kudo et al. 1999): 270 train / 370 test utterances, 12 channels, 9 speakers, lengths 7–29 padded by \
             forward fill to one grid t = k/28; channels standardised with the training cases' mean and deviation; channels: time + 12 \
             (+ 12 observation counts when points are dropped); backward-Hermite path; whole observations dropped at random (seeded) as \
             NaN. Neural CDE: hidden {hidden}, field MLP {hidden} → {width} → {hidden} × channels (tanh, {} field), reversible midpoint \
             (λ = 0.999), one step per observation, linear readout, cross-entropy; AdamW lr 1e-2, {steps} full-batch steps.\n\n\
             Weight decay chosen from {{{}}} per drop rate by accuracy on a validation split ({} of the 270 training cases, seeded; \
             trained on the other {} with seed 0). The test set is used only for the final runs below, which train on all 270 cases \
             with the chosen weight decay.\n\n{}",
            backend_name(field),
            wds.iter().map(|w| format!("{w:e}")).collect::<Vec<_>>().join(", "),
            val_idx.len(),
            fit_idx.len(),
            sel.render()
        );
        report_seeded(
            ctx,
            "japanese_vowels",
            "JapaneseVowels (docs/src/cde.md)",
            &intro,
            runs,
            &chosen,
        )?;
    }
    let po = PathOptions {
        time_channel: true,
        ..Default::default()
    };
    let st = train.fit_standardiser(&all)?;
    let (path, labels) = jv_path(&train, &all, &st, 0.0, 10, &po)?;
    let model = jv_model(path.channels());
    solver_steps_probe(ctx, &model, &path, &labels, pad)
}
