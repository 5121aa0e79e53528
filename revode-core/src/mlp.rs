//! An analytic one-hidden-layer MLP vector field with a hand-written pullback.

use crate::{activation, Error, Real, Result, VectorField};

/// `f(t, y) = W₂ tanh(W₁ [y; t] + b₁) + b₂`: dims `d (+1 with time) → hidden → d`.
///
/// Parameter layout (flat, row-major, as `Linear` layers store them): `W₁` (hidden × inputs),
/// `b₁` (hidden), `W₂` (d × hidden), `b₂` (d).
#[derive(Clone, Debug)]
pub struct Mlp<S> {
    dim: usize,
    hidden: usize,
    time: bool,
    params: Vec<S>,
    use_libm_tanh: bool,
}

impl<S: Real> Mlp<S> {
    /// A zero-initialised MLP. `time` appends t as an input.
    pub fn new(dim: usize, hidden: usize, time: bool) -> Result<Self> {
        if dim == 0 || hidden == 0 {
            return Err(Error::config(
                "mlp",
                format!("dim ({dim}) and hidden ({hidden}) must be positive"),
            ));
        }
        let inputs = dim + time as usize;
        let n = hidden * inputs + hidden + dim * hidden + dim;
        Ok(Mlp {
            dim,
            hidden,
            time,
            params: vec![S::zero(); n],
            use_libm_tanh: false,
        })
    }

    /// Uniform ±1/√fan_in initialisation from a deterministic generator seeded by `seed`.
    pub fn init_uniform(mut self, seed: u64) -> Self {
        let mut state = seed ^ 0x9E37_79B9_7F4A_7C15;
        let mut next = || {
            // SplitMix64.
            state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^= z >> 31;
            (z >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0
        };
        let inputs = self.inputs();
        let h = self.hidden;
        let b1 = 1.0 / (inputs as f64).sqrt();
        let b2 = 1.0 / (h as f64).sqrt();
        let first = h * inputs + h;
        for (i, p) in self.params.iter_mut().enumerate() {
            let bound = if i < first { b1 } else { b2 };
            *p = S::of(bound * next());
        }
        self
    }

    /// Uses the system `tanh` instead of the fast one (for measuring what the activation costs).
    pub fn with_libm_tanh(mut self, yes: bool) -> Self {
        self.use_libm_tanh = yes;
        self
    }

    fn inputs(&self) -> usize {
        self.dim + self.time as usize
    }

    #[inline(always)]
    fn act(&self, x: f64) -> f64 {
        if self.use_libm_tanh {
            x.tanh()
        } else {
            activation::tanh(x)
        }
    }

    /// Splits the parameters into (W₁, b₁, W₂, b₂).
    #[inline(always)]
    fn parts(p: &[S], inputs: usize, h: usize, d: usize) -> (&[S], &[S], &[S], &[S]) {
        let (w1, rest) = p.split_at(h * inputs);
        let (b1, rest) = rest.split_at(h);
        let (w2, b2) = rest.split_at(d * h);
        (w1, b1, w2, b2)
    }

    /// Hidden activation a_j = tanh(W₁[y; t] + b₁)_j.
    #[inline(always)]
    fn hidden_unit(&self, j: usize, w1: &[S], b1: &[S], y: &[S], t: f64) -> f64 {
        let inputs = self.inputs();
        let row = &w1[j * inputs..(j + 1) * inputs];
        let mut z = b1[j].as_f64();
        for i in 0..self.dim {
            z += row[i].as_f64() * y[i].as_f64();
        }
        if self.time {
            z += row[self.dim].as_f64() * t;
        }
        self.act(z)
    }
}

impl<S: Real> Mlp<S> {
    fn forward(&self, t: f64, y: &[S], out: &mut [S], mut hidden: Option<&mut [S]>) {
        let (h, d, inputs) = (self.hidden, self.dim, self.inputs());
        let (w1, b1, w2, b2) = Self::parts(&self.params, inputs, h, d);
        out.copy_from_slice(b2);
        for j in 0..h {
            let a = self.hidden_unit(j, w1, b1, y, t);
            if let Some(c) = hidden.as_deref_mut() {
                c[j] = S::of(a);
            }
            let a = S::of(a);
            for k in 0..d {
                out[k] += w2[k * h + j] * a;
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn backward(
        &self,
        t: f64,
        y: &[S],
        hidden: Option<&[S]>,
        cot: &[S],
        scale: S,
        y_bar: &mut [S],
        p_bar: &mut [S],
    ) {
        let (h, d, inputs) = (self.hidden, self.dim, self.inputs());
        let (w1, b1, w2, _) = Self::parts(&self.params, inputs, h, d);
        let (o_b1, o_w2) = (h * inputs, h * inputs + h);
        let o_b2 = o_w2 + d * h;
        for k in 0..d {
            p_bar[o_b2 + k] += scale * cot[k];
        }
        for j in 0..h {
            let a = match hidden {
                Some(c) => c[j],
                None => S::of(self.hidden_unit(j, w1, b1, y, t)),
            };
            // ā_j = Σ_k W₂[k, j] c_k ;  W̄₂[k, j] += a_j c_k
            let mut abar = S::zero();
            for k in 0..d {
                let c = scale * cot[k];
                abar += w2[k * h + j] * c;
                p_bar[o_w2 + k * h + j] += a * c;
            }
            let zbar = abar * (S::one() - a * a);
            p_bar[o_b1 + j] += zbar;
            let row = &w1[j * inputs..(j + 1) * inputs];
            let prow = &mut p_bar[j * inputs..(j + 1) * inputs];
            for i in 0..d {
                y_bar[i] += row[i] * zbar;
                prow[i] += y[i] * zbar;
            }
            if self.time {
                prow[d] += S::of(t) * zbar;
            }
        }
    }
}

impl<S: Real> VectorField for Mlp<S> {
    type Scalar = S;
    fn dim(&self) -> usize {
        self.dim
    }
    fn params(&self) -> &[S] {
        &self.params
    }
    fn params_mut(&mut self) -> &mut [S] {
        &mut self.params
    }
    fn eval(&self, t: f64, y: &[S], out: &mut [S]) {
        self.forward(t, y, out, None);
    }
    fn vjp(&self, t: f64, y: &[S], cot: &[S], scale: S, y_bar: &mut [S], p_bar: &mut [S]) {
        self.backward(t, y, None, cot, scale, y_bar, p_bar);
    }
    fn cache_len(&self) -> usize {
        self.hidden
    }
    fn eval_cached(&self, t: f64, y: &[S], out: &mut [S], cache: &mut [S]) {
        self.forward(t, y, out, Some(cache));
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
        self.backward(t, y, Some(cache), cot, scale, y_bar, p_bar);
    }
}
