//! Gradient methods behind one interface (DESIGN.md "Gradient methods").
//!
//! For a loss `L(y(τ_1), …, y(τ_K))` of a solve `c_{n+1} = Φ_n(c_n; θ)`, every method computes
//! the same discrete adjoint: with `ā_N = ∂L/∂c_N`,
//!
//! ```text
//! ā_n = (∂Φ_n/∂c_n)ᵀ ā_{n+1} + ∂L/∂c_n,      dL/dθ = Σ_n (∂Φ_n/∂θ)ᵀ ā_{n+1},
//! dL/dy0 = (∂c_0/∂y0)ᵀ ā_0,
//! ```
//!
//! where `∂L/∂c_n` is the observation cotangent when `t_n` is an observation time. They differ
//! only in where `c_n` comes from when step `n` is pulled back:
//! - **reversible** (Algorithm 1): `c_n = Φ_n⁻¹(c_{n+1})`, reconstructed exactly by the scheme;
//!   O(1) stored carries. The reconstruction drift `max|ĉ_0 − c_0| / max(1, max|c_0|)` is
//!   checked ([`DriftCheck`]);
//! - **direct**: every step's trace is kept (O(N) memory, the exactness oracle);
//! - **checkpointed**: binomial checkpointing (revolve) with `c` stored carries, recomputing
//!   forward from the nearest one; **checkpointed-reversible** keeps a carry every k steps and
//!   reconstructs in between;
//! - **backsolve**: the continuous adjoint `a' = −(∂f/∂y)ᵀa`, `θ̄' = −(∂f/∂θ)ᵀa` integrated
//!   backwards alongside `y` by the same Runge–Kutta stage recursion and tableau, run over
//!   [`crate::adjoint::AdjointTerm`] (not exact: its error is the solver's).
//!
//! All but backsolve return the gradient of the discrete solve to round-off.

use crate::observe::ObsCursor;
use crate::scheme::Start;
use crate::scheme::{ScalarOf, StateOf};
use crate::solve::{integrate, validate, Event, Grid, Workspace};
use crate::{Error, GradBuffer, Pair, Real, Result, Scheme, SolveOptions, State, Stats, StepMap};
use serde::{Deserialize, Serialize};

/// How the gradient of a loss through a solve is computed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum GradientMethod {
    /// Algorithm 1: reconstruct the solve backwards; O(1) stored states, exact.
    /// Needs a reversible scheme.
    Reversible,
    /// Full tape: keep every step's trace; O(N) memory, the exactness oracle.
    Direct,
    /// Recursive binomial checkpointing with at most `snapshots` stored states (revolve for
    /// fixed steps; online thinning plus revolve for adaptive steps). `None` uses
    /// `⌊−1.5 + √(2N + 0.25)⌋ + 1`, the best peer's default.
    Checkpointed {
        /// Number of stored states, including the initial one.
        snapshots: Option<usize>,
    },
    /// Continuous adjoint solved backwards with the same base method: O(1) memory,
    /// approximate.
    Backsolve,
    /// Reversible, but the carry is also stored every `every` steps and reconstruction restarts
    /// from each stored carry, capping drift.
    CheckpointedReversible {
        /// Interval between stored carries, in steps.
        every: usize,
    },
    /// Checkpointed-reversible with the interval chosen from a drift tolerance: reconstruction
    /// first runs unchecked; when the measured drift δ over a span of L steps exceeds the
    /// tolerance, the per-step amplification `a = (δ/ε)^{1/L}` it implies gives the interval
    /// `k = 0.8·ln(tol/ε)/ln a`, and the gradient is recomputed with it (repeated until the
    /// measured drift is within tolerance). When the accepted drift implies an interval at least
    /// 25 % longer, that interval is tried once and kept if it also meets the tolerance. The
    /// chosen k and the passes are in the stats; the loss may be evaluated once per pass.
    CheckpointedReversibleAuto {
        /// Largest acceptable relative drift of a reconstructed state.
        tolerance: f64,
    },
}

impl GradientMethod {
    /// A short label for tables.
    pub fn label(&self) -> String {
        match self {
            GradientMethod::Reversible => "reversible".into(),
            GradientMethod::Direct => "direct".into(),
            GradientMethod::Checkpointed { snapshots: None } => "checkpointed(default)".into(),
            GradientMethod::Checkpointed { snapshots: Some(c) } => format!("checkpointed({c})"),
            GradientMethod::Backsolve => "backsolve".into(),
            GradientMethod::CheckpointedReversible { every } => {
                format!("checkpointed-reversible({every})")
            }
            GradientMethod::CheckpointedReversibleAuto { tolerance } => {
                format!("checkpointed-reversible(auto, {tolerance:e})")
            }
        }
    }
}

/// The best peer's default number of checkpoints for N steps: `⌊−1.5 + √(2N + 0.25)⌋ + 1`.
pub fn default_snapshots(n: usize) -> usize {
    ((-1.5 + (2.0 * n as f64 + 0.25).sqrt()).floor() as i64 + 1).max(1) as usize
}

/// How a reversible gradient's reconstruction drift — the relative difference between the
/// reconstructed and the true initial carry, `max|ẑ₀ − z₀| / max(1, max|z₀|)` — is checked.
///
/// The drift bounds how far the reconstructed trajectory, and so the gradient, is from the
/// exact one. In a stable coupling it stays at rounding level (≈ 1e-15 in f64); an unstable
/// one amplifies it geometrically, so a wrong gradient shows as a drift many orders larger.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub enum DriftCheck {
    /// Drift above √ε of the state's scalar (1.5e-8 in f64, 3.5e-4 in f32) is an error
    /// ([`Error::ReconstructionDrift`]): beyond it, half the digits of the reconstruction are
    /// gone, which in practice happens only when the coupling is unstable.
    #[default]
    Default,
    /// Drift above this relative tolerance is an error.
    Tolerance(f64),
    /// Not checked (an explicit opt-out); the drift is still reported in [`Stats`].
    Off,
}

/// Options of a gradient computation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GradientOptions {
    /// The method.
    pub method: GradientMethod,
    /// How the reconstruction drift of reversible gradients is checked (default: an error
    /// above √ε; see [`DriftCheck`]).
    pub drift: DriftCheck,
    /// Observe the output at every accepted step boundary instead of only at the observation
    /// times (for losses on the whole trajectory, e.g. interpolated from adaptive steps).
    pub observe_steps: bool,
}

impl From<GradientMethod> for GradientOptions {
    fn from(method: GradientMethod) -> Self {
        GradientOptions {
            method,
            drift: DriftCheck::Default,
            observe_steps: false,
        }
    }
}

/// The result of [`gradient`].
#[derive(Clone, Debug)]
pub struct Gradient<V, P> {
    /// The loss value.
    pub loss: f64,
    /// dL/dy0.
    pub y0: V,
    /// dL/dθ (accumulated by the term).
    pub params: P,
    /// The output at each observation time (from the forward pass).
    pub outputs: Vec<V>,
    /// Number of accepted steps.
    pub steps: usize,
    /// What the computation did, including peak stored states and reconstruction error.
    pub stats: Stats,
}

/// The [`Gradient`] a scheme's [`gradient`] returns.
pub type GradientOf<S> =
    Gradient<StateOf<<S as Scheme>::Map>, <<S as Scheme>::Map as StepMap>::ParamGrad>;

/// Computes a loss of the outputs at `times` and its gradient with respect to `y0` and the
/// parameters of the scheme's term.
///
/// `loss(outputs, cotangents)` receives the output at every observation time and zeroed
/// cotangent buffers of the same shapes; it returns the loss and writes ∂L/∂y at each
/// observation into the buffers. A non-finite loss or cotangent is an error.
pub fn gradient<S, L>(
    scheme: &S,
    y0: &StateOf<S::Map>,
    times: &[f64],
    opts: &SolveOptions,
    grad: &GradientOptions,
    mut loss: L,
) -> Result<GradientOf<S>>
where
    S: Scheme,
    L: FnMut(&[StateOf<S::Map>], &mut [StateOf<S::Map>]) -> f64,
{
    gradient_observed(scheme, y0, times, opts, grad, |_, ys, cots| loss(ys, cots))
}

/// [`gradient`] whose loss also receives the time of each output: the observation times, or
/// every accepted step boundary when [`GradientOptions::observe_steps`] is set.
pub fn gradient_observed<S, L>(
    scheme: &S,
    y0: &StateOf<S::Map>,
    times: &[f64],
    opts: &SolveOptions,
    grad: &GradientOptions,
    mut loss: L,
) -> Result<GradientOf<S>>
where
    S: Scheme,
    L: FnMut(&[f64], &[StateOf<S::Map>], &mut [StateOf<S::Map>]) -> f64,
{
    let GradientMethod::CheckpointedReversibleAuto { tolerance } = grad.method else {
        let mut g = gradient_once(scheme, y0, times, opts, grad, &mut loss)?;
        g.stats.attempts = 1;
        if let GradientMethod::CheckpointedReversible { every } = grad.method {
            g.stats.checkpoint_interval = Some(every);
        }
        return Ok(g);
    };
    if !(tolerance > 0.0 && tolerance.is_finite()) {
        return Err(Error::config(
            "tolerance",
            format!("{tolerance} must be positive and finite"),
        ));
    }
    let eps = <ScalarOf<S::Map> as Real>::EPS.as_f64();
    let mut every: Option<usize> = None;
    // Steps of a fixed-step solve are known in advance; adaptive ones after the first pass.
    let mut span = match opts.step {
        crate::StepControl::Fixed { h } => Grid::uniform_len(times, h).unwrap_or(usize::MAX),
        crate::StepControl::Adaptive(_) => usize::MAX,
    };
    let mut accepted: Option<GradientOf<S>> = None;
    let mut non_finite: Option<Error> = None;
    for attempt in 1..=12u32 {
        let sub = GradientOptions {
            method: match every {
                None => GradientMethod::Reversible,
                Some(k) => GradientMethod::CheckpointedReversible { every: k },
            },
            drift: DriftCheck::Off,
            observe_steps: grad.observe_steps,
        };
        let (drift, steps) = match gradient_once(scheme, y0, times, opts, &sub, &mut loss) {
            Ok(mut g) => {
                let drift = g.stats.reconstruction_error.unwrap_or(0.0);
                if drift <= tolerance {
                    let k = every.unwrap_or(g.steps).min(g.steps);
                    g.stats.checkpoint_interval = Some(k);
                    g.stats.attempts = attempt;
                    // Measured well inside the tolerance after a cut: the amplification this
                    // drift implies allows a longer interval; try it once (fewer stored carries).
                    let longer = (drift > eps && k < g.steps && accepted.is_none())
                        .then(|| interval_for(drift, k, tolerance, eps))
                        .filter(|&l| 4 * l >= 5 * k);
                    match longer {
                        Some(l) => {
                            accepted = Some(g);
                            every = Some(l.min(g_steps_of(&accepted)));
                            continue;
                        }
                        None => return Ok(g),
                    }
                }
                (drift, g.steps)
            }
            // Unchecked reconstruction of a stiff problem may overflow; if it still does with
            // every carry stored, the field itself is at fault and its error is the answer.
            Err(e @ (Error::NonFiniteGradient { .. } | Error::NonFiniteState { .. }))
                if span != usize::MAX =>
            {
                non_finite = Some(e);
                (f64::INFINITY, span)
            }
            Err(e) => return Err(e),
        };
        if let Some(mut g) = accepted.take() {
            // The longer interval drifted too far: keep the accepted pass.
            g.stats.attempts = attempt;
            return Ok(g);
        }
        span = every.unwrap_or(steps).min(steps.max(1));
        if span <= 1 {
            return Err(non_finite.take().unwrap_or(Error::ReconstructionDrift {
                error: drift,
                tolerance,
            }));
        }
        let next = if drift.is_finite() && drift > eps {
            interval_for(drift, span, tolerance, eps)
        } else {
            span / 16
        };
        every = Some(next.clamp(1, span - 1));
    }
    accepted.ok_or(non_finite.unwrap_or(Error::ReconstructionDrift {
        error: f64::NAN,
        tolerance,
    }))
}

/// Steps of an accepted pass (for capping the interval).
fn g_steps_of<V, P>(g: &Option<Gradient<V, P>>) -> usize {
    g.as_ref().map_or(usize::MAX, |g| g.steps)
}

/// The interval for `tolerance` given a drift `drift` measured over `span` steps: the per-step
/// amplification `a = (drift/ε)^{1/span}` and `k = 0.8·ln(tol/ε)/ln a`.
fn interval_for(drift: f64, span: usize, tolerance: f64, eps: f64) -> usize {
    let ln_a = (drift / eps).ln() / span as f64;
    let k = 0.8 * (tolerance / eps).ln() / ln_a;
    if k.is_finite() && k >= 1.0 {
        k.min(usize::MAX as f64 / 2.0) as usize
    } else {
        1
    }
}

/// The larger of two drifts, NaN when either is (an overflowed reconstruction must not read
/// as exact).
fn worst(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        f64::NAN
    } else {
        a.max(b)
    }
}

/// A loss of the observation times, the outputs, and the cotangent buffers it fills.
type ObservedLoss<'l, V> = dyn FnMut(&[f64], &[V], &mut [V]) -> f64 + 'l;

/// One gradient pass with a fixed method (everything but the automatic interval search).
fn gradient_once<S: Scheme>(
    scheme: &S,
    y0: &StateOf<S::Map>,
    times: &[f64],
    opts: &SolveOptions,
    grad: &GradientOptions,
    loss: &mut ObservedLoss<'_, StateOf<S::Map>>,
) -> Result<GradientOf<S>> {
    validate(scheme, y0, times, opts)?;
    let drift_tolerance = match grad.drift {
        DriftCheck::Default => Some(<ScalarOf<S::Map> as Real>::EPS.sqrt()),
        DriftCheck::Tolerance(tol) => {
            if tol.is_nan() || tol <= 0.0 {
                return Err(Error::config(
                    "drift",
                    format!("tolerance {tol} must be positive"),
                ));
            }
            Some(tol)
        }
        DriftCheck::Off => None,
    };
    let mut run = Run {
        scheme,
        stats: Stats::default(),
        ws: Workspace::new(scheme, y0),
        outputs: Vec::with_capacity(times.len()),
        out_times: Vec::new(),
        observe_steps: grad.observe_steps,
        cots: Vec::new(),
        p_bar: scheme.map().new_param_grad(),
        first_bad: None,
        initial: None,
    };
    let mut evaluate =
        |t: &[f64], outputs: &[StateOf<S::Map>], cots: &mut Vec<StateOf<S::Map>>| -> Result<f64> {
            *cots = outputs.iter().map(|o| o.zeros_like()).collect();
            let value = loss(t, outputs, cots);
            if !value.is_finite() {
                return Err(Error::NonFiniteGradient {
                    what: "loss".into(),
                    step: None,
                });
            }
            for (k, (c, o)) in cots.iter().zip(outputs).enumerate() {
                if c.len() != o.len() {
                    return Err(Error::ShapeMismatch {
                        what: format!(
                        "loss cotangent at observation {k} (t = {}), as left by the loss closure",
                        t.get(k).copied().unwrap_or(f64::NAN)
                    ),
                        expected: o.len(),
                        found: c.len(),
                    });
                }
            }
            if let Some(k) = cots.iter().position(|c| !c.all_finite()) {
                return Err(Error::NonFiniteGradient {
                    what: format!("loss cotangent at observation {k}"),
                    step: None,
                });
            }
            Ok(value)
        };
    let (value, y0_bar, grid) = match &grad.method {
        GradientMethod::Reversible => {
            run.reversible(y0, times, opts, None, drift_tolerance, &mut evaluate)?
        }
        GradientMethod::CheckpointedReversible { every } => {
            if *every == 0 {
                return Err(Error::config(
                    "every",
                    "checkpoint interval must be at least 1",
                ));
            }
            run.reversible(
                y0,
                times,
                opts,
                Some(*every),
                drift_tolerance,
                &mut evaluate,
            )?
        }
        GradientMethod::Direct => run.direct(y0, times, opts, &mut evaluate)?,
        GradientMethod::Checkpointed { snapshots } => {
            if *snapshots == Some(0) {
                return Err(Error::config("snapshots", "need at least 1 snapshot"));
            }
            run.checkpointed(y0, times, opts, *snapshots, &mut evaluate)?
        }
        GradientMethod::Backsolve => run.backsolve(y0, times, opts, &mut evaluate)?,
        GradientMethod::CheckpointedReversibleAuto { .. } => {
            unreachable!("resolved by gradient_observed")
        }
    };
    if !y0_bar.all_finite() {
        return Err(Error::NonFiniteGradient {
            what: "dL/dy0".into(),
            step: run.first_bad,
        });
    }
    if let Some(i) = run.p_bar.first_non_finite() {
        return Err(Error::NonFiniteGradient {
            what: format!("dL/dθ (entry {i})"),
            step: run.first_bad,
        });
    }
    Ok(Gradient {
        loss: value,
        y0: y0_bar,
        params: run.p_bar,
        outputs: run.outputs,
        steps: grid.len(),
        stats: run.stats,
    })
}

struct Run<'a, S: Scheme> {
    scheme: &'a S,
    stats: Stats,
    ws: Workspace<S>,
    outputs: Vec<StateOf<S::Map>>,
    out_times: Vec<f64>,
    observe_steps: bool,
    cots: Vec<StateOf<S::Map>>,
    p_bar: <S::Map as StepMap>::ParamGrad,
    /// The first step (in backward order) whose pullback left a non-finite adjoint.
    first_bad: Option<usize>,
    /// The initial carry of the forward pass (the reversible method's drift reference).
    initial: Option<S::Carry>,
}

use num_traits::One;

type Keep<'k, S> = dyn FnMut(usize, &<S as Scheme>::Carry, &<S as Scheme>::Tape) + 'k;

type Eval<'e, V> = dyn FnMut(&[f64], &[V], &mut Vec<V>) -> Result<f64> + 'e;

impl<'a, S: Scheme> Run<'a, S> {
    fn relative_drift(a: &S::Carry, b: &S::Carry) -> f64 {
        let scale = b.max_abs().as_f64().max(1.0);
        a.max_abs_diff(b).as_f64() / scale
    }

    /// Records step `n` when the adjoint `bar` has just become non-finite.
    fn note(&mut self, n: usize, bar: &S::Carry) {
        if self.first_bad.is_none() && !bar.all_finite() {
            self.first_bad = Some(n);
        }
    }

    fn finish(&mut self, bar: &S::Carry, start: Start<'_, StateOf<S::Map>>) -> StateOf<S::Map> {
        let mut out = start.y0.zeros_like();
        self.scheme.initial_cotangent(
            start,
            bar,
            &mut out,
            &mut self.p_bar,
            &mut self.ws.scratch,
            &mut self.stats,
        );
        out
    }

    /// The initial carry at `times[0]`.
    fn init(&mut self, y0: &StateOf<S::Map>, times: &[f64]) -> S::Carry {
        let start = Start { t0: times[0], y0 };
        self.scheme
            .init(start, &mut self.ws.scratch, &mut self.stats)
    }

    /// Forward pass without tracing, collecting outputs; `keep` sees every accepted step.
    fn forward(
        &mut self,
        y0: &StateOf<S::Map>,
        times: &[f64],
        opts: &SolveOptions,
        traced: bool,
        keep: &mut Keep<'_, S>,
    ) -> Result<(S::Carry, Grid)> {
        let scheme = self.scheme;
        let mut carry = self.init(y0, times);
        self.initial = Some(carry.clone());
        let outputs = &mut self.outputs;
        let every = self.observe_steps;
        let grid = integrate(
            scheme,
            &mut carry,
            times,
            opts,
            traced,
            &mut self.ws,
            &mut self.stats,
            &mut |ev| {
                match ev {
                    Event::Observation { carry } => {
                        if !every || outputs.is_empty() {
                            outputs.push(scheme.output(carry).clone())
                        }
                    }
                    Event::Step { n, carry, tape, .. } => {
                        if every {
                            outputs.push(scheme.output(carry).clone());
                        }
                        keep(n, carry, tape)
                    }
                }
                Ok(())
            },
        )?;
        self.out_times = if every {
            (0..=grid.len()).map(|n| grid.t(n)).collect()
        } else {
            times.to_vec()
        };
        Ok((carry, grid))
    }

    fn seed(
        &mut self,
        evaluate: &mut Eval<'_, StateOf<S::Map>>,
        like: &S::Carry,
    ) -> Result<(f64, S::Carry)> {
        let value = evaluate(&self.out_times, &self.outputs, &mut self.cots)?;
        Ok((value, like.zeros_like()))
    }

    fn reversible(
        &mut self,
        y0: &StateOf<S::Map>,
        times: &[f64],
        opts: &SolveOptions,
        every: Option<usize>,
        drift_tolerance: Option<f64>,
        evaluate: &mut Eval<'_, StateOf<S::Map>>,
    ) -> Result<(f64, StateOf<S::Map>, Grid)> {
        if !self.scheme.is_reversible() {
            return Err(Error::Unsupported(format!(
                "the reversible gradient needs an algebraically reversible scheme, not {}",
                self.scheme.name()
            )));
        }
        let mut stored: Vec<(usize, S::Carry)> = Vec::new();
        let (mut carry, grid) = self.forward(y0, times, opts, false, &mut |n, c, _| {
            if let Some(k) = every {
                if (n + 1) % k == 0 {
                    stored.push((n + 1, c.clone()));
                }
            }
        })?;
        // Stored: the initial copy of y0, the carry, and any checkpoints (excluding the final one,
        // which the carry already is).
        if stored.last().is_some_and(|(n, _)| *n == grid.len()) {
            stored.pop();
        }
        self.stats.peak_stored_states = 1 + stored.len();
        let (value, mut bar) = self.seed(evaluate, &carry)?;
        let mut obs = ObsCursor::new(&grid, self.observe_steps);
        obs.add(self.scheme, grid.len(), &self.cots, &mut bar);
        let mut drift: f64 = 0.0;
        for n in (0..grid.len()).rev() {
            let (t_a, t_b) = (grid.t(n), grid.t(n + 1));
            self.scheme.reconstruct_pullback(
                t_a,
                t_b,
                &mut carry,
                &mut bar,
                &mut self.p_bar,
                &mut self.ws.scratch,
                &mut self.stats,
            )?;
            self.note(n, &bar);
            if stored.last().is_some_and(|(m, _)| *m == n) {
                if let Some((_, c)) = stored.pop() {
                    drift = worst(drift, Self::relative_drift(&carry, &c));
                    carry = c;
                }
            }
            obs.add(self.scheme, n, &self.cots, &mut bar);
        }
        if let Some(start) = &self.initial {
            drift = worst(drift, Self::relative_drift(&carry, start));
        }
        self.stats.reconstruction_error = Some(drift);
        if let Some(tol) = drift_tolerance {
            if drift.is_nan() || drift > tol {
                return Err(Error::ReconstructionDrift {
                    error: drift,
                    tolerance: tol,
                });
            }
        }
        Ok((value, self.finish(&bar, Start { t0: times[0], y0 }), grid))
    }

    fn direct(
        &mut self,
        y0: &StateOf<S::Map>,
        times: &[f64],
        opts: &SolveOptions,
        evaluate: &mut Eval<'_, StateOf<S::Map>>,
    ) -> Result<(f64, StateOf<S::Map>, Grid)> {
        let mut tapes: Vec<S::Tape> = Vec::new();
        let (carry, grid) = self.forward(y0, times, opts, true, &mut |_, _, tape| {
            tapes.push(tape.clone());
        })?;
        self.stats.peak_stored_states = tapes.len();
        let (value, mut bar) = self.seed(evaluate, &carry)?;
        let mut obs = ObsCursor::new(&grid, self.observe_steps);
        obs.add(self.scheme, grid.len(), &self.cots, &mut bar);
        for n in (0..grid.len()).rev() {
            self.scheme.pullback(
                &tapes[n],
                &mut bar,
                &mut self.p_bar,
                &mut self.ws.scratch,
                &mut self.stats,
            );
            tapes.pop();
            self.note(n, &bar);
            obs.add(self.scheme, n, &self.cots, &mut bar);
        }
        Ok((value, self.finish(&bar, Start { t0: times[0], y0 }), grid))
    }

    fn backsolve(
        &mut self,
        y0: &StateOf<S::Map>,
        times: &[f64],
        opts: &SolveOptions,
        evaluate: &mut Eval<'_, StateOf<S::Map>>,
    ) -> Result<(f64, StateOf<S::Map>, Grid)> {
        if !self.scheme.map().time_reversible() {
            return Err(Error::Unsupported(format!(
                "backsolve integrates backwards in time, which {} does not allow",
                self.scheme.map().name()
            )));
        }
        let (carry, grid) = self.forward(y0, times, opts, false, &mut |_, _, _| {})?;
        self.stats.peak_stored_states = 2;
        let value = evaluate(&self.out_times, &self.outputs, &mut self.cots)?;
        let map = self.scheme.map();
        let y = self.scheme.output(&carry).clone();
        // The adjoint system's state (y, a): a = z.
        let mut ya = Pair {
            z: y.zeros_like(),
            y,
        };
        let mut scratch = map.new_scratch(&ya.y);
        let at = if self.observe_steps {
            (0..=grid.len()).collect()
        } else {
            grid.observation_boundaries()
        };
        let mut next = at.len();
        let one = ScalarOf::<S::Map>::one();
        let mut add = |n: usize, a: &mut StateOf<S::Map>, cots: &[StateOf<S::Map>]| {
            while next > 0 && at[next - 1] == n {
                next -= 1;
                a.axpy(one, &cots[next]);
            }
        };
        add(grid.len(), &mut ya.z, &self.cots);
        for n in (0..grid.len()).rev() {
            let (t_a, t_b) = (grid.t(n), grid.t(n + 1));
            map.adjoint_step(
                t_b,
                t_a,
                &mut ya,
                &mut self.p_bar,
                &mut scratch,
                &mut self.stats,
            );
            if self.first_bad.is_none() && !ya.z.all_finite() {
                self.first_bad = Some(n);
            }
            add(n, &mut ya.z, &self.cots);
        }
        let Pair { y, z: a } = ya;
        if !a.all_finite() || !y.all_finite() {
            return Err(Error::NonFiniteGradient {
                what: "dL/dy0 (backsolve adjoint)".into(),
                step: self.first_bad,
            });
        }
        self.stats.reconstruction_error =
            Some(y.max_abs_diff(y0).as_f64() / y0.max_abs().as_f64().max(1.0));
        Ok((value, a, grid))
    }

    fn checkpointed(
        &mut self,
        y0: &StateOf<S::Map>,
        times: &[f64],
        opts: &SolveOptions,
        snapshots: Option<usize>,
        evaluate: &mut Eval<'_, StateOf<S::Map>>,
    ) -> Result<(f64, StateOf<S::Map>, Grid)> {
        let fixed_n = match &opts.step {
            crate::StepControl::Fixed { h } => Some(crate::solve::Grid::uniform_len(times, *h)?),
            crate::StepControl::Adaptive(_) => None,
        };
        let c = snapshots.unwrap_or_else(|| default_snapshots(fixed_n.unwrap_or(1000)));
        // Where to keep checkpoints during the forward pass.
        let mut chain: Vec<(usize, S::Carry)> = vec![(0, self.init(y0, times))];
        let plan = fixed_n.map(|n| crate::revolve::descent(n, c));
        let mut stride = 1usize;
        let cap = (c / 2).max(1);
        let (carry, grid) = {
            let chain = &mut chain;
            self.forward(y0, times, opts, false, &mut |n, carry, _| {
                let b = n + 1;
                match &plan {
                    Some(p) => {
                        if p.binary_search(&b).is_ok() {
                            chain.push((b, carry.clone()));
                        }
                    }
                    None => {
                        if b % stride == 0 {
                            chain.push((b, carry.clone()));
                            if chain.len() > cap {
                                // Online thinning: keep every other checkpoint, double the stride.
                                stride *= 2;
                                chain.retain(|(m, _)| m % stride == 0);
                            }
                        }
                    }
                }
            })?
        };
        let _ = carry;
        let value = evaluate(&self.out_times, &self.outputs, &mut self.cots)?;
        let mut bar = chain[0].1.zeros_like();
        let total = grid.len();
        let mut obs = ObsCursor::new(&grid, self.observe_steps);
        obs.add(self.scheme, total, &self.cots, &mut bar);
        let mut peak = chain.len();
        let mut end = total;
        let mut rev = crate::revolve::Reverser::new(self.scheme, &grid, &self.cots);
        while let Some((start, state)) = chain.pop() {
            let slots = c.saturating_sub(chain.len()).max(1);
            let seg_peak = rev.reverse(
                start,
                end,
                slots,
                state,
                &mut bar,
                &mut obs,
                &mut self.p_bar,
                &mut self.ws,
                &mut self.stats,
            );
            peak = peak.max(chain.len() + seg_peak);
            end = start;
        }
        self.stats.peak_stored_states = peak;
        self.first_bad = rev.first_bad;
        Ok((value, self.finish(&bar, Start { t0: times[0], y0 }), grid))
    }
}
