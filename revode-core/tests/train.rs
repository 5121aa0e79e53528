//! Training: AdamW, the loop, checkpoints and bit-identical resumption.

mod common;
use revode_core::mlp::MlpSpec;
use revode_core::prelude::*;
use revode_core::train::{self, AdamW, Schedule, TrainConfig, TrainState, Trainer};

/// Fit a 2 → 8 → 2 MLP ODE to a rotating decay, reversible midpoint, observations at 11 times.
fn problem() -> (MlpSpec, Vec<f64>, Vec<f64>, Vec<Vec<f64>>) {
    let spec = MlpSpec::new(2, 8);
    let times: Vec<f64> = (0..=10).map(|k| k as f64 * 0.2).collect();
    let target: Vec<Vec<f64>> = times
        .iter()
        .map(|&t: &f64| {
            let d = (-0.3 * t).exp();
            vec![d * (1.5 * t).cos(), d * (1.5 * t).sin()]
        })
        .collect();
    (spec.clone(), spec.init_uniform(0), times, target)
}

fn loss_and_grad(
    spec: &MlpSpec,
    times: &[f64],
    target: &[Vec<f64>],
    p: &[f64],
) -> Result<(f64, Vec<f64>)> {
    let field = Mlp::<f64>::from_spec(spec.clone(), 1)?.with_params(p)?;
    let scheme = Reversible::new(Rk::new(OdeTerm::new(field), Tableau::midpoint()), 0.999)?;
    let g = gradient(
        &scheme,
        &vec![1.0, 0.0],
        times,
        &SolveOptions::fixed(0.05),
        &GradientMethod::Reversible.into(),
        |ys, c| {
            let mut l = 0.0;
            let n = (ys.len() * 2) as f64;
            for ((y, t), g) in ys.iter().zip(target).zip(c.iter_mut()) {
                for i in 0..2 {
                    let r = y[i] - t[i];
                    l += r * r / n;
                    g[i] = 2.0 * r / n;
                }
            }
            l
        },
    )?;
    Ok((g.loss, g.params))
}

fn bits(v: &[f64]) -> Vec<u64> {
    v.iter().map(|x| x.to_bits()).collect()
}

/// Every feature of the loop at once: cosine schedule with warm-up, clipping, averaging,
/// evaluation with early stopping.
fn config(steps: usize) -> TrainConfig {
    TrainConfig {
        clip_norm: Some(0.5),
        average_from: Some(20),
        eval_every: 5,
        patience: Some(50),
        ..TrainConfig::new(steps, Schedule::cosine(1e-2, 0.1).with_warmup(5))
    }
}

#[test]
fn training_reduces_the_loss_and_resumes_bit_for_bit() {
    let (spec, p0, times, target) = problem();
    let f = |_k: usize, p: &[f64], g: &mut [f64]| {
        let (l, grad) = loss_and_grad(&spec, &times, &target, p)?;
        g.copy_from_slice(&grad);
        Ok(l)
    };
    // Validation metric: the loss at the parameters scored (here on the same data).
    let eval = |_k: usize, p: &[f64]| Ok(loss_and_grad(&spec, &times, &target, p)?.0);
    let model = serde_json::to_value(&spec).unwrap();
    // Uninterrupted: 60 steps.
    let mut full = TrainState::new(p0.clone(), 1e-2, 1e-5, model.clone()).unwrap();
    Trainer::new(config(60))
        .with_eval(eval)
        .run(&mut full, f)
        .unwrap();
    assert!(
        full.history[59] < 0.5 * full.history[0],
        "{:?}",
        (full.history[0], full.history[59])
    );
    assert_eq!(full.evals.len(), 12);
    assert_eq!(full.average.as_ref().unwrap().1, 40);
    assert!(full.best.is_some() && full.grad_norms.len() == 60);
    // Interrupted at 25 (checkpoint), reloaded, continued to 60.
    let dir = std::env::temp_dir().join(format!("revode-train-{}", std::process::id()));
    let base = dir.join("ckpt");
    let mut first = TrainState::new(p0, 1e-2, 1e-5, model).unwrap();
    let mut cut = config(60);
    cut.checkpoint = Some(base.clone());
    cut.checkpoint_every = 25;
    // Stop the process's loop after step 25 by training a run whose closure errors then.
    let stop = |k: usize, p: &[f64], g: &mut [f64]| {
        if k == 25 {
            return Err(Error::config("test", "interrupted"));
        }
        f(k, p, g)
    };
    assert!(Trainer::new(cut)
        .with_eval(eval)
        .run(&mut first, stop)
        .is_err());
    let mut resumed = train::load(&base).unwrap();
    assert_eq!(resumed.step(), 25);
    assert_eq!(resumed, first, "load returns exactly what was saved");
    Trainer::new(config(60))
        .with_eval(eval)
        .run(&mut resumed, f)
        .unwrap();
    assert_eq!(bits(&resumed.params), bits(&full.params));
    assert_eq!(bits(&resumed.history), bits(&full.history));
    assert_eq!(resumed, full);
    // A corrupted checkpoint is a typed error naming the file, not a panic.
    std::fs::write(base.with_extension("safetensors"), b"not a tensor file").unwrap();
    assert!(
        matches!(train::load(&base), Err(Error::Checkpoint { ref files, .. }) if files.ends_with("ckpt.safetensors"))
    );
    assert!(matches!(
        train::load(&dir.join("missing")),
        Err(Error::Io { .. })
    ));
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn early_stopping_keeps_the_best_parameters() {
    // L(θ) = θ², validation metric (θ − 1)²: training walks past the validation optimum at
    // θ = 1 toward 0, so the metric rises after the first evaluations and patience 3 stops it.
    let mut s = TrainState::new(vec![2.0], 0.1, 0.0, serde_json::Value::Null).unwrap();
    let cfg = TrainConfig {
        eval_every: 1,
        patience: Some(3),
        ..TrainConfig::new(500, Schedule::constant(0.1))
    };
    Trainer::new(cfg)
        .with_eval(|_, p| Ok((p[0] - 1.0).powi(2)))
        .run(&mut s, |_, p, g| {
            g[0] = 2.0 * p[0];
            Ok(p[0] * p[0])
        })
        .unwrap();
    let best = s.best.clone().unwrap();
    assert!(
        s.stopped_early && s.step() == best.step + 3,
        "{} {}",
        s.step(),
        best.step
    );
    assert!(best.value < 0.01, "{best:?}");
    assert_eq!(s.final_params(), best.params.as_slice());
    assert!((s.params[0] - 1.0).abs() > (best.params[0] - 1.0).abs());
    // Early stopping without an evaluation callback is refused up front.
    let mut s = TrainState::new(vec![2.0], 0.1, 0.0, serde_json::Value::Null).unwrap();
    let cfg = TrainConfig {
        eval_every: 1,
        patience: Some(3),
        ..TrainConfig::new(5, Schedule::constant(0.1))
    };
    assert!(Trainer::new(cfg).run(&mut s, |_, _, _| Ok(0.0)).is_err());
}

#[test]
fn clipping_bounds_the_step_and_the_average_is_uniform() {
    // Gradient 100 clipped to norm 1: AdamW's first step is lr·g/|g| either way, so check the
    // recorded norm and that the average over steps 2..4 is the mean of those iterates.
    let mut s = TrainState::new(vec![0.0, 0.0], 0.1, 0.0, serde_json::Value::Null).unwrap();
    let mut iterates = Vec::new();
    let cfg = TrainConfig {
        clip_norm: Some(1.0),
        average_from: Some(1),
        ..TrainConfig::new(4, Schedule::constant(0.1))
    };
    Trainer::new(cfg)
        .run(&mut s, |_, p, g| {
            iterates.push(p.to_vec());
            g[0] = 60.0;
            g[1] = 80.0;
            Ok(1.0)
        })
        .unwrap();
    assert_eq!(s.grad_norms, vec![100.0; 4]);
    iterates.push(s.params.clone());
    let (avg, n) = s.average.clone().unwrap();
    assert_eq!(n, 3);
    for i in 0..2 {
        let mean = (iterates[2][i] + iterates[3][i] + iterates[4][i]) / 3.0;
        assert!((avg[i] - mean).abs() < 1e-15);
    }
}

#[test]
fn the_exponential_average_is_uniform_for_its_first_window_then_geometric() {
    // θ drifts toward a moving target. With average_from 5 and β = 0.8 the average holds the
    // iterates θ_6.. (θ_k: after k steps): the plain mean of θ_6..θ_10 (1/(1 − β) = 5 steps),
    // then θ̄ ← 0.8 θ̄ + 0.2 θ_k for k = 11..30, written here in closed form.
    let (beta, from, steps) = (0.8, 5, 30);
    let mut s = TrainState::new(vec![0.0, 1.0], 0.05, 0.0, serde_json::Value::Null).unwrap();
    let mut iterates = Vec::new();
    let cfg = TrainConfig {
        average_from: Some(from),
        average_decay: Some(beta),
        ..TrainConfig::new(steps, Schedule::constant(0.05))
    };
    Trainer::new(cfg)
        .run(&mut s, |k, p, g| {
            iterates.push(p.to_vec());
            let target = [0.1 * k as f64, -0.05 * k as f64];
            g.iter_mut()
                .zip(p.iter().zip(target))
                .for_each(|(g, (p, t))| *g = 2.0 * (p - t));
            Ok(0.0)
        })
        .unwrap();
    iterates.push(s.params.clone());
    let (avg, n) = s.average.clone().unwrap();
    assert_eq!(n, steps - from);
    for i in 0..2 {
        let window = (6..=10).map(|k| iterates[k][i]).sum::<f64>() / 5.0;
        let tail = steps - 10;
        let geometric = (11..=steps)
            .map(|k| (1.0 - beta) * beta.powi((steps - k) as i32) * iterates[k][i])
            .sum::<f64>();
        let expected = beta.powi(tail as i32) * window + geometric;
        assert!((avg[i] - expected).abs() < 1e-14, "{} {expected}", avg[i]);
        // It is not the uniform average (which lags the drift).
        let uniform = (6..=steps).map(|k| iterates[k][i]).sum::<f64>() / n as f64;
        assert!((avg[i] - uniform).abs() > 0.1, "{} {uniform}", avg[i]);
    }
    // β outside [0, 1) is refused before any step.
    for bad in [1.0, -0.1, f64::NAN] {
        let mut s = TrainState::new(vec![0.0], 0.1, 0.0, serde_json::Value::Null).unwrap();
        let cfg = TrainConfig {
            average_from: Some(0),
            average_decay: Some(bad),
            ..TrainConfig::new(3, Schedule::constant(0.1))
        };
        let r = Trainer::new(cfg).run(&mut s, |_, _, _| Ok(0.0));
        assert!(matches!(r, Err(Error::Config { .. })), "{bad}: {r:?}");
        assert_eq!(s.step(), 0);
    }
}

#[test]
fn evaluation_keeps_the_unaveraged_parameters_when_they_score_lower() {
    // θ chases a target moving away from 0; the uniform average lags behind it. The metric is
    // the distance to the target, so θ scores lower than its average at every evaluation:
    // with `eval_unaveraged` the best is θ itself (its score, its bits), without it the
    // average. Each evaluation records the lower of the two scores.
    let target = |k: usize| 0.2 * k as f64;
    let run = |unaveraged: bool| {
        let mut s = TrainState::new(vec![0.0], 0.3, 0.0, serde_json::Value::Null).unwrap();
        let mut seen = Vec::new();
        let cfg = TrainConfig {
            average_from: Some(2),
            eval_every: 4,
            eval_unaveraged: unaveraged,
            ..TrainConfig::new(12, Schedule::constant(0.3))
        };
        let mut raw_at = Vec::new();
        Trainer::new(cfg)
            .with_eval(|done, p| {
                seen.push((done, p[0]));
                Ok((p[0] - target(done)).abs())
            })
            .run(&mut s, |k, p, g| {
                raw_at.push(p[0]);
                g[0] = 2.0 * (p[0] - target(k));
                Ok(0.0)
            })
            .unwrap();
        raw_at.push(s.params[0]);
        (s, seen, raw_at)
    };
    let (with, seen, raw_at) = run(true);
    // Two candidates per evaluation, the average first: [4, 4, 8, 8, 12, 12].
    let steps: Vec<usize> = seen.iter().map(|e| e.0).collect();
    assert_eq!(steps, vec![4, 4, 8, 8, 12, 12]);
    for pair in seen.chunks(2) {
        let (avg, raw) = (pair[0].1, pair[1].1);
        assert_eq!(raw.to_bits(), raw_at[pair[0].0].to_bits());
        let d = target(pair[0].0);
        assert!((raw - d).abs() < (avg - d).abs(), "{raw} {avg} {d}");
    }
    let best = with.best.clone().unwrap();
    assert_eq!(best.params[0].to_bits(), raw_at[best.step].to_bits());
    for (e, pair) in with.evals.iter().zip(seen.chunks(2)) {
        let d = target(e.0);
        assert_eq!(e.1, (pair[0].1 - d).abs().min((pair[1].1 - d).abs()));
    }
    // Without it only the average is scored and kept.
    let (without, seen, raw_at) = run(false);
    assert_eq!(seen.len(), 3);
    let best = without.best.clone().unwrap();
    assert_eq!(
        best.params[0].to_bits(),
        seen[best.step / 4 - 1].1.to_bits()
    );
    assert_ne!(best.params[0].to_bits(), raw_at[best.step].to_bits());
}

#[test]
fn shards_give_the_same_bits_on_1_2_and_8_threads() {
    // 8 shards of a least-squares problem; each shard's gradient has a different magnitude so
    // that summation order would show in the last bits.
    let shard = |_step: usize, s: usize, p: &[f64], g: &mut [f64]| {
        let mut l = 0.0;
        for j in 0..50 {
            let x = ((s * 50 + j) as f64 * 0.731).sin() * 10f64.powi(s as i32 % 4);
            let r = p[0] * x + p[1] - x.cos();
            l += r * r / 400.0;
            g[0] += 2.0 * r * x / 400.0;
            g[1] += 2.0 * r / 400.0;
        }
        Ok(l)
    };
    let run = |threads: usize| {
        let mut s = TrainState::new(vec![0.3, -0.2], 1e-2, 0.0, serde_json::Value::Null).unwrap();
        let f = train::sharded(8, threads, shard).unwrap();
        Trainer::new(TrainConfig::new(20, Schedule::constant(1e-2)))
            .run_with(&mut s, f)
            .unwrap();
        (bits(&s.params), bits(&s.history))
    };
    let one = run(1);
    assert_eq!(run(2), one);
    assert_eq!(run(8), one);
    assert!(train::sharded(0, 1, shard).is_err());
}

#[test]
fn non_finite_loss_names_the_step() {
    let mut s = TrainState::new(vec![1.0], 0.1, 0.0, serde_json::Value::Null).unwrap();
    let err = Trainer::new(TrainConfig::new(10, Schedule::constant(0.1)))
        .run(&mut s, |k, _, g| {
            g[0] = 0.5;
            Ok(if k == 3 { f64::NAN } else { 1.0 })
        })
        .unwrap_err();
    assert_eq!(
        err,
        Error::NonFiniteGradient {
            what: "loss NaN at training step 3".into(),
            step: None,
        }
    );
    assert_eq!(s.step(), 3);
}

#[test]
fn adamw_first_step_is_sign_times_lr() {
    // After one step, m̂ = g and v̂ = g², so the update is lr·(g/(|g| + ε) + wd·p).
    let mut opt = AdamW::new(2, 0.1, 0.01).unwrap();
    let mut p = vec![1.0, -2.0];
    opt.step(&mut p, &[3.0, -0.5]).unwrap();
    let expect = [
        1.0 - 0.1 * (3.0 / (3.0 + 1e-8) + 0.01),
        -2.0 - 0.1 * (-0.5 / (0.5 + 1e-8) + 0.01 * -2.0),
    ];
    assert!(
        (p[0] - expect[0]).abs() < 1e-15 && (p[1] - expect[1]).abs() < 1e-15,
        "{p:?}"
    );
    assert!(AdamW::new(2, 0.0, 0.0).is_err());
    assert!(opt.step(&mut p, &[1.0]).is_err());
}

#[test]
fn parameter_groups_equal_separate_optimisers_and_survive_a_checkpoint() {
    // θ = [a (3) | b (2)] with learning-rate factors 1 and 2.5: the same bits as two AdamW of
    // learning rates lr and 2.5·lr on the blocks, step after step.
    let (lr, factor) = (0.01, 2.5);
    let mut one = AdamW::new(5, lr, 0.1)
        .unwrap()
        .with_groups(vec![(3, 1.0), (2, factor)])
        .unwrap();
    let (mut a, mut b) = (
        AdamW::new(3, lr, 0.1).unwrap(),
        AdamW::new(2, factor * lr, 0.1).unwrap(),
    );
    let mut p = vec![0.5, -0.2, 0.1, 0.7, -0.9];
    let (mut pa, mut pb) = (p[..3].to_vec(), p[3..].to_vec());
    for k in 0..6 {
        let g: Vec<f64> = (0..5).map(|i| ((k * 5 + i) as f64 * 0.37).sin()).collect();
        one.step(&mut p, &g).unwrap();
        a.step(&mut pa, &g[..3]).unwrap();
        b.step(&mut pb, &g[3..]).unwrap();
    }
    assert_eq!(bits(&p[..3]), bits(&pa));
    assert_eq!(bits(&p[3..]), bits(&pb));
    // Lengths must cover θ; factors must be positive and finite.
    assert!(AdamW::new(5, lr, 0.0)
        .unwrap()
        .with_groups(vec![(3, 1.0)])
        .is_err());
    assert!(AdamW::new(2, lr, 0.0)
        .unwrap()
        .with_groups(vec![(1, 1.0), (1, f64::NAN)])
        .is_err());
    // The groups are part of the checkpointed state.
    let mut s = TrainState::new(vec![0.0; 5], lr, 0.0, serde_json::Value::Null).unwrap();
    s.opt = s
        .opt
        .clone()
        .with_groups(vec![(3, 1.0), (2, factor)])
        .unwrap();
    let dir = std::env::temp_dir().join(format!("revode-groups-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let base = dir.join("ckpt");
    train::save(&s, &base).unwrap();
    assert_eq!(
        train::load(&base).unwrap().opt.groups,
        vec![(3, 1.0), (2, factor)]
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_finite_gradient_whose_norm_overflows_is_refused() {
    // Clipping by c/‖g‖ = c/∞ would silently zero the step.
    let mut s = TrainState::new(vec![0.0; 2], 0.1, 0.0, serde_json::Value::Null).unwrap();
    let config = TrainConfig {
        clip_norm: Some(1.0),
        ..TrainConfig::new(3, Schedule::constant(0.1))
    };
    let err = Trainer::new(config)
        .run(&mut s, |_, _, g| {
            g.copy_from_slice(&[1e300, -1e300]);
            Ok(1.0)
        })
        .unwrap_err();
    assert!(
        matches!(err, Error::NonFiniteGradient { ref what, .. } if what.contains("overflow")),
        "{err}"
    );
    assert_eq!(s.params, vec![0.0; 2], "a refused step changes nothing");
}

#[test]
fn changed_groups_take_effect_at_the_next_step_and_bad_ones_are_refused() {
    // `groups` is public: editing it after a step must not leave the old factors in use.
    let lr = 0.01;
    let two = || {
        AdamW::new(4, lr, 0.0)
            .unwrap()
            .with_groups(vec![(2, 1.0), (2, 1.0)])
            .unwrap()
    };
    let (mut a, mut b) = (two(), two());
    let (mut pa, mut pb) = (vec![0.5; 4], vec![0.5; 4]);
    let g = [0.3, -0.2, 0.1, 0.4];
    a.step(&mut pa, &g).unwrap();
    b.step(&mut pb, &g).unwrap();
    let before = pa.clone();
    b.groups = vec![(2, 1.0), (2, 3.0)];
    a.step(&mut pa, &g).unwrap();
    b.step(&mut pb, &g).unwrap();
    assert_eq!(bits(&pa[..2]), bits(&pb[..2]));
    for i in 2..4 {
        let ratio = (pb[i] - before[i]) / (pa[i] - before[i]);
        assert!((ratio - 3.0).abs() < 1e-9, "entry {i}: {ratio}");
    }
    b.groups = vec![(3, 1.0)];
    assert!(b.step(&mut pb, &g).is_err());
    b.groups = vec![(2, 1.0), (2, -1.0)];
    assert!(b.step(&mut pb, &g).is_err());
}
