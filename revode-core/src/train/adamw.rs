//! AdamW (Loshchilov & Hutter, arXiv 1711.05101) on a flat `f64` parameter view: with
//! g the gradient, m ← β₁m + (1 − β₁)g, v ← β₂v + (1 − β₂)g², and
//! θ ← θ − η (m̂ / (√v̂ + ε) + λθ), where m̂, v̂ are the bias-corrected moments.
//! Parameter groups scale η per contiguous block of θ (e.g. a GAN's two players). The moments
//! live where θ lives ([`FlatParams`]): host vectors, or device tensors for a dfdx model.

use crate::flat::{adamw_slices, AdamStep, FlatParams};
use crate::{Error, Result};
use serde::{Deserialize, Serialize};

/// AdamW (Loshchilov & Hutter): Adam with decoupled weight decay, on flat parameters of type
/// `V` (host `Vec<f64>` by default, or a device tensor).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct AdamW<V = Vec<f64>> {
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
    pub(crate) m: V,
    #[serde(skip)]
    pub(crate) v: V,
    /// Per-entry learning-rate factors built where θ lives from the groups they record
    /// (rebuilt when `groups` changes).
    #[serde(skip)]
    factors: Option<(Vec<(usize, f64)>, V)>,
}

/// Equal settings, step count, groups and moments (the cached group factors are derived).
impl<V: PartialEq> PartialEq for AdamW<V> {
    fn eq(&self, o: &Self) -> bool {
        (
            self.lr,
            self.beta1,
            self.beta2,
            self.eps,
            self.weight_decay,
            self.t,
        ) == (o.lr, o.beta1, o.beta2, o.eps, o.weight_decay, o.t)
            && self.groups == o.groups
            && self.m == o.m
            && self.v == o.v
    }
}

impl AdamW {
    /// AdamW for `n` host parameters (β = (0.9, 0.999), ε = 1e-8).
    pub fn new(n: usize, lr: f64, weight_decay: f64) -> Result<Self> {
        AdamW::like(&vec![0.0; n], lr, weight_decay)
    }
}

impl<V: FlatParams> AdamW<V> {
    /// AdamW for parameters shaped and placed like `params` (zero moments beside them).
    pub fn like(params: &V, lr: f64, weight_decay: f64) -> Result<Self> {
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
            m: params.zeros_like(),
            v: params.zeros_like(),
            factors: None,
        })
    }

    /// Splits θ into contiguous groups `(length, factor)`: group i's learning rate is
    /// `factor_i · lr` (so a schedule on `lr` moves every group alike). The lengths must sum
    /// to the parameter count; factors must be positive and finite.
    pub fn with_groups(mut self, groups: Vec<(usize, f64)>) -> Result<Self> {
        check_groups(&groups, self.m.count())?;
        self.groups = groups;
        Ok(self)
    }

    /// One update of `params` with `grads`, where they live (see [`AdamW::step`] for host
    /// slices).
    pub fn update(&mut self, params: &mut V, grads: &V) -> Result<()> {
        let s = self.next_step(params.count(), grads.count())?;
        let factors = self.factors.as_ref().map(|f| &f.1);
        params.adamw(&mut self.m, &mut self.v, grads, factors, s)
    }

    /// Checks the sizes and the groups (a public field), rebuilds the per-entry factors
    /// where θ lives when the groups changed, advances t and returns the step's coefficients.
    fn next_step(&mut self, params: usize, grads: usize) -> Result<AdamStep> {
        let n = self.m.count();
        if params != n || grads != n {
            return Err(Error::ShapeMismatch {
                what: "AdamW parameters/gradients".into(),
                expected: n,
                found: if params != n { params } else { grads },
            });
        }
        if self.groups.is_empty() {
            self.factors = None;
        } else if self.factors.as_ref().is_none_or(|f| f.0 != self.groups) {
            check_groups(&self.groups, n)?;
            let f: Vec<f64> = self
                .groups
                .iter()
                .flat_map(|&(len, factor)| std::iter::repeat_n(factor, len))
                .collect();
            self.factors = Some((self.groups.clone(), self.m.placed(&f)?));
        }
        self.t += 1;
        Ok(AdamStep {
            lr: self.lr,
            beta1: self.beta1,
            beta2: self.beta2,
            c1: 1.0 - self.beta1.powi(self.t as i32),
            c2: 1.0 - self.beta2.powi(self.t as i32),
            eps: self.eps,
            weight_decay: self.weight_decay,
        })
    }

    /// The same optimiser with its moments on the host (for a checkpoint).
    pub fn to_host(&self) -> AdamW {
        self.with_moments(self.m.to_host(), self.v.to_host())
    }

    /// The same settings, step count and groups with moments `m` and `v`.
    fn with_moments<W>(&self, m: W, v: W) -> AdamW<W> {
        AdamW {
            lr: self.lr,
            beta1: self.beta1,
            beta2: self.beta2,
            eps: self.eps,
            weight_decay: self.weight_decay,
            t: self.t,
            groups: self.groups.clone(),
            m,
            v,
            factors: None,
        }
    }
}

impl AdamW {
    /// One update of host `params` with `grads` (lengths checked).
    pub fn step(&mut self, params: &mut [f64], grads: &[f64]) -> Result<()> {
        let s = self.next_step(params.len(), grads.len())?;
        let factors = self.factors.as_ref().map(|f| &f.1[..]);
        adamw_slices(params, &mut self.m, &mut self.v, grads, factors, s);
        Ok(())
    }

    /// The same optimiser with its moments placed like `like` (e.g. on a model's device);
    /// the moments' lengths and the groups are checked against `like`.
    pub fn moved_like<V: FlatParams>(&self, like: &V) -> Result<AdamW<V>> {
        if !self.groups.is_empty() {
            check_groups(&self.groups, like.count())?;
        }
        Ok(self.with_moments(like.placed(&self.m)?, like.placed(&self.v)?))
    }
}

/// The groups' lengths must sum to the parameter count `n` and their factors be positive and
/// finite.
fn check_groups(groups: &[(usize, f64)], n: usize) -> Result<()> {
    let total: usize = groups.iter().map(|g| g.0).sum();
    if total != n {
        return Err(Error::ShapeMismatch {
            what: "AdamW parameter groups (sum of lengths)".into(),
            expected: n,
            found: total,
        });
    }
    if let Some(&(_, f)) = groups.iter().find(|g| !(g.1 > 0.0 && g.1.is_finite())) {
        return Err(Error::config(
            "adamw groups",
            format!("learning-rate factor {f} must be positive and finite"),
        ));
    }
    Ok(())
}
