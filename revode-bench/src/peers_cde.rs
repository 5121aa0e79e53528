//! The neural-CDE peer problem: one loss and gradient of the spirals classifier (256 series of
//! 100 points, channels (t, x, y), hidden 8, field 8 → 16 → 8 × 3, linear readout, mean
//! cross-entropy), exported for torchcde.
//!
//! revode's classifier integrates with reversible midpoint; torchcde has no reversible solver, so
//! the equality check uses the same model with plain explicit midpoint (one step per knot), for
//! which revode's direct and checkpointed methods are the counterparts. With one step per knot
//! the step's control is the data increment x_{k+1} − x_k for every stage, whatever the
//! interpolation between knots, which is what a linear path with left-closed intervals gives.
//!
//! Flat parameters (as [`NcdeClassifier`]): ζ weight (hidden × channels, row-major) and bias;
//! the field (per layer: weight out × in row-major, then bias; the last layer's hidden × channels
//! outputs, row-major as a hidden × channels matrix, pass through tanh); readout weight
//! (classes × hidden) and bias.

use crate::report::BenchResult;
use revode_cde::datasets::spirals;
use revode_cde::{CdeMlp, CdeTerm, FieldBackend, NcdeClassifier, Path, PathOptions};
use revode_core::{gradient, GradientMethod, GradientOptions, Plain, Rk, SolveOptions, Tableau};
use serde::Serialize;

const SERIES: usize = 256;
const LEN: usize = 100;

/// The problem's pieces.
pub struct Cde {
    model: NcdeClassifier,
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
        lambda: 0.999,
        backend: FieldBackend::Native,
    };
    let params = model.init(0)?;
    let opts = SolveOptions::fixed(1.0 / (LEN - 1) as f64);
    Ok(Cde {
        model,
        path,
        labels,
        opts,
        params,
    })
}

/// (loss, flat gradient, steps) of one training step: `reversible` is revode's classifier
/// (reversible midpoint); `direct` and `checkpointed` solve the same model with plain midpoint.
pub fn loss_and_grad(c: &Cde, method: &GradientMethod) -> BenchResult<(f64, Vec<f64>, usize)> {
    if matches!(method, GradientMethod::Reversible) {
        let r = c
            .model
            .loss_and_grad(&c.params, &c.path, &c.labels, &c.opts, method.clone())?;
        return Ok((r.loss, r.grad, r.steps));
    }
    let m = &c.model;
    let (h, ch, k) = (m.hidden, m.channels, m.classes);
    let batch = c.path.batch();
    let nz = h * ch + h;
    let field_len = c.params.len() - nz - k * h - k;
    let (zeta, rest) = c.params.split_at(nz);
    let (field, readout) = rest.split_at(field_len);
    // z0 = ζ(x(t0)).
    let mut x0 = vec![0.0; batch * ch];
    c.path.evaluate(c.path.domain().0, &mut x0)?;
    let mut z0 = vec![0.0; batch * h];
    for b in 0..batch {
        for i in 0..h {
            z0[b * h + i] = zeta[h * ch + i]
                + (0..ch)
                    .map(|j| zeta[i * ch + j] * x0[b * ch + j])
                    .sum::<f64>();
        }
    }
    let f = CdeMlp::new(h, ch, m.width, m.depth, false, 0)?.with_params(field)?;
    let scheme = Plain::new(Rk::new(
        CdeTerm::new(f, c.path.clone())?,
        Tableau::midpoint(),
    ));
    let mut readout_grad = vec![0.0; readout.len()];
    let go: GradientOptions = method.clone().into();
    let g = gradient(&scheme, &z0, c.path.knots(), &c.opts, &go, |ys, cots| {
        let last = ys.len() - 1;
        let (z, cot) = (&ys[last], &mut cots[last]);
        let mut loss = 0.0;
        for (b, &label) in c.labels.iter().enumerate() {
            let row: Vec<f64> = (0..k)
                .map(|j| {
                    readout[k * h + j]
                        + (0..h)
                            .map(|i| readout[j * h + i] * z[b * h + i])
                            .sum::<f64>()
                })
                .collect();
            let mx = row.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            let sum: f64 = row.iter().map(|v| (v - mx).exp()).sum();
            loss += (mx + sum.ln() - row[label]) / batch as f64;
            for j in 0..k {
                let dl = ((row[j] - mx).exp() / sum - (j == label) as u8 as f64) / batch as f64;
                readout_grad[k * h + j] += dl;
                for i in 0..h {
                    readout_grad[j * h + i] += dl * z[b * h + i];
                    cot[b * h + i] += dl * readout[j * h + i];
                }
            }
        }
        loss
    })?;
    let mut grad = vec![0.0; nz];
    for b in 0..batch {
        for i in 0..h {
            let zb = g.y0[b * h + i];
            grad[h * ch + i] += zb;
            for j in 0..ch {
                grad[i * ch + j] += zb * x0[b * ch + j];
            }
        }
    }
    grad.extend(&g.params);
    grad.extend(&readout_grad);
    Ok((g.loss, grad, g.steps))
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
