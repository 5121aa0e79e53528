//! The compute-bound neural-ODE setting on dfdx: dim 32, MLP 32 → 128 → 128 → 32 (tanh), batch
//! 256, midpoint, N = 1000, f32, one thread.

use crate::measure::median_time;
use crate::report::{self, fmt_bytes, fmt_time, BenchResult, Table};
use crate::Ctx;
use dfdx::prelude::*;
use revode_core::mlp::{Activation, MlpSpec};
use revode_core::neural::{Batch, NeuralMlp, NeuralOdeTerm};
use revode_core::*;
use serde::Serialize;

const D: usize = 32;
const H: usize = 128;
const BATCH: usize = 256;

#[derive(Serialize)]
struct ComputeOut {
    command: String,
    setting: String,
    n: usize,
    rows: Vec<(String, f64, usize, f64)>,
    matmul_gflops: f64,
    flops_per_eval: f64,
}

fn mean_square(ys: &[Batch<D, f32, Cpu>], cots: &mut [Batch<D, f32, Cpu>]) -> f64 {
    let y = &ys[ys.len() - 1];
    let n = y.len() as f32;
    let last = cots.len() - 1;
    cots[last].0 = y.0.clone() * (2.0 / n);
    (y.0.clone().square().mean::<Rank0, _>()).as_vec()[0] as f64
}

/// Times one gradient per method on one thread; reports GFLOP/s against a plain dfdx matmul.
pub fn compute(ctx: &Ctx) -> BenchResult<()> {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .map_err(|e| e.to_string())?;
    pool.install(|| run(ctx))
}

fn run(ctx: &Ctx) -> BenchResult<()> {
    let n = if ctx.full { 1000 } else { 200 };
    let dev = Cpu::seed_from_u64(0);
    let spec = MlpSpec {
        dim: D,
        hidden: H,
        depth: 2,
        activation: Activation::Tanh,
        time: false,
    };
    let model =
        NeuralMlp::<D, H, f32, Cpu>::init_uniform(&dev, spec, 0).map_err(|e| e.to_string())?;
    let y: Vec<f32> = (0..BATCH * D).map(|i| ((i as f32) * 0.61).sin()).collect();
    let y0 = Batch::<D, f32, Cpu>::from_rows(&dev, BATCH, &y).map_err(|e| e.to_string())?;
    let h = 0.01;
    let times = [0.0, n as f64 * h];
    let mut opts = SolveOptions::fixed(h);
    opts.stability_check_dim = 0;
    let map = Rk::new(NeuralOdeTerm { model }, Tableau::midpoint());
    let rev = Reversible::new(map.clone(), 0.999).map_err(|e| e.to_string())?;
    let plain = Plain::new(map);
    let mut rows = Vec::new();
    let reps = if ctx.full { 3 } else { 1 };
    let bar = ctx.bar(4, "compute");
    // Plain forward solve, direct (full tape) and reversible gradients.
    let (t_fwd, _) = median_time(0.0, reps, || {
        let _ = solve(&plain, &y0, &times, &opts);
    });
    bar.inc(1);
    let (_, peak_fwd, _) = crate::alloc::measure(|| solve(&plain, &y0, &times, &opts).map(|_| ()));
    rows.push((
        "plain forward solve".to_string(),
        t_fwd,
        peak_fwd,
        (2 * n) as f64,
    ));
    for (label, scheme_rev, m) in [
        (
            "direct (full tape), plain midpoint",
            false,
            GradientMethod::Direct,
        ),
        ("reversible, λ = 0.999", true, GradientMethod::Reversible),
        (
            "checkpointed (default c), plain midpoint",
            false,
            GradientMethod::Checkpointed { snapshots: None },
        ),
    ] {
        let go: GradientOptions = m.into();
        let run = || -> std::result::Result<u64, String> {
            if scheme_rev {
                gradient(&rev, &y0, &times, &opts, &go, mean_square)
                    .map(|g| g.stats.evaluations + 2 * g.stats.pullbacks)
                    .map_err(|e| e.to_string())
            } else {
                gradient(&plain, &y0, &times, &opts, &go, mean_square)
                    .map(|g| g.stats.evaluations + 2 * g.stats.pullbacks)
                    .map_err(|e| e.to_string())
            }
        };
        let (work, peak, _) = crate::alloc::measure(run);
        let work = work?;
        let (t, _) = median_time(0.0, reps, || {
            let _ = run();
        });
        rows.push((label.to_string(), t, peak, work as f64));
        bar.inc(1);
    }
    bar.finish_and_clear();
    // Reference: a plain dfdx matmul of the layer shapes (256 × 128 by 128 × 128).
    let a: Tensor<(usize, Const<H>), f32, Cpu> = dev.sample_normal_like(&(BATCH, Const::<H>));
    let w: Tensor<Rank2<H, H>, f32, Cpu> = dev.sample_normal();
    let (tm, _) = median_time(0.3, 1000, || {
        let _ = a.clone().matmul(w.clone().permute());
    });
    let matmul_gflops = 2.0 * (BATCH * H * H) as f64 / tm / 1e9;
    let flops_per_eval = 2.0 * BATCH as f64 * (D * H + H * H + H * D) as f64;
    let direct_t = rows[1].1;
    let mut table = Table::new(&[
        "what",
        "time",
        "÷ direct",
        "peak heap",
        "eval-equivalents",
        "GFLOP/s (matmul work)",
    ]);
    for (label, t, peak, work) in &rows {
        table.row(vec![
            label.clone(),
            fmt_time(*t),
            format!("{:.2}", t / direct_t),
            fmt_bytes(*peak),
            format!("{work:.0}"),
            format!("{:.1}", work * flops_per_eval / t / 1e9),
        ]);
    }
    ctx.emit(
        "compute",
        &format!(
            "## Compute-bound setting (dfdx, f32, one thread)\n\nState dim {D}, MLP {D} → {H} → {H} → {D} (tanh), batch {BATCH}, explicit midpoint, \
             N = {n}, loss mean(y_N²). Eval-equivalents: evaluations + 2 × pullbacks (a pullback does twice a forward's matmul work). \
             Plain dfdx matmul {BATCH}×{H} by {H}×{H}: {matmul_gflops:.1} GFLOP/s.\n\n{}\n",
            table.render()
        ),
    )?;
    report::write_json(
        &ctx.out,
        "compute.json",
        &ComputeOut {
            command: ctx.command.clone(),
            setting: format!("dim {D}, MLP {D}-{H}-{H}-{D} tanh, batch {BATCH}, midpoint, f32"),
            n,
            rows,
            matmul_gflops,
            flops_per_eval,
        },
    )
    .map(|_| ())
}
