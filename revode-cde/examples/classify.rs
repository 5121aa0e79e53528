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

#[derive(clap::Parser)]
#[command(about = "Neural-CDE classification of a UEA data set with reversible gradients")]
struct Args {
    /// Training file (.ts).
    train: String,
    /// Test file (.ts).
    test: String,
    /// Hidden state size.
    #[arg(long, default_value_t = 32)]
    hidden: usize,
    /// Width of the CDE field.
    #[arg(long, default_value_t = 32)]
    width: usize,
    /// Gradient method.
    #[arg(long, default_value = "reversible", value_parser = ["reversible", "auto", "direct", "checkpointed"])]
    method: String,
    /// Full-batch training steps (at most; early stopping may end sooner).
    #[arg(long, default_value_t = 150)]
    epochs: usize,
    /// Learning rate.
    #[arg(long, default_value_t = 1e-2)]
    lr: f64,
    /// Fraction of TRAIN held out for validation (stratified).
    #[arg(long, default_value_t = 0.2)]
    validation: f64,
    /// Seed of the split and the network.
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

impl Args {
    fn method(&self) -> GradientMethod {
        match self.method.as_str() {
            "direct" => GradientMethod::Direct,
            "checkpointed" => GradientMethod::Checkpointed { snapshots: None },
            "auto" => GradientMethod::CheckpointedReversibleAuto { tolerance: 1e-8 },
            _ => GradientMethod::Reversible,
        }
    }
}

fn run(a: Args) -> revode_core::Result<()> {
    // One time grid for both files (their longest series may differ).
    let (mut train, mut test) = TimeSeries::read_ts_pair(a.train.as_ref(), a.test.as_ref())?;
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
        lambda: Some(0.999),
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
    let probe = model.loss_and_grad(&state.params, &fit_path, &fit_labels, &opts, a.method())?;
    let peak = PEAK.load(Relaxed) - base;
    Trainer::new(config)
        .with_eval(|_, p| Ok(1.0 - accuracy(p, &val_path, &val_labels)?))
        .run(&mut state, |_, p, g| {
            let r = model.loss_and_grad(p, &fit_path, &fit_labels, &opts, a.method())?;
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
        a.method().label(),
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
    let args = <Args as clap::Parser>::parse();
    if let Err(e) = run(args) {
        eprintln!("classify: {e}");
        std::process::exit(1);
    }
}
