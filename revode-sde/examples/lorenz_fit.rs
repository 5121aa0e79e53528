//! Fits the stochastic Lorenz parameters by moment matching with the reversible gradient.
//! `cargo run --release -p revode-sde --example lorenz_fit -- [iterations]`

use revode_sde::lorenz::{fit_lorenz, LorenzFitOptions};

fn main() -> revode_core::Result<()> {
    let iterations = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(300);
    let start = std::time::Instant::now();
    let fit = fit_lorenz(&LorenzFitOptions {
        iterations,
        lr: std::env::var("LR")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.05),
        initial: if std::env::var("AT_TRUTH").is_ok() {
            revode_sde::lorenz::LORENZ_TRUTH
        } else {
            LorenzFitOptions::default().initial
        },
        ..Default::default()
    })?;
    println!(
        "{:.1} s, loss {:.3e} → {:.3e}",
        start.elapsed().as_secs_f64(),
        fit.losses[0],
        fit.losses[fit.losses.len() - 1]
    );
    println!(
        "truth   {:?}\ninitial {:?}\nfitted  {:?}\nstored {} (k = {:?}) of {} steps",
        fit.truth, fit.initial, fit.fitted, fit.stored_states, fit.checkpoint_interval, fit.steps
    );
    Ok(())
}
