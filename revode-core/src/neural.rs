//! Neural vector fields on dfdx: batched states as device tensors, MLPs with a pullback on the
//! device, and the ODE term that plugs them into the core's step maps and gradient methods.
//!
//! The state is a `batch × D` tensor on the model's device; every state operation is a dfdx
//! tensor operation, so the same code runs on CPU and (with the `cuda` feature) on a GPU. The
//! pullback is written out layer by layer with dfdx matmuls over the activations the traced
//! evaluation cached, so a pullback costs no extra forward evaluation and needs neither a tape
//! object per stage (dfdx tapes are single-use and not `Clone`, which the full-tape baseline
//! needs) nor input-gradient hooks.

use crate::mlp::{Activation, MlpSpec, LIPSWISH_SCALE};
use crate::term::{Traced, Workspace};
use crate::{Error, Real, Result, State, Term};
use dfdx::prelude::*;

/// A `batch × N` state tensor on a dfdx device.
#[derive(Clone, Debug)]
pub struct Batch<const N: usize, E: Dtype, Dev: Storage<E>>(pub Tensor<(usize, Const<N>), E, Dev>);

impl<const N: usize, E: Dtype + Real, Dev: Device<E>> Batch<N, E, Dev> {
    /// A batch from row-major host values (`rows × N`).
    pub fn from_rows(dev: &Dev, rows: usize, values: &[E]) -> Result<Self> {
        if values.len() != rows * N {
            return Err(Error::ShapeMismatch {
                what: "batch values".into(),
                expected: rows * N,
                found: values.len(),
            });
        }
        Ok(Batch(
            dev.tensor_from_vec(values.to_vec(), (rows, Const::<N>)),
        ))
    }
    /// Number of rows.
    pub fn rows(&self) -> usize {
        self.0.shape().0
    }
    /// Row-major host copy.
    pub fn to_host(&self) -> Vec<E> {
        self.0.as_vec()
    }
}

fn scalar<E: Dtype + Real, Dev: Device<E>>(t: Tensor<Rank0, E, Dev>) -> E {
    t.as_vec()[0]
}

impl<const N: usize, E: Dtype + Real, Dev: Device<E>> State for Batch<N, E, Dev> {
    type Scalar = E;
    fn zeros_like(&self) -> Self {
        Batch(self.0.device().zeros_like(self.0.shape()))
    }
    fn len(&self) -> usize {
        self.0.shape().0 * N
    }
    fn copy_from(&mut self, other: &Self) {
        self.0 = other.0.clone();
    }
    fn set_zero(&mut self) {
        self.0 = self.0.device().zeros_like(self.0.shape());
    }
    fn axpy(&mut self, a: E, x: &Self) {
        self.0 = self.0.clone() + x.0.clone() * a;
    }
    fn scale(&mut self, a: E) {
        self.0 = self.0.clone() * a;
    }
    fn scale_add(&mut self, a: E, b: E, x: &Self) {
        self.0 = self.0.clone() * a + x.0.clone() * b;
    }
    fn lin_comb(&mut self, a: E, x: &Self, b: E, y: &Self) {
        self.0 = x.0.clone() * a + y.0.clone() * b;
    }
    fn dot(&self, other: &Self) -> E {
        scalar((self.0.clone() * other.0.clone()).sum::<Rank0, _>())
    }
    fn all_finite(&self) -> bool {
        // x − x is 0 for finite x and NaN for ±∞ or NaN: one scalar crosses to the host.
        scalar((self.0.clone() - self.0.clone()).sum::<Rank0, _>()).is_finite()
    }
    fn max_abs(&self) -> E {
        scalar(self.0.clone().abs().max::<Rank0, _>())
    }
    fn max_abs_diff(&self, other: &Self) -> E {
        scalar((self.0.clone() - other.0.clone()).abs().max::<Rank0, _>())
    }
    fn scaled_rms(&self, a: &Self, b: &Self, atol: f64, rtol: f64) -> f64 {
        let scale = a.0.clone().abs().maximum(b.0.clone().abs()) * E::of(rtol) + E::of(atol);
        let r = self.0.clone() / scale;
        scalar(r.square().mean::<Rank0, _>()).as_f64().sqrt()
    }
    fn scaled_max(&self, a: &Self, b: &Self, atol: f64, rtol: f64) -> f64 {
        let scale = a.0.clone().abs().maximum(b.0.clone().abs()) * E::of(rtol) + E::of(atol);
        let r = self.0.clone() / scale;
        // r − r is 0 for finite entries and NaN otherwise: a NaN never reads as small.
        if !scalar((r.clone() - r.clone()).sum::<Rank0, _>()).is_finite() {
            return f64::NAN;
        }
        scalar(r.abs().max::<Rank0, _>()).as_f64()
    }
    fn to_f64_vec(&self) -> Vec<f64> {
        self.0.as_vec().into_iter().map(|v| v.as_f64()).collect()
    }
    fn set_from_f64(&mut self, values: &[f64]) -> bool {
        if values.len() != self.len() {
            return false;
        }
        let v = values.iter().map(|&x| E::of(x)).collect();
        self.0 = self.0.device().tensor_from_vec(v, *self.0.shape());
        true
    }
}

/// A `batch × N` tensor.
type Rows<const N: usize, E, Dev> = Tensor<(usize, Const<N>), E, Dev>;

/// A hidden layer's cached (z, a), z optional.
type CachedLayer<const H: usize, E, Dev> = (Option<Rows<H, E, Dev>>, Rows<H, E, Dev>);

/// One hidden layer's parameters.
type Layer<const O: usize, const I: usize, E, Dev> =
    (Tensor<Rank2<O, I>, E, Dev>, Tensor<Rank1<O>, E, Dev>);

/// An MLP `D (+ time) → H (× depth) → O` on a dfdx device, in the [`MlpSpec`] layout; `O`
/// defaults to `D` (a vector field).
///
/// Widths are compile-time constants (dfdx 0.13's layers are const-generic): pick `H` from the
/// menu you need (e.g. 10, 32, 64, 128); depth, activation and the time input are run-time.
#[derive(Clone, Debug)]
pub struct NeuralMlp<const D: usize, const H: usize, E: Dtype, Dev: Storage<E>, const O: usize = D>
{
    spec: MlpSpec,
    first: Layer<H, D, E, Dev>,
    time_w: Tensor<Rank1<H>, E, Dev>,
    hidden: Vec<Layer<H, H, E, Dev>>,
    last: Layer<O, H, E, Dev>,
}

/// Parameter cotangents of a [`NeuralMlp`], accumulated on the device.
#[derive(Clone, Debug)]
pub struct NeuralGrads<
    const D: usize,
    const H: usize,
    E: Dtype,
    Dev: Storage<E>,
    const O: usize = D,
> {
    first: Layer<H, D, E, Dev>,
    time_w: Tensor<Rank1<H>, E, Dev>,
    hidden: Vec<Layer<H, H, E, Dev>>,
    last: Layer<O, H, E, Dev>,
}

/// What a traced evaluation keeps: the input and each hidden layer's (z, a).
#[derive(Clone, Debug)]
pub struct NeuralCache<const D: usize, const H: usize, E: Dtype, Dev: Storage<E>> {
    input: Option<Tensor<(usize, Const<D>), E, Dev>>,
    /// The layers hold s = σ(2z) instead of a = tanh(z) (the f32 sigmoid path).
    sigmoid: bool,
    /// (z, a) per hidden layer; z is dropped when the derivative needs only a (tanh).
    layers: Vec<CachedLayer<H, E, Dev>>,
}

impl<const D: usize, const H: usize, E: Dtype, Dev: Storage<E>> Default
    for NeuralCache<D, H, E, Dev>
{
    /// An empty cache (filled by a traced evaluation).
    fn default() -> Self {
        NeuralCache {
            input: None,
            sigmoid: false,
            layers: Vec::new(),
        }
    }
}

fn activate<S: Shape, E: Dtype + Real, Dev: Device<E>>(
    act: Activation,
    z: Tensor<S, E, Dev>,
) -> Tensor<S, E, Dev> {
    match act {
        Activation::Tanh => z.tanh(),
        Activation::Relu => z.relu(),
        Activation::Softplus => z.clone().relu() + (z.abs().negate().exp() + E::one()).ln(),
        Activation::LipSwish => z.clone() * z.sigmoid() * E::of(LIPSWISH_SCALE),
    }
}

/// The activation's derivative at z, given a = act(z) (tanh reads only `a`).
fn activate_grad<S: Shape, E: Dtype + Real, Dev: Device<E>>(
    act: Activation,
    z: &Tensor<S, E, Dev>,
    a: &Tensor<S, E, Dev>,
) -> Tensor<S, E, Dev> {
    match act {
        Activation::Tanh => (a.clone().square().negate()) + E::one(),
        Activation::Relu => {
            // 1 where z > 0, else 0, computed on the device.
            let ones = z.device().ones_like(z.shape());
            let zeros = z.device().zeros_like(z.shape());
            z.gt(E::zero()).choose(ones, zeros)
        }
        Activation::Softplus => z.clone().sigmoid(),
        Activation::LipSwish => {
            let s = z.clone().sigmoid();
            let one_minus = s.clone().negate() + E::one();
            (s.clone() + z.clone() * s * one_minus) * E::of(LIPSWISH_SCALE)
        }
    }
}

impl<const D: usize, const H: usize, E: Dtype + Real, Dev: Device<E>, const O: usize>
    NeuralMlp<D, H, E, Dev, O>
{
    /// Builds the model from a spec whose `dim` and `hidden` match `D` and `H`, and flat
    /// parameters in the [`MlpSpec`] layout.
    pub fn from_flat(dev: &Dev, spec: MlpSpec, params: &[f64]) -> Result<Self> {
        spec.validate()?;
        if spec.dim != D || spec.hidden != H || spec.out_dim() != O {
            return Err(Error::config(
                "mlp",
                format!(
                    "spec is {} → {} → {} but the model type is {D} → {H} → {O}",
                    spec.dim,
                    spec.hidden,
                    spec.out_dim()
                ),
            ));
        }
        if params.len() != spec.num_params() {
            return Err(Error::ShapeMismatch {
                what: "MLP parameters".into(),
                expected: spec.num_params(),
                found: params.len(),
            });
        }
        crate::error::check_finite("MLP parameters", params)?;
        let mut at = 0usize;
        let mut take = |n: usize| -> Vec<E> {
            let v = params[at..at + n].iter().map(|&x| E::of(x)).collect();
            at += n;
            v
        };
        let inputs = spec.inputs();
        let w = take(H * inputs);
        let (mut wy, mut wt) = (Vec::with_capacity(H * D), Vec::with_capacity(H));
        let sc = spec.state_column();
        for j in 0..H {
            wy.extend_from_slice(&w[j * inputs + sc..j * inputs + sc + D]);
            wt.push(match spec.time_column() {
                Some(tc) => w[j * inputs + tc],
                None => E::zero(),
            });
        }
        let first = (
            dev.tensor_from_vec(wy, (Const::<H>, Const::<D>)),
            dev.tensor_from_vec(take(H), (Const::<H>,)),
        );
        let time_w = dev.tensor_from_vec(wt, (Const::<H>,));
        let mut hidden = Vec::new();
        for _ in 1..spec.depth {
            let w = dev.tensor_from_vec(take(H * H), (Const::<H>, Const::<H>));
            hidden.push((w, dev.tensor_from_vec(take(H), (Const::<H>,))));
        }
        let last = (
            dev.tensor_from_vec(take(O * H), (Const::<O>, Const::<H>)),
            dev.tensor_from_vec(take(O), (Const::<O>,)),
        );
        Ok(NeuralMlp {
            spec,
            first,
            time_w,
            hidden,
            last,
        })
    }

    /// A model with uniform ±1/√fan_in initialisation from `seed` (same values as the native
    /// [`crate::Mlp`] with the same spec and seed).
    pub fn init_uniform(dev: &Dev, spec: MlpSpec, seed: u64) -> Result<Self> {
        let p = spec.init_uniform(seed);
        Self::from_flat(dev, spec, &p)
    }

    /// The specification.
    pub fn spec(&self) -> &MlpSpec {
        &self.spec
    }

    /// Flat parameters in the [`MlpSpec`] layout (a host copy).
    pub fn to_flat(&self) -> Vec<f64> {
        flatten(
            &self.spec,
            &self.first,
            &self.time_w,
            &self.hidden,
            &self.last,
        )
    }

    /// `f(t, x)` for a batch; fills `cache` when given.
    pub fn forward(
        &self,
        t: f64,
        x: &Tensor<(usize, Const<D>), E, Dev>,
        cache: Option<&mut NeuralCache<D, H, E, Dev>>,
    ) -> Tensor<(usize, Const<O>), E, Dev> {
        if self.sigmoid_path() {
            return self.forward_sigmoid(t, x, cache);
        }
        let act = self.spec.activation;
        let (w, b) = &self.first;
        let mut z = x.clone().matmul(w.clone().permute())
            + b.clone().broadcast_like(&(x.shape().0, Const::<H>));
        if self.spec.time {
            z = z.clone() + (self.time_w.clone() * E::of(t)).broadcast_like(z.shape());
        }
        let keep_z = act != Activation::Tanh;
        let mut a = activate(act, z.clone());
        let mut layers = Vec::with_capacity(self.spec.depth);
        layers.push((keep_z.then_some(z), a.clone()));
        for (w, b) in &self.hidden {
            let z = a.clone().matmul(w.clone().permute()) + b.clone().broadcast_like(a.shape());
            a = activate(act, z.clone());
            layers.push((keep_z.then_some(z), a.clone()));
        }
        let (w, b) = &self.last;
        let out = a.clone().matmul(w.clone().permute())
            + b.clone().broadcast_like(&(x.shape().0, Const::<O>));
        if let Some(c) = cache {
            c.input = Some(x.clone());
            c.sigmoid = false;
            c.layers = layers;
        }
        out
    }

    /// f32 tanh runs as tanh(z) = 2σ(2z) − 1 with the affine parts folded into the (small)
    /// weights, so each hidden layer costs one matmul, one bias add and one sigmoid pass.
    fn sigmoid_path(&self) -> bool {
        self.spec.activation == Activation::Tanh && std::mem::size_of::<E>() == 4
    }

    /// Forward on the sigmoid path: with s = σ(2z) per layer, a = 2s − 1 is never formed:
    /// the next layer uses s·(2W)ᵀ + (b − W·1), doubled for the next σ(2z).
    fn forward_sigmoid(
        &self,
        t: f64,
        x: &Tensor<(usize, Const<D>), E, Dev>,
        cache: Option<&mut NeuralCache<D, H, E, Dev>>,
    ) -> Tensor<(usize, Const<O>), E, Dev> {
        let (two, four) = (E::of(2.0), E::of(4.0));
        let (w, b) = &self.first;
        let rows = x.shape().0;
        let mut z2 = x.clone().matmul((w.clone() * two).permute())
            + (b.clone() * two).broadcast_like(&(rows, Const::<H>));
        if self.spec.time {
            z2 = z2.clone() + (self.time_w.clone() * E::of(2.0 * t)).broadcast_like(z2.shape());
        }
        let mut s = z2.sigmoid();
        let mut layers = Vec::with_capacity(self.spec.depth);
        layers.push((None, s.clone()));
        for (w, b) in &self.hidden {
            let row_sums = w.clone().sum::<Rank1<H>, Axis<1>>();
            let bias = (b.clone() - row_sums) * two;
            let z2 =
                s.clone().matmul((w.clone() * four).permute()) + bias.broadcast_like(s.shape());
            s = z2.sigmoid();
            layers.push((None, s.clone()));
        }
        let (w, b) = &self.last;
        let row_sums = w.clone().sum::<Rank1<O>, Axis<1>>();
        let out = s.clone().matmul((w.clone() * two).permute())
            + (b.clone() - row_sums).broadcast_like(&(rows, Const::<O>));
        if let Some(c) = cache {
            c.input = Some(x.clone());
            c.sigmoid = true;
            c.layers = layers;
        }
        out
    }

    /// Pullback on the sigmoid path: with g = ∂L/∂a ⊙ s(1 − s), ∂L/∂z = 4g and a = 2s − 1, so
    /// W̄ = 8 gᵀs − 4 (Σ_rows g) ⊗ 1 and the factors land on small tensors.
    fn backward_sigmoid(
        &self,
        t: f64,
        cache: &NeuralCache<D, H, E, Dev>,
        x: &Tensor<(usize, Const<D>), E, Dev>,
        delta: Tensor<(usize, Const<O>), E, Dev>,
        x_bar: &mut Tensor<(usize, Const<D>), E, Dev>,
        grads: &mut NeuralGrads<D, H, E, Dev, O>,
    ) {
        let (two, four) = (E::of(2.0), E::of(4.0));
        let depth = cache.layers.len();
        let s_top = &cache.layers[depth - 1].1;
        let col = delta.clone().sum::<Rank1<O>, Axis<0>>();
        let dw = delta
            .clone()
            .permute::<(Const<O>, usize), _>()
            .matmul(s_top.clone())
            * two
            - col.clone().broadcast::<Rank2<O, H>, Axis<1>>();
        grads.last.0 = grads.last.0.clone() + dw;
        grads.last.1 = grads.last.1.clone() + col;
        let mut da = delta.matmul(self.last.0.clone());
        for l in (0..depth).rev() {
            let s = &cache.layers[l].1;
            let g = (s.clone() - s.clone().square()) * da;
            let gsum = g.clone().sum::<Rank1<H>, Axis<0>>();
            if l == 0 {
                let dw = g
                    .clone()
                    .permute::<(Const<H>, usize), _>()
                    .matmul(x.clone())
                    * four;
                grads.first.0 = grads.first.0.clone() + dw;
                grads.first.1 = grads.first.1.clone() + gsum.clone() * four;
                if self.spec.time {
                    grads.time_w = grads.time_w.clone() + gsum * E::of(4.0 * t);
                }
                *x_bar = x_bar.clone() + g.matmul(self.first.0.clone() * four);
                return;
            }
            let below = &cache.layers[l - 1].1;
            let dw = g
                .clone()
                .permute::<(Const<H>, usize), _>()
                .matmul(below.clone())
                * E::of(8.0)
                - (gsum.clone() * four).broadcast::<Rank2<H, H>, Axis<1>>();
            let (w, _) = &self.hidden[l - 1];
            grads.hidden[l - 1].0 = grads.hidden[l - 1].0.clone() + dw;
            grads.hidden[l - 1].1 = grads.hidden[l - 1].1.clone() + gsum * four;
            da = g.matmul(w.clone() * four);
        }
    }

    /// Pullback of `f` at the cached point: `x_bar += scale·Jᵀcot`, `grads += scale·J_θᵀcot`.
    pub fn backward(
        &self,
        t: f64,
        cache: &NeuralCache<D, H, E, Dev>,
        cot: &Tensor<(usize, Const<O>), E, Dev>,
        scale: E,
        x_bar: &mut Tensor<(usize, Const<D>), E, Dev>,
        grads: &mut NeuralGrads<D, H, E, Dev, O>,
    ) {
        let Some(x) = cache.input.as_ref() else {
            return;
        };
        if cache.sigmoid {
            let delta = cot.clone() * scale;
            return self.backward_sigmoid(t, cache, x, delta, x_bar, grads);
        }
        let act = self.spec.activation;
        let delta = cot.clone() * scale;
        let depth = cache.layers.len();
        let a_top = &cache.layers[depth - 1].1;
        accumulate_layer(&mut grads.last, &delta, a_top);
        // ∂L/∂a of the top hidden layer.
        let mut da = delta.matmul(self.last.0.clone());
        for l in (0..depth).rev() {
            let (z, a) = &cache.layers[l];
            let dz = da * activate_grad(act, z.as_ref().unwrap_or(a), a);
            if l == 0 {
                accumulate_layer(&mut grads.first, &dz, x);
                if self.spec.time {
                    let s = dz.clone().sum::<Rank1<H>, _>() * E::of(t);
                    grads.time_w = grads.time_w.clone() + s;
                }
                *x_bar = x_bar.clone() + dz.matmul(self.first.0.clone());
                break;
            }
            let below = &cache.layers[l - 1].1;
            accumulate_layer(&mut grads.hidden[l - 1], &dz, below);
            da = dz.matmul(self.hidden[l - 1].0.clone());
        }
    }

    /// Zeroed gradients shaped like the parameters.
    pub fn zero_grads(&self) -> NeuralGrads<D, H, E, Dev, O> {
        let dev = self.time_w.device();
        NeuralGrads {
            first: (dev.zeros(), dev.zeros()),
            time_w: dev.zeros(),
            hidden: self
                .hidden
                .iter()
                .map(|_| (dev.zeros(), dev.zeros()))
                .collect(),
            last: (dev.zeros(), dev.zeros()),
        }
    }
}

/// `W̄ += δᵀ·a`, `b̄ += Σ_rows δ`.
fn accumulate_layer<const O: usize, const I: usize, E: Dtype + Real, Dev: Device<E>>(
    g: &mut Layer<O, I, E, Dev>,
    delta: &Tensor<(usize, Const<O>), E, Dev>,
    a: &Tensor<(usize, Const<I>), E, Dev>,
) {
    let dw = delta
        .clone()
        .permute::<(Const<O>, usize), _>()
        .matmul(a.clone());
    g.0 = g.0.clone() + dw;
    g.1 = g.1.clone() + delta.clone().sum::<Rank1<O>, _>();
}

fn flatten<const D: usize, const H: usize, E: Dtype + Real, Dev: Device<E>, const O: usize>(
    spec: &MlpSpec,
    first: &Layer<H, D, E, Dev>,
    time_w: &Tensor<Rank1<H>, E, Dev>,
    hidden: &[Layer<H, H, E, Dev>],
    last: &Layer<O, H, E, Dev>,
) -> Vec<f64> {
    let mut out = Vec::with_capacity(spec.num_params());
    let (wy, wt) = (first.0.as_vec(), time_w.as_vec());
    for j in 0..H {
        if spec.time && spec.time_first {
            out.push(wt[j].as_f64());
        }
        out.extend(wy[j * D..(j + 1) * D].iter().map(|v| v.as_f64()));
        if spec.time && !spec.time_first {
            out.push(wt[j].as_f64());
        }
    }
    out.extend(first.1.as_vec().iter().map(|v| v.as_f64()));
    for (w, b) in hidden {
        out.extend(w.as_vec().iter().map(|v| v.as_f64()));
        out.extend(b.as_vec().iter().map(|v| v.as_f64()));
    }
    out.extend(last.0.as_vec().iter().map(|v| v.as_f64()));
    out.extend(last.1.as_vec().iter().map(|v| v.as_f64()));
    out
}

impl<const D: usize, const H: usize, E: Dtype + Real, Dev: Device<E>, const O: usize>
    crate::GradBuffer for NeuralGrads<D, H, E, Dev, O>
{
    fn flat_len(&self) -> usize {
        H * D + 2 * H + self.hidden.len() * (H * H + H) + O * H + O
    }
    /// Scans a host copy of every tensor (first layer, time weights, hidden layers, last).
    fn first_non_finite(&self) -> Option<usize> {
        let mut parts = vec![
            self.first.0.as_vec(),
            self.first.1.as_vec(),
            self.time_w.as_vec(),
        ];
        for (w, b) in &self.hidden {
            parts.push(w.as_vec());
            parts.push(b.as_vec());
        }
        parts.push(self.last.0.as_vec());
        parts.push(self.last.1.as_vec());
        let mut offset = 0;
        for p in &parts {
            if let Some(i) = p.iter().position(|v| !v.is_finite()) {
                return Some(offset + i);
            }
            offset += p.len();
        }
        None
    }
}

impl<const D: usize, const H: usize, E: Dtype + Real, Dev: Device<E>, const O: usize>
    NeuralGrads<D, H, E, Dev, O>
{
    /// Flat host copy in the [`MlpSpec`] layout of `spec`.
    pub fn to_flat(&self, spec: &MlpSpec) -> Vec<f64> {
        flatten(spec, &self.first, &self.time_w, &self.hidden, &self.last)
    }
}

/// The ODE term `f_θ(t, y)·dt` of a [`NeuralMlp`] over batched device states.
#[derive(Clone, Debug)]
pub struct NeuralOdeTerm<const D: usize, const H: usize, E: Dtype, Dev: Storage<E>> {
    /// The model.
    pub model: NeuralMlp<D, H, E, Dev>,
}

impl<const D: usize, const H: usize, E: Dtype + Real, Dev: Device<E>> Term
    for NeuralOdeTerm<D, H, E, Dev>
where
    Batch<D, E, Dev>: State<Scalar = E>,
{
    type State = Batch<D, E, Dev>;
    type Control = f64;
    type Field = Batch<D, E, Dev>;
    type Cache = NeuralCache<D, H, E, Dev>;
    type ParamGrad = NeuralGrads<D, H, E, Dev>;
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
