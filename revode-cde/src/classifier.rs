//! Neural CDE classification: z0 = ζ_θ(x(t0)), dz = f_θ(z) dX over the path, logits = W z(T) + b,
//! softmax cross-entropy. Gradients go through revode-core's gradient methods unchanged.

use crate::{CdeField, CdeMlp, CdeTerm, Path};
use revode_core::{gradient, Error, GradientMethod, Result, Reversible, Rk, SolveOptions, Tableau};

/// The classifier's shape. Parameters (flat): ζ weight (hidden × channels) and bias, then the CDE
/// field's, then the readout weight (classes × hidden) and bias.
#[derive(Clone, Debug)]
pub struct NcdeClassifier {
    /// Hidden state size.
    pub hidden: usize,
    /// Path channels.
    pub channels: usize,
    /// Number of classes.
    pub classes: usize,
    /// Field width.
    pub width: usize,
    /// Field depth.
    pub depth: usize,
    /// Base method of the reversible scheme.
    pub tableau: Tableau,
    /// Coupling parameter.
    pub lambda: f64,
}

/// Loss, accuracy and gradient of one batch.
#[derive(Clone, Debug)]
pub struct BatchResult {
    /// Mean cross-entropy.
    pub loss: f64,
    /// Fraction classified correctly.
    pub accuracy: f64,
    /// dL/dθ (flat).
    pub grad: Vec<f64>,
    /// Peak stored states reported by the gradient method.
    pub stored_states: usize,
    /// Accepted solver steps.
    pub steps: usize,
}

impl NcdeClassifier {
    fn field_len(&self) -> Result<usize> {
        Ok(
            CdeMlp::new(self.hidden, self.channels, self.width, self.depth, false, 0)?
                .params()
                .len(),
        )
    }
    /// Number of parameters.
    pub fn num_params(&self) -> Result<usize> {
        Ok(self.hidden * self.channels
            + self.hidden
            + self.field_len()?
            + self.classes * self.hidden
            + self.classes)
    }
    /// Initial parameters from `seed` (uniform ±1/√fan_in).
    pub fn init(&self, seed: u64) -> Result<Vec<f64>> {
        let mut p = Vec::with_capacity(self.num_params()?);
        let mut rng = revode_core::random::SplitMix64::new(seed ^ 0xA076_1D64_78BD_642F);
        let mut uniform = |bound: f64| rng.symmetric(bound);
        let b = 1.0 / (self.channels as f64).sqrt();
        p.extend((0..self.hidden * (self.channels + 1)).map(|_| uniform(b)));
        p.extend(
            CdeMlp::new(
                self.hidden,
                self.channels,
                self.width,
                self.depth,
                false,
                seed,
            )?
            .params(),
        );
        let b = 1.0 / (self.hidden as f64).sqrt();
        p.extend((0..self.classes * (self.hidden + 1)).map(|_| uniform(b)));
        Ok(p)
    }

    fn split<'a>(&self, p: &'a [f64]) -> Result<(&'a [f64], &'a [f64], &'a [f64])> {
        let n = self.num_params()?;
        if p.len() != n {
            return Err(Error::ShapeMismatch {
                what: "classifier parameters".into(),
                expected: n,
                found: p.len(),
            });
        }
        let a = self.hidden * (self.channels + 1);
        let f = a + self.field_len()?;
        Ok((&p[..a], &p[a..f], &p[f..]))
    }

    fn scheme(&self, field: &[f64], path: &Path) -> Result<Reversible<Rk<CdeTerm<CdeMlp>>>> {
        let f = CdeMlp::new(self.hidden, self.channels, self.width, self.depth, false, 0)?
            .with_params(field)?;
        Reversible::new(
            Rk::new(CdeTerm::new(f, path.clone())?, self.tableau.clone()),
            self.lambda,
        )
    }

    /// z0 = ζ(x(t0)) for every series.
    fn initial(&self, zeta: &[f64], path: &Path) -> Result<(Vec<f64>, Vec<f64>)> {
        let (h, c) = (self.hidden, self.channels);
        let mut x0 = vec![0.0; path.batch() * c];
        path.evaluate(path.domain().0, &mut x0)?;
        let mut z0 = vec![0.0; path.batch() * h];
        for b in 0..path.batch() {
            for i in 0..h {
                let w = &zeta[i * c..(i + 1) * c];
                z0[b * h + i] = zeta[h * c + i]
                    + w.iter()
                        .zip(&x0[b * c..(b + 1) * c])
                        .map(|(a, x)| a * x)
                        .sum::<f64>();
            }
        }
        Ok((x0, z0))
    }

    fn logits(&self, readout: &[f64], z: &[f64]) -> Vec<f64> {
        let (h, k) = (self.hidden, self.classes);
        let batch = z.len() / h;
        let mut out = vec![0.0; batch * k];
        for b in 0..batch {
            for j in 0..k {
                out[b * k + j] = readout[k * h + j]
                    + (0..h)
                        .map(|i| readout[j * h + i] * z[b * h + i])
                        .sum::<f64>();
            }
        }
        out
    }

    /// Observation times: the path's knots (steps stop on them).
    fn times(path: &Path) -> Vec<f64> {
        path.knots().to_vec()
    }

    /// Predicted class of every series.
    pub fn predict(&self, p: &[f64], path: &Path, opts: &SolveOptions) -> Result<Vec<usize>> {
        let (zeta, field, readout) = self.split(p)?;
        let (_, z0) = self.initial(zeta, path)?;
        let sol = revode_core::solve(&self.scheme(field, path)?, &z0, &Self::times(path), opts)?;
        let logits = self.logits(readout, &sol.ys[sol.ys.len() - 1]);
        Ok(logits
            .chunks(self.classes)
            .map(|l| {
                l.iter()
                    .enumerate()
                    .fold((0, f64::NEG_INFINITY), |best, (j, &v)| {
                        if v > best.1 {
                            (j, v)
                        } else {
                            best
                        }
                    })
                    .0
            })
            .collect())
    }

    /// Mean cross-entropy, accuracy and the gradient for one batch with the given method.
    pub fn loss_and_grad(
        &self,
        p: &[f64],
        path: &Path,
        labels: &[usize],
        opts: &SolveOptions,
        method: GradientMethod,
    ) -> Result<BatchResult> {
        if labels.len() != path.batch() {
            return Err(Error::ShapeMismatch {
                what: "labels".into(),
                expected: path.batch(),
                found: labels.len(),
            });
        }
        if let Some(&bad) = labels.iter().find(|&&l| l >= self.classes) {
            return Err(Error::config(
                "labels",
                format!("label {bad} ≥ number of classes {}", self.classes),
            ));
        }
        let (zeta, field, readout) = self.split(p)?;
        let (h, c, k) = (self.hidden, self.channels, self.classes);
        let (x0, z0) = self.initial(zeta, path)?;
        let scheme = self.scheme(field, path)?;
        let batch = path.batch() as f64;
        let mut readout_grad = vec![0.0; readout.len()];
        let mut correct = 0usize;
        let g = gradient(
            &scheme,
            &z0,
            &Self::times(path),
            opts,
            &method.into(),
            |ys, cots| {
                let last = ys.len() - 1;
                let z = &ys[last];
                let logits = self.logits(readout, z);
                let mut loss = 0.0;
                for (b, &label) in labels.iter().enumerate() {
                    let row = &logits[b * k..(b + 1) * k];
                    let m = row.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                    let sum: f64 = row.iter().map(|v| (v - m).exp()).sum();
                    loss += (m + sum.ln() - row[label]) / batch;
                    let argmax = row
                        .iter()
                        .enumerate()
                        .fold((0, f64::NEG_INFINITY), |best, (j, &v)| {
                            if v > best.1 {
                                (j, v)
                            } else {
                                best
                            }
                        })
                        .0;
                    correct += (argmax == label) as usize;
                    for j in 0..k {
                        let dl = ((row[j] - m).exp() / sum - (j == label) as u8 as f64) / batch;
                        readout_grad[k * h + j] += dl;
                        for i in 0..h {
                            readout_grad[j * h + i] += dl * z[b * h + i];
                            cots[last][b * h + i] += dl * readout[j * h + i];
                        }
                    }
                }
                loss
            },
        )?;
        let mut grad = vec![0.0; zeta.len()];
        for b in 0..path.batch() {
            for i in 0..h {
                let zb = g.y0[b * h + i];
                grad[h * c + i] += zb;
                for j in 0..c {
                    grad[i * c + j] += zb * x0[b * c + j];
                }
            }
        }
        grad.extend(&g.params);
        grad.extend(&readout_grad);
        Ok(BatchResult {
            loss: g.loss,
            accuracy: correct as f64 / batch,
            grad,
            stored_states: g.stats.peak_stored_states,
            steps: g.steps,
        })
    }

    /// The scheme's name (for reports).
    pub fn scheme_name(&self) -> String {
        format!("reversible({}, λ={})", self.tableau.name(), self.lambda)
    }
}
