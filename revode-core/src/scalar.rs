//! The floating-point scalar types revode computes in.

use num_traits::Float;
use std::fmt::{Debug, Display};
use std::iter::Sum;

/// A real floating-point scalar: `f64` (the default) or `f32`.
///
/// Times are always `f64`; coefficients are converted to the state's scalar where they meet it.
pub trait Real:
    Float
    + Default
    + Debug
    + Display
    + Sum
    + Send
    + Sync
    + std::ops::AddAssign
    + std::ops::SubAssign
    + sealed::Sealed
    + 'static
{
    /// tanh at this precision's speed: revode's f64 tanh (a few ulp), or a branch-free f32
    /// version that vectorises (≈ 1e-7 absolute error).
    fn fast_tanh(self) -> Self;
    /// Converts from `f64` (rounding for `f32`).
    fn of(x: f64) -> Self;
    /// Converts to `f64` exactly.
    fn as_f64(self) -> f64;
    /// Machine epsilon as `f64`.
    const EPS: f64;
}

mod sealed {
    /// Only `f32` and `f64` are scalars (the batched kernels reinterpret plain buffers).
    pub trait Sealed {}
    impl Sealed for f32 {}
    impl Sealed for f64 {}
}

impl Real for f64 {
    #[inline(always)]
    fn fast_tanh(self) -> Self {
        crate::activation::tanh(self)
    }
    #[inline(always)]
    fn of(x: f64) -> Self {
        x
    }
    #[inline(always)]
    fn as_f64(self) -> f64 {
        self
    }
    const EPS: f64 = f64::EPSILON;
}

impl Real for f32 {
    #[inline(always)]
    fn fast_tanh(self) -> Self {
        crate::activation::tanh_f32(self)
    }
    #[inline(always)]
    fn of(x: f64) -> Self {
        x as f32
    }
    #[inline(always)]
    fn as_f64(self) -> f64 {
        self as f64
    }
    const EPS: f64 = f32::EPSILON as f64;
}
