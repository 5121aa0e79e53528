//! The Fisher–KPP reaction surrogate: u_t = ν u_xx + ρ u(1 − u) on [0, 1] (Neumann), the model
//! knows ν and learns g(u) = u·MLP(u) from reference trajectories with reversible gradients,
//! then rolls out on held-out initial conditions.
//!
//! ```text
//! cargo run --release -p revode-pde --example surrogate -- [--cells 64] [--nu 0.002]
//!     [--rho 5] [--train 8] [--test 8] [--width 16] [--iterations 1500] [--lr 0.03]
//!     [--method reversible|auto] [--seed 0]
//! ```

use revode_core::gradient::DriftCheck;
use revode_core::{Error, GradientMethod, Result, Tableau};
use revode_pde::datasets::random_bumps;
use revode_pde::surrogate::{
    fit, metrics, reference, rollout, FisherSurrogate, FitOptions, PointMlp,
};
use revode_pde::{step_options, Boundary, FisherKpp, Grid1d};

fn flag(args: &[String], name: &str, default: f64) -> Result<f64> {
    match args.iter().position(|a| a == name) {
        Some(i) => args
            .get(i + 1)
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| Error::config(name, "needs a number")),
        None => Ok(default),
    }
}

fn run(args: &[String]) -> Result<()> {
    let cells = flag(args, "--cells", 64.0)? as usize;
    let (nu, rho) = (flag(args, "--nu", 0.002)?, flag(args, "--rho", 5.0)?);
    let (nt, ntest) = (
        flag(args, "--train", 8.0)? as usize,
        flag(args, "--test", 8.0)? as usize,
    );
    let width = flag(args, "--width", 16.0)? as usize;
    let iterations = flag(args, "--iterations", 1500.0)? as usize;
    let seed = flag(args, "--seed", 0.0)? as u64;
    let method = match args
        .iter()
        .position(|a| a == "--method")
        .and_then(|i| args.get(i + 1))
    {
        None => GradientMethod::Reversible,
        Some(m) if m == "reversible" => GradientMethod::Reversible,
        Some(m) if m == "auto" => GradientMethod::CheckpointedReversibleAuto { tolerance: 1e-10 },
        Some(m) => return Err(Error::config("--method", format!("unknown method {m}"))),
    };
    let grid = Grid1d::new(cells, 0.0, 1.0, Boundary::Neumann)?;
    let times: Vec<f64> = (0..=10).map(|k| 0.1 * k as f64).collect();
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
    let mut model = FisherSurrogate {
        grid,
        batch: nt,
        nu,
        reaction_bound: 2.0 * rho,
        through_origin: true,
        reaction: PointMlp::new(1, width, 3 + seed)?,
    };
    println!(
        "Fisher–KPP, {cells} cells, ν = {nu}, ρ = {rho}: {nt} training and {ntest} held-out fields, {} iterations of {}",
        iterations,
        method.label()
    );
    let start = std::time::Instant::now();
    let report = fit(
        &mut model,
        &train,
        &FitOptions {
            method,
            tableau: Tableau::heun(),
            lambda: 0.5,
            iterations,
            lr: flag(args, "--lr", 0.03)?,
            drift: DriftCheck::Tolerance(1e-4),
        },
    )?;
    let tester = FisherSurrogate {
        batch: ntest,
        ..model
    };
    let pred = rollout(
        &tester,
        &test,
        &step_options(&tester, &Tableau::rk4(), None, None)?,
    )?;
    let m = metrics(&pred, &test.states);
    println!(
        "loss {:.3e} → {:.3e} in {:.1} s ({} solver steps, {} stored states per gradient)",
        report.losses[0],
        report.losses[report.losses.len() - 1],
        start.elapsed().as_secs_f64(),
        report.steps,
        report.stored_states
    );
    println!(
        "held-out rollout: nRMSE {:.3e}, max error {:.3e}, mass error {:.3e}",
        m.nrmse, m.max_error, m.mass_error
    );
    Ok(())
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let Err(e) = run(&args) {
        eprintln!("surrogate: {e}");
        std::process::exit(1);
    }
}
