//! `revode-bench frontier`: the problems of the time–memory frontier, the report, the JSON
//! and the plot (docs/src/benchmarks.md, "Time–memory frontier").

use crate::frontier::{
    crossovers, run_problem, Collected, PanelCrossover, Point, Settings, Skip, Spec, TOL32, TOL64,
};
use crate::report::{self, fmt_bytes, fmt_time, BenchError, BenchResult, Table};
use crate::Ctx;
use plotters::prelude::*;
use revode_core::mlp::{Activation, MlpSpec};
use revode_core::prelude::*;
use serde::Serialize;

/// Σ y_N² / len over the last output, for any state type (the compute-bound loss).
fn mean_square<V: State>(ys: &[V], cots: &mut [V]) -> f64 {
    let v = ys[ys.len() - 1].to_f64_vec();
    let n = v.len() as f64;
    let g: Vec<f64> = v.iter().map(|x| 2.0 * x / n).collect();
    let last = cots.len() - 1;
    cots[last].set_from_f64(&g);
    v.iter().map(|x| x * x).sum::<f64>() / n
}

/// A fixed-step grid of `n` steps of size `h` from 0.
fn ode_grid(h: f64) -> impl Fn(usize) -> BenchResult<(usize, Vec<f64>, SolveOptions)> {
    move |n| Ok((n, vec![0.0, n as f64 * h], SolveOptions::fixed(h)))
}

/// The paper's complexity problem: MLP 1 → 10 → 1 tanh, y0 = 1, midpoint, h = 0.01, f64; λ from
/// the stability analysis along the longest solve (as in the complexity sweep).
fn complexity(ctx: &Ctx, set: &Settings, out: &mut Collected) -> BenchResult<()> {
    let h = 0.01;
    let field = Mlp::new(1, 10, false)?.init_uniform(0);
    let map = Rk::new(OdeTerm::new(field), Tableau::midpoint());
    let y0 = vec![1.0];
    let t_max = set.ns.iter().copied().max().unwrap_or(1000) as f64 * h;
    let lambda = crate::ode::advise_lambda(&map, &y0, t_max, h, 0.999)?.lambda;
    let rev = Reversible::new(map.clone(), lambda)?;
    let spec = Spec {
        family: "ODE",
        problem: "complexity",
        tol: TOL64,
    };
    let plain = Plain::new(map);
    let grid = ode_grid(h);
    run_problem(
        ctx,
        set,
        &spec,
        &rev,
        &plain,
        &y0,
        grid,
        final_square_f64,
        out,
    )
}

fn final_square_f64(ys: &[Vec<f64>], cots: &mut [Vec<f64>]) -> f64 {
    crate::ode::final_square(ys, cots)
}

/// The compute-bound problem: MLP 32 → 128 → 128 → 32 tanh, batch 256, f32, native kernels,
/// midpoint, h = 0.01, λ = 0.999, loss mean(y_N²).
fn compute(ctx: &Ctx, set: &Settings, out: &mut Collected) -> BenchResult<()> {
    let (d, hidden, batch) = (32, 128, 256);
    let spec = MlpSpec {
        dim: d,
        hidden,
        depth: 2,
        activation: Activation::Tanh,
        time: false,
        time_first: false,
        outputs: None,
    };
    let native = Mlp::<f32>::from_spec(spec, batch)?.init_uniform(0);
    let map = Rk::new(OdeTerm::new(native), Tableau::midpoint());
    let y0: Vec<f32> = (0..batch * d).map(|i| ((i as f32) * 0.61).sin()).collect();
    let rev = Reversible::new(map.clone(), 0.999)?;
    let spec = Spec {
        family: "ODE",
        problem: "compute",
        tol: TOL32,
    };
    run_problem(
        ctx,
        set,
        &spec,
        &rev,
        &Plain::new(map),
        &y0,
        ode_grid(0.01),
        mean_square::<Vec<f32>>,
        out,
    )
}

/// The cross-family CDE problem: spirals NCDE 8 → 16 → 8×3, batch 64, 100 knots on [0, 1],
/// midpoint, λ = 0.999; N rounded to a multiple of 99 so that steps meet the knots.
fn cde(ctx: &Ctx, set: &Settings, out: &mut Collected) -> BenchResult<()> {
    use revode_cde::{CdeMlp, CdeTerm, Path, PathOptions};
    let (data, _) = revode_cde::datasets::spirals(64, 100, 0.05, 7);
    let opts = PathOptions {
        time_channel: true,
        ..Default::default()
    };
    let path = Path::new(&data, &opts)?;
    let field = CdeMlp::new(8, path.channels(), 16, 1, false, 3)?;
    let map = Rk::new(CdeTerm::new(field, path.clone())?, Tableau::midpoint());
    let z0: Vec<f64> = (0..64 * 8)
        .map(|i| 0.1 * ((i as f64) * 0.37).sin())
        .collect();
    let knots = path.knots().to_vec();
    let rev = Reversible::new(map.clone(), 0.999)?;
    let spec = Spec {
        family: "CDE",
        problem: "cde",
        tol: TOL64,
    };
    let grid = move |n: usize| {
        let n = (n / 99).max(1) * 99;
        Ok((n, knots.clone(), SolveOptions::fixed(1.0 / n as f64)))
    };
    run_problem(
        ctx,
        set,
        &spec,
        &rev,
        &Plain::new(map),
        &z0,
        grid,
        final_square_f64,
        out,
    )
}

/// The cross-family SDE problem: neural SDE 4 → 16 → 4 drift and diagonal diffusion, batch 32,
/// Stratonovich on [0, 1]; reversible Heun against Heun.
fn sde(ctx: &Ctx, set: &Settings, out: &mut Collected) -> BenchResult<()> {
    use crate::sde::{neural_sde, BATCH, DIM};
    let rev = revode_sde::reversible_heun(neural_sde(5)?)?;
    let plain = Plain::new(revode_sde::step_map(
        neural_sde(5)?,
        revode_sde::SdeSolver::Heun,
    )?);
    let y0: Vec<f64> = (0..BATCH * DIM)
        .map(|i| 0.3 * ((i as f64) * 0.61).sin())
        .collect();
    let spec = Spec {
        family: "SDE",
        problem: "sde",
        tol: TOL64,
    };
    let grid = |n: usize| Ok((n, vec![0.0, 1.0], SolveOptions::fixed(1.0 / n as f64)));
    run_problem(
        ctx,
        set,
        &spec,
        &rev,
        &plain,
        &y0,
        grid,
        final_square_f64,
        out,
    )
}

/// The cross-family PDE problem: Fisher–KPP with a neural reaction, grid 64, batch 8, Heun at
/// 0.9 × its stable step, λ = 0.5.
fn pde(ctx: &Ctx, set: &Settings, out: &mut Collected) -> BenchResult<()> {
    use revode_pde::datasets::random_bumps;
    use revode_pde::surrogate::{FisherSurrogate, PointMlp};
    use revode_pde::{step_options, Boundary, Grid1d, PdeTerm};
    let grid1 = Grid1d::new(64, 0.0, 1.0, Boundary::Neumann)?;
    let field = FisherSurrogate {
        grid: grid1,
        batch: 8,
        nu: 0.002,
        reaction_bound: 10.0,
        through_origin: false,
        reaction: PointMlp::new(1, 16, 3)?,
    };
    let u0 = random_bumps(&grid1, 8, 1);
    let (tableau, lambda) = (Tableau::heun(), 0.5);
    let opts = step_options(&field, &tableau, Some(lambda), None)?;
    let h = match opts.step {
        StepControl::Fixed { h } => h,
        StepControl::Adaptive(_) => return Err(BenchError::AdaptiveStep { problem: "pde" }),
    };
    let map = Rk::new(PdeTerm::new(field), tableau);
    let rev = Reversible::new(map.clone(), lambda)?;
    let spec = Spec {
        family: "PDE",
        problem: "pde",
        tol: TOL64,
    };
    run_problem(
        ctx,
        set,
        &spec,
        &rev,
        &Plain::new(map),
        &u0,
        ode_grid(h),
        final_square_f64,
        out,
    )
}

/// What each problem is, for the report and the plot.
pub const PROBLEMS: [(&str, &str); 5] = [
    (
        "complexity",
        "ODE, the paper's complexity MLP 1→10→1 (f64, midpoint, h = 0.01)",
    ),
    (
        "compute",
        "ODE, compute-bound MLP 32→128→128→32, batch 256 (f32, native kernels, midpoint)",
    ),
    (
        "cde",
        "CDE, spirals neural CDE 8→16→8×3, batch 64 (f64, midpoint)",
    ),
    (
        "sde",
        "SDE, neural SDE 4→16→4 ×2, batch 32 (f64, reversible Heun vs Heun)",
    ),
    (
        "pde",
        "PDE, Fisher–KPP neural reaction, grid 64 × batch 8 (f64, Heun, λ = 0.5)",
    ),
];

#[derive(Serialize)]
struct FrontierOut<'a> {
    provenance: &'a crate::provenance::Provenance,
    settings: &'a Settings,
    cpu_affinity: String,
    points: &'a [Point],
    skipped: &'a [Skip],
    crossovers: &'a [PanelCrossover],
}

/// The cores this process may run on (`Cpus_allowed_list`), to record the pinning.
fn affinity() -> String {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Cpus_allowed_list"))
                .and_then(|l| l.split(':').nth(1))
                .map(|v| v.trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into())
}

/// Runs the frontier on one thread and writes frontier.json, frontier.svg and the report.
pub fn frontier(ctx: &Ctx, set: &Settings) -> BenchResult<()> {
    let pool = rayon::ThreadPoolBuilder::new().num_threads(1).build()?;
    pool.install(|| run(ctx, set))
}

fn run(ctx: &Ctx, set: &Settings) -> BenchResult<()> {
    let mut out = Collected::default();
    for p in &set.problems {
        match p.as_str() {
            "complexity" => complexity(ctx, set, &mut out)?,
            "compute" => compute(ctx, set, &mut out)?,
            "cde" => cde(ctx, set, &mut out)?,
            "sde" => sde(ctx, set, &mut out)?,
            "pde" => pde(ctx, set, &mut out)?,
            other => {
                return Err(BenchError::UnknownName {
                    what: "frontier problem",
                    name: other.to_string(),
                    known: PROBLEMS.iter().map(|p| p.0).collect(),
                })
            }
        }
    }
    let cross = crossovers(&out.points);
    let cpu_affinity = affinity();
    ctx.emit("frontier", &text(set, &out, &cross, &cpu_affinity))?;
    report::write_json(
        &ctx.out,
        "frontier.json",
        &FrontierOut {
            provenance: &ctx.provenance,
            settings: set,
            cpu_affinity,
            points: &out.points,
            skipped: &out.skipped,
            crossovers: &cross,
        },
    )?;
    plot(&ctx.out.join("frontier.svg"), &out.points, &set.problems)
}

fn text(set: &Settings, out: &Collected, cross: &[PanelCrossover], cpus: &str) -> String {
    let mut s = format!(
        "## Time–memory frontier\n\nEvery gradient method on one problem per family (docs/src/benchmarks.md, \
         \"Time–memory frontier\"). One thread, CPU affinity `{cpus}`. Each point: peak heap above the \
         baseline during one gradient (counting allocator), peak stored solver states (the library's \
         count; a reversible carry (y, z) counts as one), and time per gradient: the minimum over up to \
         {} interleaved rounds (each round visits every method of the problem and N, in rotated order; a \
         round of a point faster than 50 ms is the minimum of several calls), with the spread max ÷ min. \
         Points slower than {} s per round get fewer rounds (at least one, the measuring run itself). \
         Reversible methods run the reversible scheme, the others its plain base method; a method is \
         exact unless it is backsolve, and an exact point is valid when its gradient matches its \
         reference (plain: the full tape, or checkpointing with the default c where the tape was \
         skipped; reversible: checkpointed-reversible (auto)) and its drift is within tolerance.\n\n",
        set.rounds, set.point_budget_s
    );
    for (key, what) in PROBLEMS {
        if !set.problems.iter().any(|p| p == key) {
            continue;
        }
        s += &format!("### {what}\n\n");
        let mut t = Table::new(&[
            "N",
            "method",
            "time",
            "spread",
            "rounds",
            "peak heap",
            "stored",
            "evals",
            "grad err",
            "drift",
            "note",
        ]);
        for p in out.points.iter().filter(|p| p.problem == key) {
            t.row(vec![
                p.n.to_string(),
                p.method.clone(),
                fmt_time(p.min_s),
                format!("{:.2}×", p.max_s / p.min_s),
                p.times_s.len().to_string(),
                fmt_bytes(p.peak_bytes),
                p.stored_states.to_string(),
                p.evaluations.to_string(),
                p.grad_rel_err.map_or("—".into(), |e| format!("{e:.1e}")),
                p.drift.map_or("—".into(), |e| format!("{e:.1e}")),
                if p.valid {
                    p.note.clone()
                } else {
                    format!("INVALID: {}", p.note)
                },
            ]);
        }
        s += &t.render();
        s += "\n\n";
        for c in cross.iter().filter(|c| c.problem == key) {
            s += &format!("- N = {}: {}.\n", c.n, c.summary);
        }
        let skipped: Vec<&Skip> = out.skipped.iter().filter(|k| k.problem == key).collect();
        if !skipped.is_empty() {
            s += "\nSkipped:\n";
            for k in skipped {
                s += &format!("- N = {}, {}: {}.\n", k.n, k.method, k.reason);
            }
        }
        s += "\n";
    }
    s
}

/// Short names for point labels on the plot.
fn short(method: &str) -> String {
    match method {
        "reversible" => "rev".into(),
        "direct" => "tape".into(),
        "backsolve" => "bs".into(),
        "checkpointed(default)" => "c=dflt".into(),
        m if m.starts_with("checkpointed-reversible") => "cr".into(),
        m => m
            .strip_prefix("checkpointed(")
            .and_then(|r| r.strip_suffix(')'))
            .map_or(m.to_string(), |c| format!("c={c}")),
    }
}

/// Memory against time, log–log, one panel per problem; one colour per N, valid points only;
/// reversible methods as triangles, backsolve (approximate) as crosses.
fn plot(path: &std::path::Path, points: &[Point], problems: &[String]) -> BenchResult<()> {
    let keys: Vec<&str> = PROBLEMS
        .iter()
        .map(|p| p.0)
        .filter(|k| problems.iter().any(|p| p == k))
        .collect();
    let cols = keys.len().clamp(1, 3);
    let rows = keys.len().div_ceil(cols).max(1);
    let failed = report::plot_error(path);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (520 * cols as u32, 440 * rows as u32))
            .into_drawing_area();
        root.fill(&WHITE).map_err(failed)?;
        let panels = root.split_evenly((rows, cols));
        for (panel, key) in panels.iter().zip(&keys) {
            let pts: Vec<&Point> = points
                .iter()
                .filter(|p| p.problem == *key && p.valid && p.min_s.is_finite())
                .collect();
            if pts.is_empty() {
                continue;
            }
            let (t0, t1) = pts.iter().fold((f64::MAX, f64::MIN), |(a, b), p| {
                (a.min(p.min_s), b.max(p.min_s))
            });
            let (m0, m1) = pts.iter().fold((f64::MAX, f64::MIN), |(a, b), p| {
                let m = p.peak_bytes.max(1) as f64;
                (a.min(m), b.max(m))
            });
            let title = PROBLEMS
                .iter()
                .find(|p| p.0 == *key)
                .map_or(*key, |p| p.1.split(" (").next().unwrap_or(p.1));
            let mut chart = ChartBuilder::on(panel)
                .caption(title, ("sans-serif", 14))
                .margin(10)
                .x_label_area_size(36)
                .y_label_area_size(56)
                .build_cartesian_2d(
                    (t0 / 1.5..t1 * 2.5).log_scale(),
                    (m0 / 1.5..m1 * 1.5).log_scale(),
                )
                .map_err(failed)?;
            chart
                .configure_mesh()
                .x_desc("time per gradient (s)")
                .y_desc("peak heap (bytes)")
                .x_label_formatter(&|v| format!("{v:.0e}"))
                .y_label_formatter(&|v| format!("{v:.0e}"))
                .draw()
                .map_err(failed)?;
            let mut ns: Vec<usize> = pts.iter().map(|p| p.n).collect();
            ns.sort_unstable();
            ns.dedup();
            for (i, n) in ns.iter().enumerate() {
                let color = Palette99::pick(i).to_rgba();
                let at_n: Vec<&&Point> = pts.iter().filter(|p| p.n == *n).collect();
                // The Pareto frontier of the exact points: sorted by time, each lighter than all
                // faster ones.
                let mut exact: Vec<(f64, f64)> = at_n
                    .iter()
                    .filter(|p| p.exact)
                    .map(|p| (p.min_s, p.peak_bytes.max(1) as f64))
                    .collect();
                exact.sort_by(|a, b| a.0.total_cmp(&b.0));
                let mut front: Vec<(f64, f64)> = Vec::new();
                for q in exact {
                    if front.last().is_none_or(|l| q.1 < l.1) {
                        front.push(q);
                    }
                }
                chart
                    .draw_series(LineSeries::new(front, color.stroke_width(1)))
                    .map_err(failed)?
                    .label(format!("N = {n}"))
                    .legend(move |(x, y)| {
                        PathElement::new(vec![(x, y), (x + 16, y)], color.stroke_width(2))
                    });
                for p in at_n {
                    let xy = (p.min_s, p.peak_bytes.max(1) as f64);
                    if p.reversible {
                        chart
                            .draw_series(std::iter::once(TriangleMarker::new(
                                xy,
                                6,
                                color.filled(),
                            )))
                            .map_err(failed)?;
                    } else if p.exact {
                        chart
                            .draw_series(std::iter::once(Circle::new(xy, 3, color.filled())))
                            .map_err(failed)?;
                    } else {
                        chart
                            .draw_series(std::iter::once(Cross::new(xy, 4, color.stroke_width(2))))
                            .map_err(failed)?;
                    }
                    chart
                        .draw_series(std::iter::once(Text::new(
                            short(&p.method),
                            (xy.0 * 1.08, xy.1),
                            ("sans-serif", 10).into_font().color(&BLACK),
                        )))
                        .map_err(failed)?;
                }
            }
            chart
                .configure_series_labels()
                .background_style(WHITE.mix(0.85))
                .border_style(BLACK)
                .position(SeriesLabelPosition::UpperRight)
                .draw()
                .map_err(failed)?;
        }
        root.present().map_err(failed)?;
    }
    report::write_atomic(path, svg.as_bytes())
}
