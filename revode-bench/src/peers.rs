//! The peer-comparison problems: exported for the Python peers in `peers/` (Diffrax, torchdiffeq,
//! torchsde) and timed on revode's side of the same interleaved rounds.
//!
//! `revode-bench export-problems --out DIR` writes one JSON file per problem with its sizes, step
//! size, initial state, flat weights, the loss and revode's own loss and gradient: `reference`,
//! the full tape of the scheme the peers solve (plain midpoint for the ODEs and the CDE,
//! reversible Heun for the SDE), and `reversible`, revode's reversible method. Floats are written
//! with round-trip precision, so the peers load exactly the values revode uses.
//!
//! Flat weight order (as [`MlpSpec::num_params`]): for each layer in order, the weight matrix
//! (outputs × inputs, row-major, the layout of `torch.nn.Linear.weight`) and then the bias.
//! States of batched problems are `batch × dim`, row-major (one row per sample).
//!
//! `revode-bench peer-time --problem NAME --method M --reps K` prints one JSON line with the
//! wall time of each of K repetitions after one warm-up run, on one thread.

use crate::report::{self, BenchError, BenchResult};
use revode_core::mlp::{Activation, MlpSpec};
use revode_core::{
    gradient, GradientMethod, Mlp, OdeTerm, Plain, Reversible, Rk, SolveOptions, Tableau,
};
use revode_sde::{reversible_heun, BrownianPath};
use serde::Serialize;
use std::path::Path;
use std::time::Instant;

/// Names of the exported problems.
pub const PROBLEMS: [&str; 5] = ["complexity", "compute", "sde", "brownian", "cde"];

/// The complexity problem: MLP 1 → 10 → 1 tanh (seed 0), y0 = 1, midpoint, h = 0.01, N = 1000.
const CX_N: usize = 1000;
const CX_H: f64 = 0.01;
/// The compute-bound problem: MLP 32 → 128 → 128 → 32 tanh (seed 0), batch 256, f32, N = 200.
const CB_D: usize = 32;
const CB_H: usize = 128;
const CB_BATCH: usize = 256;
const CB_N: usize = 200;
const CB_STEP: f64 = 0.01;
// The neural SDE: the cross-family benchmark's (`sde::neural_sde`: drift and diagonal
// diffusion MLPs 4 (+t) → 16 → 4, batch 32, on [0, 1]).
use crate::sde::{BATCH as SDE_BATCH, DIM as SDE_DIM};
const SDE_N: usize = 256;
const SDE_SEED: u64 = 5;
/// The Brownian query benchmark (as `revode-bench brownian`, quick size).
const BM_BATCH: usize = 32;
const BM_CHANNELS: usize = 4;
const BM_N: usize = 1 << 13;

/// Coupling parameter of revode's reversible method.
const LAMBDA: f64 = 0.999;

#[derive(Serialize)]
struct MlpOut {
    dim: usize,
    hidden: usize,
    depth: usize,
    time_input: bool,
    activation: &'static str,
    params: Vec<f64>,
}

impl MlpOut {
    fn new(spec: &MlpSpec, params: Vec<f64>) -> Self {
        MlpOut {
            dim: spec.dim,
            hidden: spec.hidden,
            depth: spec.depth,
            time_input: spec.time,
            activation: "tanh",
            params,
        }
    }
}

#[derive(Serialize)]
struct GradOut {
    method: String,
    loss: f64,
    grad_y0: Vec<f64>,
    grad_params: Vec<f64>,
    steps: usize,
}

#[derive(Serialize)]
struct OdeProblem {
    name: &'static str,
    description: String,
    dtype: &'static str,
    solver: &'static str,
    t0: f64,
    t1: f64,
    h: f64,
    n_steps: usize,
    batch: usize,
    y0: Vec<f64>,
    field: MlpOut,
    loss: &'static str,
    weight_order: &'static str,
    reference: GradOut,
    reversible: GradOut,
    lambda: f64,
}

#[derive(Serialize)]
struct SdeProblem {
    name: &'static str,
    description: String,
    dtype: &'static str,
    solver: &'static str,
    calculus: &'static str,
    noise: &'static str,
    t0: f64,
    t1: f64,
    h: f64,
    n_steps: usize,
    batch: usize,
    y0: Vec<f64>,
    drift: MlpOut,
    diffusion: MlpOut,
    /// W(t_{k+1}) − W(t_k) for each step k, `batch × dim` row-major.
    increments: Vec<Vec<f64>>,
    loss: &'static str,
    weight_order: &'static str,
    reference: GradOut,
    reversible: GradOut,
}

#[derive(Serialize)]
struct BrownianProblem {
    name: &'static str,
    description: String,
    batch: usize,
    channels: usize,
    n_queries: usize,
    h: f64,
    /// Start step index of each random-order query (the same sequence revode times).
    random_steps: Vec<usize>,
}

const WEIGHT_ORDER: &str = "per layer: weight (out x in, row-major), then bias";

/// Loss Σ y_N² of the last output (f64 states).
fn final_square(ys: &[Vec<f64>], cots: &mut [Vec<f64>]) -> f64 {
    crate::ode::final_square(ys, cots)
}

/// Loss mean(y_N²) of the last output (f32 states), accumulated in f64.
fn mean_square_f32(ys: &[Vec<f32>], cots: &mut [Vec<f32>]) -> f64 {
    let y = &ys[ys.len() - 1];
    let n = y.len() as f64;
    let last = cots.len() - 1;
    let mut l = 0.0;
    for (g, &v) in cots[last].iter_mut().zip(y) {
        let v = v as f64;
        l += v * v;
        *g = (2.0 * v / n) as f32;
    }
    l / n
}

fn complexity_spec() -> MlpSpec {
    MlpSpec::new(1, 10)
}

fn compute_spec() -> MlpSpec {
    MlpSpec {
        depth: 2,
        ..MlpSpec::new(CB_D, CB_H)
    }
}

fn sde_spec() -> MlpSpec {
    MlpSpec {
        time: true,
        activation: Activation::Tanh,
        ..MlpSpec::new(SDE_DIM, 16)
    }
}

/// The compute problem's weights, rounded to f32 (and back, exactly).
fn compute_params() -> Vec<f64> {
    compute_spec()
        .init_uniform(0)
        .into_iter()
        .map(|v| v as f32 as f64)
        .collect()
}

/// The compute problem's initial state, `sin(0.61 i)` in f32 as revode's compute bench.
fn compute_y0() -> Vec<f32> {
    (0..CB_BATCH * CB_D)
        .map(|i| ((i as f32) * 0.61).sin())
        .collect()
}

fn sde_y0() -> Vec<f64> {
    (0..SDE_BATCH * SDE_DIM)
        .map(|i| 0.3 * ((i as f64) * 0.61).sin())
        .collect()
}

type OdeMap<S> = Rk<OdeTerm<Mlp<S>>>;

fn complexity_map() -> BenchResult<OdeMap<f64>> {
    let field = Mlp::from_spec(complexity_spec(), 1)?.init_uniform(0);
    Ok(Rk::new(OdeTerm::new(field), Tableau::midpoint()))
}

fn compute_map() -> BenchResult<(OdeMap<f32>, SolveOptions)> {
    let field = Mlp::<f32>::from_spec(compute_spec(), CB_BATCH)?.with_params(&compute_params())?;
    let mut opts = SolveOptions::fixed(CB_STEP);
    opts.stability_check_dim = 0;
    Ok((Rk::new(OdeTerm::new(field), Tableau::midpoint()), opts))
}

/// The neural SDE of the cross-family benchmark (seed 5), on its own Brownian path.
fn sde_term() -> BenchResult<crate::sde::NeuralSde> {
    crate::sde::neural_sde(SDE_SEED)
}

/// Parses a method name of `peer-time`.
fn method(name: &str) -> BenchResult<GradientMethod> {
    match name {
        "reversible" => Ok(GradientMethod::Reversible),
        "direct" => Ok(GradientMethod::Direct),
        "checkpointed" => Ok(GradientMethod::Checkpointed { snapshots: None }),
        other => Err(BenchError::UnknownName {
            what: "method",
            name: other.to_string(),
            known: vec!["reversible", "direct", "checkpointed"],
        }),
    }
}

fn grad_out<P: Into<f64> + Copy, Q: Into<f64> + Copy>(
    method: &str,
    loss: f64,
    y0: &[P],
    params: &[Q],
    steps: usize,
) -> GradOut {
    GradOut {
        method: method.into(),
        loss,
        grad_y0: y0.iter().map(|&v| v.into()).collect(),
        grad_params: params.iter().map(|&v| v.into()).collect(),
        steps,
    }
}

/// One gradient of a problem with a method; returns (loss, flat gradient, steps).
fn run_once(problem: &str, m: &GradientMethod) -> BenchResult<GradOut> {
    let label = m.label();
    let go: revode_core::GradientOptions = m.clone().into();
    let reversible = matches!(m, GradientMethod::Reversible);
    match problem {
        "complexity" => {
            let map = complexity_map()?;
            let times = [0.0, CX_N as f64 * CX_H];
            let opts = SolveOptions::fixed(CX_H);
            let y0 = vec![1.0];
            let g = if reversible {
                let rev = Reversible::new(map, LAMBDA)?;
                gradient(&rev, &y0, &times, &opts, &go, final_square)
            } else {
                gradient(&Plain::new(map), &y0, &times, &opts, &go, final_square)
            }?;
            Ok(grad_out(&label, g.loss, &g.y0, &g.params, g.steps))
        }
        "compute" => {
            let (map, opts) = compute_map()?;
            let times = [0.0, CB_N as f64 * CB_STEP];
            let y0 = compute_y0();
            let g = if reversible {
                let rev = Reversible::new(map, LAMBDA)?;
                gradient(&rev, &y0, &times, &opts, &go, mean_square_f32)
            } else {
                gradient(&Plain::new(map), &y0, &times, &opts, &go, mean_square_f32)
            }?;
            Ok(grad_out(&label, g.loss, &g.y0, &g.params, g.steps))
        }
        "sde" => {
            // Reversible Heun for every method: the full tape of the same scheme is the check.
            let scheme = reversible_heun(sde_term()?)?;
            let opts = SolveOptions::fixed(1.0 / SDE_N as f64);
            let g = gradient(&scheme, &sde_y0(), &[0.0, 1.0], &opts, &go, final_square)?;
            Ok(grad_out(&label, g.loss, &g.y0, &g.params, g.steps))
        }
        other => Err(BenchError::UnknownName {
            what: "gradient problem",
            name: other.to_string(),
            known: vec!["complexity", "compute", "sde"],
        }),
    }
}

fn ode_problem(name: &'static str) -> BenchResult<OdeProblem> {
    let reference = run_once(name, &GradientMethod::Direct)?;
    let reversible = run_once(name, &GradientMethod::Reversible)?;
    Ok(if name == "complexity" {
        OdeProblem {
            name,
            description: "MLP 1 -> 10 -> 1 (tanh), explicit midpoint, fixed step, loss sum(y_N^2)"
                .into(),
            dtype: "float64",
            solver: "midpoint",
            t0: 0.0,
            t1: CX_N as f64 * CX_H,
            h: CX_H,
            n_steps: CX_N,
            batch: 1,
            y0: vec![1.0],
            field: MlpOut::new(&complexity_spec(), complexity_spec().init_uniform(0)),
            loss: "sum(y_N^2)",
            weight_order: WEIGHT_ORDER,
            reference,
            reversible,
            lambda: LAMBDA,
        }
    } else {
        OdeProblem {
            name,
            description: format!(
                "MLP {CB_D} -> {CB_H} -> {CB_H} -> {CB_D} (tanh), batch {CB_BATCH}, explicit \
                 midpoint, fixed step, float32, loss mean(y_N^2) over batch and dim"
            ),
            dtype: "float32",
            solver: "midpoint",
            t0: 0.0,
            t1: CB_N as f64 * CB_STEP,
            h: CB_STEP,
            n_steps: CB_N,
            batch: CB_BATCH,
            y0: compute_y0().into_iter().map(f64::from).collect(),
            field: MlpOut::new(&compute_spec(), compute_params()),
            loss: "mean(y_N^2)",
            weight_order: WEIGHT_ORDER,
            reference,
            reversible,
            lambda: LAMBDA,
        }
    })
}

fn sde_problem() -> BenchResult<SdeProblem> {
    let term = sde_term()?;
    let path = BrownianPath::new(0.0, 1.0, SDE_BATCH, SDE_DIM, SDE_SEED + 2)?;
    let h = 1.0 / SDE_N as f64;
    let mut increments = Vec::with_capacity(SDE_N);
    for k in 0..SDE_N {
        let mut dw = vec![0.0f64; SDE_BATCH * SDE_DIM];
        path.increment(k as f64 * h, (k + 1) as f64 * h, &mut dw)?;
        increments.push(dw);
    }
    let nd = sde_spec().num_params();
    let params = term.params();
    Ok(SdeProblem {
        name: "sde",
        description: "neural SDE: drift and diagonal diffusion MLPs 4 (+t, last input) -> 16 -> 4 \
                      (tanh), batch 32, Stratonovich, reversible Heun, fixed step on [0, 1], \
                      loss sum(y_N^2)"
            .into(),
        dtype: "float64",
        solver: "reversible_heun",
        calculus: "stratonovich",
        noise: "diagonal",
        t0: 0.0,
        t1: 1.0,
        h,
        n_steps: SDE_N,
        batch: SDE_BATCH,
        y0: sde_y0(),
        drift: MlpOut::new(&sde_spec(), params[..nd].to_vec()),
        diffusion: MlpOut::new(&sde_spec(), params[nd..].to_vec()),
        increments,
        loss: "sum(y_N^2)",
        weight_order: "grad_params: drift then diffusion; per layer: weight (out x in, \
                       row-major), then bias",
        reference: run_once("sde", &GradientMethod::Direct)?,
        reversible: run_once("sde", &GradientMethod::Reversible)?,
    })
}

/// Start indices of the random-order queries (as `revode-bench brownian`).
fn random_steps() -> Vec<usize> {
    let mut rng = revode_core::random::SplitMix64::new(3);
    (0..BM_N)
        .map(|_| (rng.next_u64() % BM_N as u64) as usize)
        .collect()
}

/// Writes every problem as `DIR/NAME.json`.
pub fn export_problems(out: &Path) -> BenchResult<()> {
    for name in ["complexity", "compute"] {
        report::write_json(out, &format!("{name}.json"), &ode_problem(name)?)?;
    }
    report::write_json(out, "sde.json", &sde_problem()?)?;
    let bm = BrownianProblem {
        name: "brownian",
        description: format!(
            "one-step increments W(t_b) - W(t_a) of a {BM_BATCH} x {BM_CHANNELS} Brownian path \
             on [0, 1], h = 1/{BM_N}: forward sweep, reversed sweep, random order"
        ),
        batch: BM_BATCH,
        channels: BM_CHANNELS,
        n_queries: BM_N,
        h: 1.0 / BM_N as f64,
        random_steps: random_steps(),
    };
    report::write_json(out, "brownian.json", &bm)?;
    report::write_json(out, "cde.json", &crate::peers_cde::problem()?)?;
    eprintln!("problems written to {}", out.display());
    Ok(())
}

#[derive(Serialize)]
struct TimeOut {
    library: &'static str,
    problem: String,
    method: String,
    reps: usize,
    times: Vec<f64>,
    min: f64,
    loss: Option<f64>,
    /// For Brownian queries: sample variance of the increments divided by h.
    variance_over_h: Option<f64>,
}

/// Times `reps` Brownian sweeps of `order` (forward, reversed, random); returns (times, var/h).
fn time_brownian(order: &str, reps: usize) -> BenchResult<(Vec<f64>, f64)> {
    let n = BM_N;
    let h = 1.0 / n as f64;
    let random = random_steps();
    let step = |i: usize| -> BenchResult<(f64, f64)> {
        Ok(match order {
            "forward" => (i as f64 * h, (i + 1) as f64 * h),
            "reversed" => {
                let j = n - 1 - i;
                ((j + 1) as f64 * h, j as f64 * h)
            }
            "random" => (random[i] as f64 * h, (random[i] + 1) as f64 * h),
            other => {
                return Err(BenchError::UnknownName {
                    what: "order",
                    name: other.to_string(),
                    known: vec!["forward", "reversed", "random"],
                })
            }
        })
    };
    let mut out = vec![0.0f64; BM_BATCH * BM_CHANNELS];
    let mut times = Vec::new();
    let (mut sum, mut sq, mut count) = (0.0, 0.0, 0usize);
    // One warm-up sweep (not timed) on its own path, then a fresh path per timed sweep.
    for rep in 0..=reps {
        let path = BrownianPath::new(0.0, 1.0, BM_BATCH, BM_CHANNELS, 1 + rep as u64)?;
        let start = Instant::now();
        for i in 0..n {
            let (a, b) = step(i)?;
            path.increment(a, b, &mut out)?;
            if rep == 0 {
                for &v in &out {
                    sum += v;
                    sq += v * v;
                    count += 1;
                }
            }
        }
        if rep > 0 {
            times.push(start.elapsed().as_secs_f64());
        }
    }
    let mean = sum / count as f64;
    let var = sq / count as f64 - mean * mean;
    Ok((times, var / h))
}

/// Times `reps` gradients (after one warm-up) of a problem on one thread; prints JSON.
pub fn peer_time(problem: &str, method_name: &str, reps: usize) -> BenchResult<()> {
    let pool = rayon::ThreadPoolBuilder::new().num_threads(1).build()?;
    pool.install(|| {
        let reps = reps.max(1);
        let mut loss = None;
        let mut variance = None;
        let times = if problem == "brownian" {
            let (t, v) = time_brownian(method_name, reps)?;
            variance = Some(v);
            t
        } else if problem == "cde" {
            let c = crate::peers_cde::setup()?;
            let m = method(method_name)?;
            loss = Some(crate::peers_cde::loss_and_grad(&c, &m)?.0);
            let mut t = Vec::with_capacity(reps);
            for _ in 0..reps {
                let start = Instant::now();
                std::hint::black_box(crate::peers_cde::loss_and_grad(&c, &m)?);
                t.push(start.elapsed().as_secs_f64());
            }
            t
        } else {
            let m = method(method_name)?;
            loss = Some(run_once(problem, &m)?.loss);
            let mut t = Vec::with_capacity(reps);
            for _ in 0..reps {
                let start = Instant::now();
                std::hint::black_box(run_once(problem, &m)?);
                t.push(start.elapsed().as_secs_f64());
            }
            t
        };
        let out = TimeOut {
            library: "revode",
            problem: problem.into(),
            method: method_name.into(),
            reps,
            min: times.iter().copied().fold(f64::INFINITY, f64::min),
            times,
            loss,
            variance_over_h: variance,
        };
        let line = serde_json::to_string(&out).map_err(|source| BenchError::Json {
            what: format!("the peer-time result of {problem} {method_name}"),
            source,
        })?;
        println!("{line}");
        Ok(())
    })
}
