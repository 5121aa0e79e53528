//! MLP vector fields: the shared specification and parameter layout, and a native CPU
//! implementation with a hand-written, activation-caching pullback.
//!
//! The dfdx implementation ([`crate::neural::NeuralMlp`]) uses the same [`MlpSpec`] and the same
//! flat parameter layout, so parameters move between the two unchanged.

use crate::{activation, Error, Real, Result, VectorField};

pub use crate::mlp_spec::{Activation, MlpSpec, LIPSWISH_SCALE, MAX_DEPTH, MAX_HIDDEN};

mod tangent;

/// The native CPU MLP field over `batch × dim` states, with a hand-written pullback that reuses
/// the activations cached by the traced evaluation.
#[derive(Clone, Debug)]
pub struct Mlp<S> {
    spec: MlpSpec,
    offsets: Vec<usize>,
    batch: usize,
    params: Vec<S>,
    use_libm_tanh: bool,
}

impl<S: Real> Mlp<S> {
    /// A zero-initialised MLP `dim (+1 with time) → hidden → dim` with tanh, batch 1.
    pub fn new(dim: usize, hidden: usize, time: bool) -> Result<Self> {
        Self::from_spec(
            MlpSpec {
                time,
                ..MlpSpec::new(dim, hidden)
            },
            1,
        )
    }
    /// A zero-initialised MLP of any [`MlpSpec`] applied to `batch` rows.
    pub fn from_spec(spec: MlpSpec, batch: usize) -> Result<Self> {
        spec.validate()?;
        if spec.hidden > MAX_HIDDEN || spec.depth > MAX_DEPTH {
            return Err(Error::config(
                "mlp",
                format!("the native MLP supports hidden ≤ {MAX_HIDDEN} and depth ≤ {MAX_DEPTH}; use the dfdx model"),
            ));
        }
        if batch == 0 {
            return Err(Error::config("batch", "must be positive"));
        }
        Ok(Mlp {
            params: vec![S::zero(); spec.num_params()],
            offsets: spec.offsets(),
            spec,
            batch,
            use_libm_tanh: false,
        })
    }
    /// Uniform ±1/√fan_in initialisation, deterministic in `seed`.
    pub fn init_uniform(mut self, seed: u64) -> Self {
        for (p, v) in self.params.iter_mut().zip(self.spec.init_uniform(seed)) {
            *p = S::of(v);
        }
        self
    }
    /// Replaces the parameters (flat layout of [`MlpSpec`]).
    pub fn with_params(mut self, params: &[f64]) -> Result<Self> {
        if params.len() != self.params.len() {
            return Err(Error::ShapeMismatch {
                what: "MLP parameters".into(),
                expected: self.params.len(),
                found: params.len(),
            });
        }
        crate::error::check_finite("MLP parameters", params)?;
        for (p, &v) in self.params.iter_mut().zip(params) {
            *p = S::of(v);
        }
        Ok(self)
    }
    /// Uses the system `tanh` instead of the fast one (for measuring what the activation costs).
    pub fn with_libm_tanh(mut self, yes: bool) -> Self {
        self.use_libm_tanh = yes;
        self
    }
    /// The specification.
    pub fn spec(&self) -> &MlpSpec {
        &self.spec
    }
    /// Rows of the state.
    pub fn batch(&self) -> usize {
        self.batch
    }

    /// Whether the whole-batch matrix-product kernels serve this model (large batches).
    fn batched(&self) -> bool {
        self.batch >= crate::batched::MIN_BATCH && !self.use_libm_tanh
    }

    /// Scalars cached per row: pre-activations and activations of every hidden layer.
    fn row_cache(&self) -> usize {
        2 * self.spec.hidden * self.spec.depth
    }

    /// One row: `out ← f(t, y)`; fills `cache` (z then a per hidden layer) when given.
    fn forward_row(&self, t: f64, y: &[S], out: &mut [S], cache: Option<&mut [S]>) {
        // The activation is chosen once per row, not per element.
        match (self.spec.activation, self.use_libm_tanh) {
            (Activation::Tanh, false) => self.forward_sized(t, y, out, cache, activation::tanh),
            (Activation::Tanh, true) => self.forward_sized(t, y, out, cache, f64::tanh),
            (Activation::Softplus, _) => {
                self.forward_sized(t, y, out, cache, |z| Activation::Softplus.apply(z))
            }
            (Activation::Relu, _) => self.forward_sized(t, y, out, cache, |z| z.max(0.0)),
            (Activation::LipSwish, _) => {
                self.forward_sized(t, y, out, cache, |z| Activation::LipSwish.apply(z))
            }
        }
    }

    #[inline(always)]
    fn forward_sized(
        &self,
        t: f64,
        y: &[S],
        out: &mut [S],
        cache: Option<&mut [S]>,
        act: impl Fn(f64) -> f64,
    ) {
        // Work arrays on the stack, sized to the layer (zeroing 512 entries per call would
        // cost more than a small MLP's arithmetic).
        match self.spec.hidden {
            0..=16 => self.forward_row_n::<16>(t, y, out, cache, act),
            17..=64 => self.forward_row_n::<64>(t, y, out, cache, act),
            65..=128 => self.forward_row_n::<128>(t, y, out, cache, act),
            _ => self.forward_row_n::<MAX_HIDDEN>(t, y, out, cache, act),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn backward_row(
        &self,
        t: f64,
        y: &[S],
        cache: &[S],
        cot: &[S],
        scale: f64,
        y_bar: &mut [S],
        p_bar: &mut [S],
    ) {
        match self.spec.hidden {
            0..=16 => self.backward_row_n::<16>(t, y, cache, cot, scale, y_bar, p_bar),
            17..=64 => self.backward_row_n::<64>(t, y, cache, cot, scale, y_bar, p_bar),
            65..=128 => self.backward_row_n::<128>(t, y, cache, cot, scale, y_bar, p_bar),
            _ => self.backward_row_n::<MAX_HIDDEN>(t, y, cache, cot, scale, y_bar, p_bar),
        }
    }

    #[inline(always)]
    fn forward_row_n<const N: usize>(
        &self,
        t: f64,
        y: &[S],
        out: &mut [S],
        mut cache: Option<&mut [S]>,
        act: impl Fn(f64) -> f64,
    ) {
        let (h, depth) = (self.spec.hidden, self.spec.depth);
        let offsets = &self.offsets;
        let mut prev = [0.0f64; N];
        let mut cur = [0.0f64; N];
        let tanh = self.spec.activation == Activation::Tanh;
        for l in 0..depth {
            let (inputs, off) = if l == 0 {
                (self.spec.inputs(), 0)
            } else {
                (h, offsets[l])
            };
            let w = &self.params[off..off + h * inputs];
            let b = &self.params[off + h * inputs..off + h * inputs + h];
            for j in 0..h {
                let row = &w[j * inputs..(j + 1) * inputs];
                let mut z = b[j].as_f64();
                if l == 0 {
                    let sc = self.spec.state_column();
                    for (wi, yi) in row[sc..].iter().zip(y) {
                        z += wi.as_f64() * yi.as_f64();
                    }
                    if let Some(tc) = self.spec.time_column() {
                        z += row[tc].as_f64() * t;
                    }
                } else {
                    for (wi, ai) in row.iter().zip(&prev[..h]) {
                        z += wi.as_f64() * ai;
                    }
                }
                let a = act(z);
                cur[j] = a;
                if let Some(c) = cache.as_deref_mut() {
                    // tanh's derivative needs only a = tanh(z): skip storing z.
                    if !tanh {
                        c[2 * l * h + j] = S::of(z);
                    }
                    c[(2 * l + 1) * h + j] = S::of(a);
                }
            }
            std::mem::swap(&mut prev, &mut cur);
        }
        let off = offsets[depth];
        let o = self.spec.out_dim();
        let w = &self.params[off..off + o * h];
        let b = &self.params[off + o * h..off + o * h + o];
        for k in 0..o {
            let mut acc = b[k].as_f64();
            for (wj, aj) in w[k * h..(k + 1) * h].iter().zip(&prev[..h]) {
                acc += wj.as_f64() * aj;
            }
            out[k] = S::of(acc);
        }
    }

    /// One row's pullback from cached (z, a) of every hidden layer.
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    fn backward_row_n<const N: usize>(
        &self,
        t: f64,
        y: &[S],
        cache: &[S],
        cot: &[S],
        scale: f64,
        y_bar: &mut [S],
        p_bar: &mut [S],
    ) {
        let (h, d, depth) = (self.spec.hidden, self.spec.dim, self.spec.depth);
        let offsets = &self.offsets;
        let act = self.spec.activation;
        let z_of = |l: usize, j: usize| cache[2 * l * h + j].as_f64();
        let a_of = |l: usize, j: usize| cache[(2 * l + 1) * h + j].as_f64();
        // Output layer.
        let off = offsets[depth];
        let mut delta = [0.0f64; N];
        let mut below = [0.0f64; N];
        let o = self.spec.out_dim();
        for k in 0..o {
            let c = scale * cot[k].as_f64();
            p_bar[off + o * h + k] += S::of(c);
            for j in 0..h {
                p_bar[off + k * h + j] += S::of(c * a_of(depth - 1, j));
                delta[j] += self.params[off + k * h + j].as_f64() * c;
            }
        }
        // Hidden layers, top down: delta holds ∂L/∂a_l on entry, becomes ∂L/∂z_l.
        for l in (0..depth).rev() {
            for (j, dj) in delta[..h].iter_mut().enumerate() {
                *dj *= act.derivative(z_of(l, j), a_of(l, j));
            }
            let (inputs, off) = if l == 0 {
                (self.spec.inputs(), 0)
            } else {
                (h, offsets[l])
            };
            below[..h].iter_mut().for_each(|v| *v = 0.0);
            for j in 0..h {
                let dz = delta[j];
                if dz == 0.0 {
                    continue;
                }
                p_bar[off + h * inputs + j] += S::of(dz);
                let wrow = off + j * inputs;
                if l == 0 {
                    let ws = wrow + self.spec.state_column();
                    for i in 0..d {
                        p_bar[ws + i] += S::of(dz * y[i].as_f64());
                        y_bar[i] += S::of(dz * self.params[ws + i].as_f64());
                    }
                    if let Some(tc) = self.spec.time_column() {
                        p_bar[wrow + tc] += S::of(dz * t);
                    }
                } else {
                    for i in 0..h {
                        p_bar[wrow + i] += S::of(dz * a_of(l - 1, i));
                        below[i] += dz * self.params[wrow + i].as_f64();
                    }
                }
            }
            if l > 0 {
                std::mem::swap(&mut delta, &mut below);
            }
        }
    }
}

impl<S: Real> VectorField for Mlp<S> {
    type Scalar = S;
    fn dim(&self) -> usize {
        self.spec.dim * self.batch
    }
    fn out_len(&self) -> usize {
        self.spec.out_dim() * self.batch
    }
    fn params(&self) -> &[S] {
        &self.params
    }
    fn params_mut(&mut self) -> &mut [S] {
        &mut self.params
    }
    fn eval(&self, t: f64, y: &[S], out: &mut [S]) {
        if self.batched() {
            return crate::batched::forward(
                &self.spec,
                &self.offsets,
                &self.params,
                self.batch,
                t,
                y,
                out,
                None,
            );
        }
        let (d, o) = (self.spec.dim, self.spec.out_dim());
        for (yr, or) in y.chunks_exact(d).zip(out.chunks_exact_mut(o)) {
            self.forward_row(t, yr, or, None);
        }
    }
    fn vjp(&self, t: f64, y: &[S], cot: &[S], scale: S, y_bar: &mut [S], p_bar: &mut [S]) {
        if self.batched() {
            let mut cache = vec![S::zero(); self.cache_len()];
            let mut out = vec![S::zero(); self.batch * self.spec.out_dim()];
            self.eval_cached(t, y, &mut out, &mut cache);
            return self.vjp_cached(t, y, &cache, cot, scale, y_bar, p_bar);
        }
        let (d, o) = (self.spec.dim, self.spec.out_dim());
        let mut cache = vec![S::zero(); self.row_cache()];
        let mut tmp = vec![S::zero(); o];
        for ((yr, cr), br) in y
            .chunks_exact(d)
            .zip(cot.chunks_exact(o))
            .zip(y_bar.chunks_exact_mut(d))
        {
            self.forward_row(t, yr, &mut tmp, Some(&mut cache));
            self.backward_row(t, yr, &cache, cr, scale.as_f64(), br, p_bar);
        }
    }
    fn cache_len(&self) -> usize {
        self.row_cache() * self.batch
    }
    fn eval_cached(&self, t: f64, y: &[S], out: &mut [S], cache: &mut [S]) {
        if self.batched() {
            let (spec, off, p) = (&self.spec, &self.offsets, &self.params);
            return crate::batched::forward(spec, off, p, self.batch, t, y, out, Some(cache));
        }
        let (d, o, c) = (self.spec.dim, self.spec.out_dim(), self.row_cache());
        for ((yr, or), cr) in y
            .chunks_exact(d)
            .zip(out.chunks_exact_mut(o))
            .zip(cache.chunks_exact_mut(c))
        {
            self.forward_row(t, yr, or, Some(cr));
        }
    }
    fn vjp_cached(
        &self,
        t: f64,
        y: &[S],
        cache: &[S],
        cot: &[S],
        scale: S,
        y_bar: &mut [S],
        p_bar: &mut [S],
    ) {
        if self.batched() {
            let (spec, off, p) = (&self.spec, &self.offsets, &self.params);
            return crate::batched::backward(
                spec, off, p, self.batch, t, y, cache, cot, scale, y_bar, p_bar,
            );
        }
        let (d, o, c) = (self.spec.dim, self.spec.out_dim(), self.row_cache());
        for (((yr, cr), kr), br) in y
            .chunks_exact(d)
            .zip(cache.chunks_exact(c))
            .zip(cot.chunks_exact(o))
            .zip(y_bar.chunks_exact_mut(d))
        {
            self.backward_row(t, yr, cr, kr, scale.as_f64(), br, p_bar);
        }
    }
}
