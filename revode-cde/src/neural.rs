//! The CDE term with a dfdx field: `dz = f_θ(t, z)·dX`, `f_θ = tanh(MLP_θ(t, z))` read as a
//! `hidden × channels` matrix per series, the state a `batch × hidden` tensor on the model's
//! device.
//!
//! Every size is a run-time value: the hidden state `hidden` is the network's input, its output
//! is `hidden × channels`, checked against the path when the term is built. The path stays on
//! the host; each step's increment (`batch × channels` values) is copied to the device once and
//! shared by every stage evaluated on that step.

use crate::{Interpolation, Path};
use dfdx::prelude::*;
use revode_core::neural::{Batch, Matrix, NeuralCache, NeuralGrads, NeuralMlp};
use revode_core::{scalar::Real, term::Traced, term::Workspace, Error, Result, State, Term};

/// The control of one step: its interval and `X(t_b) − X(t_a)` on the device.
#[derive(Clone, Debug)]
pub struct NeuralCdeControl<E: Dtype, Dev: Storage<E>> {
    /// Start of the step.
    pub t_a: f64,
    /// End of the step.
    pub t_b: f64,
    /// The increment, `batch × channels`, on the device.
    pub dx: Tensor<(usize, usize), E, Dev>,
}

/// What a traced evaluation keeps: the MLP's activations and the bounded output matrix.
#[derive(Clone, Debug)]
pub struct NeuralCdeCache<E, Dev>
where
    E: Dtype,
    Dev: Storage<E>,
{
    mlp: NeuralCache<E, Dev>,
    /// `f = tanh(MLP)`, `batch × hidden·channels`.
    f: Option<Matrix<E, Dev>>,
}

/// Parameter cotangent of a [`NeuralCdeTerm`]: the model's, and (with data gradients) the
/// path's data values in the layout of [`crate::PathData::values`].
#[derive(Clone, Debug)]
pub struct NeuralCdeGrads<E, Dev>
where
    E: Dtype,
    Dev: Storage<E>,
{
    /// The MLP's parameter cotangents (on the device).
    pub model: NeuralGrads<E, Dev>,
    /// Cotangent of the path's data values (empty without data gradients).
    pub data: Vec<f64>,
}

impl<E, Dev> revode_core::grad_buffer::GradBuffer for NeuralCdeGrads<E, Dev>
where
    E: Dtype + revode_core::scalar::Real,
    Dev: Device<E>,
{
    /// Network entries first, then the data cotangent.
    fn first_non_finite(&self) -> Option<usize> {
        self.model.first_non_finite().or_else(|| {
            self.data
                .first_non_finite()
                .map(|i| i + self.model.flat_len())
        })
    }
    fn flat_len(&self) -> usize {
        self.model.flat_len() + self.data.len()
    }
}

/// `dz = tanh(MLP_θ(t, z))·dX` for every series of a batch, driven by a [`Path`].
#[derive(Clone, Debug)]
pub struct NeuralCdeTerm<E, Dev>
where
    E: Dtype,
    Dev: Storage<E>,
{
    /// The field's network (`hidden (+ t) → width → hidden·channels`).
    pub model: NeuralMlp<E, Dev>,
    /// The control path.
    pub path: Path,
    dev: Dev,
    data_gradient: bool,
}

impl<E, Dev> NeuralCdeTerm<E, Dev>
where
    E: Dtype + Real,
    Dev: Device<E>,
{
    /// Couples a model with a path: its outputs must be `hidden × path.channels()`, `hidden`
    /// being its input size.
    pub fn new(model: NeuralMlp<E, Dev>, path: Path, dev: &Dev) -> Result<Self> {
        let spec = model.spec();
        if spec.out_dim() != spec.dim * path.channels() {
            return Err(Error::ShapeMismatch {
                what: "CDE model outputs (hidden × path channels)".into(),
                expected: spec.dim * path.channels(),
                found: spec.out_dim(),
            });
        }
        Ok(NeuralCdeTerm {
            model,
            path,
            dev: dev.clone(),
            data_gradient: false,
        })
    }

    /// Also differentiates with respect to the path's data values (see
    /// [`crate::CdeTerm::with_data_gradient`]); natural cubic paths refuse.
    pub fn with_data_gradient(mut self) -> Result<Self> {
        if self.path.interpolation() == Interpolation::NaturalCubic {
            return Err(Error::Unsupported(
                "data gradients of natural cubic splines (global in the knots); use Hermite".into(),
            ));
        }
        self.data_gradient = true;
        Ok(self)
    }

    /// Path channels.
    pub fn channels(&self) -> usize {
        self.path.channels()
    }

    /// The hidden state's size per series (the network's input).
    pub fn state_dim(&self) -> usize {
        self.model.spec().dim
    }

    /// `f` viewed as `batch × hidden × channels`.
    fn matrix(&self, f: Matrix<E, Dev>) -> Tensor<(usize, usize, usize), E, Dev> {
        let rows = f.shape().0;
        f.reshape_like(&(rows, self.state_dim(), self.channels()))
    }
}

impl<E, Dev> Term for NeuralCdeTerm<E, Dev>
where
    E: Dtype + Real,
    Dev: Device<E>,
    Batch<E, Dev>: State<Scalar = E>,
{
    type State = Batch<E, Dev>;
    type Control = NeuralCdeControl<E, Dev>;
    /// `f = tanh(MLP(t, z))`, `batch × hidden·channels` (each row a row-major `hidden × channels` matrix).
    type Field = Batch<E, Dev>;
    type Cache = NeuralCdeCache<E, Dev>;
    type ParamGrad = NeuralCdeGrads<E, Dev>;
    type Scratch = ();

    fn new_control(&self) -> Self::Control {
        NeuralCdeControl {
            t_a: 0.0,
            t_b: 0.0,
            dx: self.dev.zeros_like(&(self.path.batch(), self.channels())),
        }
    }
    fn contr(&self, t_a: f64, t_b: f64, out: &mut Self::Control) {
        out.t_a = t_a;
        out.t_b = t_b;
        let mut dx = vec![0.0; self.path.batch() * self.channels()];
        // Times are validated against the domain before a solve; a failure here poisons the
        // step with NaN, which the loop reports as a non-finite state.
        if self.path.increment(t_a, t_b, &mut dx).is_err() {
            dx.iter_mut().for_each(|v| *v = f64::NAN);
        }
        let dx: Vec<E> = dx.into_iter().map(E::of).collect();
        out.dx = self
            .dev
            .tensor_from_vec(dx, (self.path.batch(), self.channels()));
    }
    fn new_field(&self, like: &Self::State) -> Self::Field {
        Batch(
            self.dev
                .zeros_like(&(like.rows(), self.state_dim() * self.channels())),
        )
    }
    fn new_scratch(&self, _like: &Self::State) {}
    fn new_cache(&self, _like: &Self::State) -> Self::Cache {
        NeuralCdeCache {
            mlp: NeuralCache::default(),
            f: None,
        }
    }
    fn new_param_grad(&self) -> Self::ParamGrad {
        NeuralCdeGrads {
            model: self.model.zero_grads(),
            data: vec![0.0; self.data_gradient as usize * self.path.data_len()],
        }
    }
    fn validate_state(&self, z: &Self::State) -> Result<()> {
        self.model.check_input(z.cols())?;
        if z.rows() != self.path.batch() {
            return Err(Error::ShapeMismatch {
                what: "CDE state rows (path batch)".into(),
                expected: self.path.batch(),
                found: z.rows(),
            });
        }
        Ok(())
    }
    fn domain(&self) -> (f64, f64) {
        self.path.domain()
    }
    /// "the CDE path": a time outside it is outside the path's interval, not the solver's.
    fn domain_owner(&self) -> String {
        "the CDE path".into()
    }
    fn vf(
        &self,
        t: f64,
        z: &Self::State,
        v: &mut Self::Field,
        cache: Option<&mut Self::Cache>,
        _: &mut (),
    ) {
        v.0 = match cache {
            Some(cache) => {
                let f = self.model.forward(t, &z.0, Some(&mut cache.mlp)).tanh();
                cache.f = Some(f.clone());
                f
            }
            None => self.model.forward(t, &z.0, None).tanh(),
        };
    }
    fn prod(&self, v: &Self::Field, c: &Self::Control, out: &mut Self::State) {
        let shape = (v.rows(), self.state_dim(), self.channels());
        let dx = c.dx.clone().broadcast_like::<_, Axis<1>>(&shape);
        out.0 = (self.matrix(v.0.clone()) * dx).sum::<(usize, usize), Axis<2>>();
    }
    /// `V̄_b = (scale·cot_b) ⊗ dX_b`.
    fn prod_vjp(&self, c: &Self::Control, cot: &Self::State, scale: E, v_bar: &mut Self::Field) {
        let rows = cot.rows();
        let shape = (rows, self.state_dim(), self.channels());
        let cot3 = (cot.0.clone() * scale).broadcast_like::<_, Axis<2>>(&shape);
        let g = cot3 * c.dx.clone().broadcast_like::<_, Axis<1>>(&shape);
        v_bar.0 = g.reshape_like(&(rows, self.state_dim() * self.channels()));
    }
    /// Through the tanh, then the network.
    fn vf_vjp(
        &self,
        t: f64,
        cache: &Self::Cache,
        v_bar: &Self::Field,
        z_bar: &mut Self::State,
        p_bar: &mut Self::ParamGrad,
        _: &mut (),
    ) {
        let Some(f) = cache.f.as_ref() else {
            return;
        };
        let g = v_bar.0.clone() * (f.clone().square().negate() + E::one());
        self.model
            .backward(t, &cache.mlp, &g, E::one(), &mut z_bar.0, &mut p_bar.model);
    }
    /// With data gradients, also `dX̄_b = F_bᵀ(scale·cot_b)` pulled through the path into
    /// `p_bar.data`.
    fn vf_prod_vjp(
        &self,
        at: Traced<'_, Self>,
        cot: &Self::State,
        scale: E,
        z_bar: &mut Self::State,
        p_bar: &mut Self::ParamGrad,
        ws: &mut Workspace<Self>,
    ) {
        if let (true, Some(f)) = (self.data_gradient, at.cache.f.as_ref()) {
            let shape = (cot.rows(), self.state_dim(), self.channels());
            let cot3 = (cot.0.clone() * scale).broadcast_like::<_, Axis<2>>(&shape);
            let dx_bar = (self.matrix(f.clone()) * cot3)
                .sum::<(usize, usize), Axis<1>>()
                .as_vec();
            let dx_bar: Vec<f64> = dx_bar.into_iter().map(|v| v.as_f64()).collect();
            // The times were validated by the solve; the shapes by construction.
            let _ = self.path.increment_data_vjp(
                at.control.t_a,
                at.control.t_b,
                &dx_bar,
                &mut p_bar.data,
            );
        }
        self.prod_vjp(at.control, cot, scale, &mut ws.field_bar);
        self.vf_vjp(at.t, at.cache, &ws.field_bar, z_bar, p_bar, &mut ws.scratch);
    }
}
