//! SDE-GAN: the generator's gradient through the critic's data pullback and the reversible SDE
//! gradient equals finite differences; bad settings are errors.

use revode_sde::gan::{GanConfig, OuProcess, SdeGan};

/// 64 OU paths at 8 times, and a GAN small enough for finite differences.
fn small_problem() -> (revode_sde::gan::Samples, GanConfig) {
    let ou = OuProcess {
        times: 8,
        horizon: 7.0,
        ..OuProcess::default()
    };
    let config = GanConfig {
        hidden: 3,
        width: 4,
        disc_hidden: 3,
        disc_width: 4,
        ..GanConfig::default()
    };
    (ou.sample(64, 3).unwrap(), config)
}

#[test]
fn generator_gradient_matches_finite_differences() {
    let (real, small) = small_problem();
    let base = GanConfig {
        batch: 5,
        clip: 0.5,
        detrend: false,
        horizon: 1.0,
        ..small.clone()
    };
    // The final-state readout on globally normalised data over model time [0, 1], and the
    // per-time readout (every observation's cotangent enters the SDE's backward pass) on
    // detrended data over [0, 8].
    let per_time = GanConfig {
        critic_all_times: true,
        detrend: true,
        horizon: 8.0,
        ..base.clone()
    };
    for config in [base, per_time] {
        generator_matches_fd(config, &real);
    }
}

fn generator_matches_fd(config: GanConfig, real: &revode_sde::gan::Samples) {
    let gan = SdeGan::new(config, real, 11).unwrap();
    let p = gan.generator.clone();
    let (loss, grad, _) = gan.generator_gradient(&p, 5, 42).unwrap();
    assert!((loss - gan.generator_loss(&p, 5, 42).unwrap()).abs() <= 1e-12 * loss.abs().max(1.0));
    let h = 1e-6;
    let mut worst: f64 = 0.0;
    for i in 0..p.len() {
        let (mut up, mut dn) = (p.clone(), p.clone());
        up[i] += h;
        dn[i] -= h;
        let fd = (gan.generator_loss(&up, 5, 42).unwrap()
            - gan.generator_loss(&dn, 5, 42).unwrap())
            / (2.0 * h);
        worst = worst.max((fd - grad[i]).abs() / (1e-3 + grad[i].abs()));
        assert!(
            (fd - grad[i]).abs() <= 1e-6 * (1.0 + grad[i].abs()),
            "θ[{i}]: FD {fd} vs {}",
            grad[i]
        );
    }
    eprintln!("worst relative FD mismatch {worst:e}");
}

#[test]
fn gradient_penalty_gradient_matches_finite_differences() {
    let (real, small) = small_problem();
    let config = GanConfig {
        batch: 4,
        clip: 1.0,
        gradient_penalty: Some(10.0),
        // The nonlinear readout: its data and parameter pullbacks are both exercised here.
        critic_mlp_readout: true,
        ..small
    };
    penalty_matches_fd(config.clone(), &real);
    // The per-time readout: every observation's state carries part of the data gradient.
    penalty_matches_fd(
        GanConfig {
            critic_mlp_readout: false,
            critic_all_times: true,
            ..config
        },
        &real,
    );
}

fn penalty_matches_fd(config: GanConfig, real: &revode_sde::gan::Samples) {
    let mut gan = SdeGan::new(config, real, 5).unwrap();
    // Larger critic weights than the clipped start, so that ‖∇_Y D‖ is far from 1.
    gan.discriminator.iter_mut().for_each(|p| *p *= 3.0);
    let n = real.times.len();
    let yhat: Vec<f64> = (0..4 * n).map(|i| 0.5 * (0.37 * i as f64).sin()).collect();
    let (pen, grad) = gan.penalty_gradient(&yhat).unwrap();
    assert!(pen > 0.0);
    let p0 = gan.discriminator.clone();
    let h = 1e-5;
    let gmax = grad.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    for (i, &gi) in grad.iter().enumerate() {
        let mut at = |d: f64| {
            gan.discriminator.copy_from_slice(&p0);
            gan.discriminator[i] += d;
            gan.penalty_gradient(&yhat).unwrap().0
        };
        let fd = (at(h) - at(-h)) / (2.0 * h);
        // The Hessian–vector difference is O(ε²) accurate with ε‖u‖∞ = 1e-4; the outer
        // central difference O(h²): 1e-5 of the largest entry covers both.
        assert!(
            (fd - gi).abs() <= 1e-5 * gmax,
            "θ[{i}]: FD {fd} vs {gi} (max {gmax})"
        );
    }
}

#[test]
fn bad_settings_are_errors() {
    let real = OuProcess {
        times: 8,
        ..OuProcess::default()
    }
    .sample(16, 1)
    .unwrap();
    for config in [
        GanConfig {
            batch: 0,
            ..GanConfig::default()
        },
        GanConfig {
            clip: 0.0,
            ..GanConfig::default()
        },
        GanConfig {
            steps_per_interval: 0,
            ..GanConfig::default()
        },
        GanConfig {
            gradient_penalty: Some(-1.0),
            ..GanConfig::default()
        },
        GanConfig {
            adam_beta1: 1.0,
            ..GanConfig::default()
        },
        GanConfig {
            chunks: 0,
            ..GanConfig::default()
        },
        GanConfig {
            horizon: 0.0,
            ..GanConfig::default()
        },
        GanConfig {
            critic_all_times: true,
            critic_mlp_readout: true,
            ..GanConfig::default()
        },
    ] {
        assert!(SdeGan::new(config, &real, 1).is_err());
    }
    let mut nan = real.clone();
    nan.values[5] = f64::NAN;
    let err = SdeGan::new(GanConfig::default(), &nan, 1).unwrap_err();
    assert!(err.to_string().contains("finite"), "{err}");
    let mut gan = SdeGan::new(GanConfig::default(), &real, 1).unwrap();
    for bad in [0.0, -1.0, f64::NAN, f64::INFINITY] {
        assert!(gan.set_learning_rate_scale(bad).is_err());
    }
    assert!(gan.set_learning_rate_scale(0.5).is_ok());
    let mut ragged = real.clone();
    ragged.values.pop();
    assert!(SdeGan::new(GanConfig::default(), &ragged, 1).is_err());
}

#[test]
fn detrending_fits_the_least_squares_line() {
    let real = OuProcess::default().sample(256, 2).unwrap();
    let n = real.times.len();
    let config = GanConfig {
        detrend: true,
        ..GanConfig::default()
    };
    let gan = SdeGan::new(config, &real, 1).unwrap();
    // The residuals of a least-squares line have zero mean and are uncorrelated with time.
    let (mut sum, mut cov, mut sq) = (0.0, 0.0, 0.0);
    let t_mean = real.times.iter().sum::<f64>() / n as f64;
    for (i, v) in real.values.iter().enumerate() {
        let r = v - gan.shift[i % n];
        sum += r;
        cov += r * (real.times[i % n] - t_mean);
        sq += r * r;
    }
    let count = real.values.len() as f64;
    let magnitude = real.values.iter().map(|v| v.abs()).sum::<f64>();
    assert!(sum.abs() <= 1e-12 * magnitude, "residual sum {sum}");
    assert!(
        cov.abs() <= 1e-12 * magnitude * 63.0,
        "residual covariance {cov}"
    );
    assert!(((sq / count).sqrt() - gan.scale).abs() <= 1e-12 * gan.scale);
    // The OU mean rises by about 10.6 over the horizon: the line must carry it.
    let slope = (gan.shift[n - 1] - gan.shift[0]) / real.times[n - 1];
    assert!((0.1..0.3).contains(&slope), "slope {slope}");
}

#[test]
fn training_is_bitwise_identical_on_one_and_two_threads() {
    let (real, small) = small_problem();
    let config = GanConfig {
        batch: 10,
        chunks: 3,
        ..small
    };
    let train = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        pool.install(|| {
            let mut gan = SdeGan::new(config.clone(), &real, 9).unwrap();
            for _ in 0..3 {
                gan.train_step(&real, 1).unwrap();
            }
            (gan.generator, gan.discriminator)
        })
    };
    let (g1, d1) = train(1);
    let (g2, d2) = train(2);
    let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    assert_eq!(bits(&g1), bits(&g2));
    assert_eq!(bits(&d1), bits(&d2));
    // And the chunk count is what the noise depends on: one chunk trains differently.
    let one = GanConfig {
        chunks: 1,
        ..config.clone()
    };
    let mut gan = SdeGan::new(one, &real, 9).unwrap();
    for _ in 0..3 {
        gan.train_step(&real, 1).unwrap();
    }
    assert_ne!(bits(&gan.generator), bits(&g1));
}
