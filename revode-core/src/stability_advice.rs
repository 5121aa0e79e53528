//! Advice on λ, h and the checkpoint interval for a concrete field along a concrete
//! trajectory: the Jacobian spectrum is sampled along a plain solve, and the stability
//! analysis ([`crate::stability`]) turns it into a choice with its reasons.
//!
//! λ: keep `preferred` when h is acceptable there for every sampled eigenvalue; otherwise take
//! the largest stable λ below it, moved inward by half its distance to 1 (λ_max − (1 − λ_max)/2,
//! never below the range's lower end). Interval: the longest k with a^k ε ≤ tolerance, where a is
//! the backward amplification max|μ|/λ over the samples.

use crate::stability::{
    backward_amplification, checkpoint_interval, eigenvalues, max_stable_step, stable_lambda_range,
};
use crate::{solve, Error, Plain, Result, SolveOptions, State, StepMap};
use num_complex::Complex64;
use serde::Serialize;

/// Largest state whose dense Jacobian the advice samples (one VJP per entry).
pub const MAX_ADVICE_DIM: usize = 64;

/// What the analysis advises, with its reasons.
#[derive(Clone, Debug, Serialize)]
pub struct LambdaAdvice {
    /// λ to use.
    pub lambda: f64,
    /// Intervals of λ ∈ (0, 1] for which h is acceptable along the trajectory.
    pub ranges: Vec<(f64, f64)>,
    /// Largest acceptable h at the chosen λ (`None` when no step is, e.g. imaginary modes).
    pub max_stable_h: Option<f64>,
    /// Per-step growth of reconstruction round-off at the chosen λ.
    pub amplification: f64,
    /// Checkpoint interval keeping the drift below the tolerance (checkpointed-reversible;
    /// `usize::MAX` when round-off does not grow).
    pub interval: usize,
    /// How many eigenvalues were sampled, and at how many states.
    pub sampled: (usize, usize),
    /// Why: one sentence per decision.
    pub reasons: Vec<String>,
}

/// Eigenvalues α of the field's Jacobian at `samples` + 1 states of a plain solve of `map`
/// from `y0` over `[t0, t1]` with step `h` (the linearisation holds hα; h is divided out).
/// States with more than [`MAX_ADVICE_DIM`] entries are [`Error::Unsupported`].
pub fn spectrum_along<M>(
    map: &M,
    y0: &M::State,
    (t0, t1): (f64, f64),
    h: f64,
    samples: usize,
) -> Result<Vec<Complex64>>
where
    M: StepMap + Clone,
{
    let n = y0.len();
    if n > MAX_ADVICE_DIM {
        return Err(Error::Unsupported(format!(
            "stability advice samples the dense Jacobian of states up to {MAX_ADVICE_DIM} entries \
             (this one has {n}); use stability::ritz_values on a linearised VJP instead"
        )));
    }
    let samples = samples.max(1);
    let times: Vec<f64> = (0..=samples)
        .map(|i| t0 + (t1 - t0) * i as f64 / samples as f64)
        .collect();
    let sol = solve(
        &Plain::new(map.clone()),
        y0,
        &times,
        &SolveOptions::fixed(h),
    )?;
    let mut out = Vec::new();
    for (t, y) in times.iter().zip(&sol.ys) {
        if let Some(j) = map.linearisation(*t, t + h, y, MAX_ADVICE_DIM) {
            out.extend(eigenvalues(&j, n)?.into_iter().map(|x| x / h));
        }
    }
    if out.is_empty() {
        return Err(Error::Unsupported(
            "the step map has no linearisation to sample (no pullback of its term)".into(),
        ));
    }
    Ok(out)
}

/// The advice ([module docs](self)) for `map` along the solve from `y0` over `span` with step
/// `h`, sampling 21 states; `tolerance` is the reconstruction drift to keep below.
pub fn advise_along<M>(
    map: &M,
    y0: &M::State,
    span: (f64, f64),
    h: f64,
    preferred: f64,
    tolerance: f64,
) -> Result<LambdaAdvice>
where
    M: StepMap + Clone,
{
    if !(preferred > 0.0 && preferred <= 1.0) {
        return Err(Error::InvalidCoupling { lambda: preferred });
    }
    let tableau = map
        .tableau()
        .ok_or_else(|| Error::Unsupported("advice needs a Runge–Kutta step map".into()))?;
    let states = 21;
    let spectrum = spectrum_along(map, y0, span, h, states - 1)?;
    let ranges = stable_lambda_range(tableau, h, &spectrum, 2000)?;
    let mut reasons = Vec::new();
    let most_negative = spectrum.iter().map(|a| a.re).fold(f64::INFINITY, f64::min);
    let largest_imag = spectrum.iter().map(|a| a.im.abs()).fold(0.0, f64::max);
    reasons.push(format!(
        "sampled {} eigenvalues at {states} states: real parts down to {most_negative:.3e}, \
         imaginary parts up to {largest_imag:.3e}",
        spectrum.len()
    ));
    let inside = ranges
        .iter()
        .any(|&(lo, hi)| lo <= preferred && preferred <= hi);
    let lambda = if inside {
        reasons.push(format!(
            "h = {h} is acceptable at λ = {preferred} for every sampled mode: kept"
        ));
        preferred
    } else {
        let chosen = ranges
            .iter()
            .filter(|(lo, _)| *lo < preferred)
            .map(|&(lo, hi)| {
                let hi = hi.min(preferred);
                (hi - 0.5 * (1.0 - hi)).max(lo)
            })
            .fold(f64::NAN, f64::max);
        if chosen.is_nan() {
            return Err(Error::config(
                "stability advice",
                format!(
                    "no λ ≤ {preferred} makes h = {h} acceptable for the sampled spectrum \
                     (real parts down to {most_negative:.3e}): lower h"
                ),
            ));
        }
        reasons.push(format!(
            "h = {h} is not acceptable at λ = {preferred}; acceptable λ: {ranges:?}; chose \
             λ = {chosen:.6} (moved in from the largest stable λ by half its distance to 1)"
        ));
        chosen
    };
    let xs: Vec<Complex64> = spectrum.iter().map(|a| a * h).collect();
    let amplification = backward_amplification(tableau, lambda, &xs);
    let interval = checkpoint_interval(amplification, tolerance, f64::EPSILON);
    reasons.push(if interval == usize::MAX {
        "reconstruction round-off does not grow: the plain reversible gradient suffices".into()
    } else {
        format!(
            "reconstruction round-off grows by {amplification:.6} per backward step: store the \
             carry every {interval} steps (GradientMethod::CheckpointedReversible) to keep the \
             drift below {tolerance:e} when a solve is longer"
        )
    });
    let max_stable_h = max_stable_step(tableau, lambda, &spectrum, 1e3 * h)?;
    reasons.push(match max_stable_h {
        Some(hm) => format!("at λ = {lambda:.6} steps up to h = {hm:.4e} are acceptable"),
        None => format!("at λ = {lambda:.6} no step is acceptable for every sampled mode"),
    });
    Ok(LambdaAdvice {
        lambda,
        ranges,
        max_stable_h,
        amplification,
        interval,
        sampled: (spectrum.len(), states),
        reasons,
    })
}
