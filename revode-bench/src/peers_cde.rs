//! The neural-CDE peer problem: one loss and gradient of the spirals classifier (256 series of
//! 100 points, channels (t, x, y), hidden 8, field 8 → 16 → 8 × 3, linear readout, mean
//! cross-entropy), exported for torchcde.
//!
//! revode's classifier integrates with reversible midpoint; torchcde has no reversible solver, so
//! the equality check uses the same model with plain explicit midpoint (one step per knot): the
//! library's [`NcdeClassifier`] with `lambda: None`, whose direct and checkpointed methods are the
//! counterparts (same parameters, same flat layout). With one step per knot
//! the step's control is the data increment x_{k+1} − x_k for every stage, whatever the
//! interpolation between knots, which is what a linear path with left-closed intervals gives.
//!
//! Flat parameters (as [`NcdeClassifier`]): ζ weight (hidden × channels, row-major) and bias;
//! the field (per layer: weight out × in row-major, then bias; the last layer's hidden × channels
//! outputs, row-major as a hidden × channels matrix, pass through tanh); readout weight
//! (classes × hidden) and bias.

use crate::report::BenchResult;
use revode_cde::datasets::spirals;
use revode_cde::{FieldBackend, NcdeClassifier, Path, PathOptions};
use revode_core::{GradientMethod, SolveOptions, Tableau};
use serde::Serialize;

const SERIES: usize = 256;
const LEN: usize = 100;

/// The problem's pieces.
pub struct Cde {
    model: NcdeClassifier,
    plain: NcdeClassifier,
    path: Path,
    labels: Vec<usize>,
    opts: SolveOptions,
    params: Vec<f64>,
}

/// The spirals training setting of `revode-bench spirals` (native field), parameters seed 0.
pub fn setup() -> BenchResult<Cde> {
    let (data, labels) = spirals(SERIES, LEN, 0.05, 1);
    let path = Path::new(
        &data,
        &PathOptions {
            time_channel: true,
            ..Default::default()
        },
    )?;
    let model = NcdeClassifier {
        hidden: 8,
        channels: path.channels(),
        classes: 2,
        width: 16,
        depth: 1,
        tableau: Tableau::midpoint(),
        lambda: Some(0.999),
        backend: FieldBackend::Native,
    };
    let params = model.init(0)?;
    let opts = SolveOptions::fixed(1.0 / (LEN - 1) as f64);
    let plain = NcdeClassifier {
        lambda: None,
        ..model.clone()
    };
    Ok(Cde {
        model,
        plain,
        path,
        labels,
        opts,
        params,
    })
}

/// (loss, flat gradient, steps) of one training step: the reversible methods use revode's
/// classifier (reversible midpoint); `direct`, `checkpointed` (and backsolve) solve the same model
/// with plain midpoint (`lambda: None`).
pub fn loss_and_grad(c: &Cde, method: &GradientMethod) -> BenchResult<(f64, Vec<f64>, usize)> {
    let model = match method {
        GradientMethod::Reversible
        | GradientMethod::CheckpointedReversible { .. }
        | GradientMethod::CheckpointedReversibleAuto { .. } => &c.model,
        GradientMethod::Direct
        | GradientMethod::Checkpointed { .. }
        | GradientMethod::Backsolve => &c.plain,
    };
    let r = model.loss_and_grad(&c.params, &c.path, &c.labels, &c.opts, method.clone())?;
    Ok((r.loss, r.grad, r.steps))
}

#[derive(Serialize)]
struct GradOut {
    method: String,
    loss: f64,
    grad_params: Vec<f64>,
    grad_y0: Vec<f64>,
    steps: usize,
}

#[derive(Serialize)]
struct CdeProblem {
    name: &'static str,
    description: String,
    dtype: &'static str,
    solver: &'static str,
    batch: usize,
    hidden: usize,
    channels: usize,
    classes: usize,
    width: usize,
    depth: usize,
    /// The knots (observation times); one solver step per knot interval.
    knots: Vec<f64>,
    /// The path at each knot, `batch × channels` row-major (channel 0 is time).
    values: Vec<Vec<f64>>,
    labels: Vec<usize>,
    /// Flat parameters in the order of the module doc.
    params: Vec<f64>,
    /// (out, in) of each field layer.
    field_layers: Vec<(usize, usize)>,
    loss: &'static str,
    reference: GradOut,
    reversible: GradOut,
}

/// The exported problem as JSON-ready data.
pub fn problem() -> BenchResult<impl Serialize> {
    let c = setup()?;
    let m = &c.model;
    let mut values = Vec::new();
    for &t in c.path.knots() {
        let mut v = vec![0.0; c.path.batch() * m.channels];
        c.path.evaluate(t, &mut v)?;
        values.push(v);
    }
    let out = |method: GradientMethod| -> BenchResult<GradOut> {
        let (loss, grad, steps) = loss_and_grad(&c, &method)?;
        Ok(GradOut {
            method: method.label(),
            loss,
            grad_params: grad,
            grad_y0: Vec::new(),
            steps,
        })
    };
    Ok(CdeProblem {
        name: "cde",
        description: format!(
            "neural CDE classifier on {SERIES} spirals of {LEN} points, channels (t, x, y): \
             z0 = linear(x(t0)), dz = tanh(MLP {h} -> {w} (tanh) -> {h}x{c}) dX, logits = \
             linear(z(T)), mean cross-entropy; one midpoint step per knot interval. Check: plain \
             midpoint; revode's classifier (reversible midpoint) is timed as 'reversible'",
            h = m.hidden,
            w = m.width,
            c = m.channels
        ),
        dtype: "float64",
        solver: "midpoint",
        batch: c.path.batch(),
        hidden: m.hidden,
        channels: m.channels,
        classes: m.classes,
        width: m.width,
        depth: m.depth,
        knots: c.path.knots().to_vec(),
        values,
        labels: c.labels.clone(),
        params: c.params.clone(),
        field_layers: vec![(m.width, m.hidden), (m.hidden * m.channels, m.width)],
        loss: "mean cross-entropy",
        reference: out(GradientMethod::Direct)?,
        reversible: out(GradientMethod::Reversible)?,
    })
}
