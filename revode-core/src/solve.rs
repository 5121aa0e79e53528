//! The one integration loop: fixed or adaptive steps, observation times as step boundaries.
//!
//! A [`Scheme`] advances a carry `c` (the state `y`, or `(y, z)` for the reversible coupling)
//! by `c_{n+1} = Φ(t_n, t_{n+1}, c_n)`; every observation time is a step boundary, so outputs are
//! `y` at those boundaries with no interpolation.
//!
//! - **Fixed steps**: each interval `[τ_k, τ_{k+1}]` between observation times is cut into
//!   `m_k = ⌈(τ_{k+1} − τ_k)/h⌉` equal steps (fewest steps of size ≤ h).
//! - **Adaptive steps** (METHOD.md §4): the base method's embedded estimate `e` is measured in
//!   the scaled norm `ε = ‖e_i / (atol + rtol·max(|y_i|, |y'_i|))‖` (RMS or max); a step is
//!   accepted when `ε ≤ 1` (or `< 1`, strict), and the next step is `h·factor` with Diffrax's
//!   PID rule `factor = safety·ε_n^(−β₁)·ε_{n−1}^(−β₂)·ε_{n−2}^(−β₃)`, clipped ([`Adaptive`],
//!   which states the β's). A rejected step restores the carry and retries.
//! - **Checks**: a fixed step is refused when the term knows it to be unstable
//!   ([`Scheme::check_step`]). At the first and last state of a fixed-step solve, the
//!   eigenvalues `x` of `hJ` (J the field's Jacobian; dense up to
//!   [`SolveOptions::stability_check_dim`] entries, Ritz values by Arnoldi beyond) are mapped
//!   through the scheme's amplification (`|R(x)|`, or the spectral radius of the coupled step
//!   `Γ(x, λ)`); an amplification above `max(1, e^{Re x})` becomes a
//!   warning; a non-finite carry ends the solve with [`Error::NonFiniteState`].

use crate::controller::{Adaptive, ErrorNorm, StepAttempt};
use crate::scheme::{Start, StateOf};
use crate::{Error, Result, Scheme, State, Stats, StepMap, Warning};
use num_complex::Complex64;
use serde::{Deserialize, Serialize};

/// How step sizes are chosen.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum StepControl {
    /// Each interval between observation times is split into the fewest equal steps of size
    /// at most `h` (so `h` dividing the interval gives exactly that grid).
    Fixed {
        /// Largest step size.
        h: f64,
    },
    /// A PID controller on the base method's embedded error estimate (METHOD.md §4;
    /// [`Adaptive`]).
    Adaptive(Adaptive),
}

/// Options of a solve (and of the forward pass of every gradient method).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SolveOptions {
    /// Step-size selection.
    pub step: StepControl,
    /// Largest number of attempted steps (accepted + rejected).
    pub max_steps: usize,
    /// Fixed-step solves check the linearised stability at the first and last state, recording
    /// [`Warning::OutsideStabilityRegion`]. States with at most this many entries use the exact
    /// eigenvalues of the dense Jacobian.
    pub stability_check_dim: usize,
    /// Larger states use the Ritz values of this many Arnoldi steps on the Jacobian's VJP
    /// ([`crate::stability::ritz_values`]): the outer eigenvalues, which decide stability.
    /// 0 leaves larger states unchecked; both fields 0 disable the check.
    pub stability_krylov: usize,
    /// Adaptive solves record every attempted step in [`Solution::attempts`] (off by default:
    /// it costs memory proportional to the number of attempts).
    #[serde(default)]
    pub record_attempts: bool,
}

impl SolveOptions {
    /// Fixed steps of size at most `h`.
    pub fn fixed(h: f64) -> Self {
        SolveOptions {
            step: StepControl::Fixed { h },
            max_steps: 10_000_000,
            stability_check_dim: 64,
            stability_krylov: 24,
            record_attempts: false,
        }
    }
    /// Adaptive steps.
    pub fn adaptive(controller: Adaptive) -> Self {
        SolveOptions {
            step: StepControl::Adaptive(controller),
            max_steps: 100_000,
            stability_check_dim: 64,
            stability_krylov: 24,
            record_attempts: false,
        }
    }
    /// Sets the step limit.
    pub fn with_max_steps(mut self, max_steps: usize) -> Self {
        self.max_steps = max_steps;
        self
    }
    /// Records every attempted adaptive step (accepted or rejected) in
    /// [`Solution::attempts`], e.g. to compare a step sequence with another library's.
    pub fn with_recorded_attempts(mut self) -> Self {
        self.record_attempts = true;
        self
    }
    /// Turns the linearised stability check off (e.g. for timing runs).
    pub fn without_stability_check(mut self) -> Self {
        self.stability_check_dim = 0;
        self.stability_krylov = 0;
        self
    }
}

/// The step boundaries of a solve: computed (fixed steps) or recorded (adaptive steps).
///
/// Fixed grids are regenerated from `(observation times, steps per interval)`, so they cost
/// O(number of observations) memory whatever the number of steps.
#[derive(Clone, Debug, PartialEq)]
pub enum Grid {
    /// Equal steps within each observation interval.
    Uniform {
        /// Observation times.
        obs: Vec<f64>,
        /// Number of steps in each interval.
        steps: Vec<usize>,
        /// Boundary index at which each interval starts.
        start: Vec<usize>,
    },
    /// Recorded accepted boundaries.
    Recorded {
        /// Every step boundary, t_0 … t_N.
        ts: Vec<f64>,
        /// Boundary index of each observation.
        obs_at: Vec<usize>,
    },
}

impl Grid {
    /// Number of steps a fixed-step solve over `obs` with step `h` takes.
    pub(crate) fn uniform_len(obs: &[f64], h: f64) -> Result<usize> {
        Ok(Grid::uniform(obs, h)?.len())
    }

    pub(crate) fn uniform(obs: &[f64], h: f64) -> Result<Grid> {
        let mut steps = Vec::with_capacity(obs.len());
        let mut start = Vec::with_capacity(obs.len());
        let mut total = 0usize;
        for w in obs.windows(2) {
            let n = ((w[1] - w[0]) / h * (1.0 - 1e-12)).ceil().max(1.0);
            if !n.is_finite() || n > 1e15 {
                return Err(Error::InvalidStepSize {
                    h,
                    reason: format!("would need {n} steps over [{}, {}]", w[0], w[1]),
                });
            }
            start.push(total);
            steps.push(n as usize);
            total += n as usize;
        }
        start.push(total);
        Ok(Grid::Uniform {
            obs: obs.to_vec(),
            steps,
            start,
        })
    }

    /// Number of steps.
    pub fn len(&self) -> usize {
        match self {
            Grid::Uniform { start, .. } => *start.last().unwrap_or(&0),
            Grid::Recorded { ts, .. } => ts.len().saturating_sub(1),
        }
    }
    /// True when there are no steps.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Time of boundary `n` (0 ≤ n ≤ len).
    pub fn t(&self, n: usize) -> f64 {
        match self {
            Grid::Uniform { obs, steps, start } => {
                // Interval k with start[k] ≤ n < start[k+1]; the last boundary is the last time.
                let k = start.partition_point(|&s| s <= n).saturating_sub(1);
                if k >= steps.len() {
                    return obs[obs.len() - 1];
                }
                let j = n - start[k];
                if j == 0 {
                    obs[k]
                } else {
                    obs[k] + (obs[k + 1] - obs[k]) * (j as f64 / steps[k] as f64)
                }
            }
            Grid::Recorded { ts, .. } => ts[n],
        }
    }
    /// Boundary index of each observation.
    pub fn observation_boundaries(&self) -> Vec<usize> {
        match self {
            Grid::Uniform { start, .. } => start.clone(),
            Grid::Recorded { obs_at, .. } => obs_at.clone(),
        }
    }
    /// Number of stored scalars (times), for memory accounting.
    pub fn stored_times(&self) -> usize {
        match self {
            Grid::Uniform { obs, .. } => obs.len(),
            Grid::Recorded { ts, .. } => ts.len(),
        }
    }
}

/// Checks observation times: non-empty, finite, strictly increasing, at least two.
pub fn validate_times(times: &[f64]) -> Result<()> {
    if times.len() < 2 {
        return Err(Error::Empty {
            what: "observation times (need at least t0 and t1)".into(),
        });
    }
    crate::error::check_finite("observation times", times)?;
    let (t0, t1) = (times[0], times[times.len() - 1]);
    if t1 <= t0 {
        return Err(Error::InvalidInterval { t0, t1 });
    }
    for (i, w) in times.windows(2).enumerate() {
        if w[1] <= w[0] {
            return Err(Error::UnsortedTimes {
                index: i + 1,
                prev: w[0],
                next: w[1],
            });
        }
    }
    Ok(())
}

/// Validates a solve's inputs: times, initial state, options, term domain.
pub(crate) fn validate<S: Scheme>(
    scheme: &S,
    y0: &StateOf<S::Map>,
    times: &[f64],
    opts: &SolveOptions,
) -> Result<()> {
    validate_times(times)?;
    if y0.is_empty() {
        return Err(Error::Empty {
            what: "initial state".into(),
        });
    }
    if !y0.all_finite() {
        let v = y0.to_f64_vec();
        let index = v.iter().position(|x| !x.is_finite()).unwrap_or(0);
        return Err(Error::NonFinite {
            what: "initial state".into(),
            index,
        });
    }
    scheme.map().validate_state(y0)?;
    let (d0, d1) = scheme.map().domain();
    for &t in [times[0], times[times.len() - 1]].iter() {
        if t < d0 || t > d1 {
            return Err(Error::OutsideDomain {
                what: scheme.map().domain_owner(),
                t,
                start: d0,
                end: d1,
            });
        }
    }
    if opts.max_steps == 0 {
        return Err(Error::config("max_steps", "must be at least 1"));
    }
    match &opts.step {
        StepControl::Fixed { h } => {
            if !(*h > 0.0 && h.is_finite()) {
                return Err(Error::InvalidStepSize {
                    h: *h,
                    reason: "must be positive and finite".into(),
                });
            }
            scheme.check_step(*h)?;
        }
        StepControl::Adaptive(a) => {
            if !scheme.map().has_error_estimate() {
                return Err(Error::config(
                    "step",
                    format!(
                        "adaptive steps need an embedded error estimate, which {} lacks \
                         (use heun, ralston2, bosh3, dopri5 or tsit5)",
                        scheme.map().name()
                    ),
                ));
            }
            a.validate()?;
        }
    }
    Ok(())
}

/// Preallocated work space for the loop.
pub(crate) struct Workspace<S: Scheme> {
    pub scratch: S::Scratch,
    pub tape: S::Tape,
    err: StateOf<S::Map>,
    prev: S::Carry,
    /// Attempted adaptive steps, when [`SolveOptions::record_attempts`] is set.
    pub attempts: Vec<StepAttempt>,
}

impl<S: Scheme> Workspace<S> {
    pub fn new(scheme: &S, y0: &StateOf<S::Map>) -> Self {
        Workspace {
            scratch: scheme.new_scratch(y0),
            tape: scheme.new_tape(y0),
            err: y0.zeros_like(),
            prev: scheme.new_carry(y0),
            attempts: Vec::new(),
        }
    }
}

/// What the loop reports to its caller.
pub(crate) enum Event<'a, S: Scheme> {
    /// The carry at the next observation time.
    Observation { carry: &'a S::Carry },
    /// An accepted step `n`; `carry` is the state after it; `tape` is its trace when the loop
    /// was asked to trace.
    Step {
        n: usize,
        carry: &'a S::Carry,
        tape: &'a S::Tape,
    },
}

/// The integration loop. Advances `carry` over `times`, calling `on` for every observation and
/// accepted step; traces steps when `traced`. Returns the grid of accepted boundaries.
#[allow(clippy::too_many_arguments)]
pub(crate) fn integrate<S: Scheme>(
    scheme: &S,
    carry: &mut S::Carry,
    times: &[f64],
    opts: &SolveOptions,
    traced: bool,
    ws: &mut Workspace<S>,
    stats: &mut Stats,
    on: &mut dyn FnMut(Event<'_, S>) -> Result<()>,
) -> Result<Grid> {
    on(Event::Observation { carry })?;
    match &opts.step {
        StepControl::Fixed { h } => {
            let grid = Grid::uniform(times, *h)?;
            let per_interval = match &grid {
                Grid::Uniform { steps, .. } => steps.clone(),
                Grid::Recorded { .. } => Vec::new(),
            };
            if grid.len() > opts.max_steps {
                return Err(Error::MaxStepsExceeded {
                    max_steps: opts.max_steps,
                    t: times[0],
                });
            }
            if !grid.is_empty() {
                stability_check(scheme, carry, grid.t(0), grid.t(1), opts, stats);
            }
            let mut n = 0;
            for k in 0..times.len() - 1 {
                let (t0, t1) = (times[k], times[k + 1]);
                let steps = per_interval[k];
                for j in 0..steps {
                    let t_a = if j == 0 {
                        t0
                    } else {
                        t0 + (t1 - t0) * (j as f64 / steps as f64)
                    };
                    let t_b = if j + 1 == steps {
                        t1
                    } else {
                        t0 + (t1 - t0) * ((j + 1) as f64 / steps as f64)
                    };
                    debug_assert_eq!(t_a, grid.t(n));
                    let tape = if traced { Some(&mut ws.tape) } else { None };
                    scheme.step(t_a, t_b, carry, None, tape, &mut ws.scratch, stats);
                    stats.accepted_steps += 1;
                    if !carry.all_finite() {
                        return Err(Error::NonFiniteState { step: n, t: t_b });
                    }
                    on(Event::Step {
                        n,
                        carry,
                        tape: &ws.tape,
                    })?;
                    n += 1;
                }
                on(Event::Observation { carry })?;
            }
            if !grid.is_empty() {
                let last = grid.len();
                stability_check(scheme, carry, grid.t(last - 1), grid.t(last), opts, stats);
            }
            Ok(grid)
        }
        StepControl::Adaptive(ctl) => {
            adaptive(scheme, carry, times, opts, ctl, traced, ws, stats, on)
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn adaptive<S: Scheme>(
    scheme: &S,
    carry: &mut S::Carry,
    times: &[f64],
    opts: &SolveOptions,
    ctl: &Adaptive,
    traced: bool,
    ws: &mut Workspace<S>,
    stats: &mut Stats,
    on: &mut dyn FnMut(Event<'_, S>) -> Result<()>,
) -> Result<Grid> {
    let k = ctl.exponent_order(
        scheme.map().order(),
        scheme.map().tableau().and_then(|t| t.embedded_order()),
    );
    let mut history = ctl.start(k);
    let mut ts = vec![times[0]];
    let mut obs_at = vec![0];
    let mut h = ctl
        .h0
        .unwrap_or(0.01 * (times[1] - times[0]))
        .min(ctl.h_max);
    let mut attempts = 0usize;
    let mut non_finite_at: Option<f64> = None;
    let mut n = 0;
    for kk in 0..times.len() - 1 {
        let (mut t, t_end) = (times[kk], times[kk + 1]);
        while t < t_end {
            attempts += 1;
            if attempts > opts.max_steps {
                if let Some(t) = non_finite_at {
                    return Err(Error::NonFiniteState { step: n, t });
                }
                return Err(Error::MaxStepsExceeded {
                    max_steps: opts.max_steps,
                    t,
                });
            }
            // Clip to the observation time; absorb a sliver smaller than 1e-9 of a step.
            let clipped = t + h >= t_end - 1e-9 * h;
            let t_b = if clipped { t_end } else { t + h };
            let h_used = t_b - t;
            ws.prev.copy_from(carry);
            let tape = if traced { Some(&mut ws.tape) } else { None };
            scheme.step(
                t,
                t_b,
                carry,
                Some(&mut ws.err),
                tape,
                &mut ws.scratch,
                stats,
            );
            let y_new = scheme.output(carry);
            let y_old = scheme.output(&ws.prev);
            let mut e = match ctl.norm {
                ErrorNorm::Rms => ws.err.scaled_rms(y_old, y_new, ctl.atol, ctl.rtol),
                ErrorNorm::Max => ws.err.scaled_max(y_old, y_new, ctl.atol, ctl.rtol),
            };
            if !e.is_finite() || !carry.all_finite() {
                // Rejected like any too-large error, but remembered: if the controller then
                // gives up, the non-finite state is the cause to report.
                e = f64::INFINITY;
                non_finite_at = Some(t_b);
            }
            let accepted = ctl.accepts(e);
            if opts.record_attempts {
                ws.attempts.push(StepAttempt {
                    t,
                    h: h_used,
                    error: e,
                    accepted,
                });
            }
            if accepted {
                non_finite_at = None;
                stats.accepted_steps += 1;
                let factor = ctl.after_accept(&mut history, e);
                ts.push(t_b);
                on(Event::Step {
                    n,
                    carry,
                    tape: &ws.tape,
                })?;
                n += 1;
                t = t_b;
                let proposal = (h_used * factor).min(ctl.h_max);
                h = if clipped && ctl.resume_after_clip {
                    proposal.max(h.min(ctl.h_max))
                } else {
                    proposal
                };
            } else {
                stats.rejected_steps += 1;
                carry.copy_from(&ws.prev);
                h = h_used * ctl.after_reject(&history, e);
            }
            if h < ctl.h_min {
                if let Some(t) = non_finite_at {
                    return Err(Error::NonFiniteState { step: n, t });
                }
                return Err(Error::StepSizeUnderflow {
                    t,
                    h,
                    h_min: ctl.h_min,
                });
            }
        }
        obs_at.push(n);
        on(Event::Observation { carry })?;
    }
    Ok(Grid::Recorded { ts, obs_at })
}

/// Records a warning when the linearised scheme amplifies some mode faster than the exact flow.
fn stability_check<S: Scheme>(
    scheme: &S,
    carry: &S::Carry,
    t_a: f64,
    t_b: f64,
    opts: &SolveOptions,
    stats: &mut Stats,
) {
    let Some(tableau) = scheme.map().tableau() else {
        return;
    };
    let y = scheme.output(carry);
    let n = y.len();
    let xs = if n <= opts.stability_check_dim {
        let Some(jac) = scheme.map().linearisation(t_a, t_b, y, n) else {
            return;
        };
        if !jac.iter().all(|v| v.is_finite()) {
            return;
        }
        crate::stability::eigenvalues(&jac, n)
    } else if opts.stability_krylov > 0 {
        let mut xs = Ok(Vec::new());
        let m = opts.stability_krylov;
        if !scheme.map().with_linearised_vjp(t_a, t_b, y, &mut |op| {
            xs = crate::stability::ritz_values(n, m, op);
        }) {
            return;
        }
        xs
    } else {
        return;
    };
    let Ok(xs) = xs else {
        return;
    };
    let r = |x: Complex64| tableau.stability_function(x);
    for x in xs {
        let amp = scheme.amplification(&r, x);
        let exact = x.re.exp();
        if amp > exact.max(1.0) * (1.0 + 1e-9) {
            stats.warnings.push(Warning::OutsideStabilityRegion {
                t: t_a,
                amplification: amp,
                exact,
            });
            return;
        }
    }
}

/// The result of [`solve`].
#[derive(Clone, Debug)]
pub struct Solution<V> {
    /// The observation times.
    pub times: Vec<f64>,
    /// The output state at each observation time.
    pub ys: Vec<V>,
    /// Every accepted step boundary (recorded for adaptive solves, regenerated for fixed ones).
    pub step_times: Vec<f64>,
    /// What the solve did.
    pub stats: Stats,
    /// The coupled state at the last time: `z_N` of the reversible coupling's carry
    /// `(y_N, z_N)` ([`Scheme::coupled`]), `None` for a scheme without one ([`crate::Plain`]).
    /// With `y_N` (the last entry of `ys`) it is the whole carry, from which the solve can
    /// be continued or run backwards exactly.
    pub final_z: Option<V>,
    /// Every attempted adaptive step, in order, when [`SolveOptions::record_attempts`] is
    /// set; empty otherwise and for fixed steps.
    pub attempts: Vec<StepAttempt>,
}

/// Solves from `y0` at `times[0]` through every observation time, returning the output there.
///
/// ```
/// use revode_core::{solve, OdeTerm, Rk, Reversible, SolveOptions, Tableau, VectorField};
/// struct Decay;
/// impl VectorField for Decay {
///     type Scalar = f64;
///     fn dim(&self) -> usize { 1 }
///     fn params(&self) -> &[f64] { &[] }
///     fn params_mut(&mut self) -> &mut [f64] { &mut [] }
///     fn eval(&self, _t: f64, y: &[f64], out: &mut [f64]) { out[0] = -y[0]; }
///     fn vjp(&self, _t: f64, _y: &[f64], cot: &[f64], s: f64, yb: &mut [f64], _pb: &mut [f64]) {
///         yb[0] -= s * cot[0];
///     }
/// }
/// let scheme = Reversible::new(Rk::new(OdeTerm::new(Decay), Tableau::rk4()), 0.999)?;
/// let sol = solve(&scheme, &vec![1.0], &[0.0, 1.0], &SolveOptions::fixed(0.01))?;
/// assert!((sol.ys[1][0] - (-1.0f64).exp()).abs() < 1e-8);
/// # Ok::<(), revode_core::Error>(())
/// ```
pub fn solve<S: Scheme>(
    scheme: &S,
    y0: &StateOf<S::Map>,
    times: &[f64],
    opts: &SolveOptions,
) -> Result<Solution<StateOf<S::Map>>> {
    validate(scheme, y0, times, opts)?;
    let mut ws = Workspace::new(scheme, y0);
    let mut stats = Stats {
        peak_stored_states: 1,
        ..Stats::default()
    };
    let start = Start { t0: times[0], y0 };
    let mut carry = scheme.init(start, &mut ws.scratch, &mut stats);
    let mut ys = Vec::with_capacity(times.len());
    let grid = integrate(
        scheme,
        &mut carry,
        times,
        opts,
        false,
        &mut ws,
        &mut stats,
        &mut |ev| {
            if let Event::Observation { carry, .. } = ev {
                ys.push(scheme.output(carry).clone());
            }
            Ok(())
        },
    )?;
    let step_times = (0..=grid.len()).map(|n| grid.t(n)).collect();
    Ok(Solution {
        times: times.to_vec(),
        ys,
        step_times,
        stats,
        final_z: scheme.coupled(&carry).cloned(),
        attempts: std::mem::take(&mut ws.attempts),
    })
}
