//! The trajectory-fitting API (`revode_core::fit`): exact gradients by every method, predictions
//! equal to `solve`, training through the one trainer, and typed errors on bad input.

mod common;
use common::rel;
use revode_core::fit::{mse_after_first, Solver, TrajectoryFit};
use revode_core::mlp::MlpSpec;
use revode_core::prelude::*;
use revode_core::train::{Schedule, TrainConfig, TrainState, Trainer};

/// A time-dependent 2 → 8 → 8 → 2 tanh MLP on 2 rows, 6 observations in [0, 1], h = 0.05.
fn setup(solver: Solver) -> (TrajectoryFit, Vec<f64>, Vec<f64>, Vec<Vec<f64>>) {
    let spec = MlpSpec {
        time: true,
        depth: 2,
        ..MlpSpec::new(2, 8)
    };
    let fit = TrajectoryFit::new(spec, solver, SolveOptions::fixed(0.05)).with_batch(2);
    let times: Vec<f64> = (0..6).map(|k| 0.2 * k as f64).collect();
    let target: Vec<Vec<f64>> = times
        .iter()
        .map(|&t| vec![t.cos(), -t.sin(), 0.5 * (-t).exp(), 0.3 + t])
        .collect();
    (fit, target[0].clone(), times, target)
}

fn reversible_rk4() -> Solver {
    Solver::Reversible {
        tableau: Tableau::rk4(),
        lambda: 0.999,
    }
}

#[test]
fn reversible_gradient_is_exact() {
    let (fit, y0, times, target) = setup(reversible_rk4());
    let p = fit.spec.init_uniform(3);
    let loss = mse_after_first(target);
    let r = fit.gradient(&p, &y0, &times, &loss).unwrap();
    let d = fit
        .clone()
        .with_method(GradientMethod::Direct)
        .gradient(&p, &y0, &times, &loss)
        .unwrap();
    assert_eq!(r.stats.peak_stored_states, 1);
    assert_eq!(r.loss, d.loss);
    // The same discrete adjoint, with y_n reconstructed instead of stored: round-off only.
    assert!(
        rel(&r.params, &d.params) <= 1e-10,
        "{:e}",
        rel(&r.params, &d.params)
    );
    assert!(rel(&r.y0, &d.y0) <= 1e-10, "{:e}", rel(&r.y0, &d.y0));
    // Central differences of the discrete loss with ε = 1e-6: truncation ε²·|L‴|/6 ~ 1e-13,
    // round-off ε_mach·|L|/ε ~ 1e-10, against gradients of order 1e-1: relative ~1e-9.
    let eps = 1e-6;
    let value = |q: &[f64]| {
        let ys = fit.predict(q, &y0, &times).unwrap();
        loss(&times, &ys, &mut ys.clone()).unwrap()
    };
    let fd: Vec<f64> = (0..p.len())
        .map(|i| {
            let (mut a, mut b) = (p.clone(), p.clone());
            a[i] += eps;
            b[i] -= eps;
            (value(&a) - value(&b)) / (2.0 * eps)
        })
        .collect();
    assert!(rel(&r.params, &fd) <= 1e-8, "{:e}", rel(&r.params, &fd));
}

#[test]
fn checkpointed_equals_direct_for_the_plain_solver() {
    let (fit, y0, times, target) = setup(Solver::Plain {
        tableau: Tableau::rk4(),
    });
    let p = fit.spec.init_uniform(5);
    let loss = mse_after_first(target);
    let d = fit
        .clone()
        .with_method(GradientMethod::Direct)
        .gradient(&p, &y0, &times, &loss)
        .unwrap();
    for snapshots in [Some(3), None] {
        // `new` picks checkpointing (default snapshots) for a plain solver.
        let c = fit
            .clone()
            .with_method(GradientMethod::Checkpointed { snapshots })
            .gradient(&p, &y0, &times, &loss)
            .unwrap();
        assert_eq!(c.loss, d.loss);
        assert!(rel(&c.params, &d.params) <= 1e-12, "{snapshots:?}");
        assert!(rel(&c.y0, &d.y0) <= 1e-12, "{snapshots:?}");
        assert!(c.stats.peak_stored_states < d.steps);
    }
    assert_eq!(
        fit.grad.method,
        GradientMethod::Checkpointed { snapshots: None }
    );
}

#[test]
fn predictions_are_the_solve() {
    for solver in [
        reversible_rk4(),
        Solver::Plain {
            tableau: Tableau::midpoint(),
        },
    ] {
        let (fit, y0, times, target) = setup(solver.clone());
        let p = fit.spec.init_uniform(1);
        let ys = fit.predict(&p, &y0, &times).unwrap();
        let term = OdeTerm::new(
            Mlp::from_spec(fit.spec.clone(), 2)
                .unwrap()
                .with_params(&p)
                .unwrap(),
        );
        let opts = SolveOptions::fixed(0.05);
        let expected = match solver {
            Solver::Reversible { tableau, lambda } => {
                let scheme = Reversible::new(Rk::new(term, tableau), lambda).unwrap();
                solve(&scheme, &y0, &times, &opts).unwrap().ys
            }
            Solver::Plain { tableau } => {
                solve(&Plain::new(Rk::new(term, tableau)), &y0, &times, &opts)
                    .unwrap()
                    .ys
            }
        };
        assert_eq!(ys, expected);
        // The gradient's forward pass gives the same outputs.
        let g = fit
            .with_method(GradientMethod::Direct)
            .gradient(&p, &y0, &times, mse_after_first(target))
            .unwrap();
        assert_eq!(g.outputs, expected);
    }
}

#[test]
fn training_fits_a_linear_system() {
    // y' = A y, A = [[−0.2, 1], [−1, −0.2]]: y(t) = e^{−0.2t} R(t) y0 with R the rotation by −t.
    let y0: Vec<f64> = vec![1.0, 0.0, 0.0, 1.0, -0.7, 0.5, 0.4, -0.9];
    let times: Vec<f64> = (0..=10).map(|k| 0.2 * k as f64).collect();
    let data: Vec<Vec<f64>> = times
        .iter()
        .map(|&t| {
            let (c, s, d) = (t.cos(), t.sin(), (-0.2 * t).exp());
            y0.chunks(2)
                .flat_map(|y| [d * (c * y[0] + s * y[1]), d * (-s * y[0] + c * y[1])])
                .collect()
        })
        .collect();
    let fit = TrajectoryFit::new(
        MlpSpec::new(2, 16),
        Solver::Reversible {
            tableau: Tableau::midpoint(),
            lambda: 0.999,
        },
        SolveOptions::fixed(0.05),
    )
    .with_batch(4);
    let mut state =
        TrainState::new(fit.spec.init_uniform(0), 1e-2, 0.0, serde_json::Value::Null).unwrap();
    Trainer::new(TrainConfig::new(200, Schedule::constant(1e-2)))
        .run(
            &mut state,
            fit.objective(&y0, &times, mse_after_first(data.clone())),
        )
        .unwrap();
    let (first, last) = (state.history[0], state.history[199]);
    assert!(last < 1e-2 * first, "loss {first:e} → {last:e}");
}

#[test]
fn bad_inputs_are_typed_errors() {
    let (fit, y0, times, target) = setup(reversible_rk4());
    let p = fit.spec.init_uniform(0);
    let loss = mse_after_first(target.clone());
    let grad = |f: &TrajectoryFit, p: &[f64], y0: &[f64], t: &[f64]| {
        f.gradient(p, y0, t, &loss).unwrap_err()
    };
    let shape = |e: Error| matches!(e, Error::ShapeMismatch { .. });
    // Parameters and state of the wrong length, in the gradient and the prediction.
    assert!(shape(grad(&fit, &p[1..], &y0, &times)));
    assert!(shape(grad(&fit, &p, &y0[1..], &times)));
    assert!(shape(fit.predict(&p[1..], &y0, &times).unwrap_err()));
    assert!(shape(fit.predict(&p, &y0[1..], &times).unwrap_err()));
    // Empty, single, non-increasing and reversed times.
    for t in [&[][..], &[0.0]] {
        assert!(matches!(grad(&fit, &p, &y0, t), Error::Empty { .. }));
        assert!(matches!(
            fit.predict(&p, &y0, t).unwrap_err(),
            Error::Empty { .. }
        ));
    }
    assert!(matches!(
        grad(&fit, &p, &y0, &[0.0, 0.5, 0.5, 1.0]),
        Error::UnsortedTimes { index: 2, .. }
    ));
    assert!(matches!(
        grad(&fit, &p, &y0, &[1.0, 0.0]),
        Error::InvalidInterval { .. }
    ));
    // The reversible gradient needs a reversible solver; λ must lie in (0, 1].
    let plain = TrajectoryFit {
        solver: Solver::Plain {
            tableau: Tableau::rk4(),
        },
        ..fit.clone()
    };
    assert!(matches!(
        grad(&plain, &p, &y0, &times),
        Error::Unsupported(_)
    ));
    let bad_lambda = TrajectoryFit {
        solver: Solver::Reversible {
            tableau: Tableau::rk4(),
            lambda: 1.5,
        },
        ..fit.clone()
    };
    assert!(matches!(
        grad(&bad_lambda, &p, &y0, &times),
        Error::InvalidCoupling { .. }
    ));
    // The loss's own error is returned: targets for 6 observations, outputs at 3.
    assert!(shape(grad(&fit, &p, &y0, &times[..3])));
    // And through the trainer's objective.
    let mut objective = fit.objective(&y0, &times[..3], mse_after_first(target));
    assert!(shape(
        objective(0, &p, &mut vec![0.0; p.len()]).unwrap_err()
    ));
}
