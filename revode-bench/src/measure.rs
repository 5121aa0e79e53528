//! Timing and memory measurement of one gradient method, as a result row.

use crate::alloc;
use revode_core::{
    gradient, gradient::DriftCheck, gradient::GradientOf, step_map::StepMap, GradientMethod,
    GradientOptions, Scheme, SolveOptions, State,
};
use serde::Serialize;
use std::time::Instant;

/// A flat `f64` view of a parameter cotangent, for comparing methods.
pub trait Flat {
    /// The entries as `f64`.
    fn flat(&self) -> Vec<f64>;
}

impl Flat for Vec<f64> {
    fn flat(&self) -> Vec<f64> {
        self.clone()
    }
}

/// One measured gradient computation.
#[derive(Clone, Debug, Serialize)]
pub struct Row {
    /// ODE, CDE, SDE or PDE.
    pub family: String,
    /// The problem.
    pub problem: String,
    /// The scheme (plain base method or reversible coupling).
    pub scheme: String,
    /// The gradient method.
    pub method: String,
    /// Number of steps.
    pub n: usize,
    /// Median wall time per gradient, when the result is valid.
    pub median_s: Option<f64>,
    /// Median wall time of a run whose result is invalid (what the work cost; not a result).
    pub invalid_time_s: Option<f64>,
    /// Repetitions timed.
    pub reps: usize,
    /// Peak heap bytes above the baseline during one gradient.
    pub peak_bytes: usize,
    /// Heap allocations during one gradient.
    pub allocations: u64,
    /// Peak stored states reported by the method.
    pub stored_states: usize,
    /// Vector-field evaluations.
    pub evaluations: u64,
    /// Vector-field pullbacks.
    pub pullbacks: u64,
    /// Relative error of (dL/dy0, dL/dθ) against the full tape of the same scheme.
    pub grad_rel_err: Option<f64>,
    /// Reconstruction error of y0, when the method reconstructs.
    pub reconstruction_error: Option<f64>,
    /// Whether the result is trustworthy (finite, exact where it should be, no divergence).
    pub valid: bool,
    /// Why a row is invalid, or other remarks.
    pub note: String,
    /// Time per gradient over the full tape's (`direct`) of the same family and N, measured in
    /// the same run (see [`fill_ratios`]).
    pub ratio_to_direct: Option<f64>,
}

/// Sets every valid row's [`Row::ratio_to_direct`] from the `direct` row of its family and N.
pub fn fill_ratios(rows: &mut [Row]) {
    let direct: Vec<(String, usize, f64)> = rows
        .iter()
        .filter(|r| r.method == "direct")
        .filter_map(|r| r.median_s.map(|t| (r.family.clone(), r.n, t)))
        .collect();
    for r in rows.iter_mut() {
        r.ratio_to_direct = direct
            .iter()
            .find(|(f, n, _)| *f == r.family && *n == r.n)
            .and_then(|&(_, _, d)| r.median_s.map(|t| t / d));
    }
}

/// Median wall time of `f` over repetitions: at least 3 runs and `min_total` seconds, at most
/// `max_reps` runs.
pub fn median_time(min_total: f64, max_reps: usize, mut f: impl FnMut()) -> (f64, usize) {
    let mut times = Vec::new();
    let start = Instant::now();
    while times.len() < max_reps.max(1) {
        let t = Instant::now();
        f();
        times.push(t.elapsed().as_secs_f64());
        if times.len() >= 3 && start.elapsed().as_secs_f64() >= min_total {
            break;
        }
    }
    times.sort_by(|a, b| a.total_cmp(b));
    (times[times.len() / 2], times.len())
}

/// Relative max-norm error of `a` against `b`.
pub fn rel(a: &[f64], b: &[f64]) -> f64 {
    let scale = b.iter().fold(0.0f64, |m, v| m.max(v.abs())).max(1e-300);
    a.iter()
        .zip(b)
        .fold(0.0f64, |m, (x, y)| m.max((x - y).abs()))
        / scale
}

/// Flattened (dL/dy0, dL/dθ).
pub fn flat_grad<S: Scheme>(g: &GradientOf<S>) -> Vec<f64>
where
    <S::Map as StepMap>::ParamGrad: Flat,
{
    let mut v = g.y0.to_f64_vec();
    v.extend(g.params.flat());
    v
}

/// The full-tape gradient of `scheme`, flattened: the reference every other method is compared
/// with.
pub fn tape_reference<S, L>(
    scheme: &S,
    y0: &<S::Map as StepMap>::State,
    times: &[f64],
    opts: &SolveOptions,
    loss: L,
) -> revode_core::Result<Vec<f64>>
where
    S: Scheme,
    <S::Map as StepMap>::ParamGrad: Flat,
    L: Fn(&[<S::Map as StepMap>::State], &mut [<S::Map as StepMap>::State]) -> f64,
{
    let g = gradient(
        scheme,
        y0,
        times,
        opts,
        &GradientMethod::Direct.into(),
        loss,
    )?;
    Ok(flat_grad::<S>(&g))
}

/// What a row is measured against and how long to time it.
pub struct Setup<'a> {
    /// Family label.
    pub family: &'a str,
    /// Problem label.
    pub problem: &'a str,
    /// Reference gradient (full tape of the same scheme), flattened.
    pub reference: Option<&'a [f64]>,
    /// Minimum timing budget in seconds.
    pub min_time: f64,
    /// Maximum repetitions.
    pub max_reps: usize,
}

/// Measures one gradient method on one scheme: memory and counts from one run, then the
/// median time, unless the result is invalid (then no time is reported).
#[allow(clippy::too_many_arguments)]
pub fn gradient_row<S, L>(
    setup: &Setup<'_>,
    scheme: &S,
    y0: &<S::Map as StepMap>::State,
    times: &[f64],
    opts: &SolveOptions,
    method: GradientMethod,
    loss: L,
) -> (Row, Option<Vec<f64>>)
where
    S: Scheme,
    <S::Map as StepMap>::ParamGrad: Flat,
    L: Fn(&[<S::Map as StepMap>::State], &mut [<S::Map as StepMap>::State]) -> f64 + Copy,
{
    let label = method.label();
    // The bench classifies drift itself (and still times a drifted run, marked invalid), so it
    // opts out of the library's default drift error.
    let grad_opts = GradientOptions {
        drift: DriftCheck::Off,
        ..method.clone().into()
    };
    let (result, peak, allocs) =
        alloc::measure(|| gradient(scheme, y0, times, opts, &grad_opts, loss));
    let mut row = Row {
        family: setup.family.into(),
        problem: setup.problem.into(),
        scheme: scheme.name(),
        method: label,
        n: 0,
        median_s: None,
        invalid_time_s: None,
        reps: 0,
        peak_bytes: peak,
        allocations: allocs,
        stored_states: 0,
        evaluations: 0,
        pullbacks: 0,
        grad_rel_err: None,
        reconstruction_error: None,
        valid: false,
        note: String::new(),
        ratio_to_direct: None,
    };
    let g = match result {
        Ok(g) => g,
        Err(e) => {
            row.note = format!("error: {e}");
            return (row, None);
        }
    };
    row.n = g.steps;
    row.stored_states = g.stats.peak_stored_states;
    row.evaluations = g.stats.evaluations;
    row.pullbacks = g.stats.pullbacks;
    row.reconstruction_error = g.stats.reconstruction_error;
    let flat = flat_grad::<S>(&g);
    let finite = flat.iter().all(|v| v.is_finite());
    row.grad_rel_err = setup.reference.map(|r| rel(&flat, r));
    let exact_method = !matches!(method, GradientMethod::Backsolve);
    let mut problems = Vec::new();
    if !finite {
        problems.push("non-finite gradient".to_string());
    }
    if exact_method {
        if let Some(e) = row.grad_rel_err {
            if e.is_nan() || e > 1e-6 {
                problems.push(format!("differs from the tape by {e:.1e}"));
            }
        }
        if let Some(d) = row.reconstruction_error {
            if d.is_nan() || d > 1e-8 {
                problems.push(format!("reconstruction drift {d:.1e}"));
            }
        }
    }
    if !g.stats.warnings.is_empty() {
        row.note = "outside the linear stability region".into();
    }
    let (t, reps) = median_time(setup.min_time, setup.max_reps, || {
        let _ = gradient(scheme, y0, times, opts, &grad_opts, loss);
    });
    row.reps = reps;
    if problems.is_empty() {
        row.valid = true;
        row.median_s = Some(t);
    } else {
        row.invalid_time_s = Some(t);
        let joined = problems.join("; ");
        row.note = if row.note.is_empty() {
            joined
        } else {
            format!("{}; {joined}", row.note)
        };
    }
    (row, Some(flat))
}

/// What one family contributes at one N: a reversible scheme and its plain base method.
pub struct Family<'a> {
    /// Family label.
    pub family: &'a str,
    /// Problem label.
    pub problem: &'a str,
    /// Minimum timing budget in seconds.
    pub min_time: f64,
    /// Maximum repetitions.
    pub max_reps: usize,
}

/// Every gradient method at one N: `reversible_methods` on the reversible scheme (checked
/// against its own tape), then direct, checkpointed (c ≈ √(2N)) and backsolve on the plain base
/// method (checked against its tape).
#[allow(clippy::too_many_arguments)]
pub fn family_rows<R, P, L>(
    f: &Family<'_>,
    rev: &R,
    plain: &P,
    y0: &<R::Map as StepMap>::State,
    times: &[f64],
    opts: &SolveOptions,
    reversible_methods: &[GradientMethod],
    loss: L,
) -> revode_core::Result<Vec<Row>>
where
    R: Scheme,
    P: Scheme<Map = R::Map>,
    <R::Map as StepMap>::ParamGrad: Flat,
    L: Fn(&[<R::Map as StepMap>::State], &mut [<R::Map as StepMap>::State]) -> f64 + Copy,
{
    let mut rows = Vec::new();
    for (scheme_rows, reference) in [
        (true, tape_reference(rev, y0, times, opts, loss)?),
        (false, tape_reference(plain, y0, times, opts, loss)?),
    ] {
        let setup = Setup {
            family: f.family,
            problem: f.problem,
            reference: Some(&reference),
            min_time: f.min_time,
            max_reps: f.max_reps,
        };
        if scheme_rows {
            for m in reversible_methods {
                rows.push(gradient_row(&setup, rev, y0, times, opts, m.clone(), loss).0);
            }
        } else {
            for m in [
                GradientMethod::Direct,
                GradientMethod::Checkpointed { snapshots: None },
                GradientMethod::Backsolve,
            ] {
                rows.push(gradient_row(&setup, plain, y0, times, opts, m, loss).0);
            }
        }
    }
    Ok(rows)
}

#[cfg(test)]
mod ratio_tests {
    use super::*;

    fn row(family: &str, n: usize, method: &str, t: Option<f64>) -> Row {
        Row {
            family: family.into(),
            problem: String::new(),
            scheme: String::new(),
            method: method.into(),
            n,
            median_s: t,
            invalid_time_s: None,
            reps: 1,
            peak_bytes: 0,
            allocations: 0,
            stored_states: 0,
            evaluations: 0,
            pullbacks: 0,
            grad_rel_err: None,
            reconstruction_error: None,
            valid: t.is_some(),
            note: String::new(),
            ratio_to_direct: None,
        }
    }

    #[test]
    fn ratios_use_the_direct_row_of_the_same_family_and_n() {
        let mut rows = vec![
            row("SDE", 64, "reversible", Some(3.0)),
            row("SDE", 64, "direct", Some(4.0)),
            row("SDE", 256, "direct", Some(10.0)),
            row("SDE", 256, "reversible", None),
            row("ODE", 64, "reversible", Some(1.0)),
        ];
        fill_ratios(&mut rows);
        let r: Vec<Option<f64>> = rows.iter().map(|r| r.ratio_to_direct).collect();
        assert_eq!(r, vec![Some(0.75), Some(1.0), Some(1.0), None, None]);
    }
}
