//! The vector-space operations the solvers need, for CPU vectors and pairs of states.

use crate::Real;

/// A solver state: a vector in a real vector space, updated in place.
///
/// Every operation works on preallocated storage; none allocates except [`State::zeros_like`]
/// and `clone`, which the solvers call only while setting up workspaces.
pub trait State: Clone {
    /// The scalar type of the entries.
    type Scalar: Real;
    /// A new state of the same shape, filled with zeros.
    fn zeros_like(&self) -> Self;
    /// Number of scalar entries.
    fn len(&self) -> usize;
    /// True when the state has no entries.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// `self ← other` (same shape).
    fn copy_from(&mut self, other: &Self);
    /// `self ← 0`.
    fn set_zero(&mut self);
    /// `self ← self + a·x`.
    fn axpy(&mut self, a: Self::Scalar, x: &Self);
    /// `self ← a·self`.
    fn scale(&mut self, a: Self::Scalar);
    /// `self ← a·self + b·x`.
    fn scale_add(&mut self, a: Self::Scalar, b: Self::Scalar, x: &Self);
    /// `self ← a·x + b·y`.
    fn lin_comb(&mut self, a: Self::Scalar, x: &Self, b: Self::Scalar, y: &Self);
    /// Euclidean inner product.
    fn dot(&self, other: &Self) -> Self::Scalar;
    /// True when every entry is finite.
    fn all_finite(&self) -> bool;
    /// Largest absolute entry (0 for an empty state).
    /// (NaN when any entry is NaN: an overflowed state must never read as small.)
    fn max_abs(&self) -> Self::Scalar;
    /// Largest absolute entrywise difference to `other` (NaN when any difference is NaN).
    fn max_abs_diff(&self, other: &Self) -> Self::Scalar;
    /// Scaled RMS norm of an error estimate `self`:
    /// `sqrt(mean((e_i / (atol + rtol·max(|a_i|, |b_i|)))²))`.
    fn scaled_rms(&self, a: &Self, b: &Self, atol: f64, rtol: f64) -> f64;
    /// Scaled max norm of an error estimate `self`:
    /// `max_i |e_i| / (atol + rtol·max(|a_i|, |b_i|))` (0 for an empty state; NaN when any
    /// ratio is NaN).
    fn scaled_max(&self, a: &Self, b: &Self, atol: f64, rtol: f64) -> f64;
    /// Copies the entries out as `f64`, in a fixed order (diagnostics, tests, I/O).
    fn to_f64_vec(&self) -> Vec<f64>;
    /// Overwrites the entries from `f64` values in the order of [`State::to_f64_vec`].
    /// Returns false (and leaves the state unchanged) when the length differs.
    fn set_from_f64(&mut self, values: &[f64]) -> bool;
    /// `self ← self ⊙ x`, entry by entry (same shape): diagonal noise `σ ⊙ dW`. The default
    /// goes through [`State::to_f64_vec`]; the crate's states override it in place (on the
    /// device for dfdx batches).
    fn mul_elementwise(&mut self, x: &Self) {
        let a = self.to_f64_vec();
        let prod: Vec<f64> = a.iter().zip(x.to_f64_vec()).map(|(a, b)| a * b).collect();
        self.set_from_f64(&prod);
    }
}

impl<S: Real> State for Vec<S> {
    type Scalar = S;
    fn zeros_like(&self) -> Self {
        vec![S::zero(); self.len()]
    }
    #[inline]
    fn len(&self) -> usize {
        Vec::len(self)
    }
    #[inline]
    fn copy_from(&mut self, other: &Self) {
        self.copy_from_slice(other);
    }
    #[inline]
    fn set_zero(&mut self) {
        self.iter_mut().for_each(|v| *v = S::zero());
    }
    #[inline]
    fn axpy(&mut self, a: S, x: &Self) {
        for (s, &x) in self.iter_mut().zip(x) {
            *s += a * x;
        }
    }
    #[inline]
    fn scale(&mut self, a: S) {
        self.iter_mut().for_each(|v| *v = *v * a);
    }
    #[inline]
    fn scale_add(&mut self, a: S, b: S, x: &Self) {
        for (s, &x) in self.iter_mut().zip(x) {
            *s = a * *s + b * x;
        }
    }
    #[inline]
    fn lin_comb(&mut self, a: S, x: &Self, b: S, y: &Self) {
        for ((s, &x), &y) in self.iter_mut().zip(x).zip(y) {
            *s = a * x + b * y;
        }
    }
    #[inline]
    fn dot(&self, other: &Self) -> S {
        self.iter().zip(other).map(|(&a, &b)| a * b).sum()
    }
    fn all_finite(&self) -> bool {
        self.iter().all(|v| v.is_finite())
    }
    fn max_abs(&self) -> S {
        self.iter().fold(S::zero(), |m, v| nan_max(m, v.abs()))
    }
    fn max_abs_diff(&self, other: &Self) -> S {
        self.iter()
            .zip(other)
            .fold(S::zero(), |m, (a, b)| nan_max(m, (*a - *b).abs()))
    }
    fn scaled_rms(&self, a: &Self, b: &Self, atol: f64, rtol: f64) -> f64 {
        if self.is_empty() {
            return 0.0;
        }
        let sum: f64 = self
            .iter()
            .zip(a)
            .zip(b)
            .map(|((e, a), b)| {
                let scale = atol + rtol * a.abs().max(b.abs()).as_f64();
                let r = e.as_f64() / scale;
                r * r
            })
            .sum();
        (sum / self.len() as f64).sqrt()
    }
    fn scaled_max(&self, a: &Self, b: &Self, atol: f64, rtol: f64) -> f64 {
        self.iter().zip(a).zip(b).fold(0.0, |m, ((e, a), b)| {
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
        for (s, &v) in self.iter_mut().zip(values) {
            *s = S::of(v);
        }
        true
    }
    fn mul_elementwise(&mut self, x: &Self) {
        self.iter_mut().zip(x).for_each(|(a, &b)| *a = *a * b);
    }
}

/// Two states carried together: the reversible coupling's `(y, z)`.
///
/// Implements [`State`] componentwise, so gradient methods treat it like any other state.
#[derive(Clone, Debug, PartialEq)]
pub struct Pair<V> {
    /// The output state y.
    pub y: V,
    /// The auxiliary state z.
    pub z: V,
}

impl<V: State> State for Pair<V> {
    type Scalar = V::Scalar;
    fn zeros_like(&self) -> Self {
        Pair {
            y: self.y.zeros_like(),
            z: self.z.zeros_like(),
        }
    }
    fn len(&self) -> usize {
        self.y.len() + self.z.len()
    }
    fn copy_from(&mut self, o: &Self) {
        self.y.copy_from(&o.y);
        self.z.copy_from(&o.z);
    }
    fn set_zero(&mut self) {
        self.y.set_zero();
        self.z.set_zero();
    }
    fn axpy(&mut self, a: Self::Scalar, x: &Self) {
        self.y.axpy(a, &x.y);
        self.z.axpy(a, &x.z);
    }
    fn scale(&mut self, a: Self::Scalar) {
        self.y.scale(a);
        self.z.scale(a);
    }
    fn scale_add(&mut self, a: Self::Scalar, b: Self::Scalar, x: &Self) {
        self.y.scale_add(a, b, &x.y);
        self.z.scale_add(a, b, &x.z);
    }
    fn lin_comb(&mut self, a: Self::Scalar, x: &Self, b: Self::Scalar, y: &Self) {
        self.y.lin_comb(a, &x.y, b, &y.y);
        self.z.lin_comb(a, &x.z, b, &y.z);
    }
    fn dot(&self, o: &Self) -> Self::Scalar {
        self.y.dot(&o.y) + self.z.dot(&o.z)
    }
    fn all_finite(&self) -> bool {
        self.y.all_finite() && self.z.all_finite()
    }
    fn max_abs(&self) -> Self::Scalar {
        nan_max(self.y.max_abs(), self.z.max_abs())
    }
    fn max_abs_diff(&self, o: &Self) -> Self::Scalar {
        nan_max(self.y.max_abs_diff(&o.y), self.z.max_abs_diff(&o.z))
    }
    fn scaled_rms(&self, a: &Self, b: &Self, atol: f64, rtol: f64) -> f64 {
        let (ny, nz) = (self.y.len() as f64, self.z.len() as f64);
        let ey = self.y.scaled_rms(&a.y, &b.y, atol, rtol);
        let ez = self.z.scaled_rms(&a.z, &b.z, atol, rtol);
        ((ey * ey * ny + ez * ez * nz) / (ny + nz).max(1.0)).sqrt()
    }
    fn scaled_max(&self, a: &Self, b: &Self, atol: f64, rtol: f64) -> f64 {
        nan_max(
            self.y.scaled_max(&a.y, &b.y, atol, rtol),
            self.z.scaled_max(&a.z, &b.z, atol, rtol),
        )
    }
    fn to_f64_vec(&self) -> Vec<f64> {
        let mut v = self.y.to_f64_vec();
        v.extend(self.z.to_f64_vec());
        v
    }
    fn set_from_f64(&mut self, values: &[f64]) -> bool {
        if values.len() != self.len() {
            return false;
        }
        let (a, b) = values.split_at(self.y.len());
        self.y.set_from_f64(a) && self.z.set_from_f64(b)
    }
    fn mul_elementwise(&mut self, x: &Self) {
        self.y.mul_elementwise(&x.y);
        self.z.mul_elementwise(&x.z);
    }
}

/// `max` that propagates NaN (`f64::max` drops it).
#[inline]
pub(crate) fn nan_max<S: crate::Real>(a: S, b: S) -> S {
    if a.is_nan() || b.is_nan() {
        S::nan()
    } else {
        a.max(b)
    }
}
