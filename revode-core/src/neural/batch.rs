//! The batched state on a dfdx device: a `rows × cols` tensor whose sizes are run-time values.

use crate::{Error, Real, Result, State};
use dfdx::prelude::*;

/// A `rows × cols` tensor on a dfdx device, both sizes chosen at run time.
pub type Matrix<E, Dev> = Tensor<(usize, usize), E, Dev>;
/// A vector on a dfdx device, its length chosen at run time.
pub type Vector<E, Dev> = Tensor<(usize,), E, Dev>;

/// A `batch × dim` state tensor on a dfdx device (one sample per row).
#[derive(Clone, Debug)]
pub struct Batch<E: Dtype, Dev: Storage<E>>(pub Matrix<E, Dev>);

impl<E: Dtype + Real, Dev: Device<E>> Batch<E, Dev> {
    /// A batch from row-major host values (`rows × cols`).
    pub fn from_rows(dev: &Dev, rows: usize, cols: usize, values: &[E]) -> Result<Self> {
        if values.len() != rows * cols {
            return Err(Error::ShapeMismatch {
                what: format!("batch values ({rows} rows × {cols} columns)"),
                expected: rows * cols,
                found: values.len(),
            });
        }
        Ok(Batch(dev.tensor_from_vec(values.to_vec(), (rows, cols))))
    }
    /// Number of rows (samples).
    pub fn rows(&self) -> usize {
        self.0.shape().0
    }
    /// Number of columns (entries per sample).
    pub fn cols(&self) -> usize {
        self.0.shape().1
    }
    /// Row-major host copy.
    pub fn to_host(&self) -> Vec<E> {
        self.0.as_vec()
    }
}

/// The one entry of a rank-0 tensor, on the host.
pub(crate) fn scalar<E: Dtype + Real, Dev: Device<E>>(t: Tensor<Rank0, E, Dev>) -> E {
    t.as_vec()[0]
}

impl<E: Dtype + Real, Dev: Device<E>> State for Batch<E, Dev> {
    type Scalar = E;
    fn zeros_like(&self) -> Self {
        Batch(self.0.device().zeros_like(self.0.shape()))
    }
    fn len(&self) -> usize {
        self.rows() * self.cols()
    }
    fn copy_from(&mut self, other: &Self) {
        self.0 = other.0.clone();
    }
    fn set_zero(&mut self) {
        self.0 = self.0.device().zeros_like(self.0.shape());
    }
    fn axpy(&mut self, a: E, x: &Self) {
        self.0 = self.0.clone() + x.0.clone() * a;
    }
    fn scale(&mut self, a: E) {
        self.0 = self.0.clone() * a;
    }
    fn mul_elementwise(&mut self, x: &Self) {
        self.0 = self.0.clone() * x.0.clone();
    }
    fn scale_add(&mut self, a: E, b: E, x: &Self) {
        self.0 = self.0.clone() * a + x.0.clone() * b;
    }
    fn lin_comb(&mut self, a: E, x: &Self, b: E, y: &Self) {
        self.0 = x.0.clone() * a + y.0.clone() * b;
    }
    fn dot(&self, other: &Self) -> E {
        scalar((self.0.clone() * other.0.clone()).sum::<Rank0, _>())
    }
    fn all_finite(&self) -> bool {
        // x − x is 0 for finite x and NaN for ±∞ or NaN: one scalar crosses to the host.
        scalar((self.0.clone() - self.0.clone()).sum::<Rank0, _>()).is_finite()
    }
    fn max_abs(&self) -> E {
        scalar(self.0.clone().abs().max::<Rank0, _>())
    }
    fn max_abs_diff(&self, other: &Self) -> E {
        scalar((self.0.clone() - other.0.clone()).abs().max::<Rank0, _>())
    }
    fn scaled_rms(&self, a: &Self, b: &Self, atol: f64, rtol: f64) -> f64 {
        let scale = a.0.clone().abs().maximum(b.0.clone().abs()) * E::of(rtol) + E::of(atol);
        let r = self.0.clone() / scale;
        scalar(r.square().mean::<Rank0, _>()).as_f64().sqrt()
    }
    fn scaled_max(&self, a: &Self, b: &Self, atol: f64, rtol: f64) -> f64 {
        let scale = a.0.clone().abs().maximum(b.0.clone().abs()) * E::of(rtol) + E::of(atol);
        let r = self.0.clone() / scale;
        // r − r is 0 for finite entries and NaN otherwise: a NaN never reads as small.
        if !scalar((r.clone() - r.clone()).sum::<Rank0, _>()).is_finite() {
            return f64::NAN;
        }
        scalar(r.abs().max::<Rank0, _>()).as_f64()
    }
    fn to_f64_vec(&self) -> Vec<f64> {
        self.0.as_vec().into_iter().map(|v| v.as_f64()).collect()
    }
    fn set_from_f64(&mut self, values: &[f64]) -> bool {
        if values.len() != self.len() {
            return false;
        }
        let v = values.iter().map(|&x| E::of(x)).collect();
        self.0 = self.0.device().tensor_from_vec(v, *self.0.shape());
        true
    }
}
