//! The neural CDE classifier: exact gradients, and training reduces the loss on spirals.

use revode_cde::datasets::spirals;
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
        lambda: Some(0.999),
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

/// max |a − b| / max |b|.
fn rel(a: &[f64], b: &[f64]) -> f64 {
    let s = b.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    a.iter()
        .zip(b)
        .fold(0.0f64, |m, (x, y)| m.max((x - y).abs()))
        / s
}

#[test]
fn plain_base_method_gradients_are_exact_and_reversible_is_refused() {
    // `lambda: None` solves plain midpoint (no coupling): the baseline's direct and
    // checkpointed gradients.
    let (reversible, path, labels) = setup(6);
    let model = NcdeClassifier {
        lambda: None,
        ..reversible.clone()
    };
    assert_eq!(model.scheme_name(), "midpoint");
    assert_eq!(reversible.scheme_name(), "reversible(midpoint, λ=0.999)");
    let p = model.init(1).unwrap();
    let opts = SolveOptions::fixed(0.05);
    let run = |m: &NcdeClassifier, q: &[f64], method: GradientMethod| {
        m.loss_and_grad(q, &path, &labels, &opts, method).unwrap()
    };
    let d = run(&model, &p, GradientMethod::Direct);
    // Checkpointing recomputes the same steps from stored states: equal to round-off.
    for snapshots in [Some(3), None] {
        let c = run(&model, &p, GradientMethod::Checkpointed { snapshots });
        assert_eq!(c.loss, d.loss);
        let e = rel(&c.grad, &d.grad);
        println!("plain: checkpointed({snapshots:?}) vs direct {e:e}");
        assert!(e <= 1e-12, "checkpointed({snapshots:?}) vs direct: {e:e}");
    }
    // Central differences of the loss (forward solves only) with step ε = 1e-6: O(ε²) ≈ 1e-12
    // truncation plus round-off u·|L|/ε ≈ 1e-10 (measured 3e-10 relative to max |g|).
    let loss = |q: &[f64]| {
        let o = model.outputs(q, &path, &opts).unwrap();
        let mut d_o = vec![0.0; o.len()];
        revode_core::loss::cross_entropy(&o, &labels, 2, &mut d_o)
            .unwrap()
            .0
    };
    assert!((loss(&p) - d.loss).abs() <= 1e-15 * d.loss);
    let eps = 1e-6;
    let fd: Vec<f64> = (0..p.len())
        .map(|i| {
            let mut q = p.clone();
            q[i] += eps;
            let a = loss(&q);
            q[i] -= 2.0 * eps;
            (a - loss(&q)) / (2.0 * eps)
        })
        .collect();
    let e = rel(&d.grad, &fd);
    println!("plain: direct vs central differences {e:e}");
    assert!(e <= 1e-8, "direct vs central differences: {e:e}");
    // The reversible methods need the coupling: a typed error, not a wrong gradient.
    for method in [
        GradientMethod::Reversible,
        GradientMethod::CheckpointedReversible { every: 4 },
        GradientMethod::CheckpointedReversibleAuto { tolerance: 1e-8 },
    ] {
        let r = model.loss_and_grad(&p, &path, &labels, &opts, method.clone());
        assert!(matches!(r, Err(Error::Unsupported(_))), "{method:?}: {r:?}");
    }
    // A different scheme, so a different (finite) loss from the reversible one's.
    let r = run(&reversible, &p, GradientMethod::Reversible);
    println!("plain loss {} vs reversible loss {}", d.loss, r.loss);
    assert!(d.loss.is_finite() && r.loss.is_finite());
    assert!((d.loss - r.loss).abs() > 1e-9, "{} vs {}", d.loss, r.loss);
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
        lambda: Some(0.999),
        backend: FieldBackend::Native,
    };
    let dfdx = NcdeClassifier {
        backend: FieldBackend::Dfdx,
        ..native.clone()
    };
    let p = native.init(2).unwrap();
    let opts = SolveOptions::fixed(0.05);
    let plain = |m: &NcdeClassifier| NcdeClassifier {
        lambda: None,
        ..m.clone()
    };
    for (native, dfdx, m) in [
        (&native, &dfdx, GradientMethod::Reversible),
        (&native, &dfdx, GradientMethod::Direct),
        (&plain(&native), &plain(&dfdx), GradientMethod::Direct),
        (
            &plain(&native),
            &plain(&dfdx),
            GradientMethod::Checkpointed { snapshots: Some(4) },
        ),
    ] {
        let a = native
            .loss_and_grad(&p, &path, &labels, &opts, m.clone())
            .unwrap();
        let b = dfdx
            .loss_and_grad(&p, &path, &labels, &opts, m.clone())
            .unwrap();
        assert_same_loss_and_gradient(&a, &b);
        assert_eq!((a.stored_states, a.steps), (b.stored_states, b.steps));
    }
    let (a, b) = (plain(&native), plain(&dfdx));
    let (oa, ob) = (
        a.outputs(&p, &path, &opts).unwrap(),
        b.outputs(&p, &path, &opts).unwrap(),
    );
    assert!(rel(&ob, &oa) <= 1e-13, "{:e}", rel(&ob, &oa));
    assert_eq!(
        native.predict(&p, &path, &opts).unwrap(),
        dfdx.predict(&p, &path, &opts).unwrap()
    );
    // Any size works on dfdx (no compiled menu): odd widths, two hidden layers, same numbers
    // as the native field.
    let odd_native = NcdeClassifier {
        hidden: 5,
        width: 11,
        depth: 2,
        ..native.clone()
    };
    let odd_dfdx = NcdeClassifier {
        backend: FieldBackend::Dfdx,
        ..odd_native.clone()
    };
    let q = odd_native.init(1).unwrap();
    let a = odd_native
        .loss_and_grad(&q, &path, &labels, &opts, GradientMethod::Reversible)
        .unwrap();
    let b = odd_dfdx
        .loss_and_grad(&q, &path, &labels, &opts, GradientMethod::Reversible)
        .unwrap();
    assert_same_loss_and_gradient(&a, &b);
}

/// The two backends' loss to 1e-13 and gradient to 1e-11 (max norm, relative to the largest
/// entry): the same arithmetic in a different order.
fn assert_same_loss_and_gradient(a: &BatchResult, b: &BatchResult) {
    println!(
        "backends: loss {:e}, gradient {:e}",
        (a.loss - b.loss).abs() / a.loss.abs(),
        rel(&b.grad, &a.grad)
    );
    assert!((a.loss - b.loss).abs() <= 1e-13 * a.loss.abs());
    let s = a.grad.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    let diff = a
        .grad
        .iter()
        .zip(&b.grad)
        .fold(0.0f64, |m, (x, y)| m.max((x - y).abs()));
    assert!(diff <= 1e-11 * s, "{:e}", diff / s);
}

#[test]
fn sharded_training_is_the_same_on_1_and_2_threads_and_matches_the_full_batch() {
    // 4 shards of 6 series each, taken from one path without re-interpolating; each shard's
    // loss and gradient weighted by its share of the batch.
    let (model, path, labels) = setup(24);
    let opts = SolveOptions::fixed(0.05);
    let shards: Vec<(Path, Vec<usize>)> = (0..4)
        .map(|s| {
            let rows: Vec<usize> = (6 * s..6 * s + 6).collect();
            let l = rows.iter().map(|&r| labels[r]).collect();
            (path.select(&rows).unwrap(), l)
        })
        .collect();
    let shard = |_: usize, s: usize, p: &[f64], g: &mut [f64]| {
        let (sp, sl) = &shards[s];
        let r = model.loss_and_grad(p, sp, sl, &opts, GradientMethod::Reversible)?;
        g.iter_mut().zip(&r.grad).for_each(|(g, v)| *g = 0.25 * v);
        Ok(0.25 * r.loss)
    };
    let p0 = model.init(2).unwrap();
    let run = |threads: usize| {
        let mut s = TrainState::new(p0.clone(), 1e-2, 0.0, serde_json::Value::Null).unwrap();
        let f = revode_core::train::sharded(4, threads, shard).unwrap();
        Trainer::new(TrainConfig::new(5, Schedule::constant(1e-2)))
            .run_with(&mut s, f)
            .unwrap();
        s.params.iter().map(|x| x.to_bits()).collect::<Vec<_>>()
    };
    assert_eq!(run(1), run(2));
    // The shards' weighted sum is the full batch's mean loss and gradient to round-off.
    let full = model
        .loss_and_grad(&p0, &path, &labels, &opts, GradientMethod::Reversible)
        .unwrap();
    let mut g = vec![0.0; p0.len()];
    let mut loss = 0.0;
    for s in 0..4 {
        let mut gs = vec![0.0; p0.len()];
        loss += shard(0, s, &p0, &mut gs).unwrap();
        g.iter_mut().zip(&gs).for_each(|(a, b)| *a += b);
    }
    let scale = full.grad.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    assert!((loss - full.loss).abs() < 1e-13);
    assert!(g
        .iter()
        .zip(&full.grad)
        .all(|(a, b)| (a - b).abs() < 1e-12 * scale));
}

#[test]
fn head_gradient_with_respect_to_the_data_equals_finite_differences() {
    // The cross-entropy of the spirals classifier as a function of the path's data values
    // (Hermite path with a time channel): the CDE term's data pullback plus the encoder's
    // pullback at X(t0). Reversible gives the same data gradient as the tape.
    let (data, labels) = spirals(3, 12, 0.02, 5);
    let po = PathOptions {
        time_channel: true,
        ..Default::default()
    };
    let (model, _, _) = setup(3);
    let p = model.init(2).unwrap();
    let opts = SolveOptions::fixed(0.05);
    let ce = |values: &[f64], method: GradientMethod| {
        let d = PathData {
            values: values.to_vec(),
            ..data.clone()
        };
        let path = Path::new(&d, &po).unwrap();
        model
            .head_gradient(&p, &path, &opts, method, true, &mut |o, d_o| {
                Ok(revode_core::loss::cross_entropy(o, &labels, 2, d_o)?.0)
            })
            .unwrap()
    };
    let direct = ce(&data.values, GradientMethod::Direct);
    let rev = ce(&data.values, GradientMethod::Reversible);
    let (dd, rd) = (direct.data.unwrap(), rev.data.unwrap());
    assert_eq!(dd.len(), data.values.len());
    let scale = dd.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    for (a, b) in rd.iter().zip(&dd) {
        assert!((a - b).abs() <= 1e-10 * scale, "{a} vs {b}");
    }
    let h = 1e-6;
    for j in 0..data.values.len() {
        let mut v = data.values.clone();
        v[j] += h;
        let up = ce(&v, GradientMethod::Direct).loss;
        v[j] -= 2.0 * h;
        let fd = (up - ce(&v, GradientMethod::Direct).loss) / (2.0 * h);
        assert!(
            (fd - dd[j]).abs() <= 1e-6 * (1.0 + dd[j].abs()),
            "value {j}: FD {fd} vs {}",
            dd[j]
        );
    }
    // The first knot's values feed the encoder too: their gradient is not the CDE's alone.
    assert!(dd[..2].iter().any(|v| v.abs() > 0.0));
}
