//! PDE surrogate training over several seeds (docs/src/pde.md): the Fisher–KPP reaction term
//! and a conservative closure for viscous Burgers on a coarse grid.

use crate::fits::pm;
use crate::pde::DRIFT;
use crate::report::{self, fmt_time, plot_loglog, BenchResult, Series, Table};
use crate::Ctx;
use revode_core::gradient::DriftCheck;
use revode_core::{GradientMethod, Tableau};
use revode_pde::datasets::random_bumps;
use revode_pde::surrogate::{
    fit, metrics, reference, rollout, FisherSurrogate, FitOptions, PointMlp,
};
use revode_pde::{step_options, Boundary, FisherKpp, Grid1d};
use serde::Serialize;
use std::time::Instant;

#[derive(Serialize)]
struct SurrogateRow {
    method: String,
    seed: u64,
    iterations: usize,
    seconds: f64,
    final_loss: f64,
    stored_states: usize,
    interval: Option<usize>,
    steps: usize,
    test: revode_pde::surrogate::Metrics,
}

impl SurrogateRow {
    fn new(
        method: &GradientMethod,
        seed: u64,
        (iterations, seconds): (usize, f64),
        report: &revode_pde::surrogate::FitReport,
        test: revode_pde::surrogate::Metrics,
    ) -> Self {
        SurrogateRow {
            method: method.label(),
            seed,
            iterations,
            seconds,
            final_loss: report.losses.last().copied().unwrap_or(f64::NAN),
            stored_states: report.stored_states,
            interval: report.checkpoint_interval,
            steps: report.steps,
            test,
        }
    }
}

/// Mean ± sd rows (one per method, `prefix` before its name) appended to `t`.
fn summarise(t: &mut Table, rows: &[SurrogateRow], prefix: &str) {
    let mut methods: Vec<&str> = Vec::new();
    for r in rows {
        if !methods.contains(&r.method.as_str()) {
            methods.push(&r.method);
        }
    }
    for m in methods {
        let rs: Vec<&SurrogateRow> = rows.iter().filter(|r| r.method == m).collect();
        let col = |f: &dyn Fn(&SurrogateRow) -> f64| rs.iter().map(|r| f(r)).collect::<Vec<_>>();
        let sci = |x: f64| format!("{x:.2e}");
        t.row(vec![
            format!("{prefix}{m}"),
            rs.len().to_string(),
            pm(&col(&|r| r.seconds), fmt_time),
            pm(&col(&|r| r.final_loss), sci),
            rs[0].stored_states.to_string(),
            pm(&col(&|r| r.test.nrmse), sci),
            pm(&col(&|r| r.test.max_error), sci),
            pm(&col(&|r| r.test.mass_error), sci),
        ]);
    }
}

fn table() -> Table {
    Table::new(&[
        "model",
        "seeds",
        "time",
        "final loss",
        "stored",
        "test nRMSE",
        "test max err",
        "mass err",
    ])
}

/// The Fisher–KPP reaction surrogate and/or the Burgers closure
/// (`problem`: "fisher", "burgers" or "both").
pub fn surrogate(ctx: &Ctx, problem: &str) -> BenchResult<()> {
    if problem != "burgers" {
        fisher_surrogate(ctx)?;
    }
    if problem != "fisher" {
        burgers_closure(ctx)?;
    }
    Ok(())
}

/// Learns Fisher–KPP's reaction from trajectories; held-out rollouts.
fn fisher_surrogate(ctx: &Ctx) -> BenchResult<()> {
    let grid = Grid1d::new(64, 0.0, 1.0, Boundary::Neumann)?;
    let (nu, rho) = (0.002, 5.0);
    let times: Vec<f64> = (0..=10).map(|k| 0.1 * k as f64).collect();
    let (nt, ntest) = (8, 8);
    let train = reference(
        &FisherKpp::new(grid, nt, nu, rho)?,
        &random_bumps(&grid, nt, 1),
        &times,
    )?;
    let test = reference(
        &FisherKpp::new(grid, ntest, nu, rho)?,
        &random_bumps(&grid, ntest, 2),
        &times,
    )?;
    let iterations = if ctx.full { 4000 } else { 1500 };
    let seeds = ctx.seeds(if ctx.full { 3 } else { 1 });
    let methods = [
        GradientMethod::Reversible,
        GradientMethod::CheckpointedReversibleAuto { tolerance: DRIFT },
    ];
    let mut rows = Vec::new();
    let mut curves = Vec::new();
    let bar = ctx.bar((seeds.len() * methods.len()) as u64, "fisher-kpp");
    for &seed in &seeds {
        for method in &methods {
            let mut model = FisherSurrogate {
                grid,
                batch: nt,
                nu,
                reaction_bound: 2.0 * rho,
                through_origin: true,
                // Seed 0 is the MLP seed 3 of the single-seed runs before.
                reaction: PointMlp::new(1, 16, 3 + seed)?,
            };
            let start = Instant::now();
            let opts = FitOptions {
                method: method.clone(),
                tableau: Tableau::heun(),
                lambda: 0.5,
                iterations,
                lr: 0.03,
                // Plain reversible at λ = 0.5 drifts above the default √ε here: ≈ 8e-8 at the
                // start, ≈ 1.2e-6 as the reaction trains (measured). Gradients good to that
                // relative level are harmless for training; a blow-up past 1e-4 still stops it.
                drift: DriftCheck::Tolerance(1e-4),
            };
            let report = fit(&mut model, &train, &opts)?;
            let seconds = start.elapsed().as_secs_f64();
            let tester = FisherSurrogate {
                batch: ntest,
                ..model
            };
            let ropts = step_options(&tester, &Tableau::rk4(), None, None)?;
            let pred = rollout(&tester, &test, &ropts)?;
            curves.push(Series {
                label: format!("{} s{seed}", method.label()),
                points: report
                    .losses
                    .iter()
                    .enumerate()
                    .map(|(i, &l)| (i as f64 + 1.0, l))
                    .collect(),
            });
            rows.push(SurrogateRow::new(
                method,
                seed,
                (iterations, seconds),
                &report,
                metrics(&pred, &test.states),
            ));
            bar.inc(1);
        }
    }
    bar.finish_and_clear();
    let mut t = table();
    summarise(&mut t, &rows, "");
    ctx.emit(
        "pde-surrogate",
        &format!(
            "## Fisher–KPP reaction surrogate (docs/src/pde.md)\n\n\
             u_t = ν u_xx + ρu(1 − u), ν = {nu}, ρ = {rho}, 64 Neumann cells, {} observation \
             times on [0, 1]. The model knows ν and learns g(u) = u·MLP(u) (1 → 16 → 1, tanh) \
             from {nt} reference trajectories (RK4 at a tenth of its stability limit); \
             rollouts on {ntest} held-out initial conditions with RK4. reversible(Heun, λ = 0.5), \
             Adam lr 0.03, {iterations} iterations. Mean ± sample sd over the MLP's \
             initialisation seeds (fixed data).\n\n{}\n",
            times.len(),
            t.render()
        ),
    )?;
    report::write_json(&ctx.out, "pde_surrogate.json", &rows)?;
    plot_loglog(
        &ctx.out.join("pde_surrogate_loss.svg"),
        "Fisher–KPP surrogate training loss",
        "iteration",
        "loss",
        &curves,
    )
}

/// Fields of `batch × fine` averaged onto `batch × coarse` cells (mass-preserving).
fn coarsen(fine: &[f64], n_fine: usize, n_coarse: usize) -> Vec<f64> {
    let r = n_fine / n_coarse;
    fine.chunks(r)
        .map(|c| c.iter().sum::<f64>() / r as f64)
        .collect()
}

/// Smooth periodic initial conditions: three random Fourier modes per field.
fn fourier_fields(grid: &Grid1d, batch: usize, seed: u64) -> Vec<f64> {
    let mut rng = revode_core::random::SplitMix64::new(seed);
    let xs = grid.points();
    let tau = std::f64::consts::TAU;
    let mut out = Vec::with_capacity(batch * xs.len());
    for _ in 0..batch {
        let modes: Vec<(f64, f64)> = (0..3)
            .map(|_| (rng.symmetric(0.5), tau * rng.uniform()))
            .collect();
        out.extend(xs.iter().map(|&x| {
            modes
                .iter()
                .enumerate()
                .map(|(k, &(a, p))| a * (tau * (k + 1) as f64 * x + p).sin())
                .sum::<f64>()
        }));
    }
    out
}

/// A learned conservative closure for viscous Burgers on a coarse grid.
fn burgers_closure(ctx: &Ctx) -> BenchResult<()> {
    use revode_core::VectorField;
    use revode_pde::surrogate::{BurgersClosure, Trajectories};
    use revode_pde::Burgers;
    let (n_fine, n_coarse, nu) = (256, 32, 0.01);
    let fine = Grid1d::new(n_fine, 0.0, 1.0, Boundary::Periodic)?;
    let coarse = Grid1d::new(n_coarse, 0.0, 1.0, Boundary::Periodic)?;
    let times: Vec<f64> = (0..=10).map(|k| 0.05 * k as f64).collect();
    let data = |batch: usize, seed: u64| -> BenchResult<Trajectories> {
        let u0 = fourier_fields(&fine, batch, seed);
        let speed = u0.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        let truth = Burgers::new(fine, batch, nu, speed)?;
        let r = reference(&truth, &u0, &times)?;
        Ok(Trajectories {
            times: r.times,
            states: r
                .states
                .iter()
                .map(|s| coarsen(s, n_fine, n_coarse))
                .collect(),
        })
    };
    let (nt, ntest) = (8, 8);
    let train = data(nt, 11)?;
    let test = data(ntest, 12)?;
    let speed = 1.5
        * test.states[0]
            .iter()
            .chain(&train.states[0])
            .fold(0.0f64, |m, v| m.max(v.abs()));
    let width = 16;
    let model = |batch: usize, seed: u64| -> BenchResult<BurgersClosure> {
        Ok(BurgersClosure {
            grid: coarse,
            batch,
            nu,
            max_speed: speed,
            closure: PointMlp::new(2, width, seed)?,
        })
    };
    // No closure: the coarse model with the closure's output layer zeroed.
    let mut bare = model(ntest, 1)?;
    bare.params_mut()[3 * width..]
        .iter_mut()
        .for_each(|p| *p = 0.0);
    let ropts = step_options(&bare, &Tableau::rk4(), None, None)?;
    let baseline = metrics(&rollout(&bare, &test, &ropts)?, &test.states);
    let iterations = if ctx.full { 1000 } else { 200 };
    let seeds = ctx.seeds(if ctx.full { 3 } else { 1 });
    // Plain reversible reconstruction over this many steps overflows: record what it says.
    let plain_reversible = {
        let probe = FitOptions {
            method: GradientMethod::Reversible,
            tableau: Tableau::heun(),
            lambda: 0.9,
            iterations: 1,
            lr: 0.01,
            drift: DriftCheck::Default,
        };
        match fit(&mut model(nt, 5)?, &train, &probe) {
            Ok(_) => "plain reversible: fine".to_string(),
            Err(err) => format!("plain reversible: {err}"),
        }
    };
    let mut rows = Vec::new();
    let method = GradientMethod::CheckpointedReversibleAuto { tolerance: DRIFT };
    let bar = ctx.bar(seeds.len() as u64, "burgers");
    for &seed in &seeds {
        // Seed 0 is the MLP seed 5 of the single-seed runs before.
        let mut m = model(nt, 5 + seed)?;
        let start = Instant::now();
        let opts = FitOptions {
            method: method.clone(),
            tableau: Tableau::heun(),
            // λ = 0.9: at 0.5 the backward coupling grows round-off ≈ 40 % per step on this
            // complex spectrum; at 0.9 about 5 %, and the automatic interval caps it.
            lambda: 0.9,
            iterations,
            lr: 0.01,
            drift: DriftCheck::Default,
        };
        let report = fit(&mut m, &train, &opts)?;
        let tester = BurgersClosure { batch: ntest, ..m };
        let pred = rollout(&tester, &test, &ropts)?;
        rows.push(SurrogateRow::new(
            &method,
            seed,
            (iterations, start.elapsed().as_secs_f64()),
            &report,
            metrics(&pred, &test.states),
        ));
        bar.inc(1);
    }
    bar.finish_and_clear();
    let mut t = table();
    let sci = |x: f64| format!("{x:.2e}");
    t.row(vec![
        "coarse, no closure".into(),
        "—".into(),
        "—".into(),
        "—".into(),
        "—".into(),
        sci(baseline.nrmse),
        sci(baseline.max_error),
        sci(baseline.mass_error),
    ]);
    summarise(&mut t, &rows, "closure, ");
    ctx.emit(
        "burgers-closure",
        &format!(
            "## Burgers closure on a coarse grid (docs/src/pde.md)\n\n\
             Viscous Burgers, ν = {nu}, periodic; reference on {n_fine} cells (Rusanov + \
             Laplacian, RK4 at a tenth of its limit) averaged onto {n_coarse} cells; 11 \
             observations on [0, 0.5]. The coarse model adds a learned flux G(u_L, u_R) (MLP \
             2 → {width} → 1) at every face, so mass is conserved exactly; {nt} training and \
             {ntest} held-out initial conditions (three random Fourier modes); {iterations} \
             iterations, reversible(Heun, λ = 0.9), {} steps per gradient. Without checkpoints \
             the reconstruction overflows ({plain_reversible}); checkpointed-reversible with the \
             automatic interval does not. Mean ± sample sd over the closure MLP's \
             initialisation seeds (fixed data).\n\n{}\n",
            rows.first().map_or(0, |r| r.steps),
            t.render()
        ),
    )?;
    report::write_json(&ctx.out, "burgers_closure.json", &rows)?;
    Ok(())
}
