//! Trains the SDE-GAN on the Ornstein–Uhlenbeck data and prints marginal statistics.
//! `cargo run --release -p revode-sde --example sde_gan -- [steps]`

use revode_sde::gan::{GanConfig, OuProcess, SdeGan};
use revode_sde::stats::{ks_two_sample, mean_var};

fn main() -> revode_core::Result<()> {
    let steps: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(500);
    let real = OuProcess::default().sample(8192, 1)?;
    let env = |k: &str, d: f64| {
        std::env::var(k)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(d)
    };
    let config = GanConfig {
        lr_generator: env("LR_G", GanConfig::default().lr_generator),
        lr_discriminator: env("LR_D", GanConfig::default().lr_discriminator),
        clip: env("CLIP", GanConfig::default().clip),
        batch: env("BATCH", 256.0) as usize,
        square_channel: env("SQUARE", 1.0) > 0.5,
        critic_steps: env("NCRITIC", 2.0) as usize,
        adam_beta1: env("BETA1", GanConfig::default().adam_beta1),
        time_gain: env("TIME_GAIN", 0.0) > 0.5,
        gradient_penalty: Some(env("GP", 10.0)).filter(|&l| l > 0.0),
        initial_scale: env("INIT", 1.0),
        critic_mlp_readout: env("MLP_READOUT", 0.0) > 0.5,
        critic_all_times: env("ALL_TIMES", 0.0) > 0.5,
        detrend: env("DETREND", 1.0) > 0.5,
        horizon: env("HORIZON", GanConfig::default().horizon),
        disc_hidden: env("DISC_H", 16.0) as usize,
        disc_width: env("DISC_W", 16.0) as usize,
        steps_per_interval: env("SPI", 1.0) as usize,
        ..GanConfig::default()
    };
    let seed = env("SEED", 7.0) as u64;
    // Learning rates decay linearly to LR_FINAL × over the run (the bench's schedule, in steps).
    let lr_final = env("LR_FINAL", 0.1);
    let mut gan = SdeGan::new(config, &real, seed)?;
    let start = std::time::Instant::now();
    for i in 0..steps {
        if i == steps / 2 {
            gan.start_averaging();
        }
        gan.set_learning_rate_scale(1.0 - (1.0 - lr_final) * i as f64 / steps as f64)?;
        let s = gan.train_step(&real, seed ^ 4)?;
        if i % 50 == 0 || i + 1 == steps {
            eprintln!(
                "step {i}: W ≈ {:.4}, penalty {:.4} ({:.1} s)",
                s.wasserstein,
                s.penalty,
                start.elapsed().as_secs_f64()
            );
        }
        if i % 500 == 499 {
            report(&gan, &real, 2048)?;
        }
    }
    report(&gan, &real, 8192)
}

/// Marginal statistics of `paths` generated paths against the data at four times.
fn report(gan: &SdeGan, real: &revode_sde::gan::Samples, paths: usize) -> revode_core::Result<()> {
    let fake = gan.sample(paths, 99)?;
    for k in [0, 21, 42, 63] {
        let (r, f) = (real.marginal(k), fake.marginal(k));
        let ((mr, vr), (mf, vf)) = (mean_var(&r), mean_var(&f));
        println!(
            "t = {:>4.1}: KS {:.3}  mean {mr:.3} vs {mf:.3}  var {vr:.3} vs {vf:.3}",
            real.times[k],
            ks_two_sample(&r, &f).statistic
        );
    }
    Ok(())
}
