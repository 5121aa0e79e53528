//! [`State`] for ndarray's owned arrays of any dimension (`Array1`, `Array2`, …; f32 or f64),
//! so data held in ndarray runs through every scheme and gradient method, and
//! [`Contiguous`] (a flat view of the entries) for the ones in standard (row-major) layout,
//! which is what [`OdeTerm`](crate::OdeTerm) hands to a [`VectorField`](crate::VectorField).
//!
//! The vector-space operations are elementwise over the logical index (ndarray's `Zip`), so
//! they are correct for any layout; reductions (`dot`, norms) sum in logical order.

use crate::state::nan_max;
use crate::{Real, State};
use ndarray::{Array, Dimension, Zip};

impl<S: Real, D: Dimension> State for Array<S, D> {
    type Scalar = S;
    fn zeros_like(&self) -> Self {
        Array::from_elem(self.raw_dim(), S::zero())
    }
    fn len(&self) -> usize {
        Array::len(self)
    }
    fn copy_from(&mut self, other: &Self) {
        self.assign(other);
    }
    fn set_zero(&mut self) {
        self.fill(S::zero());
    }
    fn axpy(&mut self, a: S, x: &Self) {
        Zip::from(self).and(x).for_each(|s, &x| *s += a * x);
    }
    fn scale(&mut self, a: S) {
        self.map_inplace(|v| *v = *v * a);
    }
    fn mul_elementwise(&mut self, x: &Self) {
        Zip::from(self).and(x).for_each(|s, &x| *s = *s * x);
    }
    fn scale_add(&mut self, a: S, b: S, x: &Self) {
        Zip::from(self).and(x).for_each(|s, &x| *s = a * *s + b * x);
    }
    fn lin_comb(&mut self, a: S, x: &Self, b: S, y: &Self) {
        Zip::from(self)
            .and(x)
            .and(y)
            .for_each(|s, &x, &y| *s = a * x + b * y);
    }
    fn dot(&self, other: &Self) -> S {
        self.iter().zip(other.iter()).map(|(&a, &b)| a * b).sum()
    }
    fn all_finite(&self) -> bool {
        self.iter().all(|v| v.is_finite())
    }
    fn max_abs(&self) -> S {
        self.iter().fold(S::zero(), |m, v| nan_max(m, v.abs()))
    }
    fn max_abs_diff(&self, other: &Self) -> S {
        self.iter()
            .zip(other.iter())
            .fold(S::zero(), |m, (a, b)| nan_max(m, (*a - *b).abs()))
    }
    fn scaled_rms(&self, a: &Self, b: &Self, atol: f64, rtol: f64) -> f64 {
        if self.is_empty() {
            return 0.0;
        }
        let sum: f64 = self
            .iter()
            .zip(a.iter())
            .zip(b.iter())
            .map(|((e, a), b)| {
                let r = e.as_f64() / (atol + rtol * a.abs().max(b.abs()).as_f64());
                r * r
            })
            .sum();
        (sum / self.len() as f64).sqrt()
    }
    fn scaled_max(&self, a: &Self, b: &Self, atol: f64, rtol: f64) -> f64 {
        self.iter()
            .zip(a.iter())
            .zip(b.iter())
            .fold(0.0, |m, ((e, a), b)| {
                let scale = atol + rtol * a.abs().max(b.abs()).as_f64();
                nan_max(m, (e.as_f64() / scale).abs())
            })
    }
    fn to_f64_vec(&self) -> Vec<f64> {
        self.iter().map(|v| v.as_f64()).collect()
    }
    fn set_from_f64(&mut self, values: &[f64]) -> bool {
        if values.len() != self.len() {
            return false;
        }
        self.iter_mut()
            .zip(values)
            .for_each(|(s, &v)| *s = S::of(v));
        true
    }
}

/// A state whose entries form one slice in a fixed (row-major) order.
pub trait Contiguous: State {
    /// True when [`Contiguous::values`] is available (always for `Vec`; for arrays, standard
    /// layout). Terms check it when they validate the initial state.
    fn is_contiguous(&self) -> bool;
    /// The entries as a slice. Only called on states for which
    /// [`Contiguous::is_contiguous`] holds (and on states made from them by `zeros_like` or
    /// `clone`, which keep the layout).
    fn values(&self) -> &[Self::Scalar];
    /// The entries as a mutable slice (same condition).
    fn values_mut(&mut self) -> &mut [Self::Scalar];
}

impl<S: Real> Contiguous for Vec<S> {
    fn is_contiguous(&self) -> bool {
        true
    }
    fn values(&self) -> &[S] {
        self
    }
    fn values_mut(&mut self) -> &mut [S] {
        self
    }
}

impl<S: Real, D: Dimension> Contiguous for Array<S, D> {
    fn is_contiguous(&self) -> bool {
        self.is_standard_layout()
    }
    fn values(&self) -> &[S] {
        self.as_slice()
            .expect("a standard-layout array (checked when the term validated the state)")
    }
    fn values_mut(&mut self) -> &mut [S] {
        self.as_slice_mut()
            .expect("a standard-layout array (checked when the term validated the state)")
    }
}
