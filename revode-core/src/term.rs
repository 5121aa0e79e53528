//! Terms: a vector field and a control increment, kept apart as in Diffrax.
//!
//! A [`Term`] describes `dy = f(t, y)·dc` through three verbs:
//! - [`Term::vf`]: the field value `V = f(t, y)`, a value the term owns (a vector for an ODE or
//!   diagonal noise, a `d × m` matrix for general noise, a `hidden × channels` matrix for a CDE);
//! - [`Term::contr`]: the control increment `c` over `[t_a, t_b]` (`dt` for an ODE,
//!   `X(t_b) − X(t_a)` for a CDE, `(dt, W(t_b) − W(t_a))` for an SDE);
//! - [`Term::prod`]: the product `V·c`, linear in both.
//!
//! [`Term::vf_prod`] composes them; a term may fuse it when that is faster. Keeping `vf` apart
//! lets a scheme reuse one field value under a new control: reversible Heun evaluates the field
//! once per step ([`crate::ReversibleHeun`]). Steps may run backwards (`t_b < t_a`); the control
//! is then the exactly negated increment.
//!
//! Pullbacks: with `ȳ` the cotangent of `V·c`, the cotangent of `V` is `V̄ = (∂(V·c)/∂V)ᵀ ȳ`
//! ([`Term::prod_vjp`], e.g. `ȳ cᵀ` for a matrix field) and [`Term::vf_vjp`] pulls `V̄` back to
//! `y` and θ through the cached evaluation.
//!
//! Scratch space is a per-solve [`Workspace`] that the integration loop creates once and passes
//! in; terms need no interior mutability.

use crate::{State, VectorField};

/// Scalar type of a term's state.
pub type ScalarOfTerm<T> = <<T as Term>::State as State>::Scalar;

/// Where a traced evaluation happened: its time, the step's control and what it kept.
pub struct Traced<'a, T: Term + ?Sized> {
    /// The stage time.
    pub t: f64,
    /// The control increment of the step.
    pub control: &'a T::Control,
    /// What [`Term::vf`] kept.
    pub cache: &'a T::Cache,
}

/// A term's per-solve work space: a field value, a field cotangent and the term's own scratch.
pub struct Workspace<T: Term + ?Sized> {
    /// A field value buffer.
    pub field: T::Field,
    /// A field cotangent buffer.
    pub field_bar: T::Field,
    /// The term's own scratch.
    pub scratch: T::Scratch,
}

impl<T: Term> Workspace<T> {
    /// Work space for states like `like`.
    pub fn new(term: &T, like: &T::State) -> Self {
        Workspace {
            field: term.new_field(like),
            field_bar: term.new_field(like),
            scratch: term.new_scratch(like),
        }
    }
}

use crate::Contiguous;
use std::marker::PhantomData;

/// A vector field times a control increment, with the pullbacks gradients need.
pub trait Term {
    /// The state the term acts on.
    type State: State;
    /// The control increment over one step (e.g. `dt`, a path increment).
    type Control: Clone;
    /// The value of the field at one point, on which [`Term::prod`] acts.
    type Field: State<Scalar = ScalarOfTerm<Self>>;
    /// What one traced evaluation keeps for its pullback (e.g. the stage input).
    type Cache: Clone;
    /// Accumulator for the parameter cotangent (e.g. a flat `Vec`, or a framework's gradients).
    type ParamGrad: crate::GradBuffer;
    /// The term's own work space (buffers its evaluations reuse); `()` when none.
    type Scratch;

    /// A control buffer to be filled by [`Term::contr`].
    fn new_control(&self) -> Self::Control;
    /// The control increment over `[t_a, t_b]` (any order of `t_a`, `t_b`).
    fn contr(&self, t_a: f64, t_b: f64, out: &mut Self::Control);
    /// A field-value buffer for states like `like`.
    fn new_field(&self, like: &Self::State) -> Self::Field;
    /// An empty cache shaped like `like`.
    fn new_cache(&self, like: &Self::State) -> Self::Cache;
    /// The term's scratch for states like `like`.
    fn new_scratch(&self, like: &Self::State) -> Self::Scratch;
    /// A zeroed parameter-cotangent accumulator.
    fn new_param_grad(&self) -> Self::ParamGrad;

    /// `v ← f(t, y)`. When `cache` is given, keep what [`Term::vf_vjp`] needs.
    fn vf(
        &self,
        t: f64,
        y: &Self::State,
        v: &mut Self::Field,
        cache: Option<&mut Self::Cache>,
        scratch: &mut Self::Scratch,
    );
    /// `out ← v·c`.
    fn prod(&self, v: &Self::Field, c: &Self::Control, out: &mut Self::State);
    /// `v_bar ← scale·(∂(v·c)/∂v)ᵀ cot` (overwrites; `v·c` is linear in `v`).
    fn prod_vjp(
        &self,
        c: &Self::Control,
        cot: &Self::State,
        scale: ScalarOfTerm<Self>,
        v_bar: &mut Self::Field,
    );
    /// Pullback of [`Term::vf`] at the cached point: `y_bar += Jᵀ v_bar`, `p_bar += J_θᵀ v_bar`.
    fn vf_vjp(
        &self,
        t: f64,
        cache: &Self::Cache,
        v_bar: &Self::Field,
        y_bar: &mut Self::State,
        p_bar: &mut Self::ParamGrad,
        scratch: &mut Self::Scratch,
    );

    /// `out ← f(t, y)·c` (default: [`Term::vf`] then [`Term::prod`]).
    fn vf_prod(
        &self,
        t: f64,
        y: &Self::State,
        c: &Self::Control,
        out: &mut Self::State,
        cache: Option<&mut Self::Cache>,
        ws: &mut Workspace<Self>,
    ) {
        self.vf(t, y, &mut ws.field, cache, &mut ws.scratch);
        self.prod(&ws.field, c, out);
    }
    /// Pullback of [`Term::vf_prod`] at a traced point: `y_bar += scale·Jᵀcot`,
    /// `p_bar += scale·J_θᵀcot` (default: [`Term::prod_vjp`] then [`Term::vf_vjp`]).
    fn vf_prod_vjp(
        &self,
        at: Traced<'_, Self>,
        cot: &Self::State,
        scale: ScalarOfTerm<Self>,
        y_bar: &mut Self::State,
        p_bar: &mut Self::ParamGrad,
        ws: &mut Workspace<Self>,
    ) {
        self.prod_vjp(at.control, cot, scale, &mut ws.field_bar);
        self.vf_vjp(at.t, at.cache, &ws.field_bar, y_bar, p_bar, &mut ws.scratch);
    }

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
    /// Number of field evaluations one [`Term::vf`] counts as (for statistics; an SDE's drift
    /// and diffusion count as 2).
    fn evals_per_call(&self) -> u64 {
        1
    }
}

/// An ODE term `f(t, y)·dt` over a user [`VectorField`], on any [`Contiguous`] state: `Vec`
/// (the default) or a standard-layout ndarray array ([`OdeTerm::with_state`]), whose entries
/// the field sees as one row-major slice.
pub struct OdeTerm<F: VectorField, St = Vec<<F as VectorField>::Scalar>> {
    /// The vector field.
    pub field: F,
    state: PhantomData<fn() -> St>,
}

impl<F: VectorField + Clone, St> Clone for OdeTerm<F, St> {
    fn clone(&self) -> Self {
        OdeTerm {
            field: self.field.clone(),
            state: PhantomData,
        }
    }
}

impl<F: VectorField + std::fmt::Debug, St> std::fmt::Debug for OdeTerm<F, St> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OdeTerm")
            .field("field", &self.field)
            .finish()
    }
}

impl<F: VectorField> OdeTerm<F> {
    /// Wraps a vector field, on `Vec` states.
    pub fn new(field: F) -> Self {
        OdeTerm {
            field,
            state: PhantomData,
        }
    }
}

impl<F: VectorField, St: Contiguous<Scalar = F::Scalar>> OdeTerm<F, St> {
    /// Wraps a vector field, on states of type `St` (e.g. `ndarray::Array2<f64>`).
    pub fn with_state(field: F) -> Self {
        OdeTerm {
            field,
            state: PhantomData,
        }
    }
}

impl<F: VectorField, St> OdeTerm<F, St> {
    fn eval(
        &self,
        t: f64,
        y: &[F::Scalar],
        out: &mut [F::Scalar],
        cache: Option<&mut Vec<F::Scalar>>,
    ) {
        match cache {
            Some(cache) => {
                let (head, extra) = cache.split_at_mut(y.len());
                head.copy_from_slice(y);
                self.field.eval_cached(t, y, out, extra);
            }
            None => self.field.eval(t, y, out),
        }
    }
}

impl<F: VectorField, St: Contiguous<Scalar = F::Scalar>> Term for OdeTerm<F, St> {
    type State = St;
    type Control = f64;
    type Field = St;
    type Cache = Vec<F::Scalar>;
    type ParamGrad = Vec<F::Scalar>;
    type Scratch = ();

    fn validate_state(&self, y: &Self::State) -> crate::Result<()> {
        if self.field.out_len() != self.field.dim() {
            return Err(crate::Error::config(
                "ODE field",
                format!(
                    "an ODE field maps {} values to as many; this one gives {}",
                    self.field.dim(),
                    self.field.out_len()
                ),
            ));
        }
        if y.len() != self.field.dim() {
            return Err(crate::Error::ShapeMismatch {
                what: "state vs vector field dimension".into(),
                expected: self.field.dim(),
                found: y.len(),
            });
        }
        if !y.is_contiguous() {
            return Err(crate::Error::config(
                "ODE state",
                "an array in standard (row-major) layout is needed; pass `array.as_standard_layout().into_owned()`",
            ));
        }
        Ok(())
    }
    fn new_control(&self) -> f64 {
        0.0
    }
    #[inline]
    fn contr(&self, t_a: f64, t_b: f64, out: &mut f64) {
        *out = t_b - t_a;
    }
    fn new_field(&self, like: &Self::State) -> Self::Field {
        like.zeros_like()
    }
    fn new_cache(&self, like: &Self::State) -> Self::Cache {
        vec![num_traits::Zero::zero(); like.len() + self.field.cache_len()]
    }
    fn new_scratch(&self, _like: &Self::State) {}
    fn new_param_grad(&self) -> Self::ParamGrad {
        vec![num_traits::Zero::zero(); self.field.params().len()]
    }
    #[inline]
    fn vf(
        &self,
        t: f64,
        y: &Self::State,
        v: &mut Self::Field,
        cache: Option<&mut Self::Cache>,
        _: &mut (),
    ) {
        self.eval(t, y.values(), v.values_mut(), cache);
    }
    #[inline]
    fn prod(&self, v: &Self::Field, c: &f64, out: &mut Self::State) {
        out.copy_from(v);
        out.scale(crate::Real::of(*c));
    }
    #[inline]
    fn prod_vjp(&self, c: &f64, cot: &Self::State, scale: F::Scalar, v_bar: &mut Self::Field) {
        v_bar.copy_from(cot);
        v_bar.scale(scale * <F::Scalar as crate::Real>::of(*c));
    }
    #[inline]
    fn vf_vjp(
        &self,
        t: f64,
        cache: &Self::Cache,
        v_bar: &Self::Field,
        y_bar: &mut Self::State,
        p_bar: &mut Self::ParamGrad,
        _: &mut (),
    ) {
        let (y, extra) = cache.split_at(v_bar.len());
        let one = num_traits::One::one();
        let (v_bar, y_bar) = (v_bar.values(), y_bar.values_mut());
        self.field.vjp_cached(t, y, extra, v_bar, one, y_bar, p_bar);
    }
    /// Fused: the field is written into `out` and scaled by `dt` in place.
    #[inline]
    fn vf_prod(
        &self,
        t: f64,
        y: &Self::State,
        c: &f64,
        out: &mut Self::State,
        cache: Option<&mut Self::Cache>,
        _: &mut Workspace<Self>,
    ) {
        self.eval(t, y.values(), out.values_mut(), cache);
        out.scale(crate::Real::of(*c));
    }
    /// Fused: `dt` is folded into the pullback's scale.
    #[inline]
    fn vf_prod_vjp(
        &self,
        at: Traced<'_, Self>,
        cot: &Self::State,
        scale: F::Scalar,
        y_bar: &mut Self::State,
        p_bar: &mut Self::ParamGrad,
        _: &mut Workspace<Self>,
    ) {
        let s = scale * <F::Scalar as crate::Real>::of(*at.control);
        let (y, extra) = at.cache.split_at(cot.len());
        let (cot, y_bar) = (cot.values(), y_bar.values_mut());
        self.field.vjp_cached(at.t, y, extra, cot, s, y_bar, p_bar);
    }
}
