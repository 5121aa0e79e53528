//! An SDE-GAN trained on the paths in a file; writes generated paths as CSV:
//!
//! ```text
//! cargo run --release -p revode-sde --example generate -- paths.csv \
//!     [--format long|wide] [--steps 2000] [--paths 1000] [--out generated.csv]
//!     [--validation 0.2] [--seed 0]
//! ```
//! The input is a CSV in long format (`series,time,<channel>…`) or wide format
//! (`<channel>@<time>` cells), or a UEA `.ts` file; every series must be observed at the same
//! times, with no missing values. A seeded split holds out `--validation` of the series; the
//! SDE-GAN (reversible Heun generator, neural-CDE critic with gradient penalty; see
//! docs/src/sde.md) trains for `--steps` optimiser steps through the one trainer, scoring the
//! generator on the held-out series twenty times a run and keeping the best. It prints the
//! held-out marginals against generated ones at four times and writes `--paths` generated
//! series in long format.

use clap::Parser;
use revode_cde::TimeSeries;
use revode_core::train::{TrainConfig, Trainer};
use revode_core::{Error, Result};
use revode_sde::gan::{GanConfig, SdeGan};
use revode_sde::stats::compare_marginals;
use std::io::Write;

#[derive(Parser)]
#[command(about = "Train an SDE-GAN on the paths in a file and write generated paths as CSV")]
struct Args {
    /// Paths: CSV (long or wide) or a UEA .ts file.
    input: std::path::PathBuf,
    /// CSV layout.
    #[arg(long, default_value = "long", value_parser = ["long", "wide"])]
    format: String,
    /// Optimiser steps.
    #[arg(long, default_value_t = 2000)]
    steps: usize,
    /// Generated series to write.
    #[arg(long, default_value_t = 1000)]
    paths: usize,
    /// Output CSV (long format).
    #[arg(long, default_value = "generated.csv")]
    out: std::path::PathBuf,
    /// Fraction of the series held out for model selection and the final comparison.
    #[arg(long, default_value_t = 0.2)]
    validation: f64,
    /// Seed of the split, the networks and the noise.
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

fn read(a: &Args) -> Result<TimeSeries> {
    if a.input.extension().is_some_and(|e| e == "ts") {
        return TimeSeries::read_ts(&a.input);
    }
    let file = std::fs::File::open(&a.input).map_err(|e| Error::Io {
        path: a.input.display().to_string(),
        message: e.to_string(),
    })?;
    match a.format.as_str() {
        "wide" => TimeSeries::from_csv_wide(file),
        _ => TimeSeries::from_csv_long(file),
    }
}

/// Worst KS distance over every observation time and channel.
fn worst_ks(real: &TimeSeries, fake: &TimeSeries) -> Result<f64> {
    let every: Vec<usize> = (0..real.time_len()).collect();
    Ok(compare_marginals(real, fake, &every)?
        .iter()
        .map(|m| m.ks)
        .fold(0.0, f64::max))
}

fn write(path: &std::path::Path, d: &TimeSeries) -> Result<()> {
    let io = |e: std::io::Error| Error::Io {
        path: path.display().to_string(),
        message: e.to_string(),
    };
    let (paths, n, channels) = d.values.dim();
    let mut text = String::from("series,time");
    for c in 0..channels {
        text.push_str(&format!(",x{c}"));
    }
    text.push('\n');
    for i in 0..paths {
        for k in 0..n {
            text.push_str(&format!("g{i},{}", d.times[[i, k]]));
            for c in 0..channels {
                text.push_str(&format!(",{}", d.values[[i, k, c]]));
            }
            text.push('\n');
        }
    }
    // Atomically: a temporary file renamed over the target.
    let tmp = path.with_extension("csv.tmp");
    let mut f = std::fs::File::create(&tmp).map_err(io)?;
    f.write_all(text.as_bytes()).map_err(io)?;
    f.sync_all().map_err(io)?;
    std::fs::rename(&tmp, path).map_err(io)
}

fn run(a: &Args) -> Result<()> {
    if a.paths == 0 || a.steps == 0 {
        return Err(Error::config(
            "generate",
            "--paths and --steps must be at least 1",
        ));
    }
    let data = read(a)?;
    let (fit, held) = data.stratified_split(a.validation, a.seed)?;
    if fit.is_empty() || held.is_empty() {
        return Err(Error::config(
            "generate",
            format!(
                "{} series are too few to hold out {}",
                data.len(),
                a.validation
            ),
        ));
    }
    let (train, validation) = (data.select(&fit)?, data.select(&held)?);
    let (_, n, channels) = data.values.dim();
    println!(
        "{} series × {n} times × {channels} channels: {} to train, {} held out",
        data.len(),
        train.len(),
        validation.len()
    );
    let gan = SdeGan::new(GanConfig::default(), &train)?;
    let mut state = gan.train_state(a.seed)?;
    let config = TrainConfig {
        eval_every: (a.steps / 20).max(1),
        progress: true,
        ..gan.train_config(a.steps)
    };
    let start = std::time::Instant::now();
    Trainer::new(config)
        .with_eval(|_, p| worst_ks(&validation, &gan.sample(p, 2048, 98)?))
        .run_with(&mut state, gan.objective(&train, a.seed)?)?;
    let best = state.best.as_ref().map_or(a.steps, |b| b.step);
    println!(
        "trained {} steps in {:.0} s; kept step {best} (worst held-out KS {:.3})",
        a.steps,
        start.elapsed().as_secs_f64(),
        state.best.as_ref().map_or(f64::NAN, |b| b.value)
    );
    let fake = gan.sample(state.final_params(), a.paths.max(2048), a.seed ^ 99)?;
    println!("held-out against generated marginals:");
    println!(
        "{:>8} {:>7} {:>6} {:>10} {:>10} {:>10} {:>10}",
        "time", "channel", "KS", "mean", "gen mean", "var", "gen var"
    );
    for m in compare_marginals(
        &validation,
        &fake,
        &[0, (n - 1) / 3, 2 * (n - 1) / 3, n - 1],
    )? {
        println!(
            "{:>8.3} {:>7} {:>6.3} {:>10.4} {:>10.4} {:>10.4} {:>10.4}",
            m.time, m.channel, m.ks, m.mean_real, m.mean_generated, m.var_real, m.var_generated
        );
    }
    let rows: Vec<usize> = (0..a.paths).collect();
    write(&a.out, &fake.select(&rows)?)?;
    println!("wrote {} generated series to {}", a.paths, a.out.display());
    Ok(())
}

fn main() {
    let args = Args::parse();
    if let Err(e) = run(&args) {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}
