//! The neural CDE's tangent system: its directional derivatives equal the first-order data
//! gradient's (to round-off), its parameter gradient equals central differences and is the
//! same through every gradient method; bad inputs are typed errors.

use revode_cde::{FieldBackend, Interpolation, NcdeClassifier, Path, PathData, PathOptions};
use revode_core::{Error, GradientMethod, SolveOptions, Tableau};

fn problem() -> (NcdeClassifier, PathData, Vec<f64>, PathOptions, Vec<f64>) {
    problem_with(true, Interpolation::Linear, false)
}

/// `time`: time as channel 0 (not perturbed); `missing`: a few values NaN in data and direction.
fn problem_with(
    time: bool,
    interpolation: Interpolation,
    missing: bool,
) -> (NcdeClassifier, PathData, Vec<f64>, PathOptions, Vec<f64>) {
    let (batch, k, c) = (3, 6, 2);
    let times = vec![0.0, 0.3, 0.5, 0.9, 1.2, 1.6];
    let values: Vec<f64> = (0..batch * k * c)
        .map(|i| (0.61 * i as f64).sin() + 0.2 * (1.3 * i as f64).cos())
        .collect();
    let tangent: Vec<f64> = (0..batch * k * c)
        .map(|i| (0.37 * i as f64 + 0.5).cos())
        .collect();
    let (mut values, mut tangent) = (values, tangent);
    if missing {
        for i in [5, 6, 15, 26] {
            values[i] = f64::NAN;
            tangent[i] = f64::NAN;
        }
    }
    let options = PathOptions {
        interpolation,
        time_channel: time,
        ..PathOptions::default()
    };
    let model = NcdeClassifier {
        hidden: 3,
        channels: c + time as usize,
        classes: 2,
        width: 5,
        depth: 2,
        tableau: Tableau::midpoint(),
        lambda: Some(0.999),
        backend: FieldBackend::Native,
    };
    let weights = vec![0.7, -0.4, 1.1, 0.3, -0.9, 0.5];
    let data = PathData {
        times,
        batch,
        channels: c,
        values,
    };
    (model, data, tangent, options, weights)
}

/// Parameters larger than the ±1/√fan_in start, so the field is far from linear.
fn params(model: &NcdeClassifier) -> Vec<f64> {
    model
        .init(4)
        .unwrap()
        .iter()
        .enumerate()
        .map(|(i, v)| 2.0 * v + 0.1 * (i as f64).sin())
        .collect()
}

fn opts() -> SolveOptions {
    SolveOptions {
        stability_check_dim: 0,
        stability_krylov: 0,
        ..SolveOptions::fixed(0.1)
    }
}

#[test]
fn tangent_equals_the_data_gradient_along_the_direction() {
    for (time, interpolation, missing) in [
        (true, Interpolation::Linear, false),
        (false, Interpolation::Linear, false),
        (true, Interpolation::HermiteCubic, true),
        (false, Interpolation::HermiteCubic, false),
    ] {
        tangent_along_direction(problem_with(time, interpolation, missing));
    }
}

#[test]
fn tangent_of_the_plain_base_method_equals_the_data_gradient_along_the_direction() {
    // `lambda: None` solves plain midpoint: the tangent is still that solve's derivative.
    let (model, data, u, options, w) = problem();
    let plain = NcdeClassifier {
        lambda: None,
        ..model
    };
    tangent_along_direction((plain, data, u, options, w));
}

fn tangent_along_direction(
    (model, data, u, options, w): (NcdeClassifier, PathData, Vec<f64>, PathOptions, Vec<f64>),
) {
    let p = params(&model);
    let tg = model
        .tangent_gradient(&p, &data, &u, &options, &opts(), GradientMethod::Direct, &w)
        .unwrap();
    // Σ w·ȯ = (∂/∂v Σ w·o)·u with the first-order data gradient.
    let path = Path::new(&data, &options).unwrap();
    let g = model
        .head_gradient(
            &p,
            &path,
            &opts(),
            GradientMethod::Direct,
            true,
            &mut |o, ob| {
                ob.copy_from_slice(&w);
                Ok(o.iter().zip(&w).map(|(a, b)| a * b).sum())
            },
        )
        .unwrap();
    let sum: f64 = tg.outputs_dot.iter().zip(&w).map(|(a, b)| a * b).sum();
    // The data gradient is taken with respect to the filled knots, so with missing values it
    // is not the derivative along the observed ones; the central difference below is.
    if u.iter().all(|v| v.is_finite()) {
        let along: f64 = g.data.unwrap().iter().zip(&u).map(|(a, b)| a * b).sum();
        assert!(
            (sum - along).abs() < 1e-12 * (1.0 + along.abs()),
            "{sum} vs {along}"
        );
    }
    assert!((tg.loss - sum).abs() < 1e-14 * (1.0 + sum.abs()));
    // Each output's derivative against a central difference of the outputs.
    let eps = 1e-5;
    let shifted = |s: f64| {
        // NaN + NaN stays NaN: missing values stay missing.
        let values = data.values.iter().zip(&u).map(|(v, d)| v + s * eps * d);
        let d = PathData {
            values: values.collect(),
            ..data.clone()
        };
        let path = Path::new(&d, &options).unwrap();
        model.outputs(&p, &path, &opts()).unwrap()
    };
    let (up, down) = (shifted(1.0), shifted(-1.0));
    for (i, od) in tg.outputs_dot.iter().enumerate() {
        let fd = (up[i] - down[i]) / (2.0 * eps);
        assert!((fd - od).abs() < 1e-8, "output {i}: {fd} vs {od}");
    }
}

#[test]
fn parameter_gradient_matches_central_differences_and_every_method() {
    let (model, data, u, options, w) = problem();
    let p = params(&model);
    let run = |p: &[f64], method: GradientMethod| {
        model
            .tangent_gradient(p, &data, &u, &options, &opts(), method, &w)
            .unwrap()
    };
    let g = run(&p, GradientMethod::Direct);
    let gmax = g.grad.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    let h = 1e-5;
    for i in 0..p.len() {
        let at = |d: f64| {
            let mut q = p.clone();
            q[i] += d;
            run(&q, GradientMethod::Direct).loss
        };
        let fd = (at(h) - at(-h)) / (2.0 * h);
        // Central differences: O(h²) truncation plus O(ε/h) round-off.
        assert!(
            (fd - g.grad[i]).abs() <= 1e-7 * (1.0 + gmax),
            "θ[{i}]: {fd} vs {}",
            g.grad[i]
        );
    }
    for method in [
        GradientMethod::Reversible,
        GradientMethod::Checkpointed { snapshots: Some(3) },
        // A tolerance the first (unchecked) reconstruction misses: the automatic interval
        // retries, and the loss (with the readout's gradient) runs more than once.
        GradientMethod::CheckpointedReversibleAuto { tolerance: 5e-16 },
    ] {
        let other = run(&p, method.clone());
        let diff = g
            .grad
            .iter()
            .zip(&other.grad)
            .fold(0.0f64, |m, (a, b)| m.max((a - b).abs()));
        assert!(diff <= 1e-11 * (1.0 + gmax), "{method:?}: {diff:e}");
    }
}

#[test]
fn bad_inputs_are_typed_errors() {
    let (model, data, u, options, w) = problem();
    let p = params(&model);
    let call = |m: &NcdeClassifier, d: &PathData, u: &[f64], o: &PathOptions, w: &[f64]| {
        m.tangent_gradient(&p, d, u, o, &opts(), GradientMethod::Direct, w)
    };
    assert!(matches!(
        call(&model, &data, &u[1..], &options, &w),
        Err(Error::ShapeMismatch { .. })
    ));
    assert!(matches!(
        call(&model, &data, &u, &options, &w[1..]),
        Err(Error::ShapeMismatch { .. })
    ));
    let mut bad_w = w.clone();
    bad_w[2] = f64::INFINITY;
    assert!(matches!(
        call(&model, &data, &u, &options, &bad_w),
        Err(Error::NonFinite { .. })
    ));
    let mut nan = u.clone();
    nan[4] = f64::NAN;
    assert!(matches!(
        call(&model, &data, &nan, &options, &w),
        Err(Error::NonFinite { index: 4, .. })
    ));
    let counts = PathOptions {
        count_channels: true,
        ..options.clone()
    };
    assert!(matches!(
        call(&model, &data, &u, &counts, &w),
        Err(Error::Unsupported(_))
    ));
    let no_time = PathOptions {
        time_channel: false,
        ..options.clone()
    };
    assert!(matches!(
        call(&model, &data, &u, &no_time, &w),
        Err(Error::ShapeMismatch { .. })
    ));
    let adaptive = SolveOptions::adaptive(revode_core::Adaptive::new(1e-6, 1e-6));
    assert!(matches!(
        model.tangent_gradient(
            &p,
            &data,
            &u,
            &options,
            &adaptive,
            GradientMethod::Direct,
            &w
        ),
        Err(Error::Unsupported(_))
    ));
    let empty = PathData {
        channels: 0,
        values: Vec::new(),
        ..data.clone()
    };
    assert!(matches!(
        call(&model, &empty, &[], &options, &w),
        Err(Error::Empty { .. })
    ));
    let dfdx = NcdeClassifier {
        backend: FieldBackend::Dfdx,
        ..model.clone()
    };
    assert!(matches!(
        call(&dfdx, &data, &u, &options, &w),
        Err(Error::Unsupported(_))
    ));
}

/// The automatic checkpoint interval retries (and so runs the head's loss more than once) when
/// the first reconstruction misses its tolerance: the readout's gradient is still counted once.
#[test]
fn head_gradient_through_the_automatic_interval_equals_the_tape() {
    let (model, data, _, options, w) = problem();
    let p = params(&model);
    let path = Path::new(&data, &options).unwrap();
    let run = |method: GradientMethod| {
        model
            .head_gradient(&p, &path, &opts(), method, false, &mut |o, ob| {
                ob.copy_from_slice(&w);
                Ok(o.iter().zip(&w).map(|(a, b)| a * b).sum())
            })
            .unwrap()
    };
    let tape = run(GradientMethod::Direct);
    let auto = run(GradientMethod::CheckpointedReversibleAuto { tolerance: 5e-16 });
    let diff = tape
        .grad
        .iter()
        .zip(&auto.grad)
        .fold(0.0f64, |m, (a, b)| m.max((a - b).abs()));
    assert!(diff < 1e-11, "{diff:e}");
}
