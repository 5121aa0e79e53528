//! The time–memory frontier (docs/src/benchmarks.md, "Time–memory frontier"): every gradient
//! method on one problem per family at N ≈ 10³, 10⁴, 10⁵ steps, each point (peak heap, stored
//! states, time per gradient), timed in interleaved rounds on one thread, and the memory budget
//! below which a reversible method is the fastest exact one.

use crate::crossover::{self, Candidate, Crossover, Segment};
use crate::measure::{flat_grad, rel, Flat};
use crate::report::{fmt_bytes, fmt_time, BenchResult};
use crate::Ctx;
use revode_core::gradient::default_snapshots;
use revode_core::prelude::*;
use serde::Serialize;
use std::time::Instant;

impl Flat for Vec<f32> {
    fn flat(&self) -> Vec<f64> {
        self.iter().map(|&x| f64::from(x)).collect()
    }
}

/// Limits of a frontier run.
#[derive(Clone, Debug, Serialize)]
pub struct Settings {
    /// Step counts (each problem rounds them to its own grid, e.g. multiples of 99 for the CDE).
    pub ns: Vec<usize>,
    /// Timed rounds per point, where affordable.
    pub rounds: usize,
    /// Points estimated slower than this (seconds per gradient) are skipped.
    pub max_point_s: f64,
    /// Points estimated to need more heap than this (bytes) are skipped.
    pub max_bytes: f64,
    /// Seconds of timing per point: slower points get fewer rounds (at least one).
    pub point_budget_s: f64,
    /// Problems to run (`complexity`, `compute`, `cde`, `sde`, `pde`).
    pub problems: Vec<String>,
}

/// Rounding-level tolerances of one problem's scalar type.
#[derive(Clone, Copy, Debug)]
pub struct Tol {
    /// Largest relative gradient difference between exact methods of one scheme.
    pub grad: f64,
    /// Largest acceptable reconstruction drift of the plain reversible method.
    pub drift: f64,
    /// Drift tolerance of checkpointed-reversible (auto).
    pub auto: f64,
}

/// f64 problems.
pub const TOL64: Tol = Tol {
    grad: 1e-6,
    drift: 1e-8,
    auto: 1e-10,
};
/// f32 problems (√ε_f32 ≈ 3.5e-4 is the library's default drift check).
pub const TOL32: Tol = Tol {
    grad: 1e-3,
    drift: 3.5e-4,
    auto: 1e-5,
};

/// One measured (method, problem, N).
#[derive(Clone, Debug, Serialize)]
pub struct Point {
    /// Family (ODE, CDE, SDE, PDE).
    pub family: String,
    /// Problem key (complexity, compute, cde, sde, pde).
    pub problem: String,
    /// Steps.
    pub n: usize,
    /// Method label.
    pub method: String,
    /// Scheme name.
    pub scheme: String,
    /// Reversible or checkpointed-reversible.
    pub reversible: bool,
    /// Exact up to rounding (all but backsolve).
    pub exact: bool,
    /// Finite, within tolerance of its reference, drift within tolerance.
    pub valid: bool,
    /// Peak heap above the baseline during one gradient (counting allocator).
    pub peak_bytes: usize,
    /// Peak stored solver states reported by the library.
    pub stored_states: usize,
    /// Field evaluations of one gradient.
    pub evaluations: u64,
    /// Field pullbacks of one gradient.
    pub pullbacks: u64,
    /// Seconds per gradient in each timed round (each the minimum of `reps_per_round` calls).
    pub times_s: Vec<f64>,
    /// Minimum over rounds.
    pub min_s: f64,
    /// Maximum over rounds (the spread is max ÷ min).
    pub max_s: f64,
    /// Calls per round (more than one only for points faster than 50 ms).
    pub reps_per_round: usize,
    /// Relative max-norm difference of (dL/dy0, dL/dθ) from `reference`.
    pub grad_rel_err: Option<f64>,
    /// What the gradient was compared with.
    pub reference: String,
    /// Reconstruction drift, for reversible methods.
    pub drift: Option<f64>,
    /// Checkpoint interval chosen by checkpointed-reversible (auto).
    pub checkpoint_interval: Option<usize>,
    /// Estimated seconds per gradient before running (from a short full-tape calibration).
    pub estimated_s: f64,
    /// Why invalid, or remarks.
    pub note: String,
    /// The library warned that the fixed step is outside the linear stability region (a
    /// remark, as in the cross-family benchmark; the gradient is still checked).
    pub stability_warning: bool,
}

/// A point not run, with why.
#[derive(Clone, Debug, Serialize)]
pub struct Skip {
    /// Family.
    pub family: String,
    /// Problem key.
    pub problem: String,
    /// Steps.
    pub n: usize,
    /// Method label.
    pub method: String,
    /// The reason, with the estimate that decided it.
    pub reason: String,
}

/// The crossover of one (problem, N).
#[derive(Clone, Debug, Serialize)]
pub struct PanelCrossover {
    /// Family.
    pub family: String,
    /// Problem key.
    pub problem: String,
    /// Steps.
    pub n: usize,
    /// Fastest exact method per range of stored-state budgets.
    pub by_states: Vec<Segment>,
    /// Fastest exact method per range of peak-heap budgets (bytes).
    pub by_bytes: Vec<Segment>,
    /// Where reversible is fastest, in stored states.
    pub states: Crossover,
    /// Where reversible is fastest, in bytes.
    pub bytes: Crossover,
    /// One sentence per unit.
    pub summary: String,
}

/// Everything a frontier run measured.
#[derive(Default)]
pub struct Collected {
    /// Measured points.
    pub points: Vec<Point>,
    /// Points not run.
    pub skipped: Vec<Skip>,
}

/// One problem: labels and tolerances.
pub struct Spec<'a> {
    /// Family label.
    pub family: &'a str,
    /// Problem key.
    pub problem: &'a str,
    /// Tolerances of its scalar type.
    pub tol: Tol,
}

type St<R> = <<R as Scheme>::Map as StepMap>::State;

/// One gradient, unchecked drift: the flattened gradient and the stats.
fn once<S, L>(
    s: &S,
    y0: &St<S>,
    times: &[f64],
    opts: &SolveOptions,
    m: &GradientMethod,
    loss: L,
) -> revode_core::Result<(Vec<f64>, Stats)>
where
    S: Scheme,
    <S::Map as StepMap>::ParamGrad: Flat,
    L: Fn(&[St<S>], &mut [St<S>]) -> f64 + Copy,
{
    let go = GradientOptions {
        drift: DriftCheck::Off,
        ..m.clone().into()
    };
    gradient(s, y0, times, opts, &go, loss).map(|g| (flat_grad::<S>(&g), g.stats))
}

/// A method to run at one N: on the reversible scheme or the plain one, and its cost estimate
/// in units of one full-tape step.
struct Planned {
    method: GradientMethod,
    on_rev: bool,
    units: f64,
    tape: bool,
}

fn plan(n: usize, tol: Tol) -> Vec<Planned> {
    let p = |method, on_rev, units, tape| Planned {
        method,
        on_rev,
        units,
        tape,
    };
    let nf = n as f64;
    // Work relative to the full tape (forward + taped pullback ≈ 3 steps per step): reversible
    // adds a reconstruction and a re-taping step (≈ 8/3), revolve adds its recomputation.
    let mut out = vec![
        p(GradientMethod::Reversible, true, 2.7 * nf, false),
        p(
            GradientMethod::CheckpointedReversibleAuto {
                tolerance: tol.auto,
            },
            true,
            3.5 * nf,
            false,
        ),
    ];
    let default_c = default_snapshots(n);
    let mut cs: Vec<usize> = [2, 4, 8, 16, 32].into_iter().filter(|&c| c < n).collect();
    if !cs.contains(&default_c) {
        cs.push(default_c);
    }
    for c in cs {
        let snapshots = if c == default_c { None } else { Some(c) };
        let units = nf + revode_core::revolve::forward_steps(n, c) as f64 / 3.0;
        out.push(p(
            GradientMethod::Checkpointed { snapshots },
            false,
            units,
            false,
        ));
    }
    out.push(p(GradientMethod::Direct, false, nf, true));
    out.push(p(GradientMethod::Backsolve, false, 2.0 * nf, false));
    out
}

/// Runs every planned method of one problem at each N, interleaved over rounds.
#[allow(clippy::too_many_arguments)]
pub fn run_problem<R, P, L>(
    ctx: &Ctx,
    set: &Settings,
    spec: &Spec<'_>,
    rev: &R,
    plain: &P,
    y0: &St<R>,
    grid: impl Fn(usize) -> BenchResult<(usize, Vec<f64>, SolveOptions)>,
    loss: L,
    out: &mut Collected,
) -> BenchResult<()>
where
    R: Scheme,
    P: Scheme<Map = R::Map>,
    <R::Map as StepMap>::ParamGrad: Flat,
    L: Fn(&[St<R>], &mut [St<R>]) -> f64 + Copy,
{
    for &n_wanted in &set.ns {
        let (n, times, opts) = grid(n_wanted)?;
        // Calibration: a short full tape gives seconds and bytes per step.
        let (cal_n, cal_times, cal_opts) = grid(64.min(n_wanted))?;
        let mut cal_t = f64::INFINITY;
        let mut cal_bytes = 0;
        for _ in 0..3 {
            let t = Instant::now();
            let (r, peak, _) = crate::alloc::measure(|| {
                once(
                    plain,
                    y0,
                    &cal_times,
                    &cal_opts,
                    &GradientMethod::Direct,
                    loss,
                )
            });
            cal_t = cal_t.min(t.elapsed().as_secs_f64());
            cal_bytes = peak;
            r?;
        }
        let per_step = cal_t / cal_n as f64;
        let skip = |m: &str, reason: String| Skip {
            family: spec.family.into(),
            problem: spec.problem.into(),
            n,
            method: m.into(),
            reason,
        };
        let mut run: Vec<(Planned, f64)> = Vec::new();
        for pl in plan(n, spec.tol) {
            let est = pl.units * per_step;
            let label = pl.method.label();
            let est_bytes = cal_bytes as f64 / cal_n as f64 * n as f64;
            if pl.tape && est_bytes > set.max_bytes {
                out.skipped.push(skip(
                    &label,
                    format!(
                        "full tape estimated at {} (limit {})",
                        fmt_bytes(est_bytes as usize),
                        fmt_bytes(set.max_bytes as usize)
                    ),
                ));
            } else if est > set.max_point_s {
                out.skipped.push(skip(
                    &label,
                    format!(
                        "estimated {} per gradient (limit {})",
                        fmt_time(est),
                        fmt_time(set.max_point_s)
                    ),
                ));
            } else {
                run.push((pl, est));
            }
        }
        let bar = ctx.bar(run.len() as u64, &format!("{} {n}", spec.problem));
        // Round 0: memory, counts and the gradient of each method.
        let mut points: Vec<Point> = Vec::new();
        let mut grads: Vec<Option<Vec<f64>>> = Vec::new();
        let mut rounds: Vec<usize> = Vec::new();
        for (pl, est) in &run {
            let t = Instant::now();
            let (r, peak, _) = crate::alloc::measure(|| {
                if pl.on_rev {
                    once(rev, y0, &times, &opts, &pl.method, loss)
                } else {
                    once(plain, y0, &times, &opts, &pl.method, loss)
                }
            });
            let t0 = t.elapsed().as_secs_f64();
            let mut pt = Point {
                family: spec.family.into(),
                problem: spec.problem.into(),
                n,
                method: pl.method.label(),
                scheme: if pl.on_rev { rev.name() } else { plain.name() },
                reversible: pl.on_rev,
                exact: !matches!(pl.method, GradientMethod::Backsolve),
                valid: false,
                peak_bytes: peak,
                stored_states: 0,
                evaluations: 0,
                pullbacks: 0,
                times_s: Vec::new(),
                min_s: f64::NAN,
                max_s: f64::NAN,
                reps_per_round: ((0.05 / t0).ceil() as usize).clamp(1, 200),
                grad_rel_err: None,
                reference: String::new(),
                drift: None,
                checkpoint_interval: None,
                estimated_s: *est,
                note: String::new(),
                stability_warning: false,
            };
            let n_rounds = ((set.point_budget_s / t0).floor() as usize).clamp(1, set.rounds);
            match r {
                Ok((g, stats)) => {
                    pt.stored_states = stats.peak_stored_states;
                    pt.evaluations = stats.evaluations;
                    pt.pullbacks = stats.pullbacks;
                    pt.drift = stats.reconstruction_error;
                    pt.checkpoint_interval = stats.checkpoint_interval;
                    pt.stability_warning = !stats.warnings.is_empty();
                    if !g.iter().all(|v| v.is_finite()) {
                        pt.note = "non-finite gradient".into();
                    }
                    // A point timed once keeps the measuring run as its round.
                    if n_rounds == 1 {
                        pt.times_s.push(t0);
                        pt.reps_per_round = 1;
                    }
                    grads.push(Some(g));
                }
                Err(e) => {
                    pt.note = format!("error: {e}");
                    grads.push(None);
                }
            }
            rounds.push(
                if grads.last().is_some_and(|g| g.is_some()) && n_rounds > 1 {
                    n_rounds
                } else {
                    0
                },
            );
            points.push(pt);
            bar.inc(1);
        }
        bar.finish_and_clear();
        check(&mut points, &grads, spec.tol);
        // Timed rounds, interleaved: round k visits the methods starting at the k-th.
        let max_rounds = rounds.iter().copied().max().unwrap_or(0);
        for k in 0..max_rounds {
            for j in 0..points.len() {
                let i = (j + k) % points.len();
                if rounds[i] <= k {
                    continue;
                }
                let pl = &run[i].0;
                let mut best = f64::INFINITY;
                for _ in 0..points[i].reps_per_round {
                    let t = Instant::now();
                    let _ = if pl.on_rev {
                        once(rev, y0, &times, &opts, &pl.method, loss)
                    } else {
                        once(plain, y0, &times, &opts, &pl.method, loss)
                    };
                    best = best.min(t.elapsed().as_secs_f64());
                }
                points[i].times_s.push(best);
            }
        }
        for p in &mut points {
            if !p.times_s.is_empty() {
                p.min_s = p.times_s.iter().copied().fold(f64::INFINITY, f64::min);
                p.max_s = p.times_s.iter().copied().fold(0.0, f64::max);
            }
            eprintln!(
                "  {} N={} {:<40} {:>10} {:>10} stored {:>6} {}",
                p.problem,
                p.n,
                p.method,
                fmt_time(p.min_s),
                fmt_bytes(p.peak_bytes),
                p.stored_states,
                if p.valid { "" } else { "INVALID" }
            );
        }
        out.points.extend(points);
    }
    Ok(())
}

/// Marks each point valid or not: plain methods against the full tape (or, where the tape was
/// skipped, against checkpointing with the default c), reversible ones against
/// checkpointed-reversible (auto), the plain reversible method also by its drift.
fn check(points: &mut [Point], grads: &[Option<Vec<f64>>], tol: Tol) {
    let find = |pred: &dyn Fn(&Point) -> bool| {
        points
            .iter()
            .zip(grads)
            .find(|(p, g)| pred(p) && g.is_some() && p.note.is_empty())
            .map(|(p, g)| (p.method.clone(), g.clone().unwrap_or_default()))
    };
    let plain_ref =
        find(&|p| p.method == "direct").or_else(|| find(&|p| p.method == "checkpointed(default)"));
    let rev_ref = find(&|p| p.method.starts_with("checkpointed-reversible"));
    for (p, g) in points.iter_mut().zip(grads) {
        let Some(g) = g else { continue };
        let reference = if p.reversible { &rev_ref } else { &plain_ref };
        let mut problems = Vec::new();
        if !p.note.is_empty() {
            problems.push(p.note.clone());
        }
        if let Some((name, r)) = reference {
            p.reference = name.clone();
            let e = rel(g, r);
            p.grad_rel_err = Some(e);
            if p.exact && (e.is_nan() || e > tol.grad) {
                problems.push(format!("differs from {name} by {e:.1e}"));
            }
        }
        if p.method == "reversible" {
            if let Some(d) = p.drift {
                if d.is_nan() || d > tol.drift {
                    problems.push(format!("reconstruction drift {d:.1e}"));
                }
            }
        }
        p.valid = problems.is_empty();
        if p.stability_warning {
            problems.push("outside the linear stability region (warning)".into());
        }
        p.note = problems.join("; ");
    }
}

/// The crossover of every (problem, N) from the valid exact points.
pub fn crossovers(points: &[Point]) -> Vec<PanelCrossover> {
    let mut keys: Vec<(String, String, usize)> = points
        .iter()
        .map(|p| (p.family.clone(), p.problem.clone(), p.n))
        .collect();
    keys.dedup();
    let mut out = Vec::new();
    for (family, problem, n) in keys {
        let pts: Vec<&Point> = points
            .iter()
            .filter(|p| p.problem == problem && p.n == n && p.exact && p.valid)
            .filter(|p| !p.times_s.is_empty())
            .collect();
        let cands = |bytes: bool| -> Vec<Candidate<'_>> {
            pts.iter()
                .map(|p| Candidate {
                    label: &p.method,
                    reversible: p.reversible,
                    memory: if bytes {
                        p.peak_bytes as f64
                    } else {
                        p.stored_states as f64
                    },
                    times: &p.times_s,
                })
                .collect()
        };
        let by_states = crossover::segments(&cands(false));
        let by_bytes = crossover::segments(&cands(true));
        let states = crossover::crossover(&by_states);
        let bytes = crossover::crossover(&by_bytes);
        let summary = format!(
            "{}; {}",
            sentence(&states, &by_states, "stored states", &|v| format!("{v:.0}")),
            sentence(&bytes, &by_bytes, "peak heap", &|v| fmt_bytes(v as usize))
        );
        out.push(PanelCrossover {
            family,
            problem,
            n,
            by_states,
            by_bytes,
            states,
            bytes,
            summary,
        });
    }
    out
}

/// The crossover in words.
fn sentence(c: &Crossover, segs: &[Segment], unit: &str, fmt: &dyn Fn(f64) -> String) -> String {
    let Some(from) = c.from else {
        // Where reversible first fits, who beats it and by how much.
        let beaten = segs
            .iter()
            .find(|s| s.rival.as_deref().is_some_and(|r| r.contains("reversible")));
        return match beaten {
            Some(s) => format!(
                "by {unit}: reversible is never the fastest exact method ({} is {:.2}× faster where reversible first fits)",
                s.winner,
                s.ratio.unwrap_or(f64::NAN)
            ),
            None => format!("by {unit}: no valid reversible point"),
        };
    };
    let range = match c.below {
        Some(b) => format!("from {} up to (not including) {}", fmt(from), fmt(b)),
        None => format!("from {} at every budget", fmt(from)),
    };
    match &c.least_speedup {
        Some((r, rival, (lo, hi))) => format!(
            "by {unit}: reversible is the fastest exact method {range}, at least {r:.2}× faster than {rival} (per round {lo:.2}–{hi:.2}×), up to {:.2}×",
            c.most_speedup.unwrap_or(*r)
        ),
        None => format!("by {unit}: reversible is the only exact method {range}"),
    }
}
