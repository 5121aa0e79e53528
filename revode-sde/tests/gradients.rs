//! SDE gradients on a fixed Brownian path: reversible = direct (round-off), tape = finite
//! differences; Itô methods refuse reversible gradients.

mod common;
use common::*;
use revode_core::prelude::*;
use revode_sde::*;

const BATCH: usize = 3;
const TIMES: [f64; 4] = [0.0, 0.25, 0.6, 1.0];

fn path(channels: usize) -> BrownianPath {
    BrownianPath::new(0.0, 1.0, BATCH, channels, 99).unwrap()
}

type DiagTerm = SdeTerm<Drift, Diagonal<DiagField>>;
type GenTerm = SdeTerm<Drift, General>;
type AddTerm = SdeTerm<Drift, Additive<f64>>;

fn diag_term(calculus: Calculus) -> DiagTerm {
    let n = BATCH;
    let drift = Drift {
        n,
        p: [-0.7, 0.4, 0.3],
    };
    SdeTerm::new(
        drift,
        Diagonal(DiagField { n, p: [0.5, 0.2] }),
        path(1),
        calculus,
    )
    .unwrap()
}
fn general_term() -> GenTerm {
    let n = 2 * BATCH;
    let drift = Drift {
        n,
        p: [-0.5, 0.3, 0.2],
    };
    let g = General {
        p: [0.3, -0.2, 0.4, 0.1, 0.5, -0.3],
    };
    SdeTerm::new(drift, g, path(3), Calculus::Stratonovich).unwrap()
}
fn additive_term() -> AddTerm {
    let n = 2 * BATCH;
    let drift = Drift {
        n,
        p: [-0.5, 0.3, 0.2],
    };
    let g = Additive::new(2, 2, &[0.3, -0.1, 0.2, 0.4]).unwrap();
    SdeTerm::new(drift, g, path(2), Calculus::Stratonovich).unwrap()
}

fn check<S: Scheme>(scheme: &S, y0: &Vec<f64>, opts: &SolveOptions, what: &str)
where
    S::Map: StepMap<State = Vec<f64>, ParamGrad = Vec<f64>>,
{
    let g = |m: GradientMethod| gradient(scheme, y0, &TIMES, opts, &m.into(), loss).unwrap();
    let direct = g(GradientMethod::Direct);
    let rev = g(GradientMethod::Reversible);
    assert_eq!(rev.loss, direct.loss, "{what}: same forward pass");
    let (ey, ep) = (rel(&rev.y0, &direct.y0), rel(&rev.params, &direct.params));
    assert!(ey <= 1e-10 && ep <= 1e-10, "{what}: y0 {ey:e}, θ {ep:e}");
    let ck = g(GradientMethod::CheckpointedReversible { every: 5 });
    assert!(
        rel(&ck.params, &direct.params) <= 1e-10,
        "{what}: checkpointed-reversible"
    );
    let cp = g(GradientMethod::Checkpointed { snapshots: Some(3) });
    assert!(
        rel(&cp.params, &direct.params) <= 1e-12,
        "{what}: checkpointed"
    );
}

#[test]
fn reversible_equals_direct_for_every_noise_and_scheme() {
    let opts = SolveOptions::fixed(1.0 / 64.0);
    for solver in [SdeSolver::Heun, SdeSolver::Midpoint] {
        for lambda in [0.999, 0.9] {
            let name = format!("{} λ={lambda}", solver.name());
            let s = Reversible::new(
                step_map(diag_term(Calculus::Stratonovich), solver).unwrap(),
                lambda,
            )
            .unwrap();
            check(&s, &y0(BATCH), &opts, &format!("diagonal {name}"));
            let s = Reversible::new(step_map(general_term(), solver).unwrap(), lambda).unwrap();
            check(&s, &y0(2 * BATCH), &opts, &format!("general {name}"));
            let s = Reversible::new(step_map(additive_term(), solver).unwrap(), lambda).unwrap();
            check(&s, &y0(2 * BATCH), &opts, &format!("additive {name}"));
        }
    }
    check(
        &reversible_heun(diag_term(Calculus::Stratonovich)).unwrap(),
        &y0(BATCH),
        &opts,
        "rev-heun diagonal",
    );
    check(
        &reversible_heun(general_term()).unwrap(),
        &y0(2 * BATCH),
        &opts,
        "rev-heun general",
    );
    check(
        &reversible_heun(additive_term()).unwrap(),
        &y0(2 * BATCH),
        &opts,
        "rev-heun additive",
    );
}

/// Central differences of the loss through a plain solve.
fn fd_check<S: Scheme>(
    scheme: &mut S,
    set: impl Fn(&mut S, &[f64]),
    theta: &[f64],
    y0: &Vec<f64>,
    what: &str,
) where
    S::Map: StepMap<State = Vec<f64>, ParamGrad = Vec<f64>>,
{
    let opts = SolveOptions::fixed(1.0 / 32.0);
    let direct = gradient(
        &*scheme,
        y0,
        &TIMES,
        &opts,
        &GradientMethod::Direct.into(),
        loss,
    )
    .unwrap();
    let value = |s: &S, y0: &Vec<f64>| {
        let sol = solve(s, y0, &TIMES, &opts).unwrap();
        let mut c: Vec<Vec<f64>> = sol.ys.iter().map(|y| vec![0.0; y.len()]).collect();
        loss(&sol.ys, &mut c)
    };
    let h = 1e-6;
    let mut fd = vec![0.0; theta.len()];
    for i in 0..theta.len() {
        let mut p = theta.to_vec();
        p[i] += h;
        set(scheme, &p);
        let up = value(scheme, y0);
        p[i] -= 2.0 * h;
        set(scheme, &p);
        let down = value(scheme, y0);
        fd[i] = (up - down) / (2.0 * h);
    }
    set(scheme, theta);
    assert!(
        rel(&direct.params, &fd) <= 1e-6,
        "{what} θ: {:e}",
        rel(&direct.params, &fd)
    );
    let mut fdy = vec![0.0; y0.len()];
    for i in 0..y0.len() {
        let mut y = y0.clone();
        y[i] += h;
        let up = value(scheme, &y);
        y[i] -= 2.0 * h;
        fdy[i] = (up - value(scheme, &y)) / (2.0 * h);
    }
    assert!(
        rel(&direct.y0, &fdy) <= 1e-6,
        "{what} y0: {:e}",
        rel(&direct.y0, &fdy)
    );
}

#[test]
fn tape_matches_finite_differences() {
    let mut s = reversible_heun(general_term()).unwrap();
    let theta = s.map().term().params();
    fd_check(
        &mut s,
        |s, p| s.term_mut().set_params(p).unwrap(),
        &theta,
        &y0(2 * BATCH),
        "rev-heun general",
    );
    let mut s = Reversible::new(
        step_map(diag_term(Calculus::Stratonovich), SdeSolver::Heun).unwrap(),
        0.999,
    )
    .unwrap();
    let theta = s.map().term().params();
    fd_check(
        &mut s,
        |s, p| s.map_mut().term_mut().set_params(p).unwrap(),
        &theta,
        &y0(BATCH),
        "reversible heun diagonal",
    );
    let mut s = Plain::new(step_map(additive_term(), SdeSolver::Midpoint).unwrap());
    let theta = s.map().term().params();
    fd_check(
        &mut s,
        |s, p| s.map_mut().term_mut().set_params(p).unwrap(),
        &theta,
        &y0(2 * BATCH),
        "midpoint additive",
    );
    let mut s = Plain::new(step_map(diag_term(Calculus::Ito), SdeSolver::EulerMaruyama).unwrap());
    let theta = s.map().term().params();
    fd_check(
        &mut s,
        |s, p| s.map_mut().term_mut().set_params(p).unwrap(),
        &theta,
        &y0(BATCH),
        "euler-maruyama diagonal",
    );
}

#[test]
fn ito_methods_refuse_reversible_gradients() {
    let em = step_map(diag_term(Calculus::Ito), SdeSolver::EulerMaruyama).unwrap();
    assert!(Reversible::new(em.clone(), 0.999).is_err());
    assert!(ReversibleHeun::new(em.term().clone()).is_err());
    let plain = Plain::new(em);
    let opts = SolveOptions::fixed(0.1);
    for m in [GradientMethod::Reversible, GradientMethod::Backsolve] {
        let e = gradient(&plain, &y0(BATCH), &TIMES, &opts, &m.clone().into(), loss).unwrap_err();
        assert!(matches!(e, Error::Unsupported(_)), "{m:?}: {e}");
    }
    // Direct gradients of an Itô simulation are fine.
    assert!(gradient(
        &plain,
        &y0(BATCH),
        &TIMES,
        &opts,
        &GradientMethod::Direct.into(),
        loss
    )
    .is_ok());
    // Calculus mismatches are errors that say which.
    let e = step_map(diag_term(Calculus::Ito), SdeSolver::Heun).unwrap_err();
    assert!(e.to_string().contains("Stratonovich"), "{e}");
    assert!(step_map(diag_term(Calculus::Stratonovich), SdeSolver::EulerMaruyama).is_err());
    assert!(reversible_heun(diag_term(Calculus::Ito)).is_err());
}

#[test]
fn shapes_are_checked() {
    let drift = Drift {
        n: 2 * BATCH,
        p: [0.0; 3],
    };
    // Diagonal noise needs one channel per state entry (2), the path has 1.
    let e = SdeTerm::new(
        drift.clone(),
        Diagonal(DiagField {
            n: 2 * BATCH,
            p: [0.1, 0.1],
        }),
        path(1),
        Calculus::Stratonovich,
    );
    assert!(matches!(e, Err(Error::ShapeMismatch { .. })));
    let e = SdeTerm::new(
        drift,
        General { p: [0.0; 6] },
        path(2),
        Calculus::Stratonovich,
    );
    assert!(matches!(e, Err(Error::ShapeMismatch { .. })));
    assert!(Additive::<f64>::new(2, 2, &[0.0; 3]).is_err());
    // Times outside the path are refused by the solve.
    let s = reversible_heun(diag_term(Calculus::Stratonovich)).unwrap();
    let e = solve(&s, &y0(BATCH), &[0.0, 1.5], &SolveOptions::fixed(0.1)).unwrap_err();
    assert!(matches!(e, Error::OutsideDomain { .. }), "{e}");
}
