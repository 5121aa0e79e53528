//! AdamW (Loshchilov & Hutter, arXiv 1711.05101) on a flat `f64` parameter view: with
//! g the gradient, m ← β₁m + (1 − β₁)g, v ← β₂v + (1 − β₂)g², and
//! θ ← θ − η (m̂ / (√v̂ + ε) + λθ), where m̂, v̂ are the bias-corrected moments.
//! Parameter groups scale η per contiguous block of θ (e.g. a GAN's two players).

use crate::{Error, Result};
use serde::{Deserialize, Serialize};

/// AdamW (Loshchilov & Hutter): Adam with decoupled weight decay, on flat `f64` parameters.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AdamW {
    /// Learning rate.
    pub lr: f64,
    /// First-moment decay.
    pub beta1: f64,
    /// Second-moment decay.
    pub beta2: f64,
    /// Denominator offset.
    pub eps: f64,
    /// Decoupled weight decay.
    pub weight_decay: f64,
    /// Steps taken.
    pub t: u64,
    /// Parameter groups: contiguous blocks `(length, learning-rate factor)` covering θ in
    /// order; empty means one group with factor 1. See [`AdamW::with_groups`].
    #[serde(default)]
    pub groups: Vec<(usize, f64)>,
    #[serde(skip)]
    pub(crate) m: Vec<f64>,
    #[serde(skip)]
    pub(crate) v: Vec<f64>,
}

impl AdamW {
    /// AdamW for `n` parameters (β = (0.9, 0.999), ε = 1e-8).
    pub fn new(n: usize, lr: f64, weight_decay: f64) -> Result<Self> {
        if !(lr > 0.0 && lr.is_finite() && weight_decay >= 0.0 && weight_decay.is_finite()) {
            return Err(Error::config(
                "adamw",
                format!(
                    "need lr > 0 and weight_decay ≥ 0 (lr = {lr}, weight_decay = {weight_decay})"
                ),
            ));
        }
        Ok(AdamW {
            lr,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay,
            t: 0,
            groups: Vec::new(),
            m: vec![0.0; n],
            v: vec![0.0; n],
        })
    }

    /// Splits θ into contiguous groups `(length, factor)`: group i's learning rate is
    /// `factor_i · lr` (so a schedule on `lr` moves every group alike). The lengths must sum
    /// to the parameter count; factors must be positive and finite.
    pub fn with_groups(mut self, groups: Vec<(usize, f64)>) -> Result<Self> {
        let total: usize = groups.iter().map(|g| g.0).sum();
        if total != self.m.len() {
            return Err(Error::ShapeMismatch {
                what: "AdamW parameter groups (sum of lengths)".into(),
                expected: self.m.len(),
                found: total,
            });
        }
        if let Some(&(_, f)) = groups.iter().find(|g| !(g.1 > 0.0 && g.1.is_finite())) {
            return Err(Error::config(
                "adamw groups",
                format!("learning-rate factor {f} must be positive and finite"),
            ));
        }
        self.groups = groups;
        Ok(self)
    }

    /// One update of `params` with `grads`.
    pub fn step(&mut self, params: &mut [f64], grads: &[f64]) -> Result<()> {
        if params.len() != self.m.len() || grads.len() != self.m.len() {
            return Err(Error::ShapeMismatch {
                what: "AdamW parameters/gradients".into(),
                expected: self.m.len(),
                found: if params.len() != self.m.len() {
                    params.len()
                } else {
                    grads.len()
                },
            });
        }
        self.t += 1;
        let (b1, b2) = (self.beta1, self.beta2);
        let c1 = 1.0 - b1.powi(self.t as i32);
        let c2 = 1.0 - b2.powi(self.t as i32);
        let whole = [(params.len(), 1.0)];
        let groups = if self.groups.is_empty() {
            &whole[..]
        } else {
            &self.groups[..]
        };
        let mut start = 0;
        for &(len, factor) in groups {
            let lr = factor * self.lr;
            for i in start..start + len {
                let g = grads[i];
                self.m[i] = b1 * self.m[i] + (1.0 - b1) * g;
                self.v[i] = b2 * self.v[i] + (1.0 - b2) * g * g;
                let mh = self.m[i] / c1;
                let vh = self.v[i] / c2;
                params[i] -= lr * (mh / (vh.sqrt() + self.eps) + self.weight_decay * params[i]);
            }
            start += len;
        }
        Ok(())
    }
}
