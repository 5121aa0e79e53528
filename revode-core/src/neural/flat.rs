//! A device vector as the trainer's flat parameters: θ, the gradient and AdamW's moments stay
//! on the dfdx device, updated with tensor operations; only reductions (‖g‖², a finiteness
//! check) return a scalar to the host.

use super::batch::scalar;
use super::Vector;
use crate::flat::{check_count, check_counts, AdamStep, FlatParams};
use crate::{Real, Result};
use dfdx::prelude::*;

impl<E: Dtype + Real, Dev: Device<E>> FlatParams for Vector<E, Dev> {
    type View = Self;
    fn view(&self) -> &Self {
        self
    }
    fn view_mut(&mut self) -> &mut Self {
        self
    }
    fn count(&self) -> usize {
        self.shape().0
    }
    fn zeros_like(&self) -> Self {
        self.device().zeros_like(self.shape())
    }
    fn set_zero(&mut self) {
        *self = self.device().zeros_like(self.shape());
    }
    fn write_to(self, view: &mut Self) -> Result<()> {
        check_count(view.count(), self.count())?;
        *view = self;
        Ok(())
    }
    fn to_host(&self) -> Vec<f64> {
        self.as_vec().into_iter().map(Real::as_f64).collect()
    }
    fn placed(&self, values: &[f64]) -> Result<Self> {
        check_count(self.count(), values.len())?;
        let v = values.iter().map(|&x| E::of(x)).collect();
        Ok(self.device().tensor_from_vec(v, (values.len(),)))
    }
    fn sum_squares(&self) -> f64 {
        scalar(self.clone().square().sum::<Rank0, _>()).as_f64()
    }
    /// `Σ (xᵢ − xᵢ)` is 0 exactly when every entry is finite (∞ − ∞ and NaN give NaN); only
    /// then is no host copy needed.
    fn first_non_finite(&self) -> Option<usize> {
        if scalar((self.clone() - self.clone()).sum::<Rank0, _>()).as_f64() == 0.0 {
            return None;
        }
        self.as_vec().iter().position(|x| !x.as_f64().is_finite())
    }
    fn scale(&mut self, c: f64) {
        *self = self.clone() * E::of(c);
    }
    fn lerp_towards(&mut self, target: &Self, w: f64) -> Result<()> {
        check_count(self.count(), target.count())?;
        *self = self.clone() + (target.clone() - self.clone()) * E::of(w);
        Ok(())
    }
    /// The host formula's operations in the same order, so f64 on `Cpu` gives the same bits.
    fn adamw(
        &mut self,
        m: &mut Self,
        v: &mut Self,
        g: &Self,
        factors: Option<&Self>,
        s: AdamStep,
    ) -> Result<()> {
        check_counts(self, m, v, g, factors)?;
        let (b1, b2) = (s.beta1, s.beta2);
        *m = m.clone() * E::of(b1) + g.clone() * E::of(1.0 - b1);
        *v = v.clone() * E::of(b2) + g.clone() * E::of(1.0 - b2) * g.clone();
        let mh = m.clone() / E::of(s.c1);
        let vh = v.clone() / E::of(s.c2);
        let dir = mh / (vh.sqrt() + E::of(s.eps)) + self.clone() * E::of(s.weight_decay);
        let step = match factors {
            Some(f) => dir * (f.clone() * E::of(s.lr)),
            None => dir * E::of(s.lr),
        };
        *self = self.clone() - step;
        Ok(())
    }
}
