//! Training: AdamW, the loop, checkpoints and bit-identical resumption.

mod common;
use revode_core::mlp::MlpSpec;
use revode_core::prelude::*;
use revode_core::train::{self, AdamW, TrainOptions, TrainState};

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

#[test]
fn training_reduces_the_loss_and_resumes_bit_for_bit() {
    let (spec, p0, times, target) = problem();
    let f = |p: &[f64]| loss_and_grad(&spec, &times, &target, p);
    let model = serde_json::to_value(&spec).unwrap();
    // Uninterrupted: 60 steps.
    let mut full = TrainState::new(p0.clone(), 1e-2, 1e-5, model.clone()).unwrap();
    train::train(
        &mut full,
        &TrainOptions {
            steps: 60,
            ..Default::default()
        },
        f,
    )
    .unwrap();
    assert!(
        full.history[59] < 0.5 * full.history[0],
        "{:?}",
        (full.history[0], full.history[59])
    );
    // Interrupted at 25 (checkpoint), reloaded, continued to 60.
    let dir = std::env::temp_dir().join(format!("revode-train-{}", std::process::id()));
    let base = dir.join("ckpt");
    let mut first = TrainState::new(p0, 1e-2, 1e-5, model).unwrap();
    let opts = TrainOptions {
        steps: 25,
        checkpoint: Some(base.clone()),
        ..Default::default()
    };
    train::train(&mut first, &opts, f).unwrap();
    let mut resumed = train::load(&base).unwrap();
    assert_eq!(resumed, first, "load returns exactly what was saved");
    train::train(
        &mut resumed,
        &TrainOptions {
            steps: 60,
            ..Default::default()
        },
        f,
    )
    .unwrap();
    assert_eq!(
        resumed
            .params
            .iter()
            .map(|v| v.to_bits())
            .collect::<Vec<_>>(),
        full.params.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
    );
    assert_eq!(resumed.history, full.history);
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
fn non_finite_loss_names_the_step() {
    let mut s = TrainState::new(vec![1.0], 0.1, 0.0, serde_json::Value::Null).unwrap();
    let mut k = 0;
    let err = train::train(
        &mut s,
        &TrainOptions {
            steps: 10,
            ..Default::default()
        },
        |_| {
            k += 1;
            Ok((if k == 4 { f64::NAN } else { 1.0 }, vec![0.5]))
        },
    )
    .unwrap_err();
    assert_eq!(
        err,
        Error::NonFiniteGradient {
            what: "loss at training step 3".into(),
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
