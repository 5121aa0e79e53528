//! SDE-GAN: the generator's gradient through the critic's data pullback and the reversible SDE
//! gradient, the critic's data gradient and the gradient penalty's gradient equal finite
//! differences; training through the trainer is bitwise the same on 1 and 2 threads; bad
//! settings and data are errors.

use ndarray::{Array2, Array3};
use revode_cde::TimeSeries;
use revode_core::train::Trainer;
use revode_sde::datasets::OuProcess;
use revode_sde::gan::{GanConfig, SdeGan};

/// 64 two-channel OU paths at 8 times, and a GAN small enough for finite differences.
fn small_problem() -> (TimeSeries, GanConfig) {
    let ou = OuProcess {
        times: 8,
        horizon: 7.0,
        channels: 2,
        rho: 0.5,
        ..OuProcess::default()
    };
    let config = GanConfig {
        hidden: 3,
        width: 4,
        critic_hidden: 3,
        critic_width: 4,
        batch: 5,
        chunks: 2,
        ..GanConfig::default()
    };
    (ou.sample(64, 3).unwrap(), config)
}

/// Critic parameters larger than the clipped start, so its gradients are not tiny.
fn spread_critic(gan: &SdeGan, p: &mut [f64]) {
    let ng = gan.generator_len();
    p[ng..]
        .iter_mut()
        .enumerate()
        .for_each(|(i, v)| *v = 3.0 * *v + 0.05 * (i as f64).sin());
}

#[test]
fn generator_gradient_matches_finite_differences() {
    let (real, config) = small_problem();
    for square_channel in [true, false] {
        let gan = SdeGan::new(
            GanConfig {
                square_channel,
                ..config.clone()
            },
            &real,
        )
        .unwrap();
        let mut p = gan.init(11).unwrap();
        spread_critic(&gan, &mut p);
        let (gen, critic) = p.split_at(gan.generator_len());
        let loss = |_: usize, y: &[f64], yb: &mut [f64]| {
            let (s, _, d) = gan.critic_chunk(critic, y, -0.2, true)?;
            yb.copy_from_slice(&d.unwrap());
            Ok(s)
        };
        let g = gan.generator_gradient(gen, 5, 42, &loss).unwrap();
        let value = |gen: &[f64]| -> f64 {
            let y = gan.generate_scaled(gen, 5, 42).unwrap();
            gan.critic_gradient(critic, &y, -0.2, false).unwrap().0
        };
        assert!((g.loss - value(gen)).abs() <= 1e-12 * g.loss.abs().max(1.0));
        let h = 1e-6;
        for i in 0..gen.len() {
            let (mut up, mut dn) = (gen.to_vec(), gen.to_vec());
            up[i] += h;
            dn[i] -= h;
            let fd = (value(&up) - value(&dn)) / (2.0 * h);
            assert!(
                (fd - g.grad[i]).abs() <= 1e-6 * (1.0 + g.grad[i].abs()),
                "θ[{i}]: FD {fd} vs {}",
                g.grad[i]
            );
        }
    }
}

#[test]
fn critic_data_gradient_matches_finite_differences() {
    let (real, config) = small_problem();
    let gan = SdeGan::new(config, &real).unwrap();
    let mut p = gan.init(2).unwrap();
    spread_critic(&gan, &mut p);
    let critic = &p[gan.generator_len()..];
    let per = 8 * 2;
    let y: Vec<f64> = (0..3 * per)
        .map(|i| 0.7 * (0.31 * i as f64).cos())
        .collect();
    let (s, grad, yb) = gan.critic_chunk(critic, &y, 0.5, true).unwrap();
    let yb = yb.unwrap();
    let sum = |y: &[f64]| 0.5 * gan.scores(critic, y).unwrap().iter().sum::<f64>();
    assert!((s - sum(&y)).abs() <= 1e-13 * s.abs().max(1.0));
    let h = 1e-6;
    for i in 0..y.len() {
        let (mut up, mut dn) = (y.clone(), y.clone());
        up[i] += h;
        dn[i] -= h;
        let fd = (sum(&up) - sum(&dn)) / (2.0 * h);
        assert!(
            (fd - yb[i]).abs() <= 1e-7 * (1.0 + yb[i].abs()),
            "y[{i}]: FD {fd} vs {}",
            yb[i]
        );
    }
    for i in 0..critic.len() {
        let (mut up, mut dn) = (critic.to_vec(), critic.to_vec());
        up[i] += h;
        dn[i] -= h;
        let at = |c: &[f64]| 0.5 * gan.scores(c, &y).unwrap().iter().sum::<f64>();
        let fd = (at(&up) - at(&dn)) / (2.0 * h);
        assert!(
            (fd - grad[i]).abs() <= 1e-7 * (1.0 + grad[i].abs()),
            "θ[{i}]: FD {fd} vs {}",
            grad[i]
        );
    }
}

#[test]
fn gradient_penalty_gradient_matches_finite_differences() {
    let (real, config) = small_problem();
    let gan = SdeGan::new(config, &real).unwrap();
    let mut p = gan.init(5).unwrap();
    spread_critic(&gan, &mut p);
    let c0 = p[gan.generator_len()..].to_vec();
    let yhat: Vec<f64> = (0..4 * 16).map(|i| 0.5 * (0.37 * i as f64).sin()).collect();
    let (pen, grad) = gan.penalty_gradient(&c0, &yhat).unwrap();
    assert!(pen > 0.0);
    let h = 1e-5;
    let gmax = grad.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    for (i, &gi) in grad.iter().enumerate() {
        let at = |d: f64| {
            let mut c = c0.clone();
            c[i] += d;
            gan.penalty_gradient(&c, &yhat).unwrap().0
        };
        let fd = (at(h) - at(-h)) / (2.0 * h);
        // The gradient is exact (forward over reverse); the central difference is O(h²)
        // accurate plus O(ε·penalty/h) round-off.
        assert!(
            (fd - gi).abs() <= 1e-8 * (1.0 + gmax),
            "θ[{i}]: FD {fd} vs {gi} (max {gmax})"
        );
    }
}

#[test]
fn training_through_the_trainer_is_bitwise_on_one_and_two_threads() {
    let (real, small) = small_problem();
    let config = GanConfig {
        batch: 10,
        chunks: 3,
        ..small
    };
    let train = |config: &GanConfig, threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        pool.install(|| {
            let gan = SdeGan::new(config.clone(), &real).unwrap();
            let mut state = gan.train_state(9).unwrap();
            Trainer::new(gan.train_config(4))
                .run_with(&mut state, gan.objective(&real, 1).unwrap())
                .unwrap();
            state
        })
    };
    let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    let one = train(&config, 1);
    let two = train(&config, 2);
    assert_eq!(bits(&one.params), bits(&two.params));
    assert_eq!(bits(&one.history), bits(&two.history));
    assert_eq!(
        one.average.as_ref().unwrap().1,
        3,
        "averaged from a quarter of the run on"
    );
    // Without a decay the average is uniform over the second half.
    let uniform = SdeGan::new(
        GanConfig {
            average_decay: None,
            ..config.clone()
        },
        &real,
    )
    .unwrap()
    .train_config(4);
    assert_eq!(
        (uniform.average_from, uniform.average_decay),
        (Some(2), None)
    );
    // Evaluations score the unaveraged generator too.
    assert!(uniform.eval_unaveraged);
    // The chunk count is what the noise depends on: one chunk trains differently.
    let other = train(
        &GanConfig {
            chunks: 1,
            ..config
        },
        1,
    );
    assert_ne!(bits(&other.params), bits(&one.params));
}

#[test]
fn samples_have_the_data_shape_and_units() {
    let (real, config) = small_problem();
    let gan = SdeGan::new(config, &real).unwrap();
    let p = gan.init(1).unwrap();
    let s = gan.sample(&p, 37, 4).unwrap();
    assert_eq!(s.values.dim(), (37, 8, 2));
    assert_eq!(s.times.row(0), real.times.row(0));
    assert!(s.values.iter().all(|v| v.is_finite()));
    // A generator that overflows is an error, not NaN passed off as missing values.
    let mut blown = p.clone();
    blown[..gan.generator_len()]
        .iter_mut()
        .for_each(|v| *v = 1e300);
    assert!(gan.sample(&blown, 4, 4).is_err());
    // The generator block alone samples the same paths.
    let t = gan.sample(&p[..gan.generator_len()], 37, 4).unwrap();
    assert_eq!(s, t);
}

#[test]
fn bad_settings_and_data_are_errors() {
    let (real, _) = small_problem();
    for config in [
        GanConfig {
            batch: 0,
            ..GanConfig::default()
        },
        GanConfig {
            steps_per_interval: 0,
            ..GanConfig::default()
        },
        GanConfig {
            gradient_penalty: -1.0,
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
            lr_critic: f64::NAN,
            ..GanConfig::default()
        },
        GanConfig {
            critic_hidden: 0,
            ..GanConfig::default()
        },
        GanConfig {
            average_decay: Some(1.0),
            ..GanConfig::default()
        },
    ] {
        assert!(SdeGan::new(config, &real).is_err());
    }
    // Missing values, per-series grids and a single time are refused with what is wrong.
    let mut nan = real.clone();
    nan.values[[5, 2, 1]] = f64::NAN;
    let err = SdeGan::new(GanConfig::default(), &nan).unwrap_err();
    assert!(err.to_string().contains("missing"), "{err}");
    let mut times = real.times.clone();
    times[[3, 4]] += 0.01;
    let ragged = TimeSeries::new(real.values.clone(), times, None, vec![]).unwrap();
    let err = SdeGan::new(GanConfig::default(), &ragged).unwrap_err();
    assert!(err.to_string().contains("grid"), "{err}");
    let one = TimeSeries::new(
        Array3::zeros((4, 1, 1)),
        Array2::zeros((1, 1)),
        None,
        vec![],
    )
    .unwrap();
    assert!(SdeGan::new(GanConfig::default(), &one).is_err());
    // Training data of another shape than the GAN's.
    let gan = SdeGan::new(GanConfig::default(), &real).unwrap();
    let one_channel = OuProcess {
        times: 8,
        horizon: 7.0,
        ..OuProcess::default()
    }
    .sample(8, 1)
    .unwrap();
    assert!(gan.objective(&one_channel, 1).is_err());
    let p = gan.init(1).unwrap();
    assert!(gan.sample(&p[..3], 4, 1).is_err());
}

#[test]
fn detrending_fits_a_least_squares_line_per_channel() {
    let real = OuProcess {
        channels: 2,
        rho: -0.3,
        ..OuProcess::default()
    }
    .sample(256, 2)
    .unwrap();
    let gan = SdeGan::new(GanConfig::default(), &real).unwrap();
    let (n, k, c) = real.values.dim();
    let times = real.times.row(0).to_vec();
    let t_mean = times.iter().sum::<f64>() / k as f64;
    for ch in 0..c {
        // The residuals of a least-squares line have zero mean and are uncorrelated with time.
        let (mut sum, mut cov, mut sq, mut mag) = (0.0, 0.0, 0.0, 0.0);
        for i in 0..n {
            for (j, t) in times.iter().enumerate() {
                let v = real.values[[i, j, ch]];
                let r = v - gan.shift[j * c + ch];
                sum += r;
                cov += r * (t - t_mean);
                sq += r * r;
                mag += v.abs();
            }
        }
        assert!(sum.abs() <= 1e-12 * mag, "channel {ch}: residual sum {sum}");
        assert!(
            cov.abs() <= 1e-12 * mag * 63.0,
            "channel {ch}: residual covariance {cov}"
        );
        assert!(((sq / (n * k) as f64).sqrt() - gan.scale[ch]).abs() <= 1e-12 * gan.scale[ch]);
        // The OU mean rises by about 10.6 over the horizon: the line must carry it.
        let slope = (gan.shift[(k - 1) * c + ch] - gan.shift[ch]) / times[k - 1];
        assert!((0.1..0.3).contains(&slope), "channel {ch}: slope {slope}");
    }
}

#[test]
fn correlated_ou_increments_have_the_set_correlation() {
    // Over one short interval the increments are σ(t) L ΔW plus O(Δt) drift: their
    // correlation is ρ. 4000 paths: the estimate's sd is (1 − ρ²)/√4000 ≈ 0.01.
    let ou = OuProcess {
        channels: 2,
        rho: 0.6,
        times: 201,
        horizon: 2.0,
        ..OuProcess::default()
    };
    let s = ou.sample(4000, 8).unwrap();
    let inc: Vec<(f64, f64)> = (0..4000)
        .map(|i| {
            (
                s.values[[i, 101, 0]] - s.values[[i, 100, 0]],
                s.values[[i, 101, 1]] - s.values[[i, 100, 1]],
            )
        })
        .collect();
    let m = |f: &dyn Fn(&(f64, f64)) -> f64| inc.iter().map(f).sum::<f64>() / 4000.0;
    let (ma, mb) = (m(&|p| p.0), m(&|p| p.1));
    let cov = m(&|p| (p.0 - ma) * (p.1 - mb));
    let (va, vb) = (m(&|p| (p.0 - ma).powi(2)), m(&|p| (p.1 - mb).powi(2)));
    let r = cov / (va * vb).sqrt();
    assert!((r - 0.6).abs() < 0.05, "correlation {r}");
    assert!(OuProcess {
        channels: 3,
        rho: -0.6,
        ..OuProcess::default()
    }
    .sample(4, 1)
    .is_err());
}
