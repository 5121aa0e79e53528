//! [`PdeTerm`]: a method-of-lines field as a core [`Term`] that refuses what it knows to be
//! wrong — a fixed step beyond the explicit stability limit, or unphysical parameters.
//!
//! Wrapped in a plain [`OdeTerm`] a PDE field solves whatever step it is given: past the
//! limit the answer is garbage returned as `Ok` (heat on 256 periodic cells, ν = 1, classical
//! RK4 over 200 × the limit: max |u| = 1.6e54 at 1.2 × the limit, 5.8e138 at 3 ×, for
//! max |u0| ≈ 1). A `PdeTerm` is the same term (same control, caches and pullbacks, so every scheme
//! and gradient method gives the same numbers) with two checks the core runs before every
//! solve and gradient: [`Term::check_step`] (`h ≤` [`max_step`]`(pde, tableau, λ)`, else
//! [`Error::InvalidStepSize`] with the limit and the step numbers) and
//! [`Term::validate_state`] (the shape, then [`Pde::check_params`]).
//!
//! [`Error::InvalidStepSize`]: revode_core::Error::InvalidStepSize

use crate::limit_cache::cached_max_step;
use crate::Pde;
use revode_core::{term::Traced, term::Workspace, Error, OdeTerm, Result, State, Tableau, Term};

/// A [`Pde`] as a core term: [`OdeTerm`]'s `f(t, u)·dt`, plus the refusal of fixed steps past
/// the explicit stability limit and of invalid physical parameters (see the module docs).
#[derive(Clone, Debug)]
pub struct PdeTerm<P: Pde> {
    ode: OdeTerm<P>,
}

impl<P: Pde> PdeTerm<P> {
    /// Wraps a PDE right-hand side.
    pub fn new(pde: P) -> Self {
        PdeTerm {
            ode: OdeTerm::new(pde),
        }
    }
    /// The PDE.
    pub fn pde(&self) -> &P {
        &self.ode.field
    }
    /// The PDE, mutably (e.g. its parameters through `params_mut`; checked at the next solve).
    pub fn pde_mut(&mut self) -> &mut P {
        &mut self.ode.field
    }
    /// The PDE, unwrapped.
    pub fn into_inner(self) -> P {
        self.ode.field
    }
}

/// `Err(InvalidStepSize)` when `h` exceeds the stability `limit` of `pde` with `tableau`
/// (coupled with `lambda`), naming the limit and the step numbers at `h` and at the limit.
pub(crate) fn refuse_beyond<P: Pde>(
    pde: &P,
    tableau: &Tableau,
    lambda: Option<f64>,
    h: f64,
    limit: f64,
) -> Result<()> {
    if !(h > 0.0 && h.is_finite()) {
        return Err(Error::InvalidStepSize {
            h,
            reason: "must be positive and finite".into(),
        });
    }
    if h > limit {
        return Err(Error::InvalidStepSize {
            h,
            reason: format!(
                "exceeds the explicit stability limit h ≤ {limit:.4e} of {}{} on this grid \
                 ({}; at the limit: {})",
                tableau.name(),
                lambda
                    .map(|l| format!(" coupled with λ = {l}"))
                    .unwrap_or_default(),
                pde.step_numbers(h),
                pde.step_numbers(limit)
            ),
        });
    }
    Ok(())
}

impl<P: Pde> Term for PdeTerm<P> {
    type State = Vec<f64>;
    type Control = f64;
    type Field = Vec<f64>;
    type Cache = Vec<f64>;
    type ParamGrad = Vec<f64>;
    type Scratch = ();

    fn new_control(&self) -> f64 {
        self.ode.new_control()
    }
    #[inline]
    fn contr(&self, t_a: f64, t_b: f64, out: &mut f64) {
        self.ode.contr(t_a, t_b, out)
    }
    fn new_field(&self, like: &Vec<f64>) -> Vec<f64> {
        self.ode.new_field(like)
    }
    fn new_cache(&self, like: &Vec<f64>) -> Vec<f64> {
        self.ode.new_cache(like)
    }
    fn new_scratch(&self, _like: &Vec<f64>) {}
    fn new_param_grad(&self) -> Vec<f64> {
        self.ode.new_param_grad()
    }
    #[inline]
    fn vf(&self, t: f64, y: &Vec<f64>, v: &mut Vec<f64>, cache: Option<&mut Vec<f64>>, _: &mut ()) {
        self.ode.vf(t, y, v, cache, &mut ())
    }
    #[inline]
    fn prod(&self, v: &Vec<f64>, c: &f64, out: &mut Vec<f64>) {
        self.ode.prod(v, c, out)
    }
    #[inline]
    fn prod_vjp(&self, c: &f64, cot: &Vec<f64>, scale: f64, v_bar: &mut Vec<f64>) {
        self.ode.prod_vjp(c, cot, scale, v_bar)
    }
    #[inline]
    fn vf_vjp(
        &self,
        t: f64,
        cache: &Vec<f64>,
        v_bar: &Vec<f64>,
        y_bar: &mut Vec<f64>,
        p_bar: &mut Vec<f64>,
        _: &mut (),
    ) {
        self.ode.vf_vjp(t, cache, v_bar, y_bar, p_bar, &mut ())
    }
    /// Fused as [`OdeTerm`]'s: the field scaled by `dt` in place.
    #[inline]
    fn vf_prod(
        &self,
        t: f64,
        y: &Vec<f64>,
        c: &f64,
        out: &mut Vec<f64>,
        cache: Option<&mut Vec<f64>>,
        _: &mut Workspace<Self>,
    ) {
        self.ode.vf(t, y, out, cache, &mut ());
        out.scale(*c);
    }
    /// Fused as [`OdeTerm`]'s: `dt` folded into the pullback's scale.
    #[inline]
    fn vf_prod_vjp(
        &self,
        at: Traced<'_, Self>,
        cot: &Vec<f64>,
        scale: <Vec<f64> as State>::Scalar,
        y_bar: &mut Vec<f64>,
        p_bar: &mut Vec<f64>,
        _: &mut Workspace<Self>,
    ) {
        let (y, extra) = at.cache.split_at(cot.len());
        let s = scale * *at.control;
        self.ode
            .field
            .vjp_cached(at.t, y, extra, cot, s, y_bar, p_bar);
    }
    /// The shape (batch × grid), then the physical parameters ([`Pde::check_params`]).
    fn validate_state(&self, y: &Vec<f64>) -> Result<()> {
        self.ode.validate_state(y)?;
        self.pde().check_params()
    }
    fn domain(&self) -> (f64, f64) {
        self.ode.domain()
    }
    fn domain_owner(&self) -> String {
        self.ode.domain_owner()
    }
    /// Refuses `h` beyond [`max_step`]`(pde, tableau, λ)` with [`Error::InvalidStepSize`].
    fn check_step(&self, h: f64, tableau: &Tableau, lambda: Option<f64>) -> Result<()> {
        let limit = cached_max_step(self.pde(), tableau, lambda)?;
        refuse_beyond(self.pde(), tableau, lambda, h, limit)
    }
    fn time_reversible(&self) -> bool {
        self.ode.time_reversible()
    }
    fn evals_per_call(&self) -> u64 {
        self.ode.evals_per_call()
    }
}
