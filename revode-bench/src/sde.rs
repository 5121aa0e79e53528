//! SDE rows of the cross-family benchmark, the Brownian path benchmark and the SDE experiments.

use crate::measure::{Family, Row};
use crate::report::{self, fmt_time, plot_loglog, BenchResult, Series, Table};
use crate::Ctx;
use revode_core::mlp::{Activation, MlpSpec};
use revode_core::{GradientMethod, Mlp, Plain, SolveOptions};
use revode_sde::lorenz::{fit_lorenz, LorenzFitOptions};
use revode_sde::{reversible_heun, step_map, BrownianPath, Calculus, Diagonal, SdeSolver, SdeTerm};
use serde::Serialize;
use std::time::Instant;

pub(crate) const BATCH: usize = 32;
pub(crate) const DIM: usize = 4;

pub(crate) type NeuralSde = SdeTerm<Mlp<f64>, Diagonal<Mlp<f64>>>;

/// The cross-family neural SDE (drift and diagonal diffusion MLPs 4-16-4, batch 32).
pub(crate) fn neural_sde(seed: u64) -> BenchResult<NeuralSde> {
    let spec = MlpSpec {
        dim: DIM,
        hidden: 16,
        depth: 1,
        activation: Activation::Tanh,
        time: true,
        time_first: false,
        outputs: None,
    };
    let drift = Mlp::from_spec(spec.clone(), BATCH)?.init_uniform(seed);
    let diff = Mlp::from_spec(spec, BATCH)?.init_uniform(seed + 1);
    let path = BrownianPath::new(0.0, 1.0, BATCH, DIM, seed + 2)?;
    Ok(SdeTerm::new(
        drift,
        Diagonal(diff),
        path,
        Calculus::Stratonovich,
    )?)
}

/// Neural SDE (drift and diagonal diffusion MLPs 4-16-4, batch 32) × every gradient method:
/// reversible Heun for the reversible methods, Stratonovich Heun for the others.
pub fn family_rows(ctx: &Ctx) -> BenchResult<Vec<Row>> {
    let ns: Vec<usize> = if ctx.full {
        vec![64, 256, 1024, 4096]
    } else {
        vec![64, 256, 1024]
    };
    let y0: Vec<f64> = (0..BATCH * DIM)
        .map(|i| 0.3 * ((i as f64) * 0.61).sin())
        .collect();
    let times = [0.0, 1.0];
    let bar = ctx.bar(ns.len() as u64, "SDE");
    let mut rows = Vec::new();
    for &n in &ns {
        let opts = SolveOptions::fixed(1.0 / n as f64);
        let rev = reversible_heun(neural_sde(5)?)?;
        let plain = Plain::new(step_map(neural_sde(5)?, SdeSolver::Heun)?);
        let every = (n as f64).sqrt().ceil() as usize;
        let family = Family {
            family: "SDE",
            problem: "neural SDE 4-16-4 ×2, batch 32",
            min_time: ctx.min_time,
            max_reps: 20,
        };
        rows.extend(crate::measure::family_rows(
            &family,
            &rev,
            &plain,
            &y0,
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

#[derive(Serialize)]
struct BrownianRow {
    order: String,
    queries: usize,
    seconds: f64,
    queries_per_second: f64,
    node_draws: u64,
    ratio_to_forward: f64,
}

/// Queries per second of the Brownian path: forward sweep, reversed sweep and random order,
/// against a baseline that reads pre-drawn increments from memory.
pub fn brownian(ctx: &Ctx) -> BenchResult<()> {
    let (batch, channels) = (32, 4);
    let n: usize = if ctx.full { 1 << 16 } else { 1 << 13 };
    let h = 1.0 / n as f64;
    let mut out = vec![0.0; batch * channels];
    let mut rows = Vec::new();
    let mut rng = revode_core::random::SplitMix64::new(3);
    let random: Vec<(f64, f64)> = (0..n)
        .map(|_| {
            let k = (rng.next_u64() % n as u64) as f64;
            (k * h, (k + 1.0) * h)
        })
        .collect();
    type Query<'q> = Box<dyn Fn(usize) -> (f64, f64) + 'q>;
    let forward_q = |i: usize| (i as f64 * h, (i + 1) as f64 * h);
    let reversed_q = |i: usize| {
        let j = n - 1 - i;
        ((j + 1) as f64 * h, j as f64 * h)
    };
    // (order, query, with space-time Lévy area)
    let orders: [(&str, Query, bool); 5] = [
        ("forward sweep", Box::new(forward_q), false),
        ("reversed sweep", Box::new(reversed_q), false),
        ("random order", Box::new(|i| random[i]), false),
        ("forward sweep, W and Lévy area", Box::new(forward_q), true),
        (
            "reversed sweep, W and Lévy area",
            Box::new(reversed_q),
            true,
        ),
    ];
    let mut area = vec![0.0; batch * channels];
    let mut forward = f64::NAN;
    for (name, q, levy) in orders.iter() {
        let mut path = BrownianPath::new(0.0, 1.0, batch, channels, 1)?;
        if *levy {
            path = path.with_space_time_levy_area();
        }
        let start = Instant::now();
        for i in 0..n {
            let (a, b) = q(i);
            if *levy {
                path.levy_area(a, b, &mut out, &mut area)
            } else {
                path.increment(a, b, &mut out)
            }?;
        }
        let s = start.elapsed().as_secs_f64();
        if forward.is_nan() {
            forward = s;
        }
        rows.push(BrownianRow {
            order: name.to_string(),
            queries: n,
            seconds: s,
            queries_per_second: n as f64 / s,
            node_draws: path.node_draws(),
            ratio_to_forward: s / forward,
        });
    }
    // Baseline: increments drawn once and stored (memory grows with the number of steps).
    let stored: Vec<f64> = (0..n * batch * channels)
        .map(|i| (i as f64 * 0.7).sin())
        .collect();
    let start = Instant::now();
    let mut acc = 0.0;
    for i in 0..n {
        out.copy_from_slice(&stored[i * batch * channels..(i + 1) * batch * channels]);
        acc += out[0];
    }
    let s = start.elapsed().as_secs_f64().max(1e-9);
    std::hint::black_box(acc);
    rows.push(BrownianRow {
        order: "pre-drawn increments (stored)".into(),
        queries: n,
        seconds: s,
        queries_per_second: n as f64 / s,
        node_draws: 0,
        ratio_to_forward: s / forward,
    });
    let mut t = Table::new(&[
        "order",
        "queries",
        "time",
        "queries/s",
        "node draws",
        "÷ forward",
    ]);
    for r in &rows {
        t.row(vec![
            r.order.clone(),
            r.queries.to_string(),
            fmt_time(r.seconds),
            format!("{:.3e}", r.queries_per_second),
            r.node_draws.to_string(),
            format!("{:.2}", r.ratio_to_forward),
        ]);
    }
    ctx.emit(
        "brownian",
        &format!(
            "## Brownian path queries (batch {batch} × {channels} channels, h = 2^-{})\n\n\
             Each query is W(t_b) − W(t_a) over one step (with Lévy area: also the step's \
             space-time Lévy area H, from a tree that carries it). The stored baseline keeps every \
             increment in memory ({} KiB here, growing with N); the tree keeps \
             O(levels × batch × channels).\n\n{}\n",
            n.trailing_zeros(),
            n * batch * channels * 8 / 1024,
            t.render()
        ),
    )?;
    report::write_json(&ctx.out, "brownian.json", &rows)?;
    Ok(())
}

/// Stochastic Lorenz parameters by moment matching.
pub fn sde_fit(ctx: &Ctx) -> BenchResult<()> {
    let opts = LorenzFitOptions {
        iterations: if ctx.full { 400 } else { 150 },
        lr: 0.02,
        ..LorenzFitOptions::default()
    };
    let start = Instant::now();
    let fit = fit_lorenz(&opts)?;
    let seconds = start.elapsed().as_secs_f64();
    let names = ["a", "b", "c", "σ₁", "σ₂", "σ₃"];
    let mut t = Table::new(&["parameter", "truth", "initial", "fitted", "rel. error"]);
    for (i, name) in names.iter().enumerate() {
        t.row(vec![
            name.to_string(),
            format!("{:.3}", fit.truth[i]),
            format!("{:.3}", fit.initial[i]),
            format!("{:.3}", fit.fitted[i]),
            format!(
                "{:.1} %",
                100.0 * (fit.fitted[i] - fit.truth[i]).abs() / fit.truth[i]
            ),
        ]);
    }
    ctx.emit(
        "sde-fit",
        &format!(
            "## Stochastic Lorenz parameter fit (docs/src/sde.md)\n\n\
             Mean and variance of each coordinate at {} times on [0, 2] of {} model paths matched \
             to {} data paths; reversible(Heun, λ = {}) with {}; {} steps per gradient, peak stored \
             states {} (interval {:?}); {} iterations in {:.1} s; loss {:.3e} → {:.3e}.\n\n{}\n",
            opts.observations,
            opts.model_paths,
            opts.data_paths,
            opts.lambda,
            opts.method.label(),
            fit.steps,
            fit.stored_states,
            fit.checkpoint_interval,
            opts.iterations,
            seconds,
            fit.losses[0],
            fit.losses[fit.losses.len() - 1],
            t.render()
        ),
    )?;
    report::write_json(&ctx.out, "sde_fit.json", &fit)?;
    plot_loglog(
        &ctx.out.join("sde_fit_loss.svg"),
        "Lorenz moment-matching loss",
        "iteration",
        "loss",
        &[Series {
            label: "loss".into(),
            points: fit
                .losses
                .iter()
                .enumerate()
                .map(|(i, &l)| (i as f64 + 1.0, l))
                .collect(),
        }],
    )?;
    Ok(())
}
