//! A neural ODE fitted to measured trajectories held in a CSV file:
//!
//! ```text
//! cargo run --release -p revode-core --example fit_trajectories -- data.csv \
//!     [--hidden 32] [--steps 500] [--lr 0.01] [--h 0.01] [--until T] [--validation 0.2]
//! ```
//! The CSV is long: a header `series,time,<channel>…`, one row per (series, time), every
//! series observed at the same times. Channels are standardised, time starts at 0; the last
//! `--validation` fraction of the observation times is held out as a forecast check, and
//! training (reversible midpoint, λ = 0.999, AdamW with cosine decay, clipping at 1) stops early
//! when the held-out error stops improving. Prints the training and held-out mean squared
//! errors (standardised units) and the stored states of one gradient. The model, its gradient
//! and its predictions are the library's [`revode_core::fit::TrajectoryFit`]; this file reads
//! the CSV and sets up the run.

use revode_core::fit::{mse_after_first, Solver, TrajectoryFit};
use revode_core::mlp::MlpSpec;
use revode_core::prelude::*;
use revode_core::train::{Schedule, TrainConfig, TrainState, Trainer};

/// One observation: time and channel values.
type Row = (f64, Vec<f64>);

struct Data {
    times: Vec<f64>,
    /// Per time: batch × dim values, standardised.
    ys: Vec<Vec<f64>>,
    batch: usize,
    dim: usize,
}

fn bad(m: impl Into<String>) -> Error {
    Error::config("trajectories CSV", m)
}

fn read(path: &str, until: f64) -> revode_core::Result<Data> {
    let mut r = csv::Reader::from_path(path).map_err(|e| Error::Io {
        path: path.into(),
        message: e.to_string(),
    })?;
    let header: Vec<String> = r
        .headers()
        .map_err(|e| bad(e.to_string()))?
        .iter()
        .map(|s| s.trim().to_string())
        .collect();
    if header.len() < 3 || header[0] != "series" || header[1] != "time" {
        return Err(bad("the header must be 'series,time,<channel>…'"));
    }
    let dim = header.len() - 2;
    let mut series: Vec<(String, Vec<Row>)> = Vec::new();
    for (line, rec) in r.records().enumerate() {
        let rec = rec.map_err(|e| bad(format!("row {}: {e}", line + 2)))?;
        let num = |j: usize| -> revode_core::Result<f64> {
            rec.get(j).unwrap_or("").trim().parse().map_err(|_| {
                bad(format!(
                    "row {}, column '{}' is not a number",
                    line + 2,
                    header[j]
                ))
            })
        };
        let id = rec.get(0).unwrap_or("").trim().to_string();
        let row = (
            num(1)?,
            (2..2 + dim)
                .map(num)
                .collect::<revode_core::Result<Vec<_>>>()?,
        );
        match series.iter_mut().find(|s| s.0 == id) {
            Some(s) => s.1.push(row),
            None => series.push((id, vec![row])),
        }
    }
    let first = series.first().ok_or_else(|| bad("no rows"))?;
    let t0 = first.1[0].0;
    let times: Vec<f64> = first
        .1
        .iter()
        .map(|r| r.0 - t0)
        .take_while(|&t| t <= until)
        .collect();
    for (id, rows) in &series {
        if rows.len() < times.len() || rows.iter().zip(&times).any(|(r, t)| r.0 - t0 != *t) {
            return Err(bad(format!(
                "series '{id}' is not observed at the first series' times"
            )));
        }
    }
    let (batch, k) = (series.len(), times.len());
    let mut ys = vec![vec![0.0; batch * dim]; k];
    for (b, (_, rows)) in series.iter().enumerate() {
        for (j, (_, v)) in rows.iter().take(k).enumerate() {
            ys[j][b * dim..(b + 1) * dim].copy_from_slice(v);
        }
    }
    for c in 0..dim {
        let vals: Vec<f64> = ys
            .iter()
            .flat_map(|y| y.iter().skip(c).step_by(dim))
            .copied()
            .collect();
        let n = vals.len() as f64;
        let m = vals.iter().sum::<f64>() / n;
        let sd = (vals.iter().map(|v| (v - m).powi(2)).sum::<f64>() / n)
            .sqrt()
            .max(1e-12);
        for y in ys.iter_mut() {
            for v in y.iter_mut().skip(c).step_by(dim) {
                *v = (*v - m) / sd;
            }
        }
    }
    revode_core::error::check_finite("trajectory values", &ys.concat())?;
    Ok(Data {
        times,
        ys,
        batch,
        dim,
    })
}

#[derive(clap::Parser)]
#[command(about = "Fit a neural ODE to the trajectories in a long-format CSV file")]
struct Args {
    /// The CSV file (`series,time,<channel>…`).
    data: String,
    /// Width of the MLP's two hidden layers.
    #[arg(long, default_value_t = 32)]
    hidden: usize,
    /// Training steps (at most; early stopping may end sooner).
    #[arg(long, default_value_t = 500)]
    steps: usize,
    /// Initial learning rate (cosine-decayed).
    #[arg(long, default_value_t = 1e-2)]
    lr: f64,
    /// Solver step.
    #[arg(long, default_value_t = 0.01)]
    h: f64,
    /// Use only observations at times ≤ this (after shifting time to start at 0).
    #[arg(long, default_value_t = f64::INFINITY)]
    until: f64,
    /// Fraction of the observation times held out at the end.
    #[arg(long, default_value_t = 0.2)]
    validation: f64,
}

fn run(a: &Args) -> revode_core::Result<()> {
    let d = read(&a.data, a.until)?;
    let (hidden, steps, lr, h) = (a.hidden, a.steps, a.lr, a.h);
    let k = d.times.len();
    let cut = ((1.0 - a.validation) * k as f64).round() as usize;
    if cut < 2 || cut >= k {
        return Err(bad(format!(
            "{k} observation times cannot be split at {cut}"
        )));
    }
    let spec = MlpSpec {
        depth: 2,
        ..MlpSpec::new(d.dim, hidden)
    };
    println!(
        "{} series × {k} times × {} channels; fitting on t ≤ {:.3}, checking on t ≤ {:.3}",
        d.batch,
        d.dim,
        d.times[cut - 1],
        d.times[k - 1]
    );
    // Reversible midpoint, λ = 0.999, reversible gradient; loss: mean squared error in
    // standardised units over the observations after t0.
    let fit = TrajectoryFit::new(
        spec.clone(),
        Solver::Reversible {
            tableau: Tableau::midpoint(),
            lambda: 0.999,
        },
        SolveOptions::fixed(h),
    )
    .with_batch(d.batch);
    // The error of the predictions at the first `to` observation times.
    let mse_to = |to: usize, p: &[f64]| -> revode_core::Result<f64> {
        let ys = fit.predict(p, &d.ys[0], &d.times[..to])?;
        let mut unused_cotangents = ys.clone();
        mse_after_first(d.ys[..to].to_vec())(&d.times[..to], &ys, &mut unused_cotangents)
    };
    let mut state = TrainState::new(spec.init_uniform(0), lr, 0.0, serde_json::Value::Null)?;
    let config = TrainConfig {
        clip_norm: Some(1.0),
        eval_every: 10,
        patience: Some(10),
        progress: true,
        ..TrainConfig::new(steps, Schedule::cosine(lr, 0.1))
    };
    let training = fit.objective(
        &d.ys[0],
        &d.times[..cut],
        mse_after_first(d.ys[..cut].to_vec()),
    );
    Trainer::new(config)
        .with_eval(|_, p| mse_to(k, p))
        .run(&mut state, training)?;
    let best = state.final_params().to_vec();
    let stored = fit
        .gradient(
            &best,
            &d.ys[0],
            &d.times[..cut],
            mse_after_first(d.ys[..cut].to_vec()),
        )?
        .stats
        .peak_stored_states;
    let (train_mse, all_mse) = (mse_to(cut, &best)?, mse_to(k, &best)?);
    println!(
        "{} steps{}; fitted MSE {train_mse:.4e} on t ≤ {:.3}, {all_mse:.4e} over all {k} times (held out included); {stored} stored state(s) per gradient",
        state.step(),
        if state.stopped_early { " (early stop)" } else { "" },
        d.times[cut - 1]
    );
    Ok(())
}

fn main() {
    let args = <Args as clap::Parser>::parse();
    if let Err(e) = run(&args) {
        eprintln!("fit_trajectories: {e}");
        std::process::exit(1);
    }
}
