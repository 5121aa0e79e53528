//! revode-bench: the cross-family benchmark (the main job) and the paper's experiments.
//!
//! `cargo run --release -p revode-bench` runs the quick cross-family benchmark; subcommands run
//! the individual experiments. Every run prints tables and writes JSON, CSV and SVG plots into
//! the output directory.

mod all;
mod alloc;
mod cde;
mod cde_exp;
mod compute;
mod crossover;
mod data;
mod fits;
mod frontier;
mod frontier_run;
mod measure;
mod ode;
mod pde;
mod pde_surrogate;
mod peers;
mod peers_cde;
mod provenance;
mod report;
mod scaling;
mod sde;
mod sde_gan;
mod training;

use clap::{Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use measure::Row;
use report::{fmt_bytes, fmt_time, plot_loglog, BenchError, BenchResult, Series, Table};
use std::path::PathBuf;
use std::sync::Mutex;

#[global_allocator]
static GLOBAL: alloc::Counting = alloc::Counting;

/// Benchmarks and experiments for revode's reversible solvers.
///
/// With no subcommand, runs the quick cross-family benchmark: one representative problem per
/// family × every gradient method (reversible, direct, checkpointed with c ≈ √(2N), backsolve,
/// checkpointed-reversible), reporting median time per gradient, peak heap memory, gradient
/// error against the full tape, and evaluation/pullback counts.
///
/// Every experiment is described, with its committed results, in the book (docs/src:
/// benchmarks.md lists which page covers which subcommand). report.md starts with the command,
/// git commit, date, machine and wall time of the run.
#[derive(Parser, Debug)]
#[command(name = "revode-bench", version, about, long_about)]
struct Cli {
    /// Output directory for the report, JSON, CSV and plots.
    #[arg(long, short, default_value = "revode-out", global = true)]
    out: PathBuf,
    /// Run the long version (larger N, more repetitions).
    #[arg(long, global = true)]
    full: bool,
    /// Minimum seconds spent timing each measurement (median of the repetitions).
    #[arg(
        long,
        default_value_t = 0.2,
        global = true,
        allow_negative_numbers = true
    )]
    min_time: f64,
    /// Hide progress bars.
    #[arg(long, global = true)]
    quiet: bool,
    /// Number of seeds (0, 1, …, n − 1) for the training experiments that take several
    /// (white-dwarf, oscillators, pendulum, spirals, japanese-vowels, pde-surrogate); default:
    /// 3 with --full, else 1.
    #[arg(long, global = true)]
    seeds: Option<usize>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Time and memory of one gradient against N (MLP 1 → 10 → 1, midpoint).
    Complexity,
    /// Reconstruction error of the coupling against N for λ ∈ {0.5, 0.9, 0.99, 0.999}.
    Reconstruction,
    /// Stability regions of reversible Euler, midpoint and RK4 (plots and table).
    Stability,
    /// The compute-bound dfdx setting (MLP 32 → 128 → 128 → 32, batch 256, f32, one thread).
    Compute,
    /// Data-parallel scaling: 1 → 2 threads and MPI ranks, collectives, a cluster cost model
    /// (needs Open MPI and `cargo build --release -p revode-core --features mpi --example
    /// mpi_train`).
    Scaling,
    /// Peak heap of one gradient against N (reversible flat, direct linear).
    Memory,
    /// Convergence orders of plain and reversible methods on y' = 0.5y.
    Convergence,
    /// Learn the white-dwarf equation (reversible vs checkpointed training).
    WhiteDwarf,
    /// Coupled oscillators from measured data.
    Oscillators,
    /// Double pendulum from measured data, adaptive Bosh3 (docs/src/experiments-ode.md; the
    /// committed run uses --lr-final 0.1, which that page explains).
    Pendulum {
        /// Training steps (default: 10 000 with --full, else 1000).
        #[arg(long)]
        steps: Option<usize>,
        /// AdamW learning rate.
        #[arg(long, default_value_t = 1e-2, allow_negative_numbers = true)]
        lr: f64,
        /// Final learning rate as a fraction of --lr, reached by linear decay (1: constant).
        #[arg(long, default_value_t = 1.0, allow_negative_numbers = true)]
        lr_final: f64,
        /// Clip each gradient to this Euclidean norm (0: no clipping).
        #[arg(long, default_value_t = 0.0, allow_negative_numbers = true)]
        clip: f64,
        /// Step-size controller preset.
        #[arg(long, default_value = "pi", value_parser = ["pi", "integral", "diffrax"])]
        controller: String,
    },
    /// Neural CDE on clockwise vs anticlockwise spirals.
    Spirals {
        /// CDE field implementation: dfdx (device tensors) or native (host loops).
        #[arg(long, default_value = "dfdx", value_parser = ["dfdx", "native"])]
        field: String,
    },
    /// Neural CDE on JapaneseVowels, full and with points dropped.
    JapaneseVowels {
        /// CDE field implementation: dfdx (device tensors) or native (host loops).
        #[arg(long, default_value = "dfdx", value_parser = ["dfdx", "native"])]
        field: String,
        /// Skip training: only the memory and time of one gradient against solver steps.
        #[arg(long)]
        memory_only: bool,
    },
    /// Brownian path queries per second: forward, reversed and random order vs stored increments.
    Brownian,
    /// SDE-GAN on a time-dependent Ornstein–Uhlenbeck process (one channel, or two correlated).
    SdeGan {
        /// Optimiser steps per seed.
        #[arg(long, default_value_t = 4000)]
        steps: usize,
        /// Paths per training batch.
        #[arg(long, default_value_t = 128)]
        batch: usize,
        /// Data channels: 1, or 2 with correlated noise (see --rho).
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=2))]
        channels: u64,
        /// Noise correlation of the two-channel process.
        #[arg(long, default_value_t = 0.6, allow_negative_numbers = true)]
        rho: f64,
        /// Normalise the data by the overall mean instead of a least-squares line in time.
        #[arg(long)]
        global_mean: bool,
        /// Seed of the generator's and critic's initial parameters (one run; --seeds n runs the
        /// seeds 0, …, n − 1 instead).
        #[arg(long, default_value_t = 7, allow_negative_numbers = true)]
        seed: u64,
        /// Model-time length of the generator's Brownian path (see `GanConfig::horizon`).
        #[arg(long, default_value_t = 8.0, allow_negative_numbers = true)]
        horizon: f64,
    },
    /// Stochastic Lorenz parameters by moment matching.
    SdeFit,
    /// Reconstruction drift of a diffusive PDE over 10 000 steps, plain and auto-checkpointed.
    PdeDrift,
    /// Peak memory of PDE gradients against grid size × steps (reversible vs direct).
    PdeMemory,
    /// Fisher–KPP reaction and Burgers closure surrogates.
    PdeSurrogate {
        /// Which surrogate: fisher, burgers or both.
        #[arg(long, default_value = "both", value_parser = ["fisher", "burgers", "both"])]
        problem: String,
    },
    /// Writes the peer-comparison problems (sizes, weights, revode's loss and gradient) as JSON
    /// into --out, for the Python peers in peers/.
    ExportProblems,
    /// Times revode on one exported problem (one thread) and prints one JSON line.
    PeerTime {
        /// complexity, compute, sde, brownian or cde.
        #[arg(long, value_parser = peers::PROBLEMS)]
        problem: String,
        /// reversible, direct or checkpointed (brownian: forward, reversed or random).
        #[arg(long)]
        method: String,
        /// Timed repetitions after one warm-up.
        #[arg(long, default_value_t = 5)]
        reps: usize,
    },
    /// Time–memory frontier: peak heap and time per gradient of every gradient method
    /// (reversible, checkpointed-reversible, revolve with c ∈ {2, 4, 8, 16, 32, default}, full
    /// tape, backsolve) at N = 10³, 10⁴ (--full: also 10⁵) steps, and the memory budget below
    /// which reversible is the fastest exact method. See docs/src/benchmarks.md. Run it pinned to
    /// one core (e.g. `taskset -c 1`).
    Frontier {
        /// Problems: complexity, compute, cde, sde, pde (comma-separated).
        #[arg(
            long,
            value_delimiter = ',',
            default_value = "complexity,compute,cde,sde,pde"
        )]
        problems: Vec<String>,
        /// Timed rounds per point, where affordable.
        #[arg(long, default_value_t = 3)]
        rounds: usize,
        /// Skip points estimated slower than this many seconds per gradient
        /// (default 5, with --full 40).
        #[arg(long, allow_negative_numbers = true)]
        max_point_s: Option<f64>,
        /// Skip full tapes estimated above this many GiB.
        #[arg(long, default_value_t = 2.0, allow_negative_numbers = true)]
        max_gib: f64,
    },
    /// Every experiment, each into its own folder under --out with its own report.md; with
    /// --full, exactly the configurations committed under docs/results (`all --full --out
    /// docs/results` regenerates them: about a day on a 2-core machine), else the quick ones.
    All,
}

/// Shared settings of a run.
pub struct Ctx {
    /// Output directory.
    pub out: PathBuf,
    /// Long version.
    pub full: bool,
    /// Timing budget per measurement.
    pub min_time: f64,
    quiet: bool,
    /// Seeds asked for on the command line.
    pub n_seeds: Option<usize>,
    /// The command line that produced the results.
    pub command: String,
    /// Commit, date, machine: written at the top of report.md.
    pub provenance: provenance::Provenance,
    report: Mutex<String>,
}

impl Ctx {
    /// Whether progress bars are shown (not with --quiet).
    pub fn progress(&self) -> bool {
        !self.quiet
    }
    /// A progress bar on stderr (hidden with --quiet).
    pub fn bar(&self, len: u64, what: &str) -> ProgressBar {
        if self.quiet {
            return ProgressBar::hidden();
        }
        let bar = ProgressBar::new(len);
        bar.set_style(
            ProgressStyle::with_template("{prefix:>12} [{bar:30}] {pos}/{len} {elapsed_precise}")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
        );
        bar.set_prefix(what.to_string());
        bar
    }
    /// Seeds 0, 1, …: as many as --seeds asks for, else `default`.
    pub fn seeds(&self, default: usize) -> Vec<u64> {
        (0..self.n_seeds.unwrap_or(default).max(1) as u64).collect()
    }
    /// Prints a section and appends it to the report.
    pub fn emit(&self, _name: &str, text: &str) -> BenchResult<()> {
        println!("{text}");
        if let Ok(mut r) = self.report.lock() {
            r.push_str(text);
            r.push('\n');
        }
        Ok(())
    }
}

fn cross_family(ctx: &Ctx) -> BenchResult<()> {
    let mut rows: Vec<Row> = Vec::new();
    rows.extend(ode::family_rows(ctx)?);
    rows.extend(cde::family_rows(ctx)?);
    rows.extend(sde::family_rows(ctx)?);
    rows.extend(pde::family_rows(ctx)?);
    measure::fill_ratios(&mut rows);
    let mut table = Table::new(&[
        "family",
        "N",
        "method",
        "time/grad",
        "÷ direct",
        "peak heap",
        "stored",
        "evals",
        "pullbacks",
        "grad err",
        "drift",
        "note",
    ]);
    for r in &rows {
        table.row(vec![
            r.family.clone(),
            r.n.to_string(),
            r.method.clone(),
            r.median_s.map_or_else(
                || {
                    r.invalid_time_s
                        .map_or("failed".into(), |t| format!("({}, invalid)", fmt_time(t)))
                },
                fmt_time,
            ),
            r.ratio_to_direct.map_or("—".into(), |x| format!("{x:.2}")),
            fmt_bytes(r.peak_bytes),
            r.stored_states.to_string(),
            r.evaluations.to_string(),
            r.pullbacks.to_string(),
            r.grad_rel_err.map_or("—".into(), |e| format!("{e:.1e}")),
            r.reconstruction_error
                .map_or("—".into(), |e| format!("{e:.1e}")),
            r.note.clone(),
        ]);
    }
    let schemes: Vec<String> = rows
        .iter()
        .map(|r| format!("{}: {}", r.family, r.scheme))
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    ctx.emit(
        "cross-family",
        &format!(
            "## Cross-family benchmark\n\nFamilies: ODE, CDE, SDE, PDE (one representative neural problem each).\n\
             Grad err: relative max-norm difference of (dL/dy0, dL/dθ) from the full tape of the same scheme.\n\
             ÷ direct: time per gradient over the full tape's (`direct`, the plain base method) of the same family and N, \
             measured in this run; for the SDE, reversible Heun's reversible gradient against backpropagated Heun.\n\
             Schemes: {}.\n\n{}\n",
            schemes.join("; "),
            table.render()
        ),
    )?;
    report::write_json(&ctx.out, "cross_family.json", &rows)?;
    report::write_csv(&ctx.out, "cross_family.csv", &rows)?;
    let mut labels: Vec<String> = rows
        .iter()
        .map(|r| format!("{} {}", r.family, r.method))
        .collect();
    labels.dedup();
    labels.sort();
    labels.dedup();
    let series = |f: &dyn Fn(&Row) -> Option<f64>| -> Vec<Series> {
        labels
            .iter()
            .map(|l| Series {
                label: l.clone(),
                points: rows
                    .iter()
                    .filter(|r| &format!("{} {}", r.family, r.method) == l)
                    .filter_map(|r| f(r).map(|v| (r.n as f64, v)))
                    .collect(),
            })
            .collect()
    };
    plot_loglog(
        &ctx.out.join("cross_family_time.svg"),
        "Time per gradient",
        "N steps",
        "seconds",
        &series(&|r| r.median_s),
    )?;
    plot_loglog(
        &ctx.out.join("cross_family_memory.svg"),
        "Peak heap per gradient",
        "N steps",
        "bytes",
        &series(&|r| Some(r.peak_bytes.max(1) as f64)),
    )?;
    Ok(())
}

/// Refuses out-of-range numbers before anything runs (clap lets negative numbers through so
/// that they reach these messages instead of "unexpected argument").
fn validate(cli: &Cli) -> BenchResult<()> {
    if !(cli.min_time.is_finite() && cli.min_time >= 0.0 && cli.min_time <= 600.0) {
        return Err(BenchError::OutOfRange {
            flag: "--min-time",
            rule: "be between 0 and 600 seconds",
            value: cli.min_time.to_string(),
        });
    }
    if let Some(Command::Frontier {
        max_point_s,
        max_gib,
        rounds,
        ..
    }) = &cli.command
    {
        if let Some(s) = max_point_s.filter(|s| !(*s > 0.0 && s.is_finite())) {
            return Err(BenchError::OutOfRange {
                flag: "--max-point-s",
                rule: "be positive",
                value: s.to_string(),
            });
        }
        if !(*max_gib > 0.0 && max_gib.is_finite()) {
            return Err(BenchError::OutOfRange {
                flag: "--max-gib",
                rule: "be positive",
                value: max_gib.to_string(),
            });
        }
        if *rounds == 0 || *rounds > 100 {
            return Err(BenchError::OutOfRange {
                flag: "--rounds",
                rule: "be in 1..=100",
                value: rounds.to_string(),
            });
        }
    }
    if let Some(n) = cli.seeds.filter(|&n| n == 0 || n > 100) {
        return Err(BenchError::OutOfRange {
            flag: "--seeds",
            rule: "be between 1 and 100",
            value: n.to_string(),
        });
    }
    if let Some(Command::Pendulum {
        lr, lr_final, clip, ..
    }) = &cli.command
    {
        if !(*lr > 0.0 && lr.is_finite() && *lr_final > 0.0 && *lr_final <= 1.0 && *clip >= 0.0) {
            return Err(BenchError::Schedule {
                lr: *lr,
                lr_final: *lr_final,
                clip: *clip,
            });
        }
    }
    if let Some(Command::SdeGan {
        steps,
        batch,
        rho,
        horizon,
        ..
    }) = &cli.command
    {
        if *steps == 0 || *batch == 0 {
            return Err(BenchError::OutOfRange {
                flag: "--steps and --batch",
                rule: "be at least 1",
                value: format!("{steps} and {batch}"),
            });
        }
        if rho.is_nan() || rho.abs() >= 1.0 {
            return Err(BenchError::OutOfRange {
                flag: "--rho",
                rule: "lie in (−1, 1)",
                value: rho.to_string(),
            });
        }
        if !(*horizon > 0.0 && horizon.is_finite()) {
            return Err(BenchError::OutOfRange {
                flag: "--horizon",
                rule: "be positive and finite",
                value: horizon.to_string(),
            });
        }
    }
    Ok(())
}

/// Creates the output directory and proves it writable (a probe file written and removed),
/// so that a bad `--out` fails at once instead of after the whole run.
fn prepare_out(out: &std::path::Path) -> BenchResult<()> {
    if out.exists() && !out.is_dir() {
        return Err(BenchError::OutIsFile {
            path: out.to_path_buf(),
        });
    }
    std::fs::create_dir_all(out).map_err(|source| BenchError::OutNotCreated {
        path: out.to_path_buf(),
        source,
    })?;
    let probe = out.join(format!(".revode-bench-probe-{}", std::process::id()));
    std::fs::write(&probe, b"probe")
        .and_then(|()| std::fs::remove_file(&probe))
        .map_err(|source| BenchError::OutNotWritable {
            path: out.to_path_buf(),
            source,
        })
}

/// Runs one command line; `command` is what its report records as the command.
fn run(cli: Cli, command: String) -> BenchResult<()> {
    validate(&cli)?;
    if let Some(Command::All) = cli.command {
        return run_all(&cli, &command);
    }
    match &cli.command {
        Some(Command::ExportProblems) => {
            prepare_out(&cli.out)?;
            return peers::export_problems(&cli.out);
        }
        Some(Command::PeerTime {
            problem,
            method,
            reps,
        }) => return peers::peer_time(problem, method, *reps),
        _ => {}
    }
    prepare_out(&cli.out)?;
    let ctx = Ctx {
        out: cli.out.clone(),
        full: cli.full,
        min_time: if cli.full {
            cli.min_time.max(0.5)
        } else {
            cli.min_time
        },
        quiet: cli.quiet,
        n_seeds: cli.seeds,
        provenance: provenance::Provenance::capture().with_command(&command),
        command,
        report: Mutex::new(String::new()),
    };
    ctx.emit(
        "header",
        "# revode-bench report
",
    )?;
    match cli.command {
        None => cross_family(&ctx)?,
        Some(Command::Complexity) => {
            ode::complexity(&ctx)?;
        }
        Some(Command::Reconstruction) => ode::reconstruction(&ctx)?,
        Some(Command::Stability) => ode::stability_regions(&ctx)?,
        Some(Command::Memory) => ode::memory(&ctx)?,
        Some(Command::Compute) => compute::compute(&ctx)?,
        Some(Command::Scaling) => scaling::scaling(&ctx)?,
        Some(Command::Convergence) => training::convergence(&ctx)?,
        Some(Command::WhiteDwarf) => training::white_dwarf(&ctx)?,
        Some(Command::Oscillators) => training::oscillators(&ctx)?,
        Some(Command::Pendulum {
            steps,
            lr,
            lr_final,
            clip,
            controller,
        }) => {
            let run = training::PendulumRun {
                steps,
                lr,
                lr_final,
                clip: (clip > 0.0).then_some(clip),
                controller,
            };
            training::pendulum(&ctx, &run)?
        }
        Some(Command::Spirals { field }) => {
            cde_exp::spirals_experiment(&ctx, cde::backend(&field))?
        }
        Some(Command::JapaneseVowels { field, memory_only }) => {
            cde_exp::japanese_vowels(&ctx, cde::backend(&field), memory_only)?
        }
        Some(Command::Brownian) => sde::brownian(&ctx)?,
        Some(Command::SdeGan {
            steps,
            batch,
            channels,
            rho,
            global_mean,
            seed,
            horizon,
        }) => {
            let settings = sde_gan::GanRun {
                detrend: !global_mean,
                seeds: match ctx.n_seeds {
                    Some(_) => ctx.seeds(1),
                    None => vec![seed],
                },
                horizon,
                steps,
                batch,
                channels: channels as usize,
                rho,
            };
            sde_gan::sde_gan(&ctx, &settings)?
        }
        Some(Command::SdeFit) => sde::sde_fit(&ctx)?,
        Some(Command::PdeDrift) => pde::drift(&ctx)?,
        Some(Command::PdeMemory) => pde::memory(&ctx)?,
        Some(Command::PdeSurrogate { problem }) => pde_surrogate::surrogate(&ctx, &problem)?,
        Some(Command::Frontier {
            problems,
            rounds,
            max_point_s,
            max_gib,
        }) => {
            let settings = frontier::Settings {
                ns: if ctx.full {
                    vec![1000, 10_000, 100_000]
                } else {
                    vec![1000, 10_000]
                },
                rounds: rounds.max(1),
                max_point_s: max_point_s.unwrap_or(if ctx.full { 40.0 } else { 5.0 }),
                max_bytes: max_gib * (1u64 << 30) as f64,
                point_budget_s: if ctx.full { 20.0 } else { 2.0 },
                problems,
            };
            frontier_run::frontier(&ctx, &settings)?
        }
        Some(Command::ExportProblems) | Some(Command::PeerTime { .. }) => {}
        Some(Command::All) => {}
    }
    let body = ctx.report.lock().map(|r| r.clone()).unwrap_or_default();
    // The provenance goes under the title, with the wall time of the whole run.
    let (title, rest) = body.split_once('\n').unwrap_or((&body, ""));
    let text = format!("{title}\n\n{}{rest}", ctx.provenance.header());
    report::write_atomic(&ctx.out.join("report.md"), text.as_bytes())?;
    eprintln!("results written to {}", ctx.out.display());
    Ok(())
}

/// `all`: every experiment in its own folder ([`all::plan`]), then an index report.md listing
/// each folder, its equivalent command and its wall time.
fn run_all(cli: &Cli, command: &str) -> BenchResult<()> {
    prepare_out(&cli.out)?;
    let start = std::time::Instant::now();
    let mut index = Table::new(&["folder", "equivalent command", "wall time"]);
    for (folder, args) in all::plan(&cli.out, cli.full, cli.quiet) {
        let equivalent = format!("revode-bench {}", args.join(" "));
        let argv = std::iter::once("revode-bench".to_string()).chain(args);
        let sub = Cli::try_parse_from(argv).map_err(|source| BenchError::AllPlan {
            folder: folder.clone(),
            source,
        })?;
        let t = std::time::Instant::now();
        run(sub, format!("{equivalent} (part of: {command})"))?;
        index.row(vec![
            format!("[{folder}]({folder}/report.md)"),
            format!("`{equivalent}`"),
            format!("{:.0} s", t.elapsed().as_secs_f64()),
        ]);
    }
    let provenance = provenance::Provenance::capture().with_command(command);
    let text = format!(
        "# revode-bench: every experiment\n\n{}Each folder holds one experiment's report.md (with its \
         own provenance), JSON, CSV and plots. Total wall time {:.0} s.\n\n{}\n",
        provenance.header(),
        start.elapsed().as_secs_f64(),
        index.render()
    );
    report::write_atomic(&cli.out.join("report.md"), text.as_bytes())?;
    eprintln!("results written to {}", cli.out.display());
    Ok(())
}

fn main() {
    let cli = Cli::parse();
    let command = std::env::args()
        .map(|a| if a.contains(' ') { format!("'{a}'") } else { a })
        .collect::<Vec<_>>()
        .join(" ");
    if let Err(e) = run(cli, command) {
        eprintln!("revode-bench: {e}");
        std::process::exit(1);
    }
}
