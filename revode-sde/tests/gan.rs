//! SDE-GAN: the generator's gradient through the critic's data pullback and the reversible SDE
//! gradient equals finite differences; bad settings are errors.

use revode_sde::gan::{GanConfig, OuProcess, SdeGan};

#[test]
fn generator_gradient_matches_finite_differences() {
    let ou = OuProcess {
        times: 8,
        horizon: 7.0,
        ..OuProcess::default()
    };
    let real = ou.sample(64, 3).unwrap();
    let config = GanConfig {
        hidden: 3,
        width: 4,
        disc_hidden: 3,
        disc_width: 4,
        batch: 5,
        clip: 0.5,
        ..GanConfig::default()
    };
    let gan = SdeGan::new(config, &real, 11).unwrap();
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
    let ou = OuProcess {
        times: 8,
        horizon: 7.0,
        ..OuProcess::default()
    };
    let real = ou.sample(64, 3).unwrap();
    let config = GanConfig {
        hidden: 3,
        width: 4,
        disc_hidden: 3,
        disc_width: 4,
        batch: 4,
        clip: 1.0,
        gradient_penalty: Some(10.0),
        // The nonlinear readout: its data and parameter pullbacks are both exercised here.
        critic_mlp_readout: true,
        ..GanConfig::default()
    };
    let mut gan = SdeGan::new(config, &real, 5).unwrap();
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
    ] {
        assert!(SdeGan::new(config, &real, 1).is_err());
    }
}
