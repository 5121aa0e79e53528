//! The compute-bound neural-ODE setting on dfdx: dim 32, MLP 32 → 128 → 128 → 32 (tanh), batch
//! 256, midpoint, N = 1000, f32, one thread.

use crate::measure::median_time;
use crate::report::{self, fmt_bytes, fmt_time, BenchResult, Table};
use crate::Ctx;
use dfdx::prelude::*;
use revode_core::mlp::{Activation, MlpSpec};
use revode_core::neural::{Batch, NeuralMlp, NeuralOdeTerm};
use revode_core::prelude::*;
use serde::Serialize;

const D: usize = 32;
const H: usize = 128;
const BATCH: usize = 256;

#[derive(Serialize)]
struct ComputeOut {
    command: String,
    setting: String,
    n: usize,
    rows: Vec<Row>,
    /// Plain dfdx matmul of the layer shapes (dfdx's own, older gemm).
    matmul_gflops: f64,
    /// Plain product of the same shapes through the workspace's gemm (AVX-512 kernels where the
    /// CPU has them), the faster of two timings taken right before and after the native runs.
    gemm_gflops: f64,
    /// GFLOP/s of the native reversible gradient ÷ the fastest of the two plain products.
    reversible_of_peak: f64,
    /// Plain contiguous gemm products of exactly the gradient's shapes — per layer, the
    /// forward `B×in · in×out` and the pullback's `B×out · out×in` and `out×B · B×in` — in the
    /// native reversible gradient's proportions of evaluations and pullbacks: their GFLOP/s
    /// (the faster of two timings, before and after the native runs) …
    same_shapes_gflops: f64,
    /// … and the native reversible gradient's GFLOP/s ÷ that.
    reversible_of_same_shapes: f64,
    /// Per row: (id, evaluations, pullbacks) of one gradient or solve.
    counts: Vec<(String, u64, u64)>,
    /// Per row: (id without spaces, e.g. `native-reversible`, for the docs' figure markers;
    /// time in seconds; GFLOP/s of its matmul work; time ÷ its path's direct gradient).
    rates: Vec<(String, f64, f64, f64)>,
    flops_per_eval: f64,
}

/// GFLOP/s of a plain f32 product `BATCH × H` by `H × H` through the workspace's `gemm`, which
/// picks its kernels at run time (AVX-512 where the CPU reports `avx512f`, else FMA).
fn gemm_gflops() -> f64 {
    2.0 * (BATCH * H * H) as f64 / gemm_set_time(&[(BATCH, H, H)]) / 1e9
}

/// Seconds for the plain contiguous row-major f32 products `m × k` by `k × n` of `shapes`, one
/// after another (median of repetitions).
fn gemm_set_time(shapes: &[(usize, usize, usize)]) -> f64 {
    let operands: Vec<(Vec<f32>, Vec<f32>, Vec<f32>)> = shapes
        .iter()
        .map(|&(m, k, n)| {
            (
                (0..m * k).map(|i| ((i as f32) * 0.37).sin()).collect(),
                (0..k * n).map(|i| ((i as f32) * 0.11).cos()).collect(),
                vec![0.0f32; m * n],
            )
        })
        .collect();
    let mut operands = operands;
    let (t, _) = median_time(0.3, 1000, || {
        for (&(m, k, n), (a, b, c)) in shapes.iter().zip(operands.iter_mut()) {
            // SAFETY: row-major a (m × k), b (k × n), c (m × n) are exactly the sizes gemm
            // reads and writes with these strides; c does not alias a or b.
            unsafe {
                gemm::gemm(
                    m,
                    n,
                    k,
                    c.as_mut_ptr(),
                    1,
                    n as isize,
                    false,
                    a.as_ptr(),
                    1,
                    k as isize,
                    b.as_ptr(),
                    1,
                    n as isize,
                    0.0,
                    1.0,
                    false,
                    false,
                    false,
                    gemm::Parallelism::None,
                )
            }
        }
    });
    std::hint::black_box(&operands);
    t
}

/// The layers (inputs, outputs) of the compute-bound MLP.
const LAYERS: [(usize, usize); 3] = [(D, H), (H, H), (H, D)];

/// Seconds of plain products for one evaluation's shapes and one pullback's.
fn same_shape_times() -> (f64, f64) {
    let eval: Vec<_> = LAYERS.iter().map(|&(i, o)| (BATCH, i, o)).collect();
    let pull: Vec<_> = LAYERS
        .iter()
        .flat_map(|&(i, o)| [(BATCH, o, i), (o, BATCH, i)])
        .collect();
    (gemm_set_time(&eval), gemm_set_time(&pull))
}

/// mean(y_N²) through the host view (once per gradient), for any state type.
fn mean_square<V: State>(ys: &[V], cots: &mut [V]) -> f64 {
    let v = ys[ys.len() - 1].to_f64_vec();
    let n = v.len() as f64;
    let g: Vec<f64> = v.iter().map(|x| 2.0 * x / n).collect();
    let last = cots.len() - 1;
    cots[last].set_from_f64(&g);
    v.iter().map(|x| x * x).sum::<f64>() / n
}

type Row = (String, f64, usize, f64);
/// (label, evaluations, pullbacks).
type Count = (String, u64, u64);

/// Forward solve, direct, reversible and checkpointed gradients of one step map.
fn measure_map<M: StepMap + Clone>(
    path: &str,
    map: M,
    y0: &M::State,
    n: usize,
    reps: usize,
    ctx: &Ctx,
) -> BenchResult<(Vec<Row>, Vec<Count>)> {
    let h = 0.01;
    let times = [0.0, n as f64 * h];
    let mut opts = SolveOptions::fixed(h);
    opts.stability_check_dim = 0;
    opts.stability_krylov = 0;
    let plain = Plain::new(map.clone());
    let rev = Reversible::new(map, 0.999)?;
    let mut rows = Vec::new();
    let mut counts = Vec::new();
    let bar = ctx.bar(4, path);
    let (t_fwd, _) = median_time(0.0, reps, || {
        let _ = solve(&plain, y0, &times, &opts);
    });
    let (_, peak_fwd, _) = crate::alloc::measure(|| solve(&plain, y0, &times, &opts).map(|_| ()));
    rows.push((
        format!("{path}: plain forward solve"),
        t_fwd,
        peak_fwd,
        (2 * n) as f64,
    ));
    counts.push((format!("{path}: plain forward solve"), 2 * n as u64, 0));
    bar.inc(1);
    for (label, reversible, m) in [
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
        let run = || -> revode_core::Result<(u64, u64)> {
            let work = |g: &Stats| (g.evaluations, g.pullbacks);
            if reversible {
                gradient(&rev, y0, &times, &opts, &go, mean_square).map(|g| work(&g.stats))
            } else {
                gradient(&plain, y0, &times, &opts, &go, mean_square).map(|g| work(&g.stats))
            }
        };
        let (work, peak, _) = crate::alloc::measure(run);
        let (evals, pullbacks) = work?;
        let (t, _) = median_time(0.0, reps, || {
            let _ = run();
        });
        let work = evals + 2 * pullbacks;
        rows.push((format!("{path}: {label}"), t, peak, work as f64));
        counts.push((format!("{path}: {label}"), evals, pullbacks));
        bar.inc(1);
    }
    bar.finish_and_clear();
    Ok((rows, counts))
}

/// Times one gradient per method on one thread; reports GFLOP/s against a plain dfdx matmul.
pub fn compute(ctx: &Ctx) -> BenchResult<()> {
    let pool = rayon::ThreadPoolBuilder::new().num_threads(1).build()?;
    pool.install(|| run(ctx))
}

fn run(ctx: &Ctx) -> BenchResult<()> {
    let n = if ctx.full { 1000 } else { 200 };
    let reps = if ctx.full { 3 } else { 1 };
    let dev = Cpu::seed_from_u64(0);
    let spec = MlpSpec {
        dim: D,
        hidden: H,
        depth: 2,
        activation: Activation::Tanh,
        time: false,
        time_first: false,
        outputs: None,
    };
    let y: Vec<f32> = (0..BATCH * D).map(|i| ((i as f32) * 0.61).sin()).collect();
    // The dfdx path: batched device tensors, on-device pullback.
    let model = NeuralMlp::<f32, Cpu>::init_uniform(&dev, spec.clone(), 0)?;
    let y0 = Batch::<f32, Cpu>::from_rows(&dev, BATCH, D, &y)?;
    let (mut rows, mut counts) = measure_map(
        "dfdx",
        Rk::new(NeuralOdeTerm { model }, Tableau::midpoint()),
        &y0,
        n,
        reps,
        ctx,
    )?;
    // The plain product is timed right before and right after the native gradients and the
    // faster of the two counts: the machine's speed drifts, and the slower reading would
    // flatter the gradients' share of it.
    let gemm_before = gemm_gflops();
    let shapes_before = same_shape_times();
    // The native path: the same parameters, gemm kernels with fused bias + tanh.
    let native = Mlp::<f32>::from_spec(spec.clone(), BATCH)?.init_uniform(0);
    let (native_rows, native_counts) = measure_map(
        "native",
        Rk::new(OdeTerm::new(native), Tableau::midpoint()),
        &y,
        n,
        reps,
        ctx,
    )?;
    rows.extend(native_rows);
    counts.extend(native_counts);
    let shapes_after = same_shape_times();
    // Reference: a plain dfdx matmul of the layer shapes (256 × 128 by 128 × 128).
    let a: Tensor<(usize, Const<H>), f32, Cpu> = dev.sample_normal_like(&(BATCH, Const::<H>));
    let w: Tensor<Rank2<H, H>, f32, Cpu> = dev.sample_normal();
    let (tm, _) = median_time(0.3, 1000, || {
        let _ = a.clone().matmul(w.clone().permute());
    });
    let matmul_gflops = 2.0 * (BATCH * H * H) as f64 / tm / 1e9;
    let gemm_gflops = gemm_before.max(gemm_gflops());
    let peak = matmul_gflops.max(gemm_gflops);
    let flops_per_eval = 2.0 * BATCH as f64 * (D * H + H * H + H * D) as f64;
    let direct_of = |label: &str| {
        let path = label.split(':').next().unwrap_or("");
        rows.iter()
            .find(|r| r.0 == format!("{path}: direct (full tape), plain midpoint"))
            .map_or(f64::NAN, |r| r.1)
    };
    let reversible_of_peak = rows
        .iter()
        .find(|r| r.0 == "native: reversible, λ = 0.999")
        .map_or(f64::NAN, |r| r.3 * flops_per_eval / r.1 / 1e9 / peak);
    // The same shapes in the reversible gradient's mix: E evaluations and P pullbacks take
    // E·t_eval + P·t_pull as plain products (the faster timing of each set).
    let (t_eval, t_pull) = (
        shapes_before.0.min(shapes_after.0),
        shapes_before.1.min(shapes_after.1),
    );
    let reversible = "native: reversible, λ = 0.999";
    let (same_shapes_gflops, reversible_of_same_shapes) = counts
        .iter()
        .find(|c| c.0 == reversible)
        .zip(rows.iter().find(|r| r.0 == reversible))
        .map_or((f64::NAN, f64::NAN), |((_, e, p), r)| {
            let (e, p) = (*e as f64, *p as f64);
            let plain = e * t_eval + p * t_pull;
            let flops = (e + 2.0 * p) * flops_per_eval;
            (flops / plain / 1e9, plain / r.1)
        });
    let rates: Vec<(String, f64, f64, f64)> = rows
        .iter()
        .map(|(label, t, _, work)| {
            // "native: reversible, λ = 0.999" → "native-reversible".
            let (path, what) = label.split_once(": ").unwrap_or((label, ""));
            let first = what.split([' ', ',']).next().unwrap_or("");
            (
                format!("{path}-{first}"),
                *t,
                work * flops_per_eval / t / 1e9,
                t / direct_of(label),
            )
        })
        .collect();
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
            format!("{:.2}", t / direct_of(label)),
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
             Plain f32 products {BATCH}×{H} by {H}×{H}: dfdx matmul {matmul_gflops:.1} GFLOP/s, the workspace's gemm \
             {gemm_gflops:.1} GFLOP/s (AVX-512 kernels where the CPU has them, else FMA; the faster of two timings, before and after the native runs). The native reversible gradient runs at \
             {:.0} % of the faster of the two. Plain contiguous gemm products of exactly the gradient's shapes (per layer the forward {BATCH}×in·in×out, the pullback's \
             {BATCH}×out·out×in and out×{BATCH}·{BATCH}×in; layers {D}→{H}, {H}→{H}, {H}→{D}) in the reversible gradient's mix of evaluations and pullbacks: \
             {same_shapes_gflops:.1} GFLOP/s, of which the native reversible gradient reaches {:.0} %.\n\n{}\n",
            100.0 * reversible_of_peak,
            100.0 * reversible_of_same_shapes,
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
            gemm_gflops,
            reversible_of_peak,
            same_shapes_gflops,
            reversible_of_same_shapes,
            counts,
            rates,
            flops_per_eval,
        },
    )
    .map(|_| ())
}
