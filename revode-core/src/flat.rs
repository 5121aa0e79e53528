//! Where a model's flat parameter vector θ lives. The trainer (`train::Trainer`) does all its
//! arithmetic on θ, the gradient g and AdamW's moments m and v through [`FlatParams`]: on the
//! host for `Vec<f64>`, and (with the `neural` feature) on the model's dfdx device for a
//! `Tensor<(usize,), E, Dev>`, so that on a GPU only scalars (the loss and ‖g‖₂) cross to the
//! host during training. Checkpoints copy to the host when they are written.

use crate::Result;

/// One AdamW update's coefficients: θ ← θ − η·f·(m̂ / (√v̂ + ε) + λθ) with
/// m ← β₁m + (1 − β₁)g, v ← β₂v + (1 − β₂)g², m̂ = m/c₁, v̂ = v/c₂ and f the parameter's
/// group factor.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdamStep {
    /// Learning rate η.
    pub lr: f64,
    /// First-moment decay β₁.
    pub beta1: f64,
    /// Second-moment decay β₂.
    pub beta2: f64,
    /// Bias correction c₁ = 1 − β₁ᵗ.
    pub c1: f64,
    /// Bias correction c₂ = 1 − β₂ᵗ.
    pub c2: f64,
    /// Denominator offset ε.
    pub eps: f64,
    /// Decoupled weight decay λ.
    pub weight_decay: f64,
}

/// A flat parameter vector the trainer can update where it lives.
pub trait FlatParams: Clone {
    /// What a loss-and-gradient closure and an evaluation see: `[f64]` on the host, the
    /// tensor itself on a device.
    type View: ?Sized;
    /// θ as its closures see it.
    fn view(&self) -> &Self::View;
    /// θ as its closures fill it.
    fn view_mut(&mut self) -> &mut Self::View;
    /// Number of entries.
    fn count(&self) -> usize;
    /// A zero vector of the same size, where `self` lives.
    fn zeros_like(&self) -> Self;
    /// Sets every entry to zero.
    fn set_zero(&mut self);
    /// Stores this vector in a closure's view (e.g. a layer's gradient into the trainer's
    /// `g`); the lengths must agree.
    fn write_to(self, view: &mut Self::View) -> Result<()>;
    /// A host copy.
    fn to_host(&self) -> Vec<f64>;
    /// `values` placed where `self` lives (the length must equal `self.count()`).
    fn placed(&self, values: &[f64]) -> Result<Self>;
    /// `Σ xᵢ²` (one scalar to the host).
    fn sum_squares(&self) -> f64;
    /// The index of the first non-finite entry, if any.
    fn first_non_finite(&self) -> Option<usize>;
    /// `x ← c·x`.
    fn scale(&mut self, c: f64);
    /// `x ← x + w·(target − x)` (a running average's update); the lengths must agree.
    fn lerp_towards(&mut self, target: &Self, w: f64) -> Result<()>;
    /// One AdamW update of θ = `self` with gradient `g`, moments `m`, `v` and per-entry
    /// learning-rate factors (`None`: all 1); every length must equal θ's.
    fn adamw(
        &mut self,
        m: &mut Self,
        v: &mut Self,
        g: &Self,
        factors: Option<&Self>,
        s: AdamStep,
    ) -> Result<()>;
}

/// A typed error unless every vector of an AdamW update has θ's length.
pub(crate) fn check_counts<V: FlatParams>(
    theta: &V,
    m: &V,
    v: &V,
    g: &V,
    factors: Option<&V>,
) -> Result<()> {
    let n = theta.count();
    for x in [m, v, g].into_iter().chain(factors) {
        check_count(n, x.count())?;
    }
    Ok(())
}

/// AdamW's update on host slices of one length (see [`AdamStep`]).
pub(crate) fn adamw_slices(
    theta: &mut [f64],
    m: &mut [f64],
    v: &mut [f64],
    g: &[f64],
    factors: Option<&[f64]>,
    s: AdamStep,
) {
    let (b1, b2) = (s.beta1, s.beta2);
    for i in 0..theta.len() {
        let lr = factors.map_or(s.lr, |f| f[i] * s.lr);
        m[i] = b1 * m[i] + (1.0 - b1) * g[i];
        v[i] = b2 * v[i] + (1.0 - b2) * g[i] * g[i];
        let mh = m[i] / s.c1;
        let vh = v[i] / s.c2;
        theta[i] -= lr * (mh / (vh.sqrt() + s.eps) + s.weight_decay * theta[i]);
    }
}

/// A typed error unless a vector has the `expected` number of entries.
pub(crate) fn check_count(expected: usize, found: usize) -> Result<()> {
    if expected != found {
        return Err(crate::Error::ShapeMismatch {
            what: "flat parameters".into(),
            expected,
            found,
        });
    }
    Ok(())
}

impl FlatParams for Vec<f64> {
    type View = [f64];
    fn view(&self) -> &[f64] {
        self
    }
    fn view_mut(&mut self) -> &mut [f64] {
        self
    }
    fn count(&self) -> usize {
        self.len()
    }
    fn zeros_like(&self) -> Self {
        vec![0.0; self.len()]
    }
    fn set_zero(&mut self) {
        self.iter_mut().for_each(|x| *x = 0.0);
    }
    fn write_to(self, view: &mut [f64]) -> Result<()> {
        check_count(view.len(), self.len())?;
        view.copy_from_slice(&self);
        Ok(())
    }
    fn to_host(&self) -> Vec<f64> {
        self.clone()
    }
    fn placed(&self, values: &[f64]) -> Result<Self> {
        check_count(self.len(), values.len())?;
        Ok(values.to_vec())
    }
    fn sum_squares(&self) -> f64 {
        self.iter().map(|g| g * g).sum()
    }
    fn first_non_finite(&self) -> Option<usize> {
        self.iter().position(|g| !g.is_finite())
    }
    fn scale(&mut self, c: f64) {
        self.iter_mut().for_each(|g| *g *= c);
    }
    fn lerp_towards(&mut self, target: &Self, w: f64) -> Result<()> {
        check_count(self.len(), target.len())?;
        self.iter_mut()
            .zip(target)
            .for_each(|(a, p)| *a += w * (p - *a));
        Ok(())
    }
    fn adamw(
        &mut self,
        m: &mut Self,
        v: &mut Self,
        g: &Self,
        factors: Option<&Self>,
        s: AdamStep,
    ) -> Result<()> {
        check_counts(self, m, v, g, factors)?;
        adamw_slices(self, m, v, g, factors.map(|f| &f[..]), s);
        Ok(())
    }
}
