//! Reversible Heun at one field evaluation per step (Kidger et al. 2021, Algorithm 1): the
//! evaluation and pullback counts read from `Stats`, and exact gradients (= the full tape of
//! the same scheme to round-off) for every noise shape.

mod common;
use common::*;
use revode_core::prelude::*;
use revode_sde::*;

const BATCH: usize = 3;
const N: u64 = 64;
const TIMES: [f64; 4] = [0.0, 0.25, 0.5, 1.0];

fn opts() -> SolveOptions {
    SolveOptions::fixed(1.0 / N as f64)
}

fn terms() -> Vec<(&'static str, SdeTerm<Drift, General>, usize)> {
    let path = |m| BrownianPath::new(0.0, 1.0, BATCH, m, 7).unwrap();
    let drift = |n| Drift {
        n,
        p: [-0.5, 0.3, 0.2],
    };
    let general = General {
        p: [0.3, -0.2, 0.4, 0.1, 0.5, -0.3],
    };
    vec![(
        "general noise",
        SdeTerm::new(drift(2 * BATCH), general, path(3), Calculus::Stratonovich).unwrap(),
        2 * BATCH,
    )]
}

fn diagonal() -> SdeTerm<Drift, Diagonal<DiagField>> {
    let path = BrownianPath::new(0.0, 1.0, BATCH, 1, 11).unwrap();
    let drift = Drift {
        n: BATCH,
        p: [-0.7, 0.4, 0.3],
    };
    SdeTerm::new(
        drift,
        Diagonal(DiagField {
            n: BATCH,
            p: [0.5, 0.2],
        }),
        path,
        Calculus::Stratonovich,
    )
    .unwrap()
}

fn additive() -> SdeTerm<Drift, Additive<f64>> {
    let path = BrownianPath::new(0.0, 1.0, BATCH, 2, 13).unwrap();
    let drift = Drift {
        n: 2 * BATCH,
        p: [-0.5, 0.3, 0.2],
    };
    let g = Additive::new(2, 2, &[0.3, -0.1, 0.2, 0.4]).unwrap();
    SdeTerm::new(drift, g, path, Calculus::Stratonovich).unwrap()
}

/// Drift and diffusion evaluated once each count as 2 evaluations; one pullback pulls both.
fn counts_and_exactness<T>(term: T, y0: &Vec<f64>, what: &str)
where
    T: Term<State = Vec<f64>, ParamGrad = Vec<f64>> + Clone,
{
    let scheme = ReversibleHeun::new(term.clone()).unwrap();
    let per = term.evals_per_call();
    assert_eq!(per, 2);
    // Forward: the initial evaluation, then one per step.
    let sol = solve(&scheme, y0, &TIMES, &opts()).unwrap();
    assert_eq!(sol.stats.accepted_steps, N, "{what}");
    assert_eq!(sol.stats.evaluations, per * (N + 1), "{what}: forward");
    assert_eq!(sol.stats.pullbacks, 0, "{what}");

    let g = |m: GradientMethod| gradient(&scheme, y0, &TIMES, &opts(), &m.into(), loss).unwrap();
    let rev = g(GradientMethod::Reversible);
    // Backward: one evaluation and one pullback per step, plus, in all, the evaluation at
    // ŷ_N the forward pass did not keep and the pullback of V̄0 through the initial evaluation.
    assert_eq!(
        rev.stats.evaluations - per * (N + 1),
        per * (N + 1),
        "{what}: backward evaluations"
    );
    assert_eq!(rev.stats.pullbacks, N + 1, "{what}: pullbacks");
    // The full tape of the same scheme: forward as above, one pullback per step.
    let tape = g(GradientMethod::Direct);
    assert_eq!(tape.stats.evaluations, per * (N + 1), "{what}: tape");
    assert_eq!(tape.stats.pullbacks, N + 1, "{what}: tape pullbacks");
    assert_eq!(rev.loss, tape.loss, "{what}: same forward pass");
    let (ey, ep) = (rel(&rev.y0, &tape.y0), rel(&rev.params, &tape.params));
    assert!(ey <= 1e-12 && ep <= 1e-12, "{what}: y0 {ey:e}, θ {ep:e}");
    assert!(rev.stats.reconstruction_error.unwrap() < 1e-13, "{what}");

    // Backpropagating plain Stratonovich Heun costs 2 evaluations and 2 pullbacks per step.
    let heun = Plain::new(Rk::new(term, Tableau::heun()));
    let h = gradient(
        &heun,
        y0,
        &TIMES,
        &opts(),
        &GradientMethod::Direct.into(),
        loss,
    )
    .unwrap();
    assert_eq!(h.stats.evaluations, per * 2 * N, "{what}: Heun");
    assert_eq!(h.stats.pullbacks, 2 * N, "{what}: Heun pullbacks");
    assert!(rev.stats.pullbacks * 2 < h.stats.pullbacks + 4);
}

#[test]
fn one_evaluation_per_step_and_gradients_equal_the_tape() {
    for (what, term, n) in terms() {
        counts_and_exactness(term, &y0(n), what);
    }
    counts_and_exactness(diagonal(), &y0(BATCH), "diagonal noise");
    counts_and_exactness(additive(), &y0(2 * BATCH), "additive noise");
}

#[test]
fn trajectory_is_kidgers_algorithm_1() {
    // Hand-rolled Algorithm 1 on the diagonal term, with the same Brownian increments.
    let term = diagonal();
    let scheme = ReversibleHeun::new(term.clone()).unwrap();
    let y0 = y0(BATCH);
    let h = 1.0 / N as f64;
    let sol = solve(&scheme, &y0, &[0.0, 1.0], &opts()).unwrap();
    let mut ws = revode_core::term::Workspace::new(&term, &y0);
    let (mut y, mut z) = (y0.clone(), y0.clone());
    let mut v = term.new_field(&y0);
    let mut v_next = term.new_field(&y0);
    term.vf(0.0, &z, &mut v, None, &mut ws.scratch);
    let mut c = term.new_control();
    let (mut w, mut u) = (y0.clone(), y0.clone());
    for k in 0..N {
        let (ta, tb) = (k as f64 * h, (k + 1) as f64 * h);
        term.contr(ta, tb, &mut c);
        term.prod(&v, &c, &mut w);
        for i in 0..z.len() {
            z[i] = 2.0 * y[i] - z[i] + w[i];
        }
        term.vf(tb, &z, &mut v_next, None, &mut ws.scratch);
        term.prod(&v_next, &c, &mut u);
        for i in 0..y.len() {
            y[i] += 0.5 * (w[i] + u[i]);
        }
        std::mem::swap(&mut v, &mut v_next);
    }
    assert!(rel(&sol.ys[1], &y) < 1e-14, "{:e}", rel(&sol.ys[1], &y));
    // Same operations up to their order: agreement to rounding.
    let final_z = sol.final_z.unwrap();
    assert!(rel(&final_z, &z) < 1e-14, "{:e}", rel(&final_z, &z));
}
