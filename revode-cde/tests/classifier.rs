//! The neural CDE classifier: exact gradients, and training reduces the loss on spirals.

use revode_cde::spirals::spirals;
use revode_cde::*;
use revode_core::prelude::*;
use revode_core::train::{Schedule, TrainConfig, TrainState, Trainer};

fn setup(n: usize) -> (NcdeClassifier, Path, Vec<usize>) {
    let (data, labels) = spirals(n, 20, 0.02, 3);
    let opts = PathOptions {
        time_channel: true,
        ..Default::default()
    };
    let path = Path::new(&data, &opts).unwrap();
    let model = NcdeClassifier {
        hidden: 6,
        channels: path.channels(),
        classes: 2,
        width: 12,
        depth: 1,
        tableau: Tableau::midpoint(),
        lambda: 0.999,
        backend: FieldBackend::Native,
    };
    (model, path, labels)
}

#[test]
fn classifier_gradient_is_exact() {
    let (model, path, labels) = setup(6);
    let p = model.init(1).unwrap();
    let opts = SolveOptions::fixed(0.05);
    let d = model
        .loss_and_grad(&p, &path, &labels, &opts, GradientMethod::Direct)
        .unwrap();
    let r = model
        .loss_and_grad(&p, &path, &labels, &opts, GradientMethod::Reversible)
        .unwrap();
    let rel = |a: &[f64], b: &[f64]| {
        let s = b.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        a.iter()
            .zip(b)
            .fold(0.0f64, |m, (x, y)| m.max((x - y).abs()))
            / s
    };
    assert!(
        rel(&r.grad, &d.grad) <= 1e-10,
        "{:e}",
        rel(&r.grad, &d.grad)
    );
    assert_eq!(r.stored_states, 1);
    let eps = 1e-6;
    let n = p.len();
    for i in [0, 3, n / 3, n / 2, n - 5, n - 1] {
        let mut q = p.clone();
        q[i] += eps;
        let a = model
            .loss_and_grad(&q, &path, &labels, &opts, GradientMethod::Direct)
            .unwrap()
            .loss;
        q[i] -= 2.0 * eps;
        let b = model
            .loss_and_grad(&q, &path, &labels, &opts, GradientMethod::Direct)
            .unwrap()
            .loss;
        let fd = (a - b) / (2.0 * eps);
        assert!(
            (fd - d.grad[i]).abs() <= 1e-6 * (1.0 + d.grad[i].abs()),
            "θ[{i}]: {fd} vs {}",
            d.grad[i]
        );
    }
    assert!(model
        .loss_and_grad(&p, &path, &labels[1..], &opts, GradientMethod::Direct)
        .is_err());
    assert!(model
        .loss_and_grad(&p[1..], &path, &labels, &opts, GradientMethod::Direct)
        .is_err());
}

#[test]
fn training_learns_spirals() {
    let (model, path, labels) = setup(32);
    let opts = SolveOptions::fixed(0.05);
    let mut state =
        TrainState::new(model.init(0).unwrap(), 2e-2, 1e-5, serde_json::Value::Null).unwrap();
    Trainer::new(TrainConfig::new(60, Schedule::constant(2e-2)))
        .run(&mut state, |_, p, g| {
            let r = model.loss_and_grad(p, &path, &labels, &opts, GradientMethod::Reversible)?;
            g.copy_from_slice(&r.grad);
            Ok(r.loss)
        })
        .unwrap();
    assert!(
        state.history[59] < 0.5 * state.history[0],
        "{} → {}",
        state.history[0],
        state.history[59]
    );
    let pred = model.predict(&state.params, &path, &opts).unwrap();
    let acc = pred.iter().zip(&labels).filter(|(a, b)| a == b).count() as f64 / labels.len() as f64;
    assert!(acc > 0.8, "training accuracy {acc}");
}

#[test]
fn dfdx_backend_equals_native_backend() {
    let (data, labels) = spirals(10, 20, 0.02, 5);
    let po = PathOptions {
        time_channel: true,
        ..Default::default()
    };
    let path = Path::new(&data, &po).unwrap();
    let native = NcdeClassifier {
        hidden: 8,
        channels: path.channels(),
        classes: 2,
        width: 16,
        depth: 1,
        tableau: Tableau::midpoint(),
        lambda: 0.999,
        backend: FieldBackend::Native,
    };
    let dfdx = NcdeClassifier {
        backend: FieldBackend::Dfdx,
        ..native.clone()
    };
    let p = native.init(2).unwrap();
    let opts = SolveOptions::fixed(0.05);
    for m in [GradientMethod::Reversible, GradientMethod::Direct] {
        let a = native
            .loss_and_grad(&p, &path, &labels, &opts, m.clone())
            .unwrap();
        let b = dfdx
            .loss_and_grad(&p, &path, &labels, &opts, m.clone())
            .unwrap();
        assert!((a.loss - b.loss).abs() <= 1e-13 * a.loss.abs(), "{m:?}");
        let s = a.grad.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        let diff = a
            .grad
            .iter()
            .zip(&b.grad)
            .fold(0.0f64, |m, (x, y)| m.max((x - y).abs()));
        assert!(diff <= 1e-11 * s, "{m:?}: {:e}", diff / s);
        assert_eq!((a.stored_states, a.steps), (b.stored_states, b.steps));
    }
    assert_eq!(
        native.predict(&p, &path, &opts).unwrap(),
        dfdx.predict(&p, &path, &opts).unwrap()
    );
    // Sizes outside the compiled menu are a typed error, not a panic.
    let odd = NcdeClassifier {
        hidden: 5,
        ..dfdx.clone()
    };
    let q = odd.init(1).unwrap();
    assert!(matches!(
        odd.loss_and_grad(&q, &path, &labels, &opts, GradientMethod::Reversible),
        Err(Error::Unsupported(_))
    ));
}
