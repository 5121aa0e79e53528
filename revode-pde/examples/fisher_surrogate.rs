//! Learns the Fisher–KPP reaction term from trajectories and reports held-out rollout errors.
//! `cargo run --release -p revode-pde --example fisher_surrogate -- [iterations]`

use revode_core::{GradientMethod, Tableau};
use revode_pde::surrogate::{
    fit, metrics, random_bumps, reference, rollout, FisherSurrogate, FitOptions, PointMlp,
};
use revode_pde::{step_options, Boundary, FisherKpp, Grid1d};

fn main() -> revode_core::Result<()> {
    let iters: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(300);
    let lr: f64 = std::env::var("LR")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.02);
    let grid = Grid1d::new(64, 0.0, 1.0, Boundary::Neumann)?;
    let (nu, rho) = (0.002, 5.0);
    let times: Vec<f64> = (0..=10).map(|k| 0.1 * k as f64).collect();
    let nt: usize = std::env::var("NT")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(8);
    let train_truth = FisherKpp::new(grid, nt, nu, rho)?;
    let train = reference(&train_truth, &random_bumps(&grid, nt, 1), &times)?;
    let test_truth = FisherKpp::new(grid, 4, nu, rho)?;
    let test = reference(&test_truth, &random_bumps(&grid, 4, 2), &times)?;
    let mut model = FisherSurrogate {
        grid,
        batch: nt,
        nu,
        reaction_bound: 2.0 * rho,
        through_origin: std::env::var("ORIGIN").is_ok(),
        reaction: PointMlp::new(
            1,
            std::env::var("W")
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(16),
            3,
        )?,
    };
    eprintln!(
        "h = {:?}; reference h = {:?}",
        revode_pde::max_step(&model, &Tableau::heun(), Some(0.5)),
        revode_pde::max_step(&train_truth, &Tableau::rk4(), None)
    );
    let start = std::time::Instant::now();
    let report = fit(
        &mut model,
        &train,
        &FitOptions {
            method: GradientMethod::Reversible,
            tableau: Tableau::heun(),
            lambda: 0.5,
            iterations: iters,
            lr,
            // λ = 0.5 drifts ≈ 8e-8 to 1.2e-6 over training (above the default √ε): accept
            // up to 1e-4, far below what would disturb the fit.
            drift: revode_core::gradient::DriftCheck::Tolerance(1e-4),
        },
    )?;
    eprintln!(
        "{:.1} s; loss {:.3e} → {:.3e}; stored {}; steps {}",
        start.elapsed().as_secs_f64(),
        report.losses[0],
        report.losses[report.losses.len() - 1],
        report.stored_states,
        report.steps
    );
    let test_model = FisherSurrogate {
        batch: 4,
        ..model.clone()
    };
    let opts = step_options(&test_model, &Tableau::rk4(), None, None)?;
    let pred = rollout(&test_model, &test, &opts)?;
    println!("{:?}", metrics(&pred, &test.states));
    Ok(())
}
