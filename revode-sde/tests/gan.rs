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
    ] {
        assert!(SdeGan::new(config, &real, 1).is_err());
    }
}
