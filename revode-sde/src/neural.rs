//! A neural SDE over any [`Layer`]: `dy = μ_θ(t, y) dt + σ_θ(t, y) ∘ dW` with diagonal noise,
//! drift and diffusion two layers of one backend, the state a batch of that backend (a `Vec`
//! for the native [`revode_core::Mlp`], a device tensor for dfdx's [`NeuralMlp`]).
//!
//! The Brownian path stays on the host; each step's increment (`batch × dim` values) is copied
//! to the layer's device once and shared by every stage evaluated on that step, so the
//! reversible gradient regenerates it backwards exactly as for host states.

use crate::{BrownianPath, Calculus};
use revode_core::grad_buffer::GradBuffer;
use revode_core::layer::Layer;
use revode_core::neural::NeuralMlp;
use revode_core::{scalar::Real, state::Pair, Error, Result, State, Term};

/// The control of one step: `dt` and `W(t_b) − W(t_a)` on the layer's device.
pub struct LayerSdeControl<L: Layer> {
    /// `t_b − t_a`.
    pub dt: f64,
    /// The Brownian increment, `batch × dim`.
    pub dw: L::Batch,
}

impl<L: Layer> std::fmt::Debug for LayerSdeControl<L>
where
    L::Batch: std::fmt::Debug,
{
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LayerSdeControl")
            .field("dt", &self.dt)
            .field("dw", &self.dw)
            .finish()
    }
}

impl<L: Layer> Clone for LayerSdeControl<L> {
    fn clone(&self) -> Self {
        LayerSdeControl {
            dt: self.dt,
            dw: self.dw.clone(),
        }
    }
}

/// What a traced evaluation keeps: both layers' caches.
pub struct LayerSdeCache<L: Layer> {
    drift: L::Cache,
    diffusion: L::Cache,
}

impl<L: Layer> Clone for LayerSdeCache<L> {
    fn clone(&self) -> Self {
        LayerSdeCache {
            drift: self.drift.clone(),
            diffusion: self.diffusion.clone(),
        }
    }
}

impl<L: Layer> Default for LayerSdeCache<L> {
    fn default() -> Self {
        LayerSdeCache {
            drift: L::Cache::default(),
            diffusion: L::Cache::default(),
        }
    }
}

/// Parameter cotangents of a [`LayerSdeTerm`].
pub struct LayerSdeGrads<L: Layer> {
    /// The drift's.
    pub drift: L::Grad,
    /// The diffusion's.
    pub diffusion: L::Grad,
}

impl<L: Layer> GradBuffer for LayerSdeGrads<L> {
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

/// `dy = μ(t, y) dt + σ(t, y) ∘ dW` for a batch, diagonal noise, over two layers.
#[derive(Clone)]
pub struct LayerSdeTerm<L: Layer> {
    /// The drift network `μ_θ(t, y)`.
    pub drift: L,
    /// The diffusion network `σ_θ(t, y)` (one noise channel per state entry).
    pub diffusion: L,
    path: BrownianPath,
    calculus: Calculus,
    /// A zero increment on the layers' device (what a new control starts from).
    dw_zero: L::Batch,
}

impl<L: Layer + std::fmt::Debug> std::fmt::Debug for LayerSdeTerm<L> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LayerSdeTerm")
            .field("drift", &self.drift)
            .field("diffusion", &self.diffusion)
            .field("path", &self.path)
            .field("calculus", &self.calculus)
            .finish_non_exhaustive()
    }
}

/// The dfdx neural SDE (any device): drift and diffusion [`NeuralMlp`]s.
pub type NeuralSdeTerm<E, Dev> = LayerSdeTerm<NeuralMlp<E, Dev>>;
/// The control of a [`NeuralSdeTerm`].
pub type NeuralSdeControl<E, Dev> = LayerSdeControl<NeuralMlp<E, Dev>>;
/// The parameter cotangents of a [`NeuralSdeTerm`].
pub type NeuralSdeGrads<E, Dev> = LayerSdeGrads<NeuralMlp<E, Dev>>;

impl<L: Layer> LayerSdeTerm<L> {
    /// Combines the layers with a Brownian path: both map `dim → dim` (diagonal noise, one
    /// channel per state entry) and the path has `dim` channels per sample.
    pub fn new(drift: L, diffusion: L, path: BrownianPath, calculus: Calculus) -> Result<Self> {
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
        let dw_zero = drift.batch_from_f64(path.batch(), &vec![0.0; path.batch() * d])?;
        // Both layers must take the path's batch (a native layer is built for a row count).
        drift.check_input(&dw_zero)?;
        diffusion.check_input(&dw_zero)?;
        Ok(LayerSdeTerm {
            drift,
            diffusion,
            path,
            calculus,
            dw_zero,
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

impl<L: Layer> Term for LayerSdeTerm<L> {
    type State = L::Batch;
    type Control = LayerSdeControl<L>;
    /// `Pair { y: μ(t, y), z: σ(t, y) }` on the layers' device.
    type Field = Pair<L::Batch>;
    type Cache = LayerSdeCache<L>;
    type ParamGrad = LayerSdeGrads<L>;
    type Scratch = ();

    fn new_control(&self) -> Self::Control {
        LayerSdeControl {
            dt: 0.0,
            dw: self.dw_zero.clone(),
        }
    }
    fn contr(&self, t_a: f64, t_b: f64, out: &mut Self::Control) {
        out.dt = t_b - t_a;
        let mut dw = vec![0.0; self.path.batch() * self.dim()];
        // The integration loop has checked the times against `domain()`.
        self.path.increment_unchecked(t_a, t_b, &mut dw);
        // The shape is the term's own (`dw_zero`'s), so the copy cannot fail.
        out.dw.set_from_f64(&dw);
    }
    fn new_field(&self, like: &Self::State) -> Self::Field {
        Pair {
            y: self.drift.output_like(like),
            z: self.diffusion.output_like(like),
        }
    }
    fn new_scratch(&self, _like: &Self::State) {}
    fn new_cache(&self, _like: &Self::State) -> Self::Cache {
        LayerSdeCache::default()
    }
    fn new_param_grad(&self) -> Self::ParamGrad {
        LayerSdeGrads {
            drift: self.drift.zero_grad(),
            diffusion: self.diffusion.zero_grad(),
        }
    }
    fn validate_state(&self, y: &Self::State) -> Result<()> {
        self.drift.check_input(y)?;
        let expected = self.path.batch() * self.dim();
        if y.len() != expected {
            return Err(Error::ShapeMismatch {
                what: "SDE state (Brownian batch × dim)".into(),
                expected,
                found: y.len(),
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
                self.drift.forward(t, y, &mut v.y, Some(&mut cache.drift));
                self.diffusion
                    .forward(t, y, &mut v.z, Some(&mut cache.diffusion));
            }
            None => {
                self.drift.forward(t, y, &mut v.y, None);
                self.diffusion.forward(t, y, &mut v.z, None);
            }
        }
    }
    /// `μ·dt + σ ⊙ dW`.
    fn prod(&self, v: &Self::Field, c: &Self::Control, out: &mut Self::State) {
        let mut noise = v.z.clone();
        noise.mul_elementwise(&c.dw);
        out.lin_comb(L::Scalar::of(c.dt), &v.y, L::Scalar::of(1.0), &noise);
    }
    /// `μ̄ = scale·dt·cot`, `σ̄ = scale·cot ⊙ dW`.
    fn prod_vjp(
        &self,
        c: &Self::Control,
        cot: &Self::State,
        scale: L::Scalar,
        v_bar: &mut Self::Field,
    ) {
        v_bar.y.copy_from(cot);
        v_bar.y.scale(scale * L::Scalar::of(c.dt));
        v_bar.z.copy_from(cot);
        v_bar.z.mul_elementwise(&c.dw);
        v_bar.z.scale(scale);
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
        let one = L::Scalar::of(1.0);
        self.drift
            .pullback(t, &cache.drift, &v_bar.y, one, y_bar, &mut p_bar.drift);
        self.diffusion.pullback(
            t,
            &cache.diffusion,
            &v_bar.z,
            one,
            y_bar,
            &mut p_bar.diffusion,
        );
    }
}
