//! Data-parallel training of a neural ODE over MPI ranks (feature `mpi`): 8 shards of a
//! 32-trajectory minibatch spread over the ranks, reversible gradients, the one trainer.
//! Rank 0 writes the final parameters and losses (as exact bit patterns) and the checkpoints.
//!
//! ```text
//! mpirun -np 2 target/release/examples/mpi_train --steps 20 --out run.txt \
//!     [--checkpoint BASE [--checkpoint-every K]] [--stop-after K] [--resume]
//!     [--fail-rank R --fail-step S]
//! ```
//! `scripts/mpi-tests.sh` runs it with 1 and 2 ranks and compares the outputs bit for bit.
//! `--problem compute` trains the compute-bound setting instead (MLP 32 → 128 → 128 → 32, f32,
//! batch 256 in 2 shards, midpoint, N = 50; `--threads T` computes the shards on T threads of
//! one rank instead) and `--comm-bench` times the collectives; the
//! bench's `scaling` subcommand runs both.

use mpi::traits::Communicator;
use revode_core::loss::mse;
use revode_core::mlp::MlpSpec;
use revode_core::prelude::*;
use revode_core::train::distributed::{shard_rows, Distributed};
use revode_core::train::{self, LossAndGrad, Schedule, TrainConfig, TrainState, Trainer};
use std::path::PathBuf;

const BATCH: usize = 32;
const DIM: usize = 2;
const SHARDS: usize = 8;

/// Trajectories of a damped rotation from `BATCH` initial points, at `times`.
fn data(times: &[f64]) -> (Vec<f64>, Vec<Vec<f64>>) {
    let y0: Vec<f64> = (0..BATCH * DIM)
        .map(|i| ((i * 7 % 11) as f64 / 5.5) - 1.0)
        .collect();
    let ys = times
        .iter()
        .map(|&t| {
            let (c, s, d) = ((1.5 * t).cos(), (1.5 * t).sin(), (-0.2 * t).exp());
            y0.chunks(DIM)
                .flat_map(|p| [d * (c * p[0] - s * p[1]), d * (s * p[0] + c * p[1])])
                .collect()
        })
        .collect();
    (y0, ys)
}

/// Stops a run of `steps` steps after `at` of them (an interruption, as if the job were
/// killed after a checkpoint), every rank at the same step.
struct StopAfter<L> {
    inner: L,
    at: Option<usize>,
}

const STOPPED: &str = "stop-after";

impl<L: LossAndGrad> LossAndGrad for StopAfter<L> {
    fn loss_and_grad(&mut self, step: usize, p: &[f64], g: &mut [f64]) -> revode_core::Result<f64> {
        if self.at == Some(step) {
            return Err(Error::config(STOPPED, "interrupted"));
        }
        self.inner.loss_and_grad(step, p, g)
    }
}

struct Args {
    steps: usize,
    out: PathBuf,
    checkpoint: Option<PathBuf>,
    checkpoint_every: usize,
    resume: bool,
    stop_after: Option<usize>,
    fail: Option<(usize, usize)>,
    compute: bool,
    comm_bench: bool,
    threads: Option<usize>,
}

fn parse() -> std::result::Result<Args, String> {
    let mut a = Args {
        steps: 20,
        out: PathBuf::from("mpi_train.txt"),
        checkpoint: None,
        checkpoint_every: 0,
        resume: false,
        stop_after: None,
        fail: None,
        compute: false,
        comm_bench: false,
        threads: None,
    };
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let mut it = argv.iter();
    let num = |v: Option<&String>, k: &str| -> std::result::Result<usize, String> {
        v.ok_or(format!("{k} needs a value"))?
            .parse()
            .map_err(|e| format!("{k}: {e}"))
    };
    let (mut fail_rank, mut fail_step) = (None, None);
    while let Some(k) = it.next() {
        match k.as_str() {
            "--steps" => a.steps = num(it.next(), k)?,
            "--out" => a.out = PathBuf::from(it.next().ok_or("--out needs a path")?),
            "--checkpoint" => {
                a.checkpoint = Some(PathBuf::from(it.next().ok_or("--checkpoint needs a path")?))
            }
            "--checkpoint-every" => a.checkpoint_every = num(it.next(), k)?,
            "--resume" => a.resume = true,
            "--stop-after" => a.stop_after = Some(num(it.next(), k)?),
            "--problem" => a.compute = it.next().map(String::as_str) == Some("compute"),
            "--comm-bench" => a.comm_bench = true,
            "--threads" => a.threads = Some(num(it.next(), k)?),
            "--fail-rank" => fail_rank = Some(num(it.next(), k)?),
            "--fail-step" => fail_step = Some(num(it.next(), k)?),
            other => return Err(format!("unknown argument {other}")),
        }
    }
    a.fail = fail_rank.zip(fail_step);
    Ok(a)
}

/// The compute-bound setting's shard: 128 of the 256 rows, reversible midpoint over N = 50,
/// loss = mean square of y(T) over the whole batch.
fn compute_shard(s: usize, p: &[f64], g: &mut [f64]) -> revode_core::Result<f64> {
    use revode_core::mlp::Activation;
    let spec = MlpSpec {
        dim: 32,
        hidden: 128,
        depth: 2,
        activation: Activation::Tanh,
        time: false,
        time_first: false,
        outputs: None,
    };
    let rows = shard_rows(256, 2, s);
    let field = Mlp::<f32>::from_spec(spec, rows.len())?.with_params(p)?;
    let scheme = Reversible::new(Rk::new(OdeTerm::new(field), Tableau::midpoint()), 0.999)?;
    let y0: Vec<f32> = (rows.start * 32..rows.end * 32)
        .map(|i| (i as f32 * 0.61).sin())
        .collect();
    let mut opts = SolveOptions::fixed(0.01);
    opts.stability_check_dim = 0;
    opts.stability_krylov = 0;
    let total = (256 * 32) as f64;
    let r = gradient(
        &scheme,
        &y0,
        &[0.0, 0.5],
        &opts,
        &GradientMethod::Reversible.into(),
        |ys, cots| {
            let v = ys[1].to_f64_vec();
            cots[1].set_from_f64(&v.iter().map(|x| 2.0 * x / total).collect::<Vec<_>>());
            v.iter().map(|x| x * x).sum::<f64>() / total
        },
    )?;
    g.iter_mut()
        .zip(&r.params)
        .for_each(|(g, &v)| *g = v as f64);
    Ok(r.loss)
}

/// Minimum over 10 repetitions of an all-reduce (sum) and an all-gather of n doubles per rank.
fn comm_bench(
    world: &mpi::topology::SimpleCommunicator,
    out: &std::path::Path,
) -> revode_core::Result<()> {
    use mpi::collective::SystemOperation;
    use mpi::traits::CommunicatorCollectives;
    let p = world.size() as usize;
    let mut text =
        format!("# collectives on {p} ranks: op, doubles per rank, seconds (min of 10)\n");
    for n in [1_000usize, 10_000, 100_000, 1_000_000] {
        let send = vec![1.0f64; n];
        let mut sum = vec![0.0f64; n];
        let mut gathered = vec![0.0f64; n * p];
        let (mut t_reduce, mut t_gather) = (f64::INFINITY, f64::INFINITY);
        for rep in 0..12 {
            world.barrier();
            let t = std::time::Instant::now();
            world.all_reduce_into(&send[..], &mut sum[..], SystemOperation::sum());
            let a = t.elapsed().as_secs_f64();
            world.barrier();
            let t = std::time::Instant::now();
            world.all_gather_into(&send[..], &mut gathered[..]);
            let b = t.elapsed().as_secs_f64();
            if rep >= 2 {
                t_reduce = t_reduce.min(a);
                t_gather = t_gather.min(b);
            }
        }
        text += &format!("allreduce {n} {t_reduce:e}\nallgather {n} {t_gather:e}\n");
    }
    if world.rank() == 0 {
        train::write_atomic(out, text.as_bytes())?;
    }
    Ok(())
}

/// The compute-bound setting on `threads` threads of this process (train::sharded).
fn threads_only(threads: usize, args: &Args) -> revode_core::Result<()> {
    let spec = MlpSpec {
        depth: 2,
        ..MlpSpec::new(32, 128)
    };
    let mut state = TrainState::new(spec.init_uniform(0), 1e-2, 0.0, serde_json::Value::Null)?;
    let f = train::sharded(2, threads, |_, s, p, g| compute_shard(s, p, g))?;
    let start = std::time::Instant::now();
    Trainer::new(TrainConfig::new(args.steps, Schedule::cosine(1e-2, 0.1)))
        .run_with(&mut state, f)?;
    let per_step = start.elapsed().as_secs_f64() / args.steps.max(1) as f64;
    let text = format!(
        "# 1 rank, {threads} threads, {} steps, {per_step:e} s/step\n",
        args.steps
    );
    train::write_atomic(&args.out, text.as_bytes())
}

fn run(args: Args) -> revode_core::Result<()> {
    let universe =
        mpi::initialize().ok_or_else(|| Error::config("mpi", "MPI was already initialised"))?;
    let world = universe.world();
    if args.comm_bench {
        return comm_bench(&world, &args.out);
    }
    if let Some(t) = args.threads.filter(|_| args.compute) {
        return threads_only(t, &args);
    }
    let times: Vec<f64> = (0..=6).map(|k| 0.3 * k as f64).collect();
    let (y0, ys) = data(&times);
    let spec = MlpSpec::new(DIM, 16);
    let rank = world.rank() as usize;
    let fail = args.fail;
    let compute = args.compute;
    let shard = |step: usize, s: usize, p: &[f64], g: &mut [f64]| -> revode_core::Result<f64> {
        if fail == Some((rank, step)) {
            return Err(Error::config("test", "injected failure"));
        }
        if compute {
            return compute_shard(s, p, g);
        }
        let rows = shard_rows(BATCH, SHARDS, s);
        let cols = rows.start * DIM..rows.end * DIM;
        let field = Mlp::from_spec(spec.clone(), rows.len())?.with_params(p)?;
        let scheme = Reversible::new(Rk::new(OdeTerm::new(field), Tableau::midpoint()), 0.999)?;
        // Each shard's loss is its share of the minibatch mean: scale by its fraction of rows.
        let share = rows.len() as f64 / BATCH as f64;
        let r = gradient(
            &scheme,
            &y0[cols.clone()].to_vec(),
            &times,
            &SolveOptions::fixed(0.05),
            &GradientMethod::Reversible.into(),
            |pred, cots| {
                let mut l = 0.0;
                for ((y, d), c) in pred.iter().zip(&ys).zip(cots.iter_mut()) {
                    l += share * mse(y, &d[cols.clone()], c).unwrap_or(f64::NAN);
                    c.iter_mut().for_each(|v| *v *= share);
                }
                l
            },
        )?;
        g.copy_from_slice(&r.params);
        Ok(r.loss)
    };
    let (shards, p0) = if compute {
        let s = MlpSpec {
            depth: 2,
            ..MlpSpec::new(32, 128)
        };
        (2, s.init_uniform(0))
    } else {
        (SHARDS, spec.init_uniform(0))
    };
    let dist = Distributed::new(world, shards, shard)?.with_check_every(5);
    let mut state = match (&args.checkpoint, args.resume) {
        (Some(base), true) => train::load(base)?,
        _ => TrainState::new(p0, 1e-2, 0.0, serde_json::Value::Null)?,
    };
    dist.broadcast(&mut state.params);
    let config = TrainConfig {
        checkpoint: args.checkpoint.clone().filter(|_| rank == 0),
        checkpoint_every: args.checkpoint_every,
        ..TrainConfig::new(args.steps, Schedule::cosine(1e-2, 0.1))
    };
    let ranks = dist.size();
    let stop = StopAfter {
        inner: dist,
        at: args.stop_after,
    };
    let start = std::time::Instant::now();
    let first = state.step();
    match Trainer::new(config).run_with(&mut state, stop) {
        Err(Error::Config { key, .. }) if key == STOPPED => {}
        r => r?,
    }
    if rank == 0 {
        let per_step = start.elapsed().as_secs_f64() / (state.step() - first).max(1) as f64;
        let mut text = format!(
            "# {ranks} ranks, {} steps, {per_step:e} s/step\n",
            state.step()
        );
        for (name, v) in [("params", &state.params), ("history", &state.history)] {
            let bits: Vec<String> = v.iter().map(|x| format!("{:016x}", x.to_bits())).collect();
            text += &format!("{name} {}\n", bits.join(" "));
        }
        train::write_atomic(&args.out, text.as_bytes())?;
        println!(
            "{ranks} ranks: loss {:.4e} → {:.4e} after {} steps; wrote {}",
            state.history[0],
            state.history[state.step() - 1],
            state.step(),
            args.out.display()
        );
    }
    Ok(())
}

fn main() {
    let args = match parse() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("mpi_train: {e}");
            std::process::exit(2);
        }
    };
    if let Err(e) = run(args) {
        eprintln!("mpi_train: {e}");
        std::process::exit(1);
    }
}
