//! [`NeuralMlp`] as a [`Layer`]: batches are device tensors, parameters and their cotangents
//! stay on the device.

use super::{Batch, NeuralCache, NeuralGrads, NeuralMlp, Vector};
use crate::layer::{Layer, LayerTerm};
use crate::{MlpSpec, Real, Result};
use dfdx::prelude::*;

/// The neural ODE term `dy = f_θ(t, y)·dt` of a dfdx MLP: [`LayerTerm`] over [`NeuralMlp`].
pub type NeuralOdeTerm<E, Dev> = LayerTerm<NeuralMlp<E, Dev>>;

impl<E: Dtype + Real, Dev: Device<E>> Layer for NeuralMlp<E, Dev> {
    type Scalar = E;
    type Batch = Batch<E, Dev>;
    type Cache = NeuralCache<E, Dev>;
    type Grad = NeuralGrads<E, Dev>;

    fn spec(&self) -> &MlpSpec {
        NeuralMlp::spec(self)
    }
    fn check_input(&self, x: &Batch<E, Dev>) -> Result<()> {
        NeuralMlp::check_input(self, x.cols())
    }
    fn forward(
        &self,
        t: f64,
        x: &Batch<E, Dev>,
        out: &mut Batch<E, Dev>,
        cache: Option<&mut NeuralCache<E, Dev>>,
    ) {
        out.0 = NeuralMlp::forward(self, t, &x.0, cache);
    }
    fn pullback(
        &self,
        t: f64,
        cache: &NeuralCache<E, Dev>,
        cot: &Batch<E, Dev>,
        scale: E,
        x_bar: &mut Batch<E, Dev>,
        grad: &mut NeuralGrads<E, Dev>,
    ) {
        self.backward(t, cache, &cot.0, scale, &mut x_bar.0, grad);
    }
    fn batch_from_f64(&self, rows: usize, values: &[f64]) -> Result<Batch<E, Dev>> {
        let cols = values.len().checked_div(rows).unwrap_or(0);
        let v: Vec<E> = values.iter().map(|&x| E::of(x)).collect();
        Batch::from_rows(&self.device(), rows, cols, &v)
    }
    fn output_like(&self, x: &Batch<E, Dev>) -> Batch<E, Dev> {
        Batch(self.device().zeros_like(&(x.rows(), self.spec().out_dim())))
    }
    fn zero_grad(&self) -> NeuralGrads<E, Dev> {
        self.zero_grads()
    }
    fn flat_params(&self) -> Vec<f64> {
        self.to_flat()
    }
    /// Rebuilt on the same device.
    fn set_flat_params(&mut self, params: &[f64]) -> Result<()> {
        let dev = self.device();
        *self = NeuralMlp::from_flat(&dev, self.spec().clone(), params)?;
        Ok(())
    }
    fn flat_grad(&self, grad: &NeuralGrads<E, Dev>) -> Vec<f64> {
        grad.to_flat(NeuralMlp::spec(self))
    }
    /// One tensor on the model's device.
    type Params = Vector<E, Dev>;
    fn resident_params(&self) -> Vector<E, Dev> {
        self.to_flat_tensor()
    }
    fn set_resident_params(&mut self, params: &Vector<E, Dev>) -> Result<()> {
        self.set_flat_tensor(params)
    }
    fn resident_grad(&self, grad: &NeuralGrads<E, Dev>) -> Vector<E, Dev> {
        grad.to_flat_tensor(NeuralMlp::spec(self))
    }
}
