//! The neural ODE term `dy = f_θ(t, y)·dt` over batched device states.

use super::{Batch, NeuralCache, NeuralGrads, NeuralMlp};
use crate::term::{Traced, Workspace};
use crate::{Real, Result, State, Term};
use dfdx::prelude::*;

/// The ODE term `f_θ(t, y)·dt` of a [`NeuralMlp`] over batched device states.
#[derive(Clone, Debug)]
pub struct NeuralOdeTerm<E: Dtype, Dev: Storage<E>> {
    /// The model.
    pub model: NeuralMlp<E, Dev>,
}

impl<E: Dtype + Real, Dev: Device<E>> Term for NeuralOdeTerm<E, Dev>
where
    Batch<E, Dev>: State<Scalar = E>,
{
    type State = Batch<E, Dev>;
    type Control = f64;
    type Field = Batch<E, Dev>;
    type Cache = NeuralCache<E, Dev>;
    type ParamGrad = NeuralGrads<E, Dev>;
    type Scratch = ();

    fn new_control(&self) -> f64 {
        0.0
    }
    fn contr(&self, t_a: f64, t_b: f64, out: &mut f64) {
        *out = t_b - t_a;
    }
    fn new_field(&self, like: &Self::State) -> Self::Field {
        like.zeros_like()
    }
    fn new_cache(&self, _like: &Self::State) -> Self::Cache {
        NeuralCache::default()
    }
    fn new_scratch(&self, _like: &Self::State) {}
    /// The state's columns must be the model's inputs (its rows are the batch).
    fn validate_state(&self, y: &Self::State) -> Result<()> {
        self.model.check_input(y.cols())
    }
    fn new_param_grad(&self) -> Self::ParamGrad {
        self.model.zero_grads()
    }
    fn vf(
        &self,
        t: f64,
        y: &Self::State,
        v: &mut Self::Field,
        cache: Option<&mut Self::Cache>,
        _: &mut (),
    ) {
        v.0 = self.model.forward(t, &y.0, cache);
    }
    fn prod(&self, v: &Self::Field, c: &f64, out: &mut Self::State) {
        out.0 = v.0.clone() * E::of(*c);
    }
    fn prod_vjp(&self, c: &f64, cot: &Self::State, scale: E, v_bar: &mut Self::Field) {
        v_bar.0 = cot.0.clone() * (scale * E::of(*c));
    }
    fn vf_vjp(
        &self,
        t: f64,
        cache: &Self::Cache,
        v_bar: &Self::Field,
        y_bar: &mut Self::State,
        p_bar: &mut Self::ParamGrad,
        _: &mut (),
    ) {
        self.model
            .backward(t, cache, &v_bar.0, E::one(), &mut y_bar.0, p_bar);
    }
    /// Fused: the network output is scaled by `dt` on the device.
    fn vf_prod(
        &self,
        t: f64,
        y: &Self::State,
        c: &f64,
        out: &mut Self::State,
        cache: Option<&mut Self::Cache>,
        _: &mut Workspace<Self>,
    ) {
        out.0 = self.model.forward(t, &y.0, cache) * E::of(*c);
    }
    /// Fused: `dt` is folded into the pullback's scale.
    fn vf_prod_vjp(
        &self,
        at: Traced<'_, Self>,
        cot: &Self::State,
        scale: E,
        y_bar: &mut Self::State,
        p_bar: &mut Self::ParamGrad,
        _: &mut Workspace<Self>,
    ) {
        let s = scale * E::of(*at.control);
        self.model
            .backward(at.t, at.cache, &cot.0, s, &mut y_bar.0, p_bar);
    }
}
