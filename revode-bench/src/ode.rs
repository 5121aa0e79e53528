//! ODE experiments: the paper's complexity sweep, reconstruction drift, stability regions, and
//! the ODE rows of the cross-family benchmark.

use crate::measure::{gradient_row, median_time, Row, Setup};
use crate::report::{self, fmt_bytes, fmt_time, plot_loglog, BenchResult, Series, Table};
use crate::Ctx;
use revode_core::prelude::*;
use revode_core::stability;
use revode_core::stability_advice::{advise_along, LambdaAdvice};
use serde::Serialize;

/// The analytic MLP field on CPU vectors.
pub type MlpMap = Rk<OdeTerm<Mlp<f64>>>;

/// Loss Σ y_N² (on the last observation only).
pub fn final_square(ys: &[Vec<f64>], cots: &mut [Vec<f64>]) -> f64 {
    let (y, g) = (
        &ys[ys.len() - 1],
        cots.last_mut().expect("at least two observations"),
    );
    let mut l = 0.0;
    for (v, g) in y.iter().zip(g.iter_mut()) {
        l += v * v;
        *g = 2.0 * v;
    }
    l
}

/// The library's λ / interval advice along the solve over `[0, t1]` (drift kept below 1e-10).
pub fn advise_lambda(
    map: &MlpMap,
    y0: &[f64],
    t1: f64,
    h: f64,
    preferred: f64,
) -> BenchResult<LambdaAdvice> {
    Ok(advise_along(
        map,
        &y0.to_vec(),
        (0.0, t1),
        h,
        preferred,
        1e-10,
    )?)
}

#[derive(Serialize)]
struct ComplexityOut {
    command: String,
    setting: String,
    activation_ns: (f64, f64),
    lambda_auto: f64,
    stable_lambda_ranges: Vec<(f64, f64)>,
    forward: Vec<(usize, f64)>,
    rows: Vec<Row>,
}

/// MLP 1 → 10 → 1 tanh, y0 = 1, midpoint, h = 0.01, loss Σ y_N².
pub fn complexity(ctx: &Ctx) -> BenchResult<Vec<Row>> {
    let ns: Vec<usize> = if ctx.full {
        vec![
            100, 200, 500, 1000, 2000, 5000, 10_000, 20_000, 50_000, 100_000,
        ]
    } else {
        vec![100, 300, 1000, 3000, 10_000]
    };
    let h = 0.01;
    let field = Mlp::new(1, 10, false)?.init_uniform(0);
    let map = Rk::new(OdeTerm::new(field), Tableau::midpoint());
    let y0 = vec![1.0];
    let act = activation_cost();
    let t_max = *ns.last().unwrap_or(&1000) as f64 * h;
    let advice = advise_lambda(&map, &y0, t_max, h, 0.999)?;
    let (lambda_auto, ranges) = (advice.lambda, advice.ranges.clone());
    let bar = ctx.bar(ns.len() as u64, "complexity");
    let mut rows = Vec::new();
    let mut forward = Vec::new();
    for &n in &ns {
        let times = [0.0, n as f64 * h];
        let opts = SolveOptions::fixed(h);
        let plain = Plain::new(map.clone());
        let (t_fwd, _) = median_time(ctx.min_time, 200, || {
            let _ = solve(&plain, &y0, &times, &opts);
        });
        forward.push((n, t_fwd));
        let plain_ref = crate::measure::tape_reference(&plain, &y0, &times, &opts, final_square)?;
        let setup = Setup {
            family: "ODE",
            problem: "complexity",
            reference: Some(&plain_ref),
            min_time: ctx.min_time,
            max_reps: 200,
        };
        let mut methods = vec![GradientMethod::Direct, GradientMethod::Backsolve];
        for c in [2, 4, 8] {
            methods.push(GradientMethod::Checkpointed { snapshots: Some(c) });
        }
        methods.push(GradientMethod::Checkpointed { snapshots: None });
        for m in methods {
            rows.push(gradient_row(&setup, &plain, &y0, &times, &opts, m, final_square).0);
        }
        let mut lambdas = vec![0.999];
        if lambda_auto != 0.999 {
            lambdas.push(lambda_auto);
        }
        for lambda in lambdas {
            let rev = Reversible::new(map.clone(), lambda)?;
            let rev_ref = crate::measure::tape_reference(&rev, &y0, &times, &opts, final_square)?;
            let setup = Setup {
                reference: Some(&rev_ref),
                ..setup
            };
            rows.push(
                gradient_row(
                    &setup,
                    &rev,
                    &y0,
                    &times,
                    &opts,
                    GradientMethod::Reversible,
                    final_square,
                )
                .0,
            );
            if lambda == lambda_auto && advice.interval < n {
                let every = advice.interval;
                rows.push(
                    gradient_row(
                        &setup,
                        &rev,
                        &y0,
                        &times,
                        &opts,
                        GradientMethod::CheckpointedReversible { every },
                        final_square,
                    )
                    .0,
                );
            }
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    let mut table = Table::new(&[
        "N",
        "scheme",
        "method",
        "time",
        "÷ forward",
        "peak heap",
        "stored",
        "allocs",
        "grad err",
        "drift",
        "note",
    ]);
    for r in &rows {
        let fwd = forward
            .iter()
            .find(|(n, _)| *n == r.n)
            .map(|p| p.1)
            .unwrap_or(f64::NAN);
        table.row(vec![
            r.n.to_string(),
            r.scheme.clone(),
            r.method.clone(),
            r.median_s.map_or_else(
                || {
                    r.invalid_time_s
                        .map_or("failed".into(), |t| format!("({}, invalid)", fmt_time(t)))
                },
                fmt_time,
            ),
            r.median_s.map_or("—".into(), |t| format!("{:.1}", t / fwd)),
            fmt_bytes(r.peak_bytes),
            r.stored_states.to_string(),
            r.allocations.to_string(),
            r.grad_rel_err.map_or("—".into(), |e| format!("{e:.1e}")),
            r.reconstruction_error
                .map_or("—".into(), |e| format!("{e:.1e}")),
            r.note.clone(),
        ]);
    }
    let mut fwd_table = Table::new(&["N", "plain forward solve"]);
    for (n, t) in &forward {
        fwd_table.row(vec![n.to_string(), fmt_time(*t)]);
    }
    let text = format!(
        "## Complexity sweep (docs/src/experiments-ode.md)\n\nMLP 1 → 10 → 1 (tanh, analytic VJP, fast tanh), y0 = 1, explicit midpoint, h = {h}, f64, one thread.\n\
         Activation cost per element: system tanh {:.1} ns, revode's tanh {:.1} ns.\n\
         Stability analysis along the trajectory: λ ranges with h = {h} acceptable: {ranges:.4?}; λ chosen: {lambda_auto:.4}; \
         backward round-off growth {:.5} per step, so checkpointed-reversible stores the carry every {} steps.\n\n{}\n\n{}\n",
        act.0,
        act.1,
        advice.amplification,
        advice.interval,
        fwd_table.render(),
        table.render()
    );
    ctx.emit("complexity", &text)?;
    let out = ComplexityOut {
        command: ctx.command.clone(),
        setting: format!("MLP 1-10-1 tanh, midpoint, h = {h}"),
        activation_ns: act,
        lambda_auto,
        stable_lambda_ranges: ranges,
        forward: forward.clone(),
        rows: rows.clone(),
    };
    report::write_json(&ctx.out, "complexity.json", &out)?;
    report::write_csv(&ctx.out, "complexity.csv", &rows)?;
    let mut by_label: Vec<(String, Vec<&Row>)> = Vec::new();
    for r in &rows {
        let key = format!(
            "{} {}",
            r.method,
            if r.scheme.starts_with("reversible") {
                r.scheme
                    .trim_start_matches("reversible(midpoint, ")
                    .trim_end_matches(')')
            } else {
                ""
            }
        );
        match by_label.iter_mut().find(|(k, _)| *k == key) {
            Some((_, v)) => v.push(r),
            None => by_label.push((key, vec![r])),
        }
    }
    let mut time_series: Vec<Series> = by_label
        .iter()
        .map(|(k, v)| Series {
            label: k.trim().to_string(),
            points: v
                .iter()
                .filter_map(|r| r.median_s.map(|t| (r.n as f64, t)))
                .collect(),
        })
        .collect();
    time_series.push(Series {
        label: "plain forward solve".into(),
        points: forward.iter().map(|&(n, t)| (n as f64, t)).collect(),
    });
    plot_loglog(
        &ctx.out.join("complexity_time.svg"),
        "Time per gradient (complexity setting)",
        "N steps",
        "seconds",
        &time_series,
    )?;
    let mem_series: Vec<Series> = by_label
        .iter()
        .map(|(k, v)| Series {
            label: k.trim().to_string(),
            points: v
                .iter()
                .map(|r| (r.n as f64, r.peak_bytes.max(1) as f64))
                .collect(),
        })
        .collect();
    plot_loglog(
        &ctx.out.join("complexity_memory.svg"),
        "Peak heap per gradient (complexity setting)",
        "N steps",
        "bytes",
        &mem_series,
    )?;
    Ok(rows)
}

/// Nanoseconds per element of the system tanh and of revode's tanh.
pub fn activation_cost() -> (f64, f64) {
    let xs: Vec<f64> = (0..4096).map(|i| (i as f64 - 2048.0) / 512.0).collect();
    let mut sink = 0.0;
    let (a, _) = median_time(0.05, 50, || {
        for &x in &xs {
            sink += std::hint::black_box(x).tanh();
        }
    });
    let (b, _) = median_time(0.05, 50, || {
        for &x in &xs {
            sink += revode_core::activation::tanh(std::hint::black_box(x));
        }
    });
    std::hint::black_box(sink);
    (a * 1e9 / xs.len() as f64, b * 1e9 / xs.len() as f64)
}

#[derive(Serialize)]
struct DriftRow {
    lambda: f64,
    steps: usize,
    method: String,
    error: f64,
}

/// Reconstruction error of N forward + N backward coupled steps for several λ.
pub fn reconstruction(ctx: &Ctx) -> BenchResult<()> {
    let field = Mlp::new(3, 16, true)?.init_uniform(21);
    let y0 = vec![0.7, -0.4, 1.1];
    let ns: Vec<usize> = if ctx.full {
        vec![10, 40, 100, 300, 1000, 3000, 10_000]
    } else {
        vec![10, 40, 100, 1000]
    };
    let mut rows = Vec::new();
    for t in [Tableau::midpoint(), Tableau::rk4()] {
        for lambda in [0.5, 0.9, 0.99, 0.999] {
            let scheme = Reversible::new(Rk::new(OdeTerm::new(field.clone()), t.clone()), lambda)?;
            for &n in &ns {
                let mut s = scheme.new_scratch(&y0);
                let mut st = Stats::default();
                let mut c = scheme.init(Start { t0: 0.0, y0: &y0 }, &mut s, &mut st);
                let h = 0.01;
                for k in 0..n {
                    scheme.step(
                        k as f64 * h,
                        (k + 1) as f64 * h,
                        &mut c,
                        None,
                        None,
                        &mut s,
                        &mut st,
                    );
                }
                for k in (0..n).rev() {
                    scheme.reconstruct(
                        k as f64 * h,
                        (k + 1) as f64 * h,
                        &mut c,
                        &mut s,
                        &mut st,
                    )?;
                }
                let err = crate::measure::rel(&c.y, &y0).max(crate::measure::rel(&c.z, &y0));
                rows.push(DriftRow {
                    lambda,
                    steps: n,
                    method: t.name().into(),
                    error: err,
                });
            }
        }
    }
    let mut table = Table::new(&["method", "λ", "N", "relative error of (y0, z0)"]);
    for r in &rows {
        table.row(vec![
            r.method.clone(),
            r.lambda.to_string(),
            r.steps.to_string(),
            format!("{:.2e}", r.error),
        ]);
    }
    let text = format!("## Reconstruction drift\n\nMLP 3 → 16 → 3 (tanh, time input), h = 0.01: N coupled steps forward, then N exact backward steps.\n\n{}\n", table.render());
    ctx.emit("reconstruction", &text)?;
    report::write_json(&ctx.out, "reconstruction.json", &rows)?;
    let series: Vec<Series> = [0.5, 0.9, 0.99, 0.999]
        .iter()
        .map(|&l| Series {
            label: format!("midpoint λ={l}"),
            points: rows
                .iter()
                .filter(|r| r.lambda == l && r.method == "midpoint")
                .map(|r| (r.steps as f64, r.error.max(1e-17)))
                .collect(),
        })
        .collect();
    plot_loglog(
        &ctx.out.join("reconstruction.svg"),
        "Reconstruction error vs steps",
        "N steps",
        "relative error",
        &series,
    )
}

/// Stability regions of reversible Euler, midpoint and RK4 for several λ.
pub fn stability_regions(ctx: &Ctx) -> BenchResult<()> {
    let mut all = Vec::new();
    for t in [Tableau::euler(), Tableau::midpoint(), Tableau::rk4()] {
        let mut panels = Vec::new();
        for lambda in [0.5, 0.9, 0.999] {
            let r = stability::region(&t, lambda, (-4.0, 1.0), (-3.5, 3.5), 161)?;
            panels.push((
                format!("λ={lambda}"),
                r.re.clone(),
                r.im.clone(),
                r.radius.clone(),
            ));
            all.push(r);
        }
        report::plot_region(
            &ctx.out.join(format!("stability_{}.svg", t.name())),
            &format!("reversible {}", t.name()),
            &panels,
        )?;
    }
    let mut table = Table::new(&["method", "λ", "stable fraction of [−4,1]×[−3.5,3.5]"]);
    for r in &all {
        table.row(vec![
            r.method.clone(),
            r.lambda.to_string(),
            format!("{:.4}", r.stable_fraction()),
        ]);
    }
    ctx.emit("stability", &format!("## Stability regions\n\nShaded: both eigenvalues of the coupled step inside the unit disc.\n\n{}\n", table.render()))?;
    report::write_json(&ctx.out, "stability.json", &all).map(|_| ())
}

/// The ODE rows of the cross-family benchmark: a neural-style MLP field (2 → 32 → 2, tanh,
/// time input) with every gradient method.
pub fn family_rows(ctx: &Ctx) -> BenchResult<Vec<Row>> {
    let ns: Vec<usize> = if ctx.full {
        vec![300, 1000, 3000, 10_000, 30_000, 100_000]
    } else {
        vec![300, 1000, 3000, 10_000]
    };
    let h = 0.01;
    let field = Mlp::new(2, 32, true)?.init_uniform(1);
    let map = Rk::new(OdeTerm::new(field), Tableau::midpoint());
    let y0 = vec![0.5, -0.3];
    let t_max = *ns.last().unwrap_or(&1000) as f64 * h;
    let advice = advise_lambda(&map, &y0, t_max, h, 0.999)?;
    let lambda = advice.lambda;
    let bar = ctx.bar(ns.len() as u64, "ODE");
    let mut rows = Vec::new();
    for &n in &ns {
        let times = [0.0, n as f64 * h];
        let opts = SolveOptions::fixed(h);
        let rev = Reversible::new(map.clone(), lambda)?;
        // The interval from the sampled spectrum, with a safety factor 4 for states between samples.
        let every = (advice.interval / 4).clamp(1, n);
        let family = crate::measure::Family {
            family: "ODE",
            problem: "MLP 2-32-2 midpoint",
            min_time: ctx.min_time,
            max_reps: 50,
        };
        rows.extend(crate::measure::family_rows(
            &family,
            &rev,
            &Plain::new(map.clone()),
            &y0,
            &times,
            &opts,
            &[
                GradientMethod::Reversible,
                GradientMethod::CheckpointedReversible { every },
            ],
            final_square,
        )?);
        bar.inc(1);
    }
    bar.finish_and_clear();
    Ok(rows)
}

#[derive(Serialize)]
struct MemoryRow {
    method: String,
    n: usize,
    peak_bytes: usize,
    allocations: u64,
    stored_states: usize,
    /// Relative reconstruction drift of y0 (reversible only).
    drift: Option<f64>,
}

/// Peak heap, allocations and stored states of one gradient. Only memory is measured, so the
/// drift check is off (explicitly) and the drift is reported instead.
fn memory_row<S: Scheme<Map = MlpMap>>(
    scheme: &S,
    label: &str,
    method: GradientMethod,
    y0: &Vec<f64>,
    times: &[f64],
    opts: &SolveOptions,
) -> BenchResult<MemoryRow> {
    let gopts = GradientOptions {
        drift: DriftCheck::Off,
        ..method.into()
    };
    let (g, peak, allocs) =
        crate::alloc::measure(|| gradient(scheme, y0, times, opts, &gopts, final_square));
    let g = g?;
    Ok(MemoryRow {
        method: label.into(),
        n: g.steps,
        peak_bytes: peak,
        allocations: allocs,
        stored_states: g.stats.peak_stored_states,
        drift: g.stats.reconstruction_error,
    })
}

/// Peak heap of one gradient against N (counting allocator), reversible vs direct vs
/// checkpointed: MLP 1 → 10 → 1, midpoint, h = 0.01, N = 100 … 100 000.
pub fn memory(ctx: &Ctx) -> BenchResult<()> {
    let ns = [100usize, 1000, 10_000, 100_000];
    let field = Mlp::new(1, 10, false)?.init_uniform(0);
    let map = Rk::new(OdeTerm::new(field), Tableau::midpoint());
    let rev = Reversible::new(map.clone(), 0.999)?;
    let plain = Plain::new(map);
    let y0 = vec![1.0];
    let mut rows = Vec::new();
    for &n in &ns {
        let times = [0.0, n as f64 * 0.01];
        let opts = SolveOptions::fixed(0.01);
        rows.push(memory_row(
            &rev,
            "reversible",
            GradientMethod::Reversible,
            &y0,
            &times,
            &opts,
        )?);
        rows.push(memory_row(
            &plain,
            "direct",
            GradientMethod::Direct,
            &y0,
            &times,
            &opts,
        )?);
        let m = GradientMethod::Checkpointed { snapshots: None };
        rows.push(memory_row(
            &plain,
            "checkpointed(default)",
            m,
            &y0,
            &times,
            &opts,
        )?);
    }
    let mut table = Table::new(&[
        "method",
        "N",
        "peak heap",
        "allocations",
        "stored states",
        "drift",
    ]);
    for r in &rows {
        table.row(vec![
            r.method.clone(),
            r.n.to_string(),
            fmt_bytes(r.peak_bytes),
            r.allocations.to_string(),
            r.stored_states.to_string(),
            r.drift.map_or(String::new(), |d| format!("{d:.1e}")),
        ]);
    }
    let rev_peaks: Vec<usize> = rows
        .iter()
        .filter(|r| r.method == "reversible")
        .map(|r| r.peak_bytes)
        .collect();
    let growth = *rev_peaks.last().unwrap_or(&0) as f64
        / rev_peaks.first().copied().unwrap_or(1).max(1) as f64
        - 1.0;
    ctx.emit(
        "memory",
        &format!(
            "## Memory against N\n\nPeak heap of one gradient (counting global allocator), MLP 1 → 10 → 1, midpoint, h = 0.01, loss Σ y_N². \
             (Only memory is measured here, so the drift check is off: the drift column shows that at λ = 0.999 this field's reversible gradient is not trustworthy for large N, see the complexity table.)\n\
             Reversible peak growth from N = 100 to 100 000: {:.2} %.\n\n{}\n",
            100.0 * growth,
            table.render()
        ),
    )?;
    let series: Vec<Series> = ["reversible", "direct", "checkpointed(default)"]
        .iter()
        .map(|m| Series {
            label: m.to_string(),
            points: rows
                .iter()
                .filter(|r| r.method == *m)
                .map(|r| (r.n as f64, r.peak_bytes as f64))
                .collect(),
        })
        .collect();
    plot_loglog(
        &ctx.out.join("memory.svg"),
        "Peak heap per gradient",
        "N steps",
        "bytes",
        &series,
    )?;
    report::write_json(&ctx.out, "memory.json", &rows).map(|_| ())
}
