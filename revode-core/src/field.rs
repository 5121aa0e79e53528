//! User vector fields on CPU slices, with hand-written pullbacks.

use crate::Real;

/// A vector field `f_θ(t, y)` on `ℝⁿ` with parameters θ exposed as a flat slice.
///
/// Implement this for an analytic right-hand side; wrap it in [`crate::OdeTerm`] to solve it.
pub trait VectorField {
    /// Scalar type (`f64` or `f32`).
    type Scalar: Real;
    /// State dimension n.
    fn dim(&self) -> usize;
    /// Length of `f(t, y)`: `dim()` for a vector field (the default); a network with other
    /// outputs (a matrix-valued field, a readout) says so, and [`crate::OdeTerm`] refuses it.
    fn out_len(&self) -> usize {
        self.dim()
    }
    /// The parameters θ as one flat slice (empty when there are none).
    fn params(&self) -> &[Self::Scalar];
    /// Mutable access to the parameters, in the same layout as [`VectorField::params`].
    fn params_mut(&mut self) -> &mut [Self::Scalar];
    /// `out ← f(t, y)`.
    fn eval(&self, t: f64, y: &[Self::Scalar], out: &mut [Self::Scalar]);
    /// Pullback: `y_bar += scale·(∂f/∂y)ᵀ cot` and `p_bar += scale·(∂f/∂θ)ᵀ cot`.
    #[allow(clippy::too_many_arguments)]
    fn vjp(
        &self,
        t: f64,
        y: &[Self::Scalar],
        cot: &[Self::Scalar],
        scale: Self::Scalar,
        y_bar: &mut [Self::Scalar],
        p_bar: &mut [Self::Scalar],
    );

    /// Scalars a traced evaluation may keep for its pullback (e.g. hidden activations).
    fn cache_len(&self) -> usize {
        0
    }
    /// `out ← f(t, y)`, also filling `cache` (length [`VectorField::cache_len`]).
    fn eval_cached(
        &self,
        t: f64,
        y: &[Self::Scalar],
        out: &mut [Self::Scalar],
        cache: &mut [Self::Scalar],
    ) {
        let _ = cache;
        self.eval(t, y, out);
    }
    /// [`VectorField::vjp`] reusing what [`VectorField::eval_cached`] kept.
    #[allow(clippy::too_many_arguments)]
    fn vjp_cached(
        &self,
        t: f64,
        y: &[Self::Scalar],
        cache: &[Self::Scalar],
        cot: &[Self::Scalar],
        scale: Self::Scalar,
        y_bar: &mut [Self::Scalar],
        p_bar: &mut [Self::Scalar],
    ) {
        let _ = cache;
        self.vjp(t, y, cot, scale, y_bar, p_bar);
    }
}

/// An uncached pullback for fields whose pullback is written against their cache: a traced
/// evaluation into a fresh cache, then [`VectorField::vjp_cached`]. For
/// [`VectorField::vjp`] implementations (the integration loop itself always caches).
pub fn vjp_through_cache<V: VectorField + ?Sized>(
    field: &V,
    t: f64,
    y: &[V::Scalar],
    cot: &[V::Scalar],
    s: V::Scalar,
    y_bar: &mut [V::Scalar],
    p_bar: &mut [V::Scalar],
) {
    let mut cache = vec![V::Scalar::of(0.0); field.cache_len()];
    let mut out = vec![V::Scalar::of(0.0); y.len()];
    field.eval_cached(t, y, &mut out, &mut cache);
    field.vjp_cached(t, y, &cache, cot, s, y_bar, p_bar);
}
