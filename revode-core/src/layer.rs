//! One trait for a differentiable network, whatever the backend, and the ODE term of any such
//! network.
//!
//! A [`Layer`] maps a batch of rows `x` (rows × `spec.dim`) at time t to `f_θ(t, x)` (rows ×
//! `spec.out_dim()`), keeps what its pullback needs in a cache, pulls a cotangent back to the
//! input and the parameters, and shows its parameters and their gradient as one flat vector in
//! the [`MlpSpec`] layout. Two backends implement it for the MLP: the native CPU [`Mlp`]
//! (batch rows in a `Vec`, gemm kernels) and, with the `neural` feature, dfdx's
//! [`crate::neural::NeuralMlp`] (a device tensor, so the same code runs on `Cpu` and `Cuda`).
//! Both read and write the same flat layout and the same file ([`Layer::save`], [`load`]).
//!
//! [`LayerTerm`] is `dy = f_θ(t, y)·dt` for any layer: a family's term is a layer plus the
//! term's shape (here the identity; the CDE's matrix field and the SDE's drift and diffusion
//! build on the same layers).

use crate::term::{Traced, Workspace};
use crate::{FlatParams, GradBuffer, Mlp, MlpSpec, Real, Result, State, Term, VectorField};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// A differentiable network `f_θ(t, x)` over a batch of rows.
pub trait Layer {
    /// The scalar type of values and gradients.
    type Scalar: Real;
    /// A batch of rows: the input (rows × `dim`) and, for a vector field, the output.
    type Batch: State<Scalar = Self::Scalar>;
    /// What a traced forward keeps for its pullback.
    type Cache: Default + Clone;
    /// The parameters' cotangent accumulator.
    type Grad: GradBuffer;

    /// Shape, activation and flat layout.
    fn spec(&self) -> &MlpSpec;
    /// Checks that `x` is a batch this layer takes (a typed error instead of a panic later).
    fn check_input(&self, x: &Self::Batch) -> Result<()>;
    /// `out ← f_θ(t, x)` (`out` shaped rows × `out_dim`); fills `cache` when given.
    fn forward(
        &self,
        t: f64,
        x: &Self::Batch,
        out: &mut Self::Batch,
        cache: Option<&mut Self::Cache>,
    );
    /// At the point `cache` holds: `x_bar += scale·(∂f/∂x)ᵀcot`, `grad += scale·(∂f/∂θ)ᵀcot`.
    fn pullback(
        &self,
        t: f64,
        cache: &Self::Cache,
        cot: &Self::Batch,
        scale: Self::Scalar,
        x_bar: &mut Self::Batch,
        grad: &mut Self::Grad,
    );
    /// A zero batch shaped like this layer's output for input `x` (rows × `out_dim`).
    fn output_like(&self, x: &Self::Batch) -> Self::Batch;
    /// A batch of `rows` rows (`values.len() / rows` columns, row-major) on this layer's
    /// device, e.g. a Brownian increment to multiply a diffusion's output by. The default
    /// refuses (`Error::Unsupported`); both MLP backends implement it.
    fn batch_from_f64(&self, rows: usize, values: &[f64]) -> Result<Self::Batch> {
        let _ = (rows, values);
        Err(crate::Error::Unsupported(
            "building a batch from host values for this layer".into(),
        ))
    }
    /// A zero parameter cotangent.
    fn zero_grad(&self) -> Self::Grad;
    /// The parameters, flat, in the [`MlpSpec`] layout.
    fn flat_params(&self) -> Vec<f64>;
    /// Replaces the parameters (flat, [`MlpSpec`] layout; length and finiteness checked).
    fn set_flat_params(&mut self, params: &[f64]) -> Result<()>;
    /// A parameter cotangent, flat, in the [`MlpSpec`] layout.
    fn flat_grad(&self, grad: &Self::Grad) -> Vec<f64>;

    /// The parameters as one flat vector where they reside: host `Vec<f64>` for the native
    /// backend, a device tensor for dfdx. The trainer updates θ and its optimiser state there
    /// (`train::Trainer::for_params`), so a GPU model's parameters never visit the host.
    type Params: FlatParams;
    /// The parameters, flat in the [`MlpSpec`] layout, where they reside.
    fn resident_params(&self) -> Self::Params;
    /// Replaces the parameters from a flat vector where they reside (length and finiteness
    /// checked).
    fn set_resident_params(&mut self, params: &<Self::Params as FlatParams>::View) -> Result<()>;
    /// A parameter cotangent, flat in the [`MlpSpec`] layout, where the parameters reside.
    fn resident_grad(&self, grad: &Self::Grad) -> Self::Params;

    /// Initialises the parameters uniformly in ±1/√fan_in from `seed` (the same values on
    /// every backend).
    fn init_from_seed(&mut self, seed: u64) -> Result<()> {
        let p = self.spec().init_uniform(seed);
        self.set_flat_params(&p)
    }
    /// Writes the spec and the parameters to `path` as JSON, atomically (a crash leaves the
    /// old file or the new one, never a mix). Floats round-trip exactly.
    fn save(&self, path: &Path) -> Result<()> {
        let file = LayerFile {
            format: FORMAT.into(),
            spec: self.spec().clone(),
            params: self.flat_params(),
        };
        let bytes = serde_json::to_vec(&file).map_err(|e| crate::Error::Io {
            path: path.display().to_string(),
            message: e.to_string(),
        })?;
        crate::files::write_atomic(path, &bytes)
    }
    /// Loads parameters saved by [`Layer::save`] (from either backend) into this layer; the
    /// file's spec must equal this layer's.
    fn load_params(&mut self, path: &Path) -> Result<()> {
        let (spec, params) = load(path)?;
        if &spec != self.spec() {
            return Err(crate::Error::Checkpoint {
                files: path.display().to_string(),
                message: format!("saved for {spec:?}, not for this layer's {:?}", self.spec()),
            });
        }
        self.set_flat_params(&params)
    }
}

const FORMAT: &str = "revode-layer-1";

#[derive(Serialize, Deserialize)]
struct LayerFile {
    format: String,
    spec: MlpSpec,
    params: Vec<f64>,
}

/// Reads a file written by [`Layer::save`]: the spec and the flat parameters, checked
/// (format, valid spec, parameter count, finite values). Build either backend from them.
pub fn load(path: &Path) -> Result<(MlpSpec, Vec<f64>)> {
    let refuse = |message: String| crate::Error::Checkpoint {
        files: path.display().to_string(),
        message,
    };
    let bytes = std::fs::read(path).map_err(|e| crate::Error::Io {
        path: path.display().to_string(),
        message: e.to_string(),
    })?;
    let file: LayerFile =
        serde_json::from_slice(&bytes).map_err(|e| refuse(format!("not a layer file: {e}")))?;
    if file.format != FORMAT {
        return Err(refuse(format!(
            "format '{}', expected '{FORMAT}'",
            file.format
        )));
    }
    file.spec.validate()?;
    if file.params.len() != file.spec.num_params() {
        return Err(refuse(format!(
            "{} parameters for a spec that has {}",
            file.params.len(),
            file.spec.num_params()
        )));
    }
    crate::error::check_finite("saved layer parameters", &file.params)?;
    Ok((file.spec, file.params))
}

/// The native MLP's cache: the input rows and the hidden activations.
#[derive(Clone, Debug, Default)]
pub struct NativeCache<S> {
    input: Vec<S>,
    activations: Vec<S>,
}

impl<S: Real> Layer for Mlp<S> {
    type Scalar = S;
    type Batch = Vec<S>;
    type Cache = NativeCache<S>;
    type Grad = Vec<S>;

    fn spec(&self) -> &MlpSpec {
        Mlp::spec(self)
    }
    /// The native MLP is built for a batch size: `x` holds `batch × dim` values.
    fn check_input(&self, x: &Vec<S>) -> Result<()> {
        if x.len() != self.dim() {
            return Err(crate::Error::ShapeMismatch {
                what: format!(
                    "native MLP input ({} rows × dim {})",
                    self.batch(),
                    self.spec().dim
                ),
                expected: self.dim(),
                found: x.len(),
            });
        }
        Ok(())
    }
    fn forward(&self, t: f64, x: &Vec<S>, out: &mut Vec<S>, cache: Option<&mut NativeCache<S>>) {
        match cache {
            Some(c) => {
                c.input.clone_from(x);
                c.activations.resize(self.cache_len(), S::zero());
                self.eval_cached(t, x, out, &mut c.activations);
            }
            None => self.eval(t, x, out),
        }
    }
    fn pullback(
        &self,
        t: f64,
        cache: &NativeCache<S>,
        cot: &Vec<S>,
        scale: S,
        x_bar: &mut Vec<S>,
        grad: &mut Vec<S>,
    ) {
        self.vjp_cached(t, &cache.input, &cache.activations, cot, scale, x_bar, grad);
    }
    fn batch_from_f64(&self, rows: usize, values: &[f64]) -> Result<Vec<S>> {
        if rows == 0 || !values.len().is_multiple_of(rows) {
            return Err(crate::Error::config(
                "batch values",
                format!("{} values do not fill {rows} rows", values.len()),
            ));
        }
        Ok(values.iter().map(|&v| S::of(v)).collect())
    }
    fn output_like(&self, _x: &Vec<S>) -> Vec<S> {
        vec![S::zero(); self.out_len()]
    }
    fn zero_grad(&self) -> Vec<S> {
        vec![S::zero(); self.params().len()]
    }
    fn flat_params(&self) -> Vec<f64> {
        self.params().iter().map(|v| v.as_f64()).collect()
    }
    fn set_flat_params(&mut self, params: &[f64]) -> Result<()> {
        *self = self.clone().with_params(params)?;
        Ok(())
    }
    fn flat_grad(&self, grad: &Vec<S>) -> Vec<f64> {
        grad.iter().map(|v| v.as_f64()).collect()
    }
    /// The host is where the native MLP lives: the flat host view.
    type Params = Vec<f64>;
    fn resident_params(&self) -> Vec<f64> {
        self.flat_params()
    }
    fn set_resident_params(&mut self, params: &[f64]) -> Result<()> {
        self.set_flat_params(params)
    }
    fn resident_grad(&self, grad: &Vec<S>) -> Vec<f64> {
        self.flat_grad(grad)
    }
}

/// `dy = f_θ(t, y)·dt` for any [`Layer`] that is a vector field (outputs = inputs; others are
/// refused with a typed error before a solve).
#[derive(Clone, Debug)]
pub struct LayerTerm<L> {
    /// The network.
    pub model: L,
}

impl<L: Layer> Term for LayerTerm<L> {
    type State = L::Batch;
    type Control = f64;
    type Field = L::Batch;
    type Cache = L::Cache;
    type ParamGrad = L::Grad;
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
        L::Cache::default()
    }
    fn new_scratch(&self, _like: &Self::State) {}
    /// A vector field (outputs = inputs), and a state the network takes.
    fn validate_state(&self, y: &Self::State) -> Result<()> {
        let spec = self.model.spec();
        if spec.out_dim() != spec.dim {
            return Err(crate::Error::config(
                "ODE layer",
                format!(
                    "an ODE field maps dim → dim; this network maps {} → {}",
                    spec.dim,
                    spec.out_dim()
                ),
            ));
        }
        self.model.check_input(y)
    }
    fn new_param_grad(&self) -> Self::ParamGrad {
        self.model.zero_grad()
    }
    fn vf(&self, t: f64, y: &L::Batch, v: &mut L::Batch, cache: Option<&mut L::Cache>, _: &mut ()) {
        self.model.forward(t, y, v, cache);
    }
    fn prod(&self, v: &L::Batch, c: &f64, out: &mut L::Batch) {
        out.copy_from(v);
        out.scale(L::Scalar::of(*c));
    }
    fn prod_vjp(&self, c: &f64, cot: &L::Batch, scale: L::Scalar, v_bar: &mut L::Batch) {
        v_bar.copy_from(cot);
        v_bar.scale(scale * L::Scalar::of(*c));
    }
    fn vf_vjp(
        &self,
        t: f64,
        cache: &L::Cache,
        v_bar: &L::Batch,
        y_bar: &mut L::Batch,
        p_bar: &mut L::Grad,
        _: &mut (),
    ) {
        self.model
            .pullback(t, cache, v_bar, L::Scalar::of(1.0), y_bar, p_bar);
    }
    /// Fused: `dt` is folded into the pullback's scale.
    fn vf_prod_vjp(
        &self,
        at: Traced<'_, Self>,
        cot: &L::Batch,
        scale: L::Scalar,
        y_bar: &mut L::Batch,
        p_bar: &mut L::Grad,
        _: &mut Workspace<Self>,
    ) {
        let s = scale * L::Scalar::of(*at.control);
        self.model.pullback(at.t, at.cache, cot, s, y_bar, p_bar);
    }
}
