//! Neural-CDE classification of any UEA data set with reversible gradients:
//!
//! ```text
//! cargo run --release -p revode-cde --example classify -- TRAIN.ts TEST.ts \
//!     [--hidden 32] [--width 32] [--method reversible|auto|direct|checkpointed] [--epochs 150]
//!     [--lr 0.01] [--validation 0.2] [--seed 0]
//! ```
//! Channels are standardised on the training split; a stratified validation split is held
//! out of TRAIN; full-batch AdamW training early-stops on validation accuracy (patience 5
//! evaluations of every 5 steps) and keeps the best parameters; the test accuracy, the
//! confusion matrix and the peak heap of one gradient are printed. `auto` is the
//! checkpointed-reversible gradient with its interval chosen from a drift tolerance of 1e-8,
//! for data on which the plain reversible reconstruction drifts (it says so).

use revode_cde::{NcdeClassifier, PathOptions, TimeSeries};
use revode_core::loss::Confusion;
use revode_core::prelude::*;
use revode_core::train::{Schedule, TrainConfig, TrainState, Trainer};
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

/// Counts live heap bytes and their peak, for the memory report.
struct Counting;
static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        let now = LIVE.fetch_add(l.size(), Relaxed) + l.size();
        PEAK.fetch_max(now, Relaxed);
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        LIVE.fetch_sub(l.size(), Relaxed);
        unsafe { System.dealloc(p, l) }
    }
}
#[global_allocator]
static ALLOC: Counting = Counting;

struct Args {
    train: String,
    test: String,
    hidden: usize,
    width: usize,
    method: GradientMethod,
    epochs: usize,
    lr: f64,
    validation: f64,
    seed: u64,
}

fn parse() -> std::result::Result<Args, String> {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let mut pos = Vec::new();
    let mut a = Args {
        train: String::new(),
        test: String::new(),
        hidden: 32,
        width: 32,
        method: GradientMethod::Reversible,
        epochs: 150,
        lr: 1e-2,
        validation: 0.2,
        seed: 0,
    };
    let mut it = argv.iter();
    while let Some(k) = it.next() {
        let mut val = || it.next().ok_or(format!("{k} needs a value"));
        match k.as_str() {
            "--hidden" => a.hidden = val()?.parse().map_err(|e| format!("{k}: {e}"))?,
            "--width" => a.width = val()?.parse().map_err(|e| format!("{k}: {e}"))?,
            "--epochs" => a.epochs = val()?.parse().map_err(|e| format!("{k}: {e}"))?,
            "--lr" => a.lr = val()?.parse().map_err(|e| format!("{k}: {e}"))?,
            "--validation" => a.validation = val()?.parse().map_err(|e| format!("{k}: {e}"))?,
            "--seed" => a.seed = val()?.parse().map_err(|e| format!("{k}: {e}"))?,
            "--method" => {
                a.method = match val()?.as_str() {
                    "reversible" => GradientMethod::Reversible,
                    "direct" => GradientMethod::Direct,
                    "checkpointed" => GradientMethod::Checkpointed { snapshots: None },
                    "auto" => GradientMethod::CheckpointedReversibleAuto { tolerance: 1e-8 },
                    m => return Err(format!("unknown method {m}")),
                }
            }
            f if f.starts_with("--") => return Err(format!("unknown flag {f}")),
            p => pos.push(p.to_string()),
        }
    }
    let [train, test] = <[String; 2]>::try_from(pos)
        .map_err(|_| "usage: classify TRAIN.ts TEST.ts [flags]".to_string())?;
    a.train = train;
    a.test = test;
    Ok(a)
}

fn run(a: Args) -> revode_core::Result<()> {
    let (mut train, mut test) = (
        TimeSeries::read_ts(a.train.as_ref())?,
        TimeSeries::read_ts(a.test.as_ref())?,
    );
    let (fit, val) = train.stratified_split(a.validation, a.seed)?;
    let st = train.fit_standardiser(&fit)?;
    train.standardise(&st)?;
    test.standardise(&st)?;
    let po = PathOptions {
        time_channel: true,
        ..Default::default()
    };
    let (fit_path, fit_labels) = train.path(&fit, &po)?;
    let (val_path, val_labels) = train.path(&val, &po)?;
    let all: Vec<usize> = (0..test.len()).collect();
    let (test_path, test_labels) = test.path(&all, &po)?;
    let model = NcdeClassifier {
        hidden: a.hidden,
        channels: fit_path.channels(),
        classes: train.class_names.len(),
        width: a.width,
        depth: 1,
        tableau: Tableau::midpoint(),
        lambda: 0.999,
        backend: revode_cde::FieldBackend::Native,
    };
    let opts = SolveOptions::fixed(1.0 / (train.time_len().max(2) - 1) as f64);
    println!(
        "{} train / {} validation / {} test series, {} channels, {} classes, {} parameters",
        fit.len(),
        val.len(),
        test.len(),
        train.channels(),
        model.classes,
        model.num_params()?
    );
    let mut state = TrainState::new(model.init(a.seed)?, a.lr, 0.0, serde_json::Value::Null)?;
    let accuracy = |p: &[f64], path, labels: &[usize]| -> revode_core::Result<f64> {
        revode_core::loss::accuracy(&model.predict(p, path, &opts)?, labels)
    };
    let config = TrainConfig {
        eval_every: 5,
        patience: Some(5),
        progress: true,
        ..TrainConfig::new(a.epochs, Schedule::constant(a.lr))
    };
    let base = LIVE.load(Relaxed);
    PEAK.store(base, Relaxed);
    let probe = model.loss_and_grad(
        &state.params,
        &fit_path,
        &fit_labels,
        &opts,
        a.method.clone(),
    )?;
    let peak = PEAK.load(Relaxed) - base;
    Trainer::new(config)
        .with_eval(|_, p| Ok(1.0 - accuracy(p, &val_path, &val_labels)?))
        .run(&mut state, |_, p, g| {
            let r = model.loss_and_grad(p, &fit_path, &fit_labels, &opts, a.method.clone())?;
            g.copy_from_slice(&r.grad);
            Ok(r.loss)
        })?;
    let best = state
        .best
        .clone()
        .ok_or_else(|| Error::config("epochs", "training ran no evaluation (epochs = 0)"))?;
    let predicted = model.predict(&best.params, &test_path, &opts)?;
    let confusion = Confusion::new(&predicted, &test_labels, model.classes)?;
    println!(
        "{} steps{}; best validation accuracy {:.1} % after step {}",
        state.step(),
        if state.stopped_early {
            " (early stop)"
        } else {
            ""
        },
        100.0 * (1.0 - best.value),
        best.step
    );
    println!(
        "test accuracy {:.2} % ({} of {}); peak heap of one {} gradient {:.1} KiB, {} stored states",
        100.0 * confusion.accuracy(),
        (confusion.accuracy() * test.len() as f64).round(),
        test.len(),
        a.method.label(),
        peak as f64 / 1024.0,
        probe.stored_states
    );
    println!("confusion matrix (rows: true class, columns: predicted):");
    for t in 0..model.classes {
        let row = &confusion.counts[t * model.classes..(t + 1) * model.classes];
        println!("  {:>10} {:?}", train.class_names[t], row);
    }
    Ok(())
}

fn main() {
    match parse() {
        Ok(a) => {
            if let Err(e) = run(a) {
                eprintln!("classify: {e}");
                std::process::exit(1);
            }
        }
        Err(e) => {
            eprintln!("classify: {e}");
            std::process::exit(2);
        }
    }
}
