//! Fields and helpers shared by the integration tests.
#![allow(dead_code)]

use revode_core::prelude::*;

/// y' = A y with the 2 × 2 matrix A as the parameters (row-major).
#[derive(Clone, Debug)]
pub struct Linear2 {
    pub a: [f64; 4],
}

impl VectorField for Linear2 {
    type Scalar = f64;
    fn dim(&self) -> usize {
        2
    }
    fn params(&self) -> &[f64] {
        &self.a
    }
    fn params_mut(&mut self) -> &mut [f64] {
        &mut self.a
    }
    fn eval(&self, _t: f64, y: &[f64], out: &mut [f64]) {
        out[0] = self.a[0] * y[0] + self.a[1] * y[1];
        out[1] = self.a[2] * y[0] + self.a[3] * y[1];
    }
    fn vjp(&self, _t: f64, y: &[f64], c: &[f64], s: f64, yb: &mut [f64], pb: &mut [f64]) {
        yb[0] += s * (self.a[0] * c[0] + self.a[2] * c[1]);
        yb[1] += s * (self.a[1] * c[0] + self.a[3] * c[1]);
        pb[0] += s * c[0] * y[0];
        pb[1] += s * c[0] * y[1];
        pb[2] += s * c[1] * y[0];
        pb[3] += s * c[1] * y[1];
    }
}

/// A scalar linear field y' = k y (no parameters).
#[derive(Clone, Debug)]
pub struct Scalar1 {
    pub k: f64,
}

impl VectorField for Scalar1 {
    type Scalar = f64;
    fn dim(&self) -> usize {
        1
    }
    fn params(&self) -> &[f64] {
        &[]
    }
    fn params_mut(&mut self) -> &mut [f64] {
        &mut []
    }
    fn eval(&self, _t: f64, y: &[f64], out: &mut [f64]) {
        out[0] = self.k * y[0];
    }
    fn vjp(&self, _t: f64, _y: &[f64], c: &[f64], s: f64, yb: &mut [f64], _pb: &mut [f64]) {
        yb[0] += s * self.k * c[0];
    }
}

/// A nonlinear, time-dependent field: a 3 → 16 → 3 tanh MLP with time input.
pub fn mlp(seed: u64) -> Mlp<f64> {
    Mlp::new(3, 16, true).unwrap().init_uniform(seed)
}

pub fn y0_3() -> Vec<f64> {
    vec![0.7, -0.4, 1.1]
}

/// Loss Σ_k w_k (|y_k|² + c·y_k) over observations, with its cotangents.
pub fn loss(ys: &[Vec<f64>], cots: &mut [Vec<f64>]) -> f64 {
    let mut l = 0.0;
    for (k, (y, g)) in ys.iter().zip(cots.iter_mut()).enumerate() {
        let w = 1.0 + 0.5 * k as f64;
        for (i, (&v, g)) in y.iter().zip(g.iter_mut()).enumerate() {
            let c = 0.3 * (i as f64 + 1.0);
            l += w * (v * v + c * v);
            *g = w * (2.0 * v + c);
        }
    }
    l
}

/// Relative error max|a − b| / max|b|.
pub fn rel(a: &[f64], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len());
    let scale = b.iter().fold(0.0f64, |m, v| m.max(v.abs())).max(1e-300);
    a.iter()
        .zip(b)
        .fold(0.0f64, |m, (x, y)| m.max((x - y).abs()))
        / scale
}
