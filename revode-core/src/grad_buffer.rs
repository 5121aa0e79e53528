//! Parameter-cotangent accumulators that can be checked for NaN and ±∞.

use crate::Real;

/// A parameter-cotangent accumulator (a term's `ParamGrad`): every gradient method checks it
/// before returning, so an `Ok` gradient is finite.
pub trait GradBuffer {
    /// Index of the first NaN or ±∞ entry, in the buffer's flat order; `None` when finite.
    fn first_non_finite(&self) -> Option<usize>;
    /// Number of entries in that flat order.
    fn flat_len(&self) -> usize;
}

impl<S: Real> GradBuffer for Vec<S> {
    fn first_non_finite(&self) -> Option<usize> {
        self.iter().position(|v| !v.is_finite())
    }
    fn flat_len(&self) -> usize {
        self.len()
    }
}
