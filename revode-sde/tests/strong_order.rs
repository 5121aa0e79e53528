//! Strong convergence orders against a fine reference driven by the same Brownian path
//! (EXPERIMENTS.md 10): additive and diagonal noise, every solver.

mod common;
use common::*;
use revode_core::prelude::*;
use revode_sde::*;

const BATCH: usize = 400;
const FINE: f64 = 1.0 / 16384.0;

fn path(channels: usize) -> BrownianPath {
    BrownianPath::new(0.0, 1.0, BATCH, channels, 2025).unwrap()
}

fn y0(n: usize) -> Vec<f64> {
    (0..n).map(|i| 0.5 + 0.3 * ((i * 7) as f64).sin()).collect()
}

/// Stratonovich drift of an Itô SDE with diagonal noise `s cos y + r`: `f − ½ g g'`.
#[derive(Clone, Debug)]
struct Corrected {
    f: Drift,
    g: DiagField,
}

impl VectorField for Corrected {
    type Scalar = f64;
    fn dim(&self) -> usize {
        self.f.n
    }
    fn params(&self) -> &[f64] {
        &[]
    }
    fn params_mut(&mut self) -> &mut [f64] {
        &mut []
    }
    fn eval(&self, t: f64, y: &[f64], out: &mut [f64]) {
        self.f.eval(t, y, out);
        for (o, &y) in out.iter_mut().zip(y) {
            *o -= 0.5 * self.g.g_dg(y);
        }
    }
    fn vjp(&self, _: f64, _: &[f64], _: &[f64], _: f64, _: &mut [f64], _: &mut [f64]) {
        unreachable!("reference only")
    }
}

fn drift(n: usize) -> Drift {
    Drift {
        n,
        p: [-0.8, 0.5, 0.3],
    }
}
fn diag_field(n: usize) -> DiagField {
    DiagField { n, p: [0.6, 0.3] }
}

#[derive(Clone, Copy, Debug)]
enum Noise {
    Additive,
    Diagonal,
}

fn final_state<S: Scheme>(scheme: &S, y0: &Vec<f64>, h: f64) -> Vec<f64>
where
    S::Map: StepMap<State = Vec<f64>>,
{
    // The reference field has no pullback, so the linearised stability check (which uses it)
    // is turned off.
    let opts = SolveOptions::fixed(h).without_stability_check();
    solve(scheme, y0, &[0.0, 1.0], &opts).unwrap().ys[1].clone()
}

/// Runs `solver` at h = 2^-1 … 2^-8 on the same path; RMS error at t = 1 against `reference`.
fn errors(noise: Noise, solver: &str, calculus: Calculus) -> Vec<f64> {
    let hs: Vec<f64> = (1..=8).map(|k| 2f64.powi(-k)).collect();
    let n = match noise {
        Noise::Additive => 2 * BATCH,
        Noise::Diagonal => BATCH,
    };
    let y0 = y0(n);
    let run = |h: f64| -> Vec<f64> {
        match noise {
            Noise::Additive => {
                let g = Additive::new(2, 2, &[0.5, -0.2, 0.3, 0.4]).unwrap();
                let term = SdeTerm::new(drift(n), g, path(2), calculus).unwrap();
                dispatch(term, solver, &y0, h)
            }
            Noise::Diagonal => {
                let term =
                    SdeTerm::new(drift(n), Diagonal(diag_field(n)), path(1), calculus).unwrap();
                dispatch(term, solver, &y0, h)
            }
        }
    };
    let reference = match (noise, calculus) {
        (Noise::Diagonal, Calculus::Ito) => {
            let f = Corrected {
                f: drift(n),
                g: diag_field(n),
            };
            let term =
                SdeTerm::new(f, Diagonal(diag_field(n)), path(1), Calculus::Stratonovich).unwrap();
            dispatch(term, "heun", &y0, FINE)
        }
        _ => run(FINE),
    };
    hs.iter()
        .map(|&h| {
            let y = run(h);
            let se: f64 = y
                .iter()
                .zip(&reference)
                .map(|(a, b)| (a - b) * (a - b))
                .sum();
            (se / n as f64).sqrt()
        })
        .collect()
}

fn dispatch<F, G>(term: SdeTerm<F, G>, solver: &str, y0: &Vec<f64>, h: f64) -> Vec<f64>
where
    G: Diffusion<Scalar = f64>,
    F: VectorField<Scalar = f64>,
{
    match solver {
        "euler-maruyama" => final_state(
            &Plain::new(step_map(term, SdeSolver::EulerMaruyama).unwrap()),
            y0,
            h,
        ),
        "heun" => final_state(&Plain::new(step_map(term, SdeSolver::Heun).unwrap()), y0, h),
        "midpoint" => final_state(
            &Plain::new(step_map(term, SdeSolver::Midpoint).unwrap()),
            y0,
            h,
        ),
        "reversible-heun" => final_state(&reversible_heun(term).unwrap(), y0, h),
        "reversible(heun)" => final_state(
            &Reversible::new(step_map(term, SdeSolver::Heun).unwrap(), 0.999).unwrap(),
            y0,
            h,
        ),
        _ => unreachable!(),
    }
}

fn check(noise: Noise, solver: &str, calculus: Calculus, theory: f64) {
    let errs = errors(noise, solver, calculus);
    let hs: Vec<f64> = (1..=8).map(|k| 2f64.powi(-k)).collect();
    // The asymptotic window: h ≤ 2^-3 (the largest steps are pre-asymptotic).
    let p = revode_core::tableau::observed_order(&hs[2..], &errs[2..]).unwrap();
    eprintln!("{noise:?} {solver}: slope {p:.3} (theory {theory}); errors {errs:?}");
    assert!(
        (p - theory).abs() <= 0.2,
        "{noise:?} {solver}: slope {p:.3} vs theory {theory}"
    );
}

#[test]
fn additive_noise_orders() {
    check(Noise::Additive, "euler-maruyama", Calculus::Ito, 1.0);
    check(Noise::Additive, "heun", Calculus::Stratonovich, 1.0);
    check(Noise::Additive, "midpoint", Calculus::Stratonovich, 1.0);
    check(
        Noise::Additive,
        "reversible-heun",
        Calculus::Stratonovich,
        1.0,
    );
    check(
        Noise::Additive,
        "reversible(heun)",
        Calculus::Stratonovich,
        1.0,
    );
}

#[test]
fn diagonal_noise_orders() {
    check(Noise::Diagonal, "euler-maruyama", Calculus::Ito, 0.5);
    check(Noise::Diagonal, "heun", Calculus::Stratonovich, 1.0);
    check(Noise::Diagonal, "midpoint", Calculus::Stratonovich, 1.0);
    check(
        Noise::Diagonal,
        "reversible-heun",
        Calculus::Stratonovich,
        1.0,
    );
    check(
        Noise::Diagonal,
        "reversible(heun)",
        Calculus::Stratonovich,
        1.0,
    );
}
