//! The MLP on a dfdx device: forward with a cache and a hand-written pullback, every size a
//! run-time value, in the flat parameter layout of [`MlpSpec`] shared with the native
//! [`crate::Mlp`].

use super::batch::{Matrix, Vector};
use crate::mlp::{Activation, MlpSpec, LIPSWISH_SCALE};
use crate::{Error, Real, Result};
use dfdx::prelude::*;

/// One affine layer's parameters: weight (out × in) and bias (out).
type Affine<E, Dev> = (Matrix<E, Dev>, Vector<E, Dev>);

/// A hidden layer's cached (z, a), z optional.
type CachedLayer<E, Dev> = (Option<Matrix<E, Dev>>, Matrix<E, Dev>);

/// `mᵀ`.
fn transpose<E: Dtype, Dev: Device<E>>(m: Matrix<E, Dev>) -> Matrix<E, Dev> {
    m.permute::<(usize, usize), Axes2<1, 0>>()
}

/// `v` repeated as each of `rows` rows.
fn as_rows<E: Dtype, Dev: Device<E>>(v: Vector<E, Dev>, rows: usize) -> Matrix<E, Dev> {
    let n = v.shape().0;
    v.broadcast_like::<_, Axis<0>>(&(rows, n))
}

/// `v` repeated as each of `cols` columns.
fn as_cols<E: Dtype, Dev: Device<E>>(v: Vector<E, Dev>, cols: usize) -> Matrix<E, Dev> {
    let n = v.shape().0;
    v.broadcast_like::<_, Axis<1>>(&(n, cols))
}

/// `Σ_rows m`.
fn column_sums<E: Dtype, Dev: Device<E>>(m: Matrix<E, Dev>) -> Vector<E, Dev> {
    m.sum::<(usize,), Axis<0>>()
}

/// `Σ_cols m`.
fn row_sums<E: Dtype, Dev: Device<E>>(m: Matrix<E, Dev>) -> Vector<E, Dev> {
    m.sum::<(usize,), Axis<1>>()
}

/// An MLP `dim (+ time) → hidden (× depth) → outputs` on a dfdx device, in the [`MlpSpec`]
/// layout. Every size is a run-time value of the spec: any width, depth, input and output
/// size.
#[derive(Clone, Debug)]
pub struct NeuralMlp<E: Dtype, Dev: Storage<E>> {
    spec: MlpSpec,
    first: Affine<E, Dev>,
    time_w: Vector<E, Dev>,
    hidden: Vec<Affine<E, Dev>>,
    last: Affine<E, Dev>,
}

/// Parameter cotangents of a [`NeuralMlp`], accumulated on the device.
#[derive(Clone, Debug)]
pub struct NeuralGrads<E: Dtype, Dev: Storage<E>> {
    first: Affine<E, Dev>,
    time_w: Vector<E, Dev>,
    hidden: Vec<Affine<E, Dev>>,
    last: Affine<E, Dev>,
}

/// What a traced evaluation keeps: the input and each hidden layer's (z, a).
#[derive(Clone, Debug)]
pub struct NeuralCache<E: Dtype, Dev: Storage<E>> {
    input: Option<Matrix<E, Dev>>,
    /// The layers hold s = σ(2z) instead of a = tanh(z) (the f32 sigmoid path).
    sigmoid: bool,
    /// (z, a) per hidden layer; z is dropped when the derivative needs only a (tanh).
    layers: Vec<CachedLayer<E, Dev>>,
}

impl<E: Dtype, Dev: Storage<E>> Default for NeuralCache<E, Dev> {
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

impl<E: Dtype + Real, Dev: Device<E>> NeuralMlp<E, Dev> {
    /// Builds the model from a spec and flat parameters in the [`MlpSpec`] layout.
    pub fn from_flat(dev: &Dev, spec: MlpSpec, params: &[f64]) -> Result<Self> {
        spec.validate()?;
        if params.len() != spec.num_params() {
            return Err(Error::ShapeMismatch {
                what: "MLP parameters".into(),
                expected: spec.num_params(),
                found: params.len(),
            });
        }
        crate::error::check_finite("MLP parameters", params)?;
        let (d, h, o) = (spec.dim, spec.hidden, spec.out_dim());
        let mut at = 0usize;
        let mut take = |n: usize| -> Vec<E> {
            let v = params[at..at + n].iter().map(|&x| E::of(x)).collect();
            at += n;
            v
        };
        let inputs = spec.inputs();
        let w = take(h * inputs);
        let (mut wy, mut wt) = (Vec::with_capacity(h * d), Vec::with_capacity(h));
        let sc = spec.state_column();
        for j in 0..h {
            wy.extend_from_slice(&w[j * inputs + sc..j * inputs + sc + d]);
            wt.push(match spec.time_column() {
                Some(tc) => w[j * inputs + tc],
                None => E::zero(),
            });
        }
        let first = (
            dev.tensor_from_vec(wy, (h, d)),
            dev.tensor_from_vec(take(h), (h,)),
        );
        let time_w = dev.tensor_from_vec(wt, (h,));
        let mut hidden = Vec::new();
        for _ in 1..spec.depth {
            let w = dev.tensor_from_vec(take(h * h), (h, h));
            hidden.push((w, dev.tensor_from_vec(take(h), (h,))));
        }
        let last = (
            dev.tensor_from_vec(take(o * h), (o, h)),
            dev.tensor_from_vec(take(o), (o,)),
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

    /// The device the parameters live on.
    pub fn device(&self) -> Dev {
        self.time_w.device().clone()
    }

    /// Checks that an input of `cols` columns fits the model (`spec.dim`).
    pub fn check_input(&self, cols: usize) -> Result<()> {
        if cols != self.spec.dim {
            return Err(Error::ShapeMismatch {
                what: "columns of the network's input (the spec's dim)".into(),
                expected: self.spec.dim,
                found: cols,
            });
        }
        Ok(())
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

    /// Flat parameters in the [`MlpSpec`] layout as one tensor on the model's device (no host
    /// copy).
    pub fn to_flat_tensor(&self) -> Vector<E, Dev> {
        flatten_on_device(
            &self.spec,
            &self.first,
            &self.time_w,
            &self.hidden,
            &self.last,
        )
    }

    /// Replaces the parameters from a flat tensor in the [`MlpSpec`] layout on the device
    /// (device-to-device copies). Its length is checked, and its finiteness with one scalar
    /// reduction.
    pub fn set_flat_tensor(&mut self, flat: &Vector<E, Dev>) -> Result<()> {
        let spec = &self.spec;
        crate::flat::check_count(spec.num_params(), flat.shape().0)?;
        if let Some(index) = crate::FlatParams::first_non_finite(flat) {
            return Err(Error::NonFinite {
                what: "MLP parameters".into(),
                index,
            });
        }
        let (d, h, o) = (spec.dim, spec.hidden, spec.out_dim());
        let mut at = 0usize;
        let mut take = |n: usize| -> Vector<E, Dev> {
            let v = flat.clone().slice((at..at + n,));
            at += n;
            v
        };
        let inputs = spec.inputs();
        let w = take(h * inputs).reshape_like(&(h, inputs));
        let sc = spec.state_column();
        let wy = w.clone().slice((0..h, sc..sc + d));
        self.time_w = match spec.time_column() {
            Some(tc) => w.slice((0..h, tc..tc + 1)).reshape_like(&(h,)),
            None => self.time_w.device().zeros_like(&(h,)),
        };
        self.first = (wy, take(h));
        for layer in &mut self.hidden {
            *layer = (take(h * h).reshape_like(&(h, h)), take(h));
        }
        self.last = (take(o * h).reshape_like(&(o, h)), take(o));
        Ok(())
    }

    /// `f(t, x)` for a `batch × dim` input, `batch × outputs` out; fills `cache` when given.
    ///
    /// # Panics
    /// When `x` does not have `spec.dim` columns (terms check it with
    /// [`NeuralMlp::check_input`] before a solve).
    pub fn forward(
        &self,
        t: f64,
        x: &Matrix<E, Dev>,
        cache: Option<&mut NeuralCache<E, Dev>>,
    ) -> Matrix<E, Dev> {
        if self.sigmoid_path() {
            return self.forward_sigmoid(t, x, cache);
        }
        let act = self.spec.activation;
        let rows = x.shape().0;
        let (w, b) = &self.first;
        let mut z = x.clone().matmul(transpose(w.clone())) + as_rows(b.clone(), rows);
        if self.spec.time {
            z = z + as_rows(self.time_w.clone() * E::of(t), rows);
        }
        let keep_z = act != Activation::Tanh;
        let mut a = activate(act, z.clone());
        let mut layers = Vec::with_capacity(self.spec.depth);
        layers.push((keep_z.then_some(z), a.clone()));
        for (w, b) in &self.hidden {
            let z = a.clone().matmul(transpose(w.clone())) + as_rows(b.clone(), rows);
            a = activate(act, z.clone());
            layers.push((keep_z.then_some(z), a.clone()));
        }
        let (w, b) = &self.last;
        let out = a.clone().matmul(transpose(w.clone())) + as_rows(b.clone(), rows);
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
        x: &Matrix<E, Dev>,
        cache: Option<&mut NeuralCache<E, Dev>>,
    ) -> Matrix<E, Dev> {
        let (two, four) = (E::of(2.0), E::of(4.0));
        let (w, b) = &self.first;
        let rows = x.shape().0;
        let mut z2 = x.clone().matmul(transpose(w.clone() * two)) + as_rows(b.clone() * two, rows);
        if self.spec.time {
            z2 = z2 + as_rows(self.time_w.clone() * E::of(2.0 * t), rows);
        }
        let mut s = z2.sigmoid();
        let mut layers = Vec::with_capacity(self.spec.depth);
        layers.push((None, s.clone()));
        for (w, b) in &self.hidden {
            let bias = (b.clone() - row_sums(w.clone())) * two;
            let z2 = s.clone().matmul(transpose(w.clone() * four)) + as_rows(bias, rows);
            s = z2.sigmoid();
            layers.push((None, s.clone()));
        }
        let (w, b) = &self.last;
        let out = s.clone().matmul(transpose(w.clone() * two))
            + as_rows(b.clone() - row_sums(w.clone()), rows);
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
        cache: &NeuralCache<E, Dev>,
        x: &Matrix<E, Dev>,
        delta: Matrix<E, Dev>,
        x_bar: &mut Matrix<E, Dev>,
        grads: &mut NeuralGrads<E, Dev>,
    ) {
        let (two, four) = (E::of(2.0), E::of(4.0));
        let h = self.spec.hidden;
        let depth = cache.layers.len();
        let s_top = &cache.layers[depth - 1].1;
        let col = column_sums(delta.clone());
        let dw = transpose(delta.clone()).matmul(s_top.clone()) * two - as_cols(col.clone(), h);
        grads.last.0 = grads.last.0.clone() + dw;
        grads.last.1 = grads.last.1.clone() + col;
        let mut da = delta.matmul(self.last.0.clone());
        for l in (0..depth).rev() {
            let s = &cache.layers[l].1;
            let g = (s.clone() - s.clone().square()) * da;
            let gsum = column_sums(g.clone());
            if l == 0 {
                let dw = transpose(g.clone()).matmul(x.clone()) * four;
                grads.first.0 = grads.first.0.clone() + dw;
                grads.first.1 = grads.first.1.clone() + gsum.clone() * four;
                if self.spec.time {
                    grads.time_w = grads.time_w.clone() + gsum * E::of(4.0 * t);
                }
                *x_bar = x_bar.clone() + g.matmul(self.first.0.clone() * four);
                return;
            }
            let below = &cache.layers[l - 1].1;
            let dw = transpose(g.clone()).matmul(below.clone()) * E::of(8.0)
                - as_cols(gsum.clone() * four, h);
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
        cache: &NeuralCache<E, Dev>,
        cot: &Matrix<E, Dev>,
        scale: E,
        x_bar: &mut Matrix<E, Dev>,
        grads: &mut NeuralGrads<E, Dev>,
    ) {
        let Some(x) = cache.input.as_ref() else {
            return;
        };
        let delta = cot.clone() * scale;
        if cache.sigmoid {
            return self.backward_sigmoid(t, cache, x, delta, x_bar, grads);
        }
        let act = self.spec.activation;
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
                    let s = column_sums(dz.clone()) * E::of(t);
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
    pub fn zero_grads(&self) -> NeuralGrads<E, Dev> {
        let dev = self.time_w.device();
        let zeros =
            |(w, b): &Affine<E, Dev>| (dev.zeros_like(w.shape()), dev.zeros_like(b.shape()));
        NeuralGrads {
            first: zeros(&self.first),
            time_w: dev.zeros_like(self.time_w.shape()),
            hidden: self.hidden.iter().map(zeros).collect(),
            last: zeros(&self.last),
        }
    }
}

/// `W̄ += δᵀ·a`, `b̄ += Σ_rows δ`.
fn accumulate_layer<E: Dtype + Real, Dev: Device<E>>(
    g: &mut Affine<E, Dev>,
    delta: &Matrix<E, Dev>,
    a: &Matrix<E, Dev>,
) {
    g.0 = g.0.clone() + transpose(delta.clone()).matmul(a.clone());
    g.1 = g.1.clone() + column_sums(delta.clone());
}

fn flatten<E: Dtype + Real, Dev: Device<E>>(
    spec: &MlpSpec,
    first: &Affine<E, Dev>,
    time_w: &Vector<E, Dev>,
    hidden: &[Affine<E, Dev>],
    last: &Affine<E, Dev>,
) -> Vec<f64> {
    let (d, h) = (spec.dim, spec.hidden);
    let mut out = Vec::with_capacity(spec.num_params());
    let (wy, wt) = (first.0.as_vec(), time_w.as_vec());
    for j in 0..h {
        if spec.time && spec.time_first {
            out.push(wt[j].as_f64());
        }
        out.extend(wy[j * d..(j + 1) * d].iter().map(|v| v.as_f64()));
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

/// The [`MlpSpec`] layout as one device tensor: the first layer's rows of (state weights with
/// the time weight before or after them), its bias, each hidden layer's weight and bias, the
/// last layer's weight and bias.
fn flatten_on_device<E: Dtype + Real, Dev: Device<E>>(
    spec: &MlpSpec,
    first: &Affine<E, Dev>,
    time_w: &Vector<E, Dev>,
    hidden: &[Affine<E, Dev>],
    last: &Affine<E, Dev>,
) -> Vector<E, Dev> {
    let h = spec.hidden;
    let flat = |m: &Matrix<E, Dev>| {
        let n = m.shape().num_elements();
        m.clone().reshape_like(&(n,))
    };
    let w = if spec.time {
        let wt = time_w.clone().reshape_like(&(h, 1));
        let wy = first.0.clone();
        if spec.time_first {
            (wt, wy).concat_along(Axis::<1>)
        } else {
            (wy, wt).concat_along(Axis::<1>)
        }
    } else {
        first.0.clone()
    };
    let mut out = (flat(&w), first.1.clone()).concat_along(Axis::<0>);
    for (w, b) in hidden.iter().chain(std::iter::once(last)) {
        out = (out, flat(w)).concat_along(Axis::<0>);
        out = (out, b.clone()).concat_along(Axis::<0>);
    }
    out
}

impl<E: Dtype + Real, Dev: Device<E>> NeuralGrads<E, Dev> {
    /// Every tensor, in the layout order (first layer, time weights, hidden layers, last).
    fn parts(&self) -> Vec<Vec<E>> {
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
        parts
    }

    /// Flat host copy in the [`MlpSpec`] layout of `spec`.
    pub fn to_flat(&self, spec: &MlpSpec) -> Vec<f64> {
        flatten(spec, &self.first, &self.time_w, &self.hidden, &self.last)
    }

    /// Flat tensor on the device in the [`MlpSpec`] layout of `spec`, the model's own spec
    /// (no host copy; users reach it through `Layer::resident_grad`).
    pub(crate) fn to_flat_tensor(&self, spec: &MlpSpec) -> Vector<E, Dev> {
        flatten_on_device(spec, &self.first, &self.time_w, &self.hidden, &self.last)
    }
}

impl<E: Dtype + Real, Dev: Device<E>> crate::GradBuffer for NeuralGrads<E, Dev> {
    /// Entries of every tensor (the time weights counted whether or not the model reads t).
    fn flat_len(&self) -> usize {
        let n = |(w, b): &Affine<E, Dev>| w.shape().num_elements() + b.shape().0;
        n(&self.first)
            + self.time_w.shape().0
            + self.hidden.iter().map(n).sum::<usize>()
            + n(&self.last)
    }
    /// Scans a host copy of every tensor (first layer, time weights, hidden layers, last).
    fn first_non_finite(&self) -> Option<usize> {
        let mut offset = 0;
        for p in &self.parts() {
            if let Some(i) = p.iter().position(|v| !v.is_finite()) {
                return Some(offset + i);
            }
            offset += p.len();
        }
        None
    }
}
