//! PDE rows of the cross-family benchmark and the PDE experiments: reconstruction drift,
//! memory against grid size × steps, and surrogate training.

use crate::alloc;
use crate::measure::{Family, Row};
use crate::report::{
    self, fmt_bytes, fmt_time, plot_loglog, BenchError, BenchResult, Series, Table,
};
use crate::Ctx;
use revode_core::{
    gradient, gradient::DriftCheck, solve::StepControl, GradientMethod, GradientOptions, Plain,
    Reversible, Rk, SolveOptions, Tableau,
};
use revode_pde::datasets::random_bumps;
use revode_pde::surrogate::{FisherSurrogate, PointMlp};
use revode_pde::{step_options, Boundary, FisherKpp, Grid1d, Heat, PdeTerm};
use serde::Serialize;
use std::time::Instant;

fn step_of(opts: &SolveOptions) -> f64 {
    match opts.step {
        StepControl::Fixed { h } => h,
        StepControl::Adaptive(_) => f64::NAN,
    }
}

/// The drift tolerance of every checkpointed-reversible PDE gradient.
pub(crate) const DRIFT: f64 = 1e-10;

/// Fisher–KPP with a neural reaction (grid 64, batch 8) × every gradient method;
/// reversible(Heun, λ = 0.5) for the reversible methods (λ near 1 shrinks the stable step).
pub fn family_rows(ctx: &Ctx) -> BenchResult<Vec<Row>> {
    let ns: Vec<usize> = if ctx.full {
        vec![32, 128, 512, 2048]
    } else {
        vec![32, 128, 512]
    };
    let grid = Grid1d::new(64, 0.0, 1.0, Boundary::Neumann)?;
    let field = FisherSurrogate {
        grid,
        batch: 8,
        nu: 0.002,
        reaction_bound: 10.0,
        through_origin: false,
        reaction: PointMlp::new(1, 16, 3)?,
    };
    let u0 = random_bumps(&grid, 8, 1);
    let tableau = Tableau::heun();
    let lambda = 0.5;
    let opts = step_options(&field, &tableau, Some(lambda), None)?;
    let h = step_of(&opts);
    let bar = ctx.bar(ns.len() as u64, "PDE");
    let mut rows = Vec::new();
    for &n in &ns {
        let times = [0.0, n as f64 * h];
        let map = Rk::new(PdeTerm::new(field.clone()), tableau.clone());
        let rev = Reversible::new(map.clone(), lambda)?;
        let family = Family {
            family: "PDE",
            problem: "Fisher-KPP neural reaction, 64 × 8",
            min_time: ctx.min_time,
            max_reps: 20,
        };
        rows.extend(crate::measure::family_rows(
            &family,
            &rev,
            &Plain::new(map),
            &u0,
            &times,
            &opts,
            &[
                GradientMethod::Reversible,
                GradientMethod::CheckpointedReversibleAuto { tolerance: DRIFT },
            ],
            crate::ode::final_square,
        )?);
        bar.inc(1);
    }
    bar.finish_and_clear();
    Ok(rows)
}

#[derive(Serialize)]
struct DriftRow {
    lambda: f64,
    h: f64,
    steps: usize,
    plain_drift: Option<f64>,
    plain_note: String,
    auto_drift: Option<f64>,
    auto_interval: Option<usize>,
    auto_stored_states: usize,
    auto_passes: u32,
    state_bytes: usize,
}

/// Reconstruction drift over 10 000 steps of heat (periodic, 64 points, batch 4), plain and
/// with the automatically chosen checkpoint interval, for λ ∈ {0.5, 0.9, 0.999}.
pub fn drift(ctx: &Ctx) -> BenchResult<()> {
    let grid = Grid1d::new(64, 0.0, 1.0, Boundary::Periodic)?;
    let heat = Heat::new(grid, 4, 0.05)?;
    let u0 = random_bumps(&grid, 4, 5);
    let steps = 10_000;
    let tableau = Tableau::rk4();
    let mut rows = Vec::new();
    let bar = ctx.bar(3, "drift");
    for lambda in [0.5, 0.9, 0.999] {
        let opts = step_options(&heat, &tableau, Some(lambda), None)?;
        let h = step_of(&opts);
        let times = [0.0, steps as f64 * h];
        let s = Reversible::new(Rk::new(PdeTerm::new(heat.clone()), tableau.clone()), lambda)?;
        // Plain reconstruction is run unchecked on purpose: its drift is what is measured.
        let g = |m: GradientMethod| {
            let go = GradientOptions {
                drift: DriftCheck::Off,
                ..m.into()
            };
            gradient(&s, &u0, &times, &opts, &go, crate::ode::final_square)
        };
        let (plain_drift, plain_note) = match g(GradientMethod::Reversible) {
            Ok(r) => (r.stats.reconstruction_error, String::new()),
            Err(err) => (None, format!("{err}")),
        };
        let auto = g(GradientMethod::CheckpointedReversibleAuto { tolerance: DRIFT })?;
        rows.push(DriftRow {
            lambda,
            h,
            steps,
            plain_drift,
            plain_note,
            auto_drift: auto.stats.reconstruction_error,
            auto_interval: auto.stats.checkpoint_interval,
            auto_stored_states: auto.stats.peak_stored_states,
            auto_passes: auto.stats.attempts,
            state_bytes: 2 * u0.len() * 8,
        });
        bar.inc(1);
    }
    bar.finish_and_clear();
    let mut t = Table::new(&[
        "λ",
        "h (0.9 × limit)",
        "plain drift",
        "auto k",
        "auto drift",
        "stored carries",
        "memory",
        "passes",
    ]);
    for r in &rows {
        t.row(vec![
            r.lambda.to_string(),
            format!("{:.2e}", r.h),
            r.plain_drift.map_or_else(
                || {
                    format!(
                        "failed ({})",
                        r.plain_note.chars().take(40).collect::<String>()
                    )
                },
                |d| format!("{d:.1e}"),
            ),
            r.auto_interval.map_or("—".into(), |k| k.to_string()),
            r.auto_drift.map_or("—".into(), |d| format!("{d:.1e}")),
            r.auto_stored_states.to_string(),
            fmt_bytes(r.auto_stored_states * r.state_bytes),
            r.auto_passes.to_string(),
        ]);
    }
    ctx.emit(
        "pde-drift",
        &format!(
            "## Reconstruction drift of a diffusive problem (heat, 64 points × 4, RK4, 10 000 steps)\n\n\
             Plain reversible reconstruction runs the coupling backwards, amplifying round-off by \
             about λ^(-1/2) per step on damped modes; checkpointed-reversible(auto) measures that \
             growth and stores the carry every k steps so reconstructed states stay within \
             {DRIFT:e} (relative).\n\n{}\n",
            t.render()
        ),
    )?;
    report::write_json(&ctx.out, "pde_drift.json", &rows)?;
    Ok(())
}

#[derive(Serialize)]
struct MemoryRow {
    points: usize,
    batch: usize,
    steps: usize,
    /// Peak of the first gradient, including the interval search.
    search_bytes: usize,
    /// Peak of a gradient at the chosen interval (every later training step).
    reversible_bytes: usize,
    reversible_interval: Option<usize>,
    reversible_seconds: f64,
    direct_bytes: usize,
    direct_measured: bool,
    ratio: f64,
}

/// Peak heap of one gradient of Fisher–KPP (batch 16) over grid size × steps: reversible
/// (checkpointed-reversible with the automatic interval) measured; direct measured where it
/// fits the budget, otherwise computed from its measured bytes per step.
pub fn memory(ctx: &Ctx) -> BenchResult<()> {
    let batch = 16;
    let points: Vec<usize> = vec![256, 1024, 4096];
    let steps: Vec<usize> = if ctx.full {
        vec![100, 1000, 10_000]
    } else {
        vec![100, 1000]
    };
    let budget: usize = 2 << 30;
    let tableau = Tableau::heun();
    // λ = 0.9: the backward amplification (≈ λ^(-1/2) per step) allows long checkpoint
    // intervals; the stable step is smaller than at λ = 0.5, but the sweep counts steps.
    let lambda = 0.9;
    let mut rows = Vec::new();
    let bar = ctx.bar((points.len() * steps.len()) as u64, "memory");
    for &n in &points {
        let grid = Grid1d::new(n, 0.0, 1.0, Boundary::Neumann)?;
        // ν scaled with the grid so the diffusion number (and h) stays comparable.
        let field = FisherKpp::new(grid, batch, 0.5 / (n * n) as f64, 2.0)?;
        let u0 = random_bumps(&grid, batch, 9);
        let opts = step_options(&field, &tableau, Some(lambda), None)?;
        let h = step_of(&opts);
        let s = Reversible::new(
            Rk::new(PdeTerm::new(field.clone()), tableau.clone()),
            lambda,
        )?;
        let mut per_step: Option<f64> = None;
        for &m in &steps {
            let times = [0.0, m as f64 * h];
            let start = Instant::now();
            let (rev, rev_bytes, _) = alloc::measure(|| {
                gradient(
                    &s,
                    &u0,
                    &times,
                    &opts,
                    &GradientMethod::CheckpointedReversibleAuto { tolerance: DRIFT }.into(),
                    crate::ode::final_square,
                )
            });
            let rev = rev?;
            let rev_s = start.elapsed().as_secs_f64();
            // Training reuses the interval the first gradient found: its memory per gradient.
            let k = rev.stats.checkpoint_interval.unwrap_or(m);
            let (again, steady_bytes, _) = alloc::measure(|| {
                gradient(
                    &s,
                    &u0,
                    &times,
                    &opts,
                    &GradientMethod::CheckpointedReversible { every: k }.into(),
                    crate::ode::final_square,
                )
            });
            let again = again?;
            if again
                .stats
                .reconstruction_error
                .is_none_or(|d| d.is_nan() || d > DRIFT)
            {
                return Err(BenchError::Drift {
                    what: format!("PDE memory, grid {n} × batch {batch}, {m} steps"),
                    interval: k,
                    drift: again.stats.reconstruction_error,
                    tolerance: DRIFT,
                });
            }
            let predicted = per_step.map(|b| b * m as f64);
            let (direct_bytes, measured) = if predicted.is_none_or(|p| p < budget as f64) {
                let (r, bytes, _) = alloc::measure(|| {
                    gradient(
                        &s,
                        &u0,
                        &times,
                        &opts,
                        &GradientMethod::Direct.into(),
                        crate::ode::final_square,
                    )
                });
                r?;
                per_step = Some(bytes as f64 / m as f64);
                (bytes, true)
            } else {
                (predicted.unwrap_or(0.0) as usize, false)
            };
            rows.push(MemoryRow {
                points: n,
                batch,
                steps: m,
                search_bytes: rev_bytes,
                reversible_bytes: steady_bytes,
                reversible_interval: rev.stats.checkpoint_interval,
                reversible_seconds: rev_s,
                direct_bytes,
                direct_measured: measured,
                ratio: direct_bytes as f64 / steady_bytes.max(1) as f64,
            });
            bar.inc(1);
        }
    }
    bar.finish_and_clear();
    let mut t = Table::new(&[
        "grid × batch",
        "steps",
        "reversible peak",
        "first (with search)",
        "k",
        "time",
        "direct peak",
        "direct ÷ reversible peak",
    ]);
    for r in &rows {
        t.row(vec![
            format!("{} × {}", r.points, r.batch),
            r.steps.to_string(),
            fmt_bytes(r.reversible_bytes),
            fmt_bytes(r.search_bytes),
            r.reversible_interval.map_or("—".into(), |k| k.to_string()),
            fmt_time(r.reversible_seconds),
            format!(
                "{}{}",
                fmt_bytes(r.direct_bytes),
                if r.direct_measured { "" } else { " (computed)" }
            ),
            format!("{:.0}", r.ratio),
        ]);
    }
    ctx.emit(
        "pde-memory",
        &format!(
            "## Memory of one gradient: Fisher–KPP, reversible(Heun, λ = {lambda}), batch {batch}\n\n\
             Reversible: checkpointed-reversible at the interval k chosen automatically for drift \
             ≤ {DRIFT:e} (the first gradient searches for k, later ones reuse it; both peaks \
             measured with the counting allocator; time is the first gradient's). Direct: measured up to a {} budget, beyond it \
             computed from its measured bytes per step.\n\n{}\n",
            fmt_bytes(budget),
            t.render()
        ),
    )?;
    report::write_json(&ctx.out, "pde_memory.json", &rows)?;
    let series = |f: &dyn Fn(&MemoryRow) -> f64, label: &str| -> Vec<Series> {
        points
            .iter()
            .map(|&n| Series {
                label: format!("{label}, {n} points"),
                points: rows
                    .iter()
                    .filter(|r| r.points == n)
                    .map(|r| (r.steps as f64, f(r)))
                    .collect(),
            })
            .collect()
    };
    let mut all = series(&|r| r.reversible_bytes as f64, "reversible");
    all.extend(series(&|r| r.direct_bytes as f64, "direct"));
    plot_loglog(
        &ctx.out.join("pde_memory.svg"),
        "Peak heap per gradient (Fisher–KPP)",
        "steps",
        "bytes",
        &all,
    )?;
    Ok(())
}
