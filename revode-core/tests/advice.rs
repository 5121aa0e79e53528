//! The library's λ / h / interval advice on fields whose spectrum is known exactly.

use num_complex::Complex64;
use revode_core::prelude::*;
use revode_core::stability::{
    backward_amplification, checkpoint_interval, max_stable_step, stable_lambda_range,
};
use revode_core::stability_advice::{advise_along, spectrum_along};

/// y' = −a·y on `n` entries: every Jacobian eigenvalue is −a.
struct Decay {
    a: [f64; 1],
    n: usize,
}

impl VectorField for Decay {
    type Scalar = f64;
    fn dim(&self) -> usize {
        self.n
    }
    fn params(&self) -> &[f64] {
        &self.a
    }
    fn params_mut(&mut self) -> &mut [f64] {
        &mut self.a
    }
    fn eval(&self, _t: f64, y: &[f64], out: &mut [f64]) {
        out.iter_mut().zip(y).for_each(|(o, y)| *o = -self.a[0] * y);
    }
    fn vjp(&self, _t: f64, y: &[f64], cot: &[f64], s: f64, yb: &mut [f64], pb: &mut [f64]) {
        for i in 0..y.len() {
            yb[i] -= s * self.a[0] * cot[i];
            pb[0] -= s * y[i] * cot[i];
        }
    }
}

impl Clone for Decay {
    fn clone(&self) -> Self {
        Decay {
            a: self.a,
            n: self.n,
        }
    }
}

fn map(n: usize, tableau: Tableau) -> Rk<OdeTerm<Decay>> {
    Rk::new(OdeTerm::new(Decay { a: [1.0], n }), tableau)
}

#[test]
fn advice_matches_the_analysis_of_the_exact_spectrum() {
    // Reversible Euler, α = −1, h = 0.01: λ = 0.999 is unstable there (docs/src/choosing-lambda.md).
    let (h, t) = (0.01, Tableau::euler());
    let m = map(2, t.clone());
    let spectrum = spectrum_along(&m, &vec![1.0, -0.5], (0.0, 1.0), h, 4).unwrap();
    assert_eq!(spectrum.len(), 10);
    assert!(spectrum
        .iter()
        .all(|a| (a - Complex64::new(-1.0, 0.0)).norm() < 1e-12));
    let advice = advise_along(&m, &vec![1.0, -0.5], (0.0, 1.0), h, 0.999, 1e-10).unwrap();
    let exact = [Complex64::new(-1.0, 0.0)];
    let ranges = stable_lambda_range(&t, h, &exact, 2000).unwrap();
    assert_eq!(advice.ranges.len(), ranges.len());
    for (a, b) in advice.ranges.iter().zip(&ranges) {
        assert!((a.0 - b.0).abs() < 1e-12 && (a.1 - b.1).abs() < 1e-12);
    }
    let top = ranges.iter().map(|r| r.1).fold(0.0, f64::max);
    assert!(top < 0.999);
    assert!((advice.lambda - (top - 0.5 * (1.0 - top))).abs() < 1e-12);
    let amp = backward_amplification(&t, advice.lambda, &[exact[0] * h]);
    assert!((advice.amplification - amp).abs() < 1e-12);
    assert_eq!(
        advice.interval,
        checkpoint_interval(amp, 1e-10, f64::EPSILON)
    );
    let hm = max_stable_step(&t, advice.lambda, &exact, 1e3 * h)
        .unwrap()
        .unwrap();
    assert!((advice.max_stable_h.unwrap() - hm).abs() <= 1e-9 * hm);
    assert_eq!(advice.reasons.len(), 4);
    assert!(
        advice.reasons[1].contains("not acceptable"),
        "{:?}",
        advice.reasons
    );
    // A zero field (every eigenvalue 0: the coupled step has μ = 1, λ) keeps λ = 0.999.
    let zero = Rk::new(OdeTerm::new(Decay { a: [0.0], n: 2 }), Tableau::rk4());
    let kept = advise_along(&zero, &vec![1.0, 0.3], (0.0, 1.0), h, 0.999, 1e-10).unwrap();
    assert_eq!(kept.lambda, 0.999);
    assert!(kept.reasons[1].contains("kept"));
}

#[test]
fn advice_refuses_what_it_cannot_analyse() {
    let big = map(65, Tableau::euler());
    assert!(matches!(
        advise_along(&big, &vec![0.1; 65], (0.0, 1.0), 0.01, 0.999, 1e-10),
        Err(Error::Unsupported(_))
    ));
    let m = map(2, Tableau::euler());
    assert!(matches!(
        advise_along(&m, &vec![1.0; 2], (0.0, 1.0), 0.01, 1.5, 1e-10),
        Err(Error::InvalidCoupling { .. })
    ));
}
