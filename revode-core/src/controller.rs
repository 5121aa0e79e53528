//! The adaptive step-size controller: a PID rule on the embedded error estimate, as a value
//! with public fields, and its presets (I, PI, Diffrax's `PIDController` defaults).
//!
//! # The rule
//!
//! Step n from t_n with size h_n produces the error estimate `e` of the base method
//! (METHOD.md §4: for the reversible coupling, of the backward step at y_{n+1}). Its scaled
//! norm is
//!
//! ```text
//! ε_n = ‖ e_i / (atol + rtol · max(|y_{n,i}|, |y_{n+1,i}|)) ‖      (RMS or max over i)
//! ```
//!
//! The step is accepted iff `ε_n < 1` ([`Adaptive::strict`]) or `ε_n ≤ 1`. With `k` the error
//! order ([`ErrorOrder`]) and ε_{n−1}, ε_{n−2} the norms of the two previous *accepted* steps
//! (1 before there are any), the raw factor is Diffrax's PID rule
//!
//! ```text
//! factor = safety · ε_n^{−β₁} · ε_{n−1}^{−β₂} · ε_{n−2}^{−β₃},
//! β₁ = (icoeff + pcoeff + dcoeff)/k,   β₂ = −(pcoeff + 2·dcoeff)/k,   β₃ = dcoeff/k,
//! ```
//!
//! so `pcoeff`, `icoeff`, `dcoeff` mean exactly what they mean in Diffrax's
//! `PIDController`. After an accepted step, ε_n is first raised to [`Adaptive::error_floor`],
//! the factor is clipped to `[factor_min, factor_max]`, and the next step is
//! `min(h_n · factor, h_max)`. After a rejected step the factor is the same rule (or, with
//! [`Adaptive::integral_on_reject`], the history-free `safety · ε_n^{−1/k}`) clipped to
//! `[reject_factor_min, reject_factor_max]`, and the step is retried with `h_n · factor`; a
//! non-finite error or state gives `reject_factor_min`. A step size below `h_min` is
//! [`crate::Error::StepSizeUnderflow`]. An accepted error of exactly 0 is remembered as 1
//! (as Diffrax does), so a zero never poisons the history.
//!
//! Where revode differs from Diffrax: a non-finite error or state is a rejection with
//! `reject_factor_min` (as Diffrax for an infinite error; its rule has no case for a NaN
//! one); `h_min` is an error
//! (Diffrax's `force_dtmin=False`; its default `force_dtmin=True`, which accepts steps at
//! `dtmin`, is not implemented); with `h0 = None` revode starts with 1 % of the first
//! observation interval, not Hairer's initial-step estimate.

use crate::{Error, Result};
use serde::{Deserialize, Serialize};

/// The norm taken over the entries of the scaled error.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum ErrorNorm {
    /// Root mean square `sqrt(mean(r_i²))` (Diffrax's default `rms_norm`).
    #[default]
    Rms,
    /// Largest absolute entry `max |r_i|`.
    Max,
}

/// The order `k` that the controller's exponents divide by.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub enum ErrorOrder {
    /// `q + 1` with `q` the embedded method's order: the local order of the error estimate
    /// (for a map without a tableau, `max(p − 1, 1) + 1` with `p` the map's order).
    #[default]
    Embedded,
    /// The base method's order `p`, Diffrax's choice for ODEs (`error_order = solver.order`).
    /// Equal to [`ErrorOrder::Embedded`] for every built-in pair, whose embedded order is p − 1.
    Method,
    /// A given `k > 0` (Diffrax's `PIDController(error_order=k)`).
    Value(f64),
}

/// Settings of the adaptive step-size controller (the rule is in the [module docs](self)).
///
/// Build one with a preset — [`Adaptive::pi`] (= [`Adaptive::new`]), [`Adaptive::integral`],
/// [`Adaptive::diffrax`] — and change any field. [`crate::solve`] checks every field
/// ([`Adaptive::validate`]) and returns a typed error for a bad one.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Adaptive {
    /// Relative tolerance.
    pub rtol: f64,
    /// Absolute tolerance.
    pub atol: f64,
    /// Initial step (Diffrax's `dt0`); `None`: 1 % of the first observation interval.
    pub h0: Option<f64>,
    /// Smallest allowed step; a smaller proposal is an error (Diffrax's `dtmin` with
    /// `force_dtmin=False`; 0 for no minimum, as Diffrax's default).
    pub h_min: f64,
    /// Largest allowed step (Diffrax's `dtmax`); `f64::INFINITY` for none.
    pub h_max: f64,
    /// Proportional coefficient (Diffrax's `pcoeff`).
    #[serde(default = "pi_pcoeff")]
    pub pcoeff: f64,
    /// Integral coefficient (Diffrax's `icoeff`).
    #[serde(default = "pi_icoeff")]
    pub icoeff: f64,
    /// Derivative coefficient (Diffrax's `dcoeff`).
    #[serde(default)]
    pub dcoeff: f64,
    /// Safety factor, in (0, 1].
    pub safety: f64,
    /// Smallest step-size factor after an accepted step.
    pub factor_min: f64,
    /// Largest step-size factor after an accepted step.
    pub factor_max: f64,
    /// Smallest step-size factor after a rejected step.
    #[serde(default = "pi_reject_min")]
    pub reject_factor_min: f64,
    /// Largest step-size factor after a rejected step (Diffrax: its `safety`, so change both
    /// together when porting a Diffrax controller with another safety factor).
    #[serde(default = "one")]
    pub reject_factor_max: f64,
    /// Accept iff ε < 1 (true, Diffrax) or ε ≤ 1 (false).
    #[serde(default)]
    pub strict: bool,
    /// After a rejected step, use `safety · ε^{−1/k}` (true) instead of the PID rule (false,
    /// Diffrax).
    #[serde(default = "yes")]
    pub integral_on_reject: bool,
    /// An accepted ε below this counts as this, in the factor and in the history (0: none, as
    /// Diffrax, where ε = 0 gives the largest factor).
    #[serde(default = "pi_floor")]
    pub error_floor: f64,
    /// After an accepted step shortened to land on an observation time, continue with the
    /// larger of the new proposal and the step before shortening (true); false: with the
    /// proposal alone, as Diffrax does after a step clipped to one of its `step_ts`.
    #[serde(default = "yes")]
    pub resume_after_clip: bool,
    /// Norm over the entries of the scaled error.
    #[serde(default)]
    pub norm: ErrorNorm,
    /// The order the exponents divide by.
    #[serde(default)]
    pub error_order: ErrorOrder,
}

fn pi_pcoeff() -> f64 {
    0.4
}
fn pi_icoeff() -> f64 {
    0.3
}
fn pi_reject_min() -> f64 {
    0.2
}
fn pi_floor() -> f64 {
    1e-10
}
fn one() -> f64 {
    1.0
}
fn yes() -> bool {
    true
}

impl Adaptive {
    /// The PI controller of METHOD.md §4 (Gustafsson's, Hairer–Wanner IV.2): `pcoeff = 0.4`,
    /// `icoeff = 0.3` (exponents 0.7/k and 0.4/k), safety 0.9, factor in [0.2, 10] after an
    /// accepted step and [0.2, 1] (pure integral rule) after a rejected one, accept iff ε ≤ 1,
    /// ε floored at 1e-10, RMS norm, k = embedded order + 1, `h_min = 1e-12`.
    pub fn new(rtol: f64, atol: f64) -> Self {
        Adaptive {
            rtol,
            atol,
            h0: None,
            h_min: 1e-12,
            h_max: f64::INFINITY,
            pcoeff: pi_pcoeff(),
            icoeff: pi_icoeff(),
            dcoeff: 0.0,
            safety: 0.9,
            factor_min: 0.2,
            factor_max: 10.0,
            reject_factor_min: 0.2,
            reject_factor_max: 1.0,
            strict: false,
            integral_on_reject: true,
            error_floor: pi_floor(),
            resume_after_clip: true,
            norm: ErrorNorm::Rms,
            error_order: ErrorOrder::Embedded,
        }
    }
    /// The PI controller; the same as [`Adaptive::new`].
    pub fn pi(rtol: f64, atol: f64) -> Self {
        Self::new(rtol, atol)
    }
    /// An I controller (`pcoeff = dcoeff = 0`, `icoeff = 1`: factor `safety · ε^{−1/k}`),
    /// otherwise as [`Adaptive::new`].
    pub fn integral(rtol: f64, atol: f64) -> Self {
        Adaptive {
            pcoeff: 0.0,
            icoeff: 1.0,
            ..Self::new(rtol, atol)
        }
    }
    /// Diffrax's `PIDController(rtol, atol)` with its defaults: pure integral, safety 0.9,
    /// factor in [1, 10] after an accepted step (never shrinks) and [0.2, 0.9] after a
    /// rejected one, accept iff ε < 1, RMS norm of `e / (atol + rtol·max(|y_n|, |y_{n+1}|))`,
    /// k = the base method's order, no `dtmin`/`dtmax`, no error floor.
    ///
    /// To reproduce a Diffrax run, pass its `dt0` with [`Adaptive::with_h0`] (Diffrax picks
    /// an initial step by Hairer's rule when `dt0=None`; revode does not) and give its
    /// `SaveAt(ts)` times as the observation times only if Diffrax also steps to them
    /// (`step_ts=ts`): revode always steps to observation times, Diffrax otherwise
    /// interpolates. Revode absorbs a last sliver shorter than 1e-9 of a step into the step
    /// before an observation time, Diffrax one shorter than 1e-10 (absolute) before `t1`.
    pub fn diffrax(rtol: f64, atol: f64) -> Self {
        Adaptive {
            rtol,
            atol,
            h0: None,
            h_min: 0.0,
            h_max: f64::INFINITY,
            pcoeff: 0.0,
            icoeff: 1.0,
            dcoeff: 0.0,
            safety: 0.9,
            factor_min: 1.0,
            factor_max: 10.0,
            reject_factor_min: 0.2,
            reject_factor_max: 0.9,
            strict: true,
            integral_on_reject: false,
            error_floor: 0.0,
            resume_after_clip: false,
            norm: ErrorNorm::Rms,
            error_order: ErrorOrder::Method,
        }
    }
    /// Sets the initial step.
    pub fn with_h0(mut self, h0: f64) -> Self {
        self.h0 = Some(h0);
        self
    }
    /// Sets the PID coefficients (Diffrax's `pcoeff`, `icoeff`, `dcoeff`).
    pub fn with_pid(mut self, pcoeff: f64, icoeff: f64, dcoeff: f64) -> Self {
        self.pcoeff = pcoeff;
        self.icoeff = icoeff;
        self.dcoeff = dcoeff;
        self
    }

    /// Checks every field; the error names the field and the rule it breaks.
    pub fn validate(&self) -> Result<()> {
        let finite = |v: f64| v.is_finite();
        if !(self.rtol >= 0.0 && self.atol >= 0.0 && finite(self.rtol) && finite(self.atol))
            || self.rtol + self.atol == 0.0
        {
            return Err(Error::config(
                "rtol/atol",
                format!(
                    "need non-negative finite tolerances, not both zero (rtol = {}, atol = {})",
                    self.rtol, self.atol
                ),
            ));
        }
        if let Some(h0) = self.h0 {
            if !(h0 > 0.0 && finite(h0)) {
                return Err(Error::InvalidStepSize {
                    h: h0,
                    reason: "initial step must be positive and finite".into(),
                });
            }
        }
        if !(self.h_min >= 0.0 && self.h_max > self.h_min && finite(self.h_min)) {
            return Err(Error::config(
                "h_min/h_max",
                format!(
                    "need 0 ≤ h_min < h_max (h_min = {}, h_max = {})",
                    self.h_min, self.h_max
                ),
            ));
        }
        let (p, i, d) = (self.pcoeff, self.icoeff, self.dcoeff);
        if !(finite(p) && finite(i) && finite(d) && i + p + d > 0.0) {
            return Err(Error::config(
                "pcoeff/icoeff/dcoeff",
                format!(
                    "need finite coefficients with icoeff + pcoeff + dcoeff > 0 (pcoeff = {p}, \
                     icoeff = {i}, dcoeff = {d})"
                ),
            ));
        }
        if !(self.safety > 0.0 && self.safety <= 1.0) {
            return Err(Error::config(
                "safety",
                format!("need 0 < safety ≤ 1 (safety = {})", self.safety),
            ));
        }
        if !(self.factor_min > 0.0
            && self.factor_min <= 1.0
            && self.factor_max >= 1.0
            && finite(self.factor_max))
        {
            return Err(Error::config(
                "factor_min/factor_max",
                format!(
                    "need 0 < factor_min ≤ 1 ≤ factor_max < ∞ after an accepted step \
                     (factor_min = {}, factor_max = {})",
                    self.factor_min, self.factor_max
                ),
            ));
        }
        if !(self.reject_factor_min > 0.0
            && self.reject_factor_min <= self.reject_factor_max
            && self.reject_factor_max <= 1.0)
        {
            return Err(Error::config(
                "reject_factor_min/reject_factor_max",
                format!(
                    "need 0 < reject_factor_min ≤ reject_factor_max ≤ 1 (a rejected step must \
                     not grow; got {}, {})",
                    self.reject_factor_min, self.reject_factor_max
                ),
            ));
        }
        if !(self.error_floor >= 0.0 && self.error_floor < 1.0) {
            return Err(Error::config(
                "error_floor",
                format!(
                    "need 0 ≤ error_floor < 1 (error_floor = {})",
                    self.error_floor
                ),
            ));
        }
        if let ErrorOrder::Value(k) = self.error_order {
            if !(k > 0.0 && finite(k)) {
                return Err(Error::config(
                    "error_order",
                    format!("need a positive finite error order (got {k})"),
                ));
            }
        }
        Ok(())
    }

    /// The order `k` for a base method of order `order` whose embedded method, if known, has
    /// order `embedded`.
    pub fn exponent_order(&self, order: u32, embedded: Option<u32>) -> f64 {
        match self.error_order {
            ErrorOrder::Embedded => embedded.unwrap_or(order.saturating_sub(1).max(1)) as f64 + 1.0,
            ErrorOrder::Method => order as f64,
            ErrorOrder::Value(k) => k,
        }
    }

    /// Whether a step with scaled error norm `e` is accepted.
    pub fn accepts(&self, e: f64) -> bool {
        if self.strict {
            e < 1.0
        } else {
            e <= 1.0
        }
    }

    /// A fresh controller history for error order `k`.
    pub(crate) fn start(&self, k: f64) -> History {
        History {
            k,
            beta1: (self.icoeff + self.pcoeff + self.dcoeff) / k,
            beta2: -(self.pcoeff + 2.0 * self.dcoeff) / k,
            beta3: self.dcoeff / k,
            e1: 1.0,
            e2: 1.0,
        }
    }

    fn raw(&self, st: &History, e: f64) -> f64 {
        self.safety * e.powf(-st.beta1) * st.e1.powf(-st.beta2) * st.e2.powf(-st.beta3)
    }

    /// The step-size factor after an accepted step with error `e`; updates the history.
    pub(crate) fn after_accept(&self, st: &mut History, e: f64) -> f64 {
        let e = e.max(self.error_floor);
        let factor = self.raw(st, e).clamp(self.factor_min, self.factor_max);
        st.e2 = st.e1;
        st.e1 = if e > 0.0 { e } else { 1.0 };
        factor
    }

    /// The step-size factor after a rejected step with error `e` (∞ for a non-finite one).
    pub(crate) fn after_reject(&self, st: &History, e: f64) -> f64 {
        if !e.is_finite() {
            return self.reject_factor_min;
        }
        let raw = if self.integral_on_reject {
            self.safety * e.powf(-1.0 / st.k)
        } else {
            self.raw(st, e)
        };
        raw.clamp(self.reject_factor_min, self.reject_factor_max)
    }
}

/// The controller's memory across steps.
pub(crate) struct History {
    k: f64,
    beta1: f64,
    beta2: f64,
    beta3: f64,
    /// ε of the last accepted step.
    e1: f64,
    /// ε of the accepted step before it.
    e2: f64,
}

/// One attempted adaptive step, recorded when [`crate::SolveOptions::record_attempts`] is set.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct StepAttempt {
    /// Start of the step.
    pub t: f64,
    /// Its size (shortened to land on an observation time where needed).
    pub h: f64,
    /// The scaled error norm ε (∞ when the step produced a non-finite error or state).
    pub error: f64,
    /// Whether it was accepted.
    pub accepted: bool,
}
