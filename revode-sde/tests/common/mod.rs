//! Analytic SDE fields with hand-written pullbacks, shared by the SDE tests.
#![allow(dead_code)]

use revode_core::VectorField;
use revode_sde::{Diffusion, Noise};

/// Drift `f_i = a·y_i + b·sin(y_i) + c·t` on `n` entries.
#[derive(Clone, Debug)]
pub struct Drift {
    pub n: usize,
    pub p: [f64; 3],
}

impl VectorField for Drift {
    type Scalar = f64;
    fn dim(&self) -> usize {
        self.n
    }
    fn params(&self) -> &[f64] {
        &self.p
    }
    fn params_mut(&mut self) -> &mut [f64] {
        &mut self.p
    }
    fn eval(&self, t: f64, y: &[f64], out: &mut [f64]) {
        let [a, b, c] = self.p;
        for (o, &y) in out.iter_mut().zip(y) {
            *o = a * y + b * y.sin() + c * t;
        }
    }
    fn vjp(&self, t: f64, y: &[f64], cot: &[f64], s: f64, yb: &mut [f64], pb: &mut [f64]) {
        let [a, b, _] = self.p;
        for ((&y, &c), yb) in y.iter().zip(cot).zip(yb.iter_mut()) {
            *yb += s * c * (a + b * y.cos());
            pb[0] += s * c * y;
            pb[1] += s * c * y.sin();
            pb[2] += s * c * t;
        }
    }
}

/// Diagonal diffusion `g_i = s·cos(y_i) + r` (a VectorField wrapped by `Diagonal`).
#[derive(Clone, Debug)]
pub struct DiagField {
    pub n: usize,
    pub p: [f64; 2],
}

impl DiagField {
    /// `g(y)·g'(y)`: the Itô–Stratonovich drift correction is `½ g g'`.
    pub fn g_dg(&self, y: f64) -> f64 {
        let [s, r] = self.p;
        (s * y.cos() + r) * (-s * y.sin())
    }
}

impl VectorField for DiagField {
    type Scalar = f64;
    fn dim(&self) -> usize {
        self.n
    }
    fn params(&self) -> &[f64] {
        &self.p
    }
    fn params_mut(&mut self) -> &mut [f64] {
        &mut self.p
    }
    fn eval(&self, _t: f64, y: &[f64], out: &mut [f64]) {
        let [s, r] = self.p;
        for (o, &y) in out.iter_mut().zip(y) {
            *o = s * y.cos() + r;
        }
    }
    fn vjp(&self, _t: f64, y: &[f64], cot: &[f64], sc: f64, yb: &mut [f64], pb: &mut [f64]) {
        let [s, _] = self.p;
        for ((&y, &c), yb) in y.iter().zip(cot).zip(yb.iter_mut()) {
            *yb -= sc * c * s * y.sin();
            pb[0] += sc * c * y.cos();
            pb[1] += sc * c;
        }
    }
}

/// General noise, dim 2 × 3 channels per sample: `σ_ij(y) = p_ij·tanh(y_i) + 0.1(j + 1)`.
#[derive(Clone, Debug)]
pub struct General {
    pub p: [f64; 6],
}

impl Diffusion for General {
    type Scalar = f64;
    fn noise(&self) -> Noise {
        Noise::General
    }
    fn channels(&self) -> usize {
        3
    }
    fn params(&self) -> &[f64] {
        &self.p
    }
    fn params_mut(&mut self) -> &mut [f64] {
        &mut self.p
    }
    fn eval(&self, _t: f64, y: &[f64], out: &mut [f64], _c: Option<&mut [f64]>) {
        for (ys, os) in y.chunks_exact(2).zip(out.chunks_exact_mut(6)) {
            for i in 0..2 {
                for j in 0..3 {
                    os[3 * i + j] = self.p[3 * i + j] * ys[i].tanh() + 0.1 * (j as f64 + 1.0);
                }
            }
        }
    }
    fn vjp(
        &self,
        _t: f64,
        y: &[f64],
        _c: &[f64],
        cot: &[f64],
        s: f64,
        yb: &mut [f64],
        pb: &mut [f64],
    ) {
        for ((ys, cs), bs) in y
            .chunks_exact(2)
            .zip(cot.chunks_exact(6))
            .zip(yb.chunks_exact_mut(2))
        {
            for i in 0..2 {
                let th = ys[i].tanh();
                for j in 0..3 {
                    let c = cs[3 * i + j];
                    bs[i] += s * c * self.p[3 * i + j] * (1.0 - th * th);
                    pb[3 * i + j] += s * c * th;
                }
            }
        }
    }
}

/// Largest entry-wise difference relative to the largest entry of `b`.
pub fn rel(a: &[f64], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len());
    let scale = b.iter().fold(0.0f64, |m, v| m.max(v.abs())).max(1e-300);
    a.iter()
        .zip(b)
        .fold(0.0f64, |m, (x, y)| m.max((x - y).abs()))
        / scale
}

/// Every KS test's p-value must exceed 0.001 / (number of tests) (Bonferroni).
pub fn assert_all_pass<S: AsRef<str>>(tests: &[(S, revode_sde::stats::KsTest)]) {
    let level = 0.001 / tests.len() as f64;
    for (name, t) in tests {
        assert!(
            t.p_value > level,
            "{}: D = {}, p = {} ≤ {level}",
            name.as_ref(),
            t.statistic,
            t.p_value
        );
    }
}

/// An initial state of `n` entries, shared by the gradient tests.
pub fn y0(n: usize) -> Vec<f64> {
    (0..n).map(|i| 0.3 + 0.2 * (i as f64).sin()).collect()
}

/// `Σ_k Σ_i w_ki (y_i² + sin y_i)` with `w_ki = 1 + 0.1(k + i)`, and its cotangents.
pub fn loss(ys: &[Vec<f64>], cots: &mut [Vec<f64>]) -> f64 {
    let mut l = 0.0;
    for (k, (y, c)) in ys.iter().zip(cots.iter_mut()).enumerate() {
        for (i, (&v, c)) in y.iter().zip(c.iter_mut()).enumerate() {
            let w = 1.0 + 0.1 * (k + i) as f64;
            l += w * v * v + v.sin();
            *c = 2.0 * w * v + v.cos();
        }
    }
    l
}
