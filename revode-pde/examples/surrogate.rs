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
use revode_core::{GradientMethod, Result, Tableau};
use revode_pde::datasets::random_bumps;
use revode_pde::surrogate::{
    fit, metrics, reference, rollout, FisherSurrogate, FitOptions, PointMlp,
};
use revode_pde::{step_options, Boundary, FisherKpp, Grid1d};

#[derive(clap::Parser)]
#[command(about = "Fisher–KPP reaction surrogate trained with reversible gradients")]
struct Args {
    /// Grid cells.
    #[arg(long, default_value_t = 64)]
    cells: usize,
    /// Diffusion ν (known to the model).
    #[arg(long, default_value_t = 0.002)]
    nu: f64,
    /// Growth rate ρ of the true reaction.
    #[arg(long, default_value_t = 5.0)]
    rho: f64,
    /// Training fields.
    #[arg(long, default_value_t = 8)]
    train: usize,
    /// Held-out fields.
    #[arg(long, default_value_t = 8)]
    test: usize,
    /// Width of the reaction MLP.
    #[arg(long, default_value_t = 16)]
    width: usize,
    /// AdamW iterations.
    #[arg(long, default_value_t = 1500)]
    iterations: usize,
    /// Initial learning rate (cosine-decayed).
    #[arg(long, default_value_t = 0.03)]
    lr: f64,
    /// Gradient method.
    #[arg(long, default_value = "reversible", value_parser = ["reversible", "auto"])]
    method: String,
    /// Seed of the network.
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

fn run(a: &Args) -> Result<()> {
    let (cells, nu, rho, nt, ntest) = (a.cells, a.nu, a.rho, a.train, a.test);
    let (width, iterations, seed) = (a.width, a.iterations, a.seed);
    let method = match a.method.as_str() {
        "auto" => GradientMethod::CheckpointedReversibleAuto { tolerance: 1e-10 },
        _ => GradientMethod::Reversible,
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
            lr: a.lr,
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
    let args = <Args as clap::Parser>::parse();
    if let Err(e) = run(&args) {
        eprintln!("surrogate: {e}");
        std::process::exit(1);
    }
}
