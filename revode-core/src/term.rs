//! Terms: a vector field times a control increment (DESIGN.md "One idea, one loop").
//!
//! A [`Term`] answers `vf_prod(t, y, c)`: the vector field at `(t, y)` applied to the control
//! increment `c` over a step `[t_a, t_b]`. For an ODE the control is `dt = t_b − t_a` and
//! `vf_prod = f(t, y)·dt`; a CDE uses `X(t_b) − X(t_a)`; an SDE uses `(dt, W(t_b) − W(t_a))`.
//! Steps may run backwards (`t_b < t_a`); the control is then the reversed increment.

use crate::{State, VectorField};

/// A vector field times a control increment, with the pullback needed for gradients.
pub trait Term: Sync {
    /// The state the term acts on.
    type State: State;
    /// The control increment over one step (e.g. `dt`, a path increment).
    type Control: Clone + Send + Sync;
    /// What one traced evaluation keeps for its pullback (e.g. the stage input).
    type Cache: Clone + Send + Sync;
    /// Accumulator for the parameter cotangent (e.g. a flat `Vec`, or a framework's gradients).
    type ParamGrad: crate::GradBuffer + Send;

    /// A control buffer to be filled by [`Term::control`].
    fn new_control(&self) -> Self::Control;
    /// The control increment over `[t_a, t_b]` (any order of `t_a`, `t_b`).
    fn control(&self, t_a: f64, t_b: f64, out: &mut Self::Control);
    /// An empty cache shaped like `like`.
    fn new_cache(&self, like: &Self::State) -> Self::Cache;
    /// A zeroed parameter-cotangent accumulator.
    fn new_param_grad(&self) -> Self::ParamGrad;
    /// `out ← f(t, y)·c`. When `cache` is given, keep what [`Term::vjp`] needs.
    fn vf_prod(
        &self,
        t: f64,
        y: &Self::State,
        c: &Self::Control,
        out: &mut Self::State,
        cache: Option<&mut Self::Cache>,
    );
    /// Pullback of `vf_prod` at the cached point: `y_bar += scale·Jᵀcot`,
    /// `p_bar += scale·J_θᵀcot`.
    #[allow(clippy::too_many_arguments)]
    fn vjp(
        &self,
        t: f64,
        cache: &Self::Cache,
        c: &Self::Control,
        cot: &Self::State,
        scale: <Self::State as State>::Scalar,
        y_bar: &mut Self::State,
        p_bar: &mut Self::ParamGrad,
    );
    /// Checks that `y` has the shape the term expects (default: accept).
    fn validate_state(&self, y: &Self::State) -> crate::Result<()> {
        let _ = y;
        Ok(())
    }
    /// The time interval on which the term is defined (default: all of ℝ).
    fn domain(&self) -> (f64, f64) {
        (f64::NEG_INFINITY, f64::INFINITY)
    }
    /// What owns [`Term::domain`], for error messages (e.g. "the Brownian path").
    fn domain_owner(&self) -> String {
        "the term".into()
    }
    /// Refuses a fixed step `h` that the term knows to be unstable for `tableau` (coupled with
    /// `lambda` when reversible), e.g. past a PDE's explicit stability limit (default: accept).
    fn check_step(
        &self,
        h: f64,
        tableau: &crate::Tableau,
        lambda: Option<f64>,
    ) -> crate::Result<()> {
        let _ = (h, tableau, lambda);
        Ok(())
    }
    /// False for terms whose base steps must not run time backwards (e.g. Itô noise);
    /// reversible schemes and backsolve refuse them.
    fn time_reversible(&self) -> bool {
        true
    }
    /// Number of field evaluations one `vf_prod` counts as (for statistics).
    fn evals_per_call(&self) -> u64 {
        1
    }
}

/// An ODE term `f(t, y)·dt` over a user [`VectorField`] on CPU vectors.
#[derive(Clone, Debug)]
pub struct OdeTerm<F> {
    /// The vector field.
    pub field: F,
}

impl<F> OdeTerm<F> {
    /// Wraps a vector field.
    pub fn new(field: F) -> Self {
        OdeTerm { field }
    }
}

impl<F: VectorField> Term for OdeTerm<F> {
    type State = Vec<F::Scalar>;
    type Control = f64;
    type Cache = Vec<F::Scalar>;
    type ParamGrad = Vec<F::Scalar>;

    fn validate_state(&self, y: &Self::State) -> crate::Result<()> {
        if y.len() != self.field.dim() {
            return Err(crate::Error::ShapeMismatch {
                what: "state vs vector field dimension".into(),
                expected: self.field.dim(),
                found: y.len(),
            });
        }
        Ok(())
    }
    fn new_control(&self) -> f64 {
        0.0
    }
    #[inline]
    fn control(&self, t_a: f64, t_b: f64, out: &mut f64) {
        *out = t_b - t_a;
    }
    fn new_cache(&self, like: &Self::State) -> Self::Cache {
        vec![num_traits::Zero::zero(); like.len() + self.field.cache_len()]
    }
    fn new_param_grad(&self) -> Self::ParamGrad {
        vec![num_traits::Zero::zero(); self.field.params().len()]
    }
    #[inline]
    fn vf_prod(
        &self,
        t: f64,
        y: &Self::State,
        c: &f64,
        out: &mut Self::State,
        cache: Option<&mut Self::Cache>,
    ) {
        match cache {
            Some(cache) => {
                let (head, extra) = cache.split_at_mut(y.len());
                head.copy_from_slice(y);
                self.field.eval_cached(t, y, out, extra);
            }
            None => self.field.eval(t, y, out),
        }
        out.scale(crate::Real::of(*c));
    }
    #[inline]
    fn vjp(
        &self,
        t: f64,
        cache: &Self::Cache,
        c: &f64,
        cot: &Self::State,
        scale: F::Scalar,
        y_bar: &mut Self::State,
        p_bar: &mut Self::ParamGrad,
    ) {
        let s = scale * <F::Scalar as crate::Real>::of(*c);
        let (y, extra) = cache.split_at(cot.len());
        self.field.vjp_cached(t, y, extra, cot, s, y_bar, p_bar);
    }
}
