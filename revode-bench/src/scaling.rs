//! Data-parallel scaling (docs/src/cluster.md): steps per second of the compute-bound neural
//! ODE (MLP 32 → 128 → 128 → 32, f32, batch 256 in 2 shards, reversible midpoint, N = 50) on
//! 1 → 2 threads and 1 → 2 MPI ranks, of neural-CDE training (spirals, 2 shards) on 1 → 2
//! threads, the collectives' time against buffer size, and a cost model of larger clusters.
//! The MPI runs use revode-core's `mpi_train` example (built with `--features mpi`).

use crate::report::{self, plot_lines, BenchError, BenchResult, Series, Table};
use crate::Ctx;
use revode_cde::datasets::spirals;
use revode_cde::{FieldBackend, NcdeClassifier, Path, PathOptions};
use revode_core::prelude::*;
use revode_core::train::{self, Schedule, TrainConfig, TrainState, Trainer};
use serde::Serialize;
use std::process::Command;
use std::time::Instant;

/// The example binary the MPI measurements run.
const EXAMPLE: &str = "target/release/examples/mpi_train";
/// How to build it.
const BUILD: &str = "cargo build --release -p revode-core --features mpi --example mpi_train";
/// Parameters of the compute-bound MLP (32·128 + 128 + 128·128 + 128 + 128·32 + 32).
const COMPUTE_PARAMS: usize = 24_864;
/// Samples per minibatch in both measured settings.
const BATCH: usize = 256;

#[derive(Serialize)]
struct Measured {
    setting: String,
    workers: String,
    seconds_per_step: f64,
    spread: f64,
    /// Median over rounds of the round's own ratio t₁ / (workers · t).
    efficiency: f64,
    /// Smallest and largest per-round ratio.
    efficiency_range: (f64, f64),
}

#[derive(Serialize)]
struct Network {
    name: &'static str,
    bandwidth_bytes_per_s: f64,
    latency_s: f64,
}

const NETWORKS: [Network; 2] = [
    Network {
        name: "10 GbE",
        bandwidth_bytes_per_s: 1.25e9,
        latency_s: 50e-6,
    },
    Network {
        name: "100 Gb InfiniBand",
        bandwidth_bytes_per_s: 12.5e9,
        latency_s: 2e-6,
    },
];

/// Ring all-reduce time of `bytes` over `p` ranks: 2(p − 1)/p · bytes/B + 2(p − 1)·L.
fn ring(p: f64, bytes: f64, n: &Network) -> f64 {
    2.0 * (p - 1.0) / p * bytes / n.bandwidth_bytes_per_s + 2.0 * (p - 1.0) * n.latency_s
}

/// revode's deterministic exchange, an all-gather of one gradient per shard with S = p
/// shards: every rank receives (p − 1) gradients: (p − 1)·bytes/B + (p − 1)·L.
fn gather(p: f64, bytes: f64, n: &Network) -> f64 {
    (p - 1.0) * bytes / n.bandwidth_bytes_per_s + (p - 1.0) * n.latency_s
}

/// Seconds per step printed in the header of an `mpi_train` output file.
fn run_example(np: usize, extra: &[&str], out: &std::path::Path) -> BenchResult<f64> {
    let status = Command::new("mpirun")
        .args([
            "--oversubscribe",
            "--bind-to",
            "none",
            "-np",
            &np.to_string(),
        ])
        .arg(EXAMPLE)
        .args(extra)
        .arg("--out")
        .arg(out)
        .env("OMPI_ALLOW_RUN_AS_ROOT", "1")
        .env("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1")
        .env("OMPI_MCA_btl", "self,vader")
        .env("OMPI_MCA_btl_vader_single_copy_mechanism", "none")
        .output()
        .map_err(|source| BenchError::Launch {
            program: "mpirun",
            hint: "install Open MPI",
            source,
        })?;
    if !status.status.success() {
        return Err(BenchError::External {
            command: format!("mpirun -np {np} {EXAMPLE} {}", extra.join(" ")),
            stderr: String::from_utf8_lossy(&status.stderr).into_owned(),
        });
    }
    let text = read_output(out)?;
    let head = text.lines().next().unwrap_or("");
    let seconds = head
        .split(", ")
        .find_map(|f| f.strip_suffix(" s/step"))
        .and_then(|v| v.parse::<f64>().ok());
    seconds.ok_or_else(|| BenchError::BadOutput {
        path: out.to_path_buf(),
        what: "s/step",
        line: head.to_string(),
    })
}

/// The text of `path`, an output file of `mpi_train`.
fn read_output(path: &std::path::Path) -> BenchResult<String> {
    std::fs::read_to_string(path).map_err(|source| BenchError::Io {
        action: "read",
        path: path.to_path_buf(),
        source,
    })
}

/// CDE training on spirals: `shards` shards of 128 series, on `threads` threads; s/step.
fn cde_step_time(threads: usize, steps: usize) -> BenchResult<f64> {
    let po = PathOptions {
        time_channel: true,
        ..Default::default()
    };
    let shards: Vec<(Path, Vec<usize>)> = (0..2)
        .map(|s| {
            let (d, l) = spirals(BATCH / 2, 100, 0.05, 10 + s);
            Path::new(&d, &po).map(|p| (p, l))
        })
        .collect::<revode_core::Result<_>>()?;
    let model = NcdeClassifier {
        hidden: 16,
        channels: shards[0].0.channels(),
        classes: 2,
        width: 32,
        depth: 1,
        tableau: Tableau::midpoint(),
        lambda: Some(0.999),
        backend: FieldBackend::Native,
    };
    let opts = SolveOptions::fixed(1.0 / 99.0);
    let p0 = model.init(0)?;
    let mut state = TrainState::new(p0, 1e-2, 0.0, serde_json::Value::Null)?;
    let f = train::sharded(2, threads, |_, s, p, g| {
        let (path, labels) = &shards[s];
        let r = model.loss_and_grad(p, path, labels, &opts, GradientMethod::Reversible)?;
        g.iter_mut().zip(&r.grad).for_each(|(g, v)| *g = 0.5 * v);
        Ok(0.5 * r.loss)
    })?;
    let start = Instant::now();
    Trainer::new(TrainConfig::new(steps, Schedule::constant(1e-2))).run_with(&mut state, f)?;
    Ok(start.elapsed().as_secs_f64() / steps as f64)
}

/// Minimum and relative spread (max/min − 1) of a set of timings.
fn min_spread(v: &[f64]) -> (f64, f64) {
    let lo = v.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = v.iter().copied().fold(0.0, f64::max);
    (lo, hi / lo - 1.0)
}

/// Per-round efficiencies `base[r] / (workers · t[r])` (each round's runs are adjacent in
/// time, so a drift of the machine cancels in the ratio): median, smallest and largest.
fn round_efficiency(base: &[f64], t: &[f64], workers: f64) -> (f64, (f64, f64)) {
    let mut e: Vec<f64> = base.iter().zip(t).map(|(b, t)| b / (workers * t)).collect();
    e.sort_by(f64::total_cmp);
    let median = if e.len() % 2 == 1 {
        e[e.len() / 2]
    } else {
        0.5 * (e[e.len() / 2 - 1] + e[e.len() / 2])
    };
    (median, (e[0], e[e.len() - 1]))
}

/// The `scaling` subcommand.
pub fn scaling(ctx: &Ctx) -> BenchResult<()> {
    if !std::path::Path::new(EXAMPLE).exists() {
        return Err(BenchError::NotBuilt {
            path: EXAMPLE.into(),
            build: BUILD,
        });
    }
    let tmp = ctx.out.join(".scaling-tmp");
    std::fs::create_dir_all(&tmp).map_err(|source| BenchError::Io {
        action: "create directory",
        path: tmp.clone(),
        source,
    })?;
    let rounds = if ctx.full { 5 } else { 3 };
    let steps = "10";
    let runs: [(&str, usize, &[&str]); 3] = [
        (
            "1 thread, 1 rank",
            1,
            &["--problem", "compute", "--threads", "1", "--steps", steps],
        ),
        (
            "2 threads, 1 rank",
            1,
            &["--problem", "compute", "--threads", "2", "--steps", steps],
        ),
        (
            "2 ranks, 1 thread each",
            2,
            &["--problem", "compute", "--steps", steps],
        ),
    ];
    let mut times = vec![Vec::new(); runs.len()];
    let mut cde = vec![Vec::new(); 2];
    let bar = ctx.bar((rounds * (runs.len() + 2)) as u64, "scaling");
    // Interleaved: every configuration once per round, so drifts of the machine hit all alike.
    for _ in 0..rounds {
        for (k, (_, np, extra)) in runs.iter().enumerate() {
            times[k].push(run_example(*np, extra, &tmp.join("run.txt"))?);
            bar.inc(1);
        }
        for (k, t) in [1, 2].into_iter().enumerate() {
            cde[k].push(cde_step_time(t, 10)?);
            bar.inc(1);
        }
    }
    bar.finish_and_clear();
    let mut rows = Vec::new();
    let (base, _) = min_spread(&times[0]);
    for (k, (label, _, _)) in runs.iter().enumerate() {
        let (t, spread) = min_spread(&times[k]);
        let workers = if k == 0 { 1.0 } else { 2.0 };
        let (efficiency, efficiency_range) = round_efficiency(&times[0], &times[k], workers);
        rows.push(Measured {
            setting: "neural ODE, compute-bound (batch 256)".into(),
            workers: label.to_string(),
            seconds_per_step: t,
            spread,
            efficiency,
            efficiency_range,
        });
    }
    for (k, label) in ["1 thread", "2 threads"].iter().enumerate() {
        let (t, spread) = min_spread(&cde[k]);
        let (efficiency, efficiency_range) = round_efficiency(&cde[0], &cde[k], (k + 1) as f64);
        rows.push(Measured {
            setting: "neural CDE training, spirals (batch 256)".into(),
            workers: label.to_string(),
            seconds_per_step: t,
            spread,
            efficiency,
            efficiency_range,
        });
    }
    // Collectives on 2 ranks.
    let comm_file = tmp.join("comm.txt");
    run_example(2, &["--comm-bench"], &comm_file).ok();
    let comm: Vec<(String, usize, f64)> = read_output(&comm_file)?
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            Some((
                f.first()?.to_string(),
                f.get(1)?.parse().ok()?,
                f.get(2)?.parse().ok()?,
            ))
        })
        .collect();
    let _ = std::fs::remove_dir_all(&tmp);
    // Cost model from the measured compute time per sample.
    let per_sample = base / BATCH as f64;
    let bytes = (COMPUTE_PARAMS * 8) as f64;
    let b = 128.0;
    let mut model = Table::new(&[
        "network",
        "exchange",
        "p = 2",
        "p = 8",
        "p = 64",
        "batch per rank for ≥ 80 % at p = 64",
    ]);
    let mut series = Vec::new();
    let mut model_rows = Vec::new();
    for n in &NETWORKS {
        for (name, f) in [
            ("ring all-reduce", ring as fn(f64, f64, &Network) -> f64),
            ("revode all-gather (S = p)", gather),
        ] {
            let eff = |p: f64| per_sample * b / (per_sample * b + f(p, bytes, n));
            let batch_80 = (4.0 * f(64.0, bytes, n) / per_sample).ceil();
            model.row(vec![
                n.name.into(),
                name.into(),
                format!("{:.1} %", 100.0 * eff(2.0)),
                format!("{:.1} %", 100.0 * eff(8.0)),
                format!("{:.1} %", 100.0 * eff(64.0)),
                format!("{batch_80:.0}"),
            ]);
            model_rows.push(serde_json::json!({
                "network": n.name, "exchange": name, "efficiency_p2": eff(2.0),
                "efficiency_p8": eff(8.0), "efficiency_p64": eff(64.0),
                "batch_per_rank_for_80_percent_at_p64": batch_80,
            }));
            series.push(Series {
                label: format!("{}, {name}", n.name),
                points: (1..=64)
                    .map(|p| (p as f64, 100.0 * eff(p as f64)))
                    .collect(),
            });
        }
    }
    plot_lines(
        &ctx.out.join("scaling_model.svg"),
        "predicted parallel efficiency, compute-bound neural ODE, batch 128 per rank",
        "ranks p",
        "efficiency (%)",
        &series,
    )?;
    let mut measured = Table::new(&[
        "setting",
        "workers",
        "s / step (min)",
        "spread",
        "efficiency (median)",
        "efficiency range",
    ]);
    for r in &rows {
        measured.row(vec![
            r.setting.clone(),
            r.workers.clone(),
            format!("{:.4}", r.seconds_per_step),
            format!("{:.0} %", 100.0 * r.spread),
            format!("{:.1} %", 100.0 * r.efficiency),
            format!(
                "{:.0}–{:.0} %",
                100.0 * r.efficiency_range.0,
                100.0 * r.efficiency_range.1
            ),
        ]);
    }
    let mut comm_table = Table::new(&[
        "collective (2 ranks, this machine)",
        "doubles per rank",
        "seconds",
    ]);
    for (op, n, t) in &comm {
        comm_table.row(vec![op.clone(), n.to_string(), format!("{t:.3e}")]);
    }
    ctx.emit(
        "scaling",
        &format!(
            "## Data-parallel scaling\n\n{rounds} interleaved rounds, minimum time per \
             step and its spread (max/min − 1); efficiency = t₁ / (workers · t) taken within \
             each round (the runs of a round are adjacent in time, so a drift of the machine \
             cancels), median and range over the rounds. The MPI runs use `{EXAMPLE}` \
             (built by `{BUILD}`), over shared memory on this machine.\n\n{}\n\n\
             Collectives, minimum of 10:\n\n{}\n\n\
             Cost model: compute {per_sample:.3e} s per sample (the 1-thread time / 256), a \
             gradient of {COMPUTE_PARAMS} f64 ({:.0} kB), batch 128 per rank; networks 10 GbE \
             (1.25 GB/s, 50 µs) and 100 Gb InfiniBand (12.5 GB/s, 2 µs). Ring all-reduce: \
             2(p−1)/p · bytes/B + 2(p−1)·L; revode's deterministic all-gather with S = p shards: \
             (p−1) · bytes/B + (p−1)·L.\n\n{}\n\n![model](scaling_model.svg)\n",
            measured.render(),
            comm_table.render(),
            bytes / 1e3,
            model.render()
        ),
    )?;
    report::write_json(
        &ctx.out,
        "scaling.json",
        &serde_json::json!({
            "measured": rows,
            "collectives": comm.iter().map(|(o, n, t)| serde_json::json!({"op": o, "doubles": n, "seconds": t})).collect::<Vec<_>>(),
            "per_sample_seconds": per_sample,
            "gradient_bytes": bytes,
            "networks": NETWORKS,
            "model": model_rows,
        }),
    )?;
    Ok(())
}
