//! A neural SDE on dfdx: `dy = μ_θ(t, y) dt + σ_θ(t, y) ∘ dW` with diagonal noise, drift and
//! diffusion two [`NeuralMlp`]s, the state a `batch × dim` tensor on the model's device.
//!
//! The Brownian path stays on the host; each step's increment (`batch × dim` values) is copied
//! to the device once and shared by every stage evaluated on that step, so the reversible
//! gradient regenerates it backwards exactly as for host states.

use crate::{BrownianPath, Calculus};
use dfdx::prelude::*;
use revode_core::neural::{Batch, Matrix, NeuralCache, NeuralGrads, NeuralMlp};
use revode_core::{scalar::Real, state::Pair, Error, Result, State, Term};

/// The control of one step: `dt` and `W(t_b) − W(t_a)` on the device.
#[derive(Clone, Debug)]
pub struct NeuralSdeControl<E: Dtype, Dev: Storage<E>> {
    /// `t_b − t_a`.
    pub dt: f64,
    /// The Brownian increment, `batch × D`.
    pub dw: Matrix<E, Dev>,
}

/// What a traced evaluation keeps: both networks' activations.
#[derive(Clone, Debug)]
pub struct NeuralSdeCache<E: Dtype, Dev: Storage<E>> {
    drift: NeuralCache<E, Dev>,
    diffusion: NeuralCache<E, Dev>,
}

/// Parameter cotangents of a [`NeuralSdeTerm`] (on the device).
#[derive(Clone, Debug)]
pub struct NeuralSdeGrads<E: Dtype, Dev: Storage<E>> {
    /// The drift's.
    pub drift: NeuralGrads<E, Dev>,
    /// The diffusion's.
    pub diffusion: NeuralGrads<E, Dev>,
}

impl<E: Dtype + revode_core::scalar::Real, Dev: Device<E>> revode_core::grad_buffer::GradBuffer
    for NeuralSdeGrads<E, Dev>
{
    /// Drift entries first, then diffusion entries.
    fn first_non_finite(&self) -> Option<usize> {
        self.drift.first_non_finite().or_else(|| {
            self.diffusion
                .first_non_finite()
                .map(|i| i + self.drift.flat_len())
        })
    }
    fn flat_len(&self) -> usize {
        self.drift.flat_len() + self.diffusion.flat_len()
    }
}

/// `dy = μ(t, y) dt + σ(t, y) ∘ dW` for a batch, diagonal noise, networks on a dfdx device.
#[derive(Clone, Debug)]
pub struct NeuralSdeTerm<E: Dtype, Dev: Storage<E>> {
    /// The drift network `μ_θ(t, y)`.
    pub drift: NeuralMlp<E, Dev>,
    /// The diffusion network `σ_θ(t, y)` (one noise channel per state entry).
    pub diffusion: NeuralMlp<E, Dev>,
    path: BrownianPath,
    calculus: Calculus,
    dev: Dev,
}

impl<E: Dtype + Real, Dev: Device<E>> NeuralSdeTerm<E, Dev> {
    /// Combines the networks with a Brownian path: both map `dim → dim` (diagonal noise, one
    /// channel per state entry) and the path has `dim` channels per sample.
    pub fn new(
        drift: NeuralMlp<E, Dev>,
        diffusion: NeuralMlp<E, Dev>,
        path: BrownianPath,
        calculus: Calculus,
        dev: &Dev,
    ) -> Result<Self> {
        let d = drift.spec().dim;
        for (what, found) in [
            ("drift outputs (state dimension)", drift.spec().out_dim()),
            ("diffusion inputs (state dimension)", diffusion.spec().dim),
            (
                "diffusion outputs for diagonal noise (state dimension)",
                diffusion.spec().out_dim(),
            ),
            (
                "Brownian channels for diagonal noise (state dimension)",
                path.channels(),
            ),
        ] {
            if found != d {
                return Err(Error::ShapeMismatch {
                    what: what.into(),
                    expected: d,
                    found,
                });
            }
        }
        Ok(NeuralSdeTerm {
            drift,
            diffusion,
            path,
            calculus,
            dev: dev.clone(),
        })
    }
    /// The state's (and noise's) dimension per sample.
    pub fn dim(&self) -> usize {
        self.drift.spec().dim
    }
    /// The Brownian path.
    pub fn path(&self) -> &BrownianPath {
        &self.path
    }
}

impl<E, Dev> Term for NeuralSdeTerm<E, Dev>
where
    E: Dtype + Real,
    Dev: Device<E>,
    Batch<E, Dev>: State<Scalar = E>,
{
    type State = Batch<E, Dev>;
    type Control = NeuralSdeControl<E, Dev>;
    /// `Pair { y: μ(t, y), z: σ(t, y) }` on the device.
    type Field = Pair<Batch<E, Dev>>;
    type Cache = NeuralSdeCache<E, Dev>;
    type ParamGrad = NeuralSdeGrads<E, Dev>;
    type Scratch = ();

    fn new_control(&self) -> Self::Control {
        NeuralSdeControl {
            dt: 0.0,
            dw: self.dev.zeros_like(&(self.path.batch(), self.dim())),
        }
    }
    fn contr(&self, t_a: f64, t_b: f64, out: &mut Self::Control) {
        out.dt = t_b - t_a;
        let mut dw = vec![0.0; self.path.batch() * self.dim()];
        // The integration loop has checked the times against `domain()`.
        self.path.increment_unchecked(t_a, t_b, &mut dw);
        let dw: Vec<E> = dw.into_iter().map(E::of).collect();
        out.dw = self
            .dev
            .tensor_from_vec(dw, (self.path.batch(), self.dim()));
    }
    fn new_field(&self, like: &Self::State) -> Self::Field {
        Pair {
            y: like.zeros_like(),
            z: like.zeros_like(),
        }
    }
    fn new_scratch(&self, _like: &Self::State) {}
    fn new_cache(&self, _like: &Self::State) -> Self::Cache {
        NeuralSdeCache {
            drift: NeuralCache::default(),
            diffusion: NeuralCache::default(),
        }
    }
    fn new_param_grad(&self) -> Self::ParamGrad {
        NeuralSdeGrads {
            drift: self.drift.zero_grads(),
            diffusion: self.diffusion.zero_grads(),
        }
    }
    fn validate_state(&self, y: &Self::State) -> Result<()> {
        self.drift.check_input(y.cols())?;
        if y.rows() != self.path.batch() {
            return Err(Error::ShapeMismatch {
                what: "SDE state rows (Brownian batch)".into(),
                expected: self.path.batch(),
                found: y.rows(),
            });
        }
        Ok(())
    }
    fn domain(&self) -> (f64, f64) {
        self.path.domain()
    }
    /// "the Brownian path": a time outside it is outside the noise's interval.
    fn domain_owner(&self) -> String {
        "the Brownian path".into()
    }
    fn time_reversible(&self) -> bool {
        self.calculus == Calculus::Stratonovich
    }
    fn evals_per_call(&self) -> u64 {
        2
    }
    fn vf(
        &self,
        t: f64,
        y: &Self::State,
        v: &mut Self::Field,
        cache: Option<&mut Self::Cache>,
        _: &mut (),
    ) {
        match cache {
            Some(cache) => {
                v.y.0 = self.drift.forward(t, &y.0, Some(&mut cache.drift));
                v.z.0 = self.diffusion.forward(t, &y.0, Some(&mut cache.diffusion));
            }
            None => {
                v.y.0 = self.drift.forward(t, &y.0, None);
                v.z.0 = self.diffusion.forward(t, &y.0, None);
            }
        }
    }
    fn prod(&self, v: &Self::Field, c: &Self::Control, out: &mut Self::State) {
        out.0 = v.y.0.clone() * E::of(c.dt) + v.z.0.clone() * c.dw.clone();
    }
    fn prod_vjp(&self, c: &Self::Control, cot: &Self::State, scale: E, v_bar: &mut Self::Field) {
        v_bar.y.0 = cot.0.clone() * (scale * E::of(c.dt));
        v_bar.z.0 = cot.0.clone() * c.dw.clone() * scale;
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
        let one = E::of(1.0);
        self.drift.backward(
            t,
            &cache.drift,
            &v_bar.y.0,
            one,
            &mut y_bar.0,
            &mut p_bar.drift,
        );
        self.diffusion.backward(
            t,
            &cache.diffusion,
            &v_bar.z.0,
            one,
            &mut y_bar.0,
            &mut p_bar.diffusion,
        );
    }
}
