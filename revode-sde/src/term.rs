//! SDE terms `dy = μ_θ(t, y) dt + σ_θ(t, y) ∘ dW` as core terms with control `(dt, ΔW)`.

use crate::BrownianPath;
use revode_core::{scalar::Real, state::Pair, Error, Result, State, Term, VectorField};

/// How the SDE is read: the solver must converge to the matching solution.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Calculus {
    /// Itô: simulate with Euler–Maruyama; no reversible method applies.
    Ito,
    /// Stratonovich: Heun, midpoint, reversible Heun, the reversible coupling.
    Stratonovich,
}

/// The shape of the diffusion.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Noise {
    /// `σ(t, y)` is a vector the size of the state, one noise channel per state entry.
    Diagonal,
    /// `σ(t)` is a `dim × channels` matrix independent of the state (shared by the batch).
    Additive,
    /// `σ(t, y)` is a `dim × channels` matrix per sample.
    General,
}

/// A diffusion `σ_θ(t, y)` over a batch of `batch × dim` states, with its pullback.
///
/// Output layout: [`Noise::Diagonal`] — like the state; [`Noise::General`] — per sample a
/// row-major `dim × channels` matrix; [`Noise::Additive`] — one row-major `dim × channels`
/// matrix for the whole batch.
pub trait Diffusion {
    /// Scalar type.
    type Scalar: Real;
    /// The noise shape.
    fn noise(&self) -> Noise;
    /// Noise channels per sample (the state dimension for diagonal noise).
    fn channels(&self) -> usize;
    /// The parameters as one flat slice.
    fn params(&self) -> &[Self::Scalar];
    /// Mutable parameters.
    fn params_mut(&mut self) -> &mut [Self::Scalar];
    /// Scalars a traced evaluation keeps for the pullback.
    fn cache_len(&self) -> usize {
        0
    }
    /// `out ← σ(t, y)`; fills `cache` when given.
    fn eval(
        &self,
        t: f64,
        y: &[Self::Scalar],
        out: &mut [Self::Scalar],
        cache: Option<&mut [Self::Scalar]>,
    );
    /// `y_bar += scale·(∂σ/∂y)ᵀ cot`, `p_bar += scale·(∂σ/∂θ)ᵀ cot` at the cached point.
    #[allow(clippy::too_many_arguments)]
    fn vjp(
        &self,
        t: f64,
        y: &[Self::Scalar],
        cache: &[Self::Scalar],
        cot: &[Self::Scalar],
        scale: Self::Scalar,
        y_bar: &mut [Self::Scalar],
        p_bar: &mut [Self::Scalar],
    );
}

/// Diagonal noise from any [`VectorField`]: `σ(t, y)_i = field(t, y)_i`.
#[derive(Clone, Debug)]
pub struct Diagonal<V>(pub V);

impl<V: VectorField> Diffusion for Diagonal<V> {
    type Scalar = V::Scalar;
    fn noise(&self) -> Noise {
        Noise::Diagonal
    }
    fn channels(&self) -> usize {
        0
    }
    fn params(&self) -> &[V::Scalar] {
        self.0.params()
    }
    fn params_mut(&mut self) -> &mut [V::Scalar] {
        self.0.params_mut()
    }
    fn cache_len(&self) -> usize {
        self.0.cache_len()
    }
    fn eval(
        &self,
        t: f64,
        y: &[V::Scalar],
        out: &mut [V::Scalar],
        cache: Option<&mut [V::Scalar]>,
    ) {
        match cache {
            Some(c) => self.0.eval_cached(t, y, out, c),
            None => self.0.eval(t, y, out),
        }
    }
    fn vjp(
        &self,
        t: f64,
        y: &[V::Scalar],
        cache: &[V::Scalar],
        cot: &[V::Scalar],
        scale: V::Scalar,
        y_bar: &mut [V::Scalar],
        p_bar: &mut [V::Scalar],
    ) {
        self.0.vjp_cached(t, y, cache, cot, scale, y_bar, p_bar);
    }
}

/// Additive noise: a trainable constant `dim × channels` matrix σ (row-major).
#[derive(Clone, Debug)]
pub struct Additive<S> {
    channels: usize,
    sigma: Vec<S>,
}

impl<S: Real> Additive<S> {
    /// σ as a row-major `dim × channels` matrix.
    pub fn new(dim: usize, channels: usize, sigma: &[f64]) -> Result<Self> {
        if sigma.len() != dim * channels || channels == 0 {
            return Err(Error::ShapeMismatch {
                what: "additive noise matrix (dim × channels)".into(),
                expected: dim * channels.max(1),
                found: sigma.len(),
            });
        }
        revode_core::error::check_finite("additive noise matrix", sigma)?;
        Ok(Additive {
            channels,
            sigma: sigma.iter().map(|&v| S::of(v)).collect(),
        })
    }
}

impl<S: Real> Diffusion for Additive<S> {
    type Scalar = S;
    fn noise(&self) -> Noise {
        Noise::Additive
    }
    fn channels(&self) -> usize {
        self.channels
    }
    fn params(&self) -> &[S] {
        &self.sigma
    }
    fn params_mut(&mut self) -> &mut [S] {
        &mut self.sigma
    }
    fn eval(&self, _t: f64, _y: &[S], out: &mut [S], _cache: Option<&mut [S]>) {
        out.copy_from_slice(&self.sigma);
    }
    fn vjp(
        &self,
        _t: f64,
        _y: &[S],
        _c: &[S],
        cot: &[S],
        scale: S,
        _y_bar: &mut [S],
        p_bar: &mut [S],
    ) {
        p_bar.axpy_slice(scale, cot);
    }
}

/// `a += s·b` on slices.
trait AxpySlice<S> {
    fn axpy_slice(&mut self, s: S, b: &[S]);
}

impl<S: Real> AxpySlice<S> for [S] {
    fn axpy_slice(&mut self, s: S, b: &[S]) {
        self.iter_mut().zip(b).for_each(|(a, &b)| *a += s * b);
    }
}

/// The control of one SDE step: `dt` and the Brownian increment (`batch × channels`).
#[derive(Clone, Debug)]
pub struct SdeControl<S> {
    /// `t_b − t_a`.
    pub dt: f64,
    /// `W(t_b) − W(t_a)`.
    pub dw: Vec<S>,
}

/// An SDE term over a batch: drift μ (a [`VectorField`] on the `batch × dim` state), diffusion
/// σ (a [`Diffusion`]) and the Brownian path that drives it.
///
/// Parameters (and their cotangents) are laid out as `[drift | diffusion]`.
#[derive(Debug)]
pub struct SdeTerm<F, G: Diffusion> {
    drift: F,
    diffusion: G,
    path: BrownianPath,
    calculus: Calculus,
    batch: usize,
    dim: usize,
    channels: usize,
}

impl<F: Clone, G: Diffusion + Clone> Clone for SdeTerm<F, G> {
    fn clone(&self) -> Self {
        SdeTerm {
            drift: self.drift.clone(),
            diffusion: self.diffusion.clone(),
            path: self.path.clone(),
            calculus: self.calculus,
            batch: self.batch,
            dim: self.dim,
            channels: self.channels,
        }
    }
}

impl<S: Real, F: VectorField<Scalar = S>, G: Diffusion<Scalar = S>> SdeTerm<F, G> {
    /// Combines drift, diffusion and path; checks that their shapes agree.
    pub fn new(drift: F, diffusion: G, path: BrownianPath, calculus: Calculus) -> Result<Self> {
        let batch = path.batch();
        if !drift.dim().is_multiple_of(batch) || drift.dim() == 0 {
            return Err(Error::ShapeMismatch {
                what: "drift dimension vs Brownian batch (drift must act on batch × dim)".into(),
                expected: batch,
                found: drift.dim(),
            });
        }
        let dim = drift.dim() / batch;
        let channels = match diffusion.noise() {
            Noise::Diagonal => dim,
            _ => diffusion.channels(),
        };
        if path.channels() != channels {
            return Err(Error::ShapeMismatch {
                what: format!("Brownian channels for {:?} noise", diffusion.noise()),
                expected: channels,
                found: path.channels(),
            });
        }
        Ok(SdeTerm {
            drift,
            diffusion,
            path,
            calculus,
            batch,
            dim,
            channels,
        })
    }
    /// The drift.
    pub fn drift(&self) -> &F {
        &self.drift
    }
    /// The diffusion.
    pub fn diffusion(&self) -> &G {
        &self.diffusion
    }
    /// The Brownian path.
    pub fn path(&self) -> &BrownianPath {
        &self.path
    }
    /// Replaces the Brownian path (same shape), e.g. a fresh seed per training batch.
    pub fn set_path(&mut self, path: BrownianPath) -> Result<()> {
        if path.batch() != self.batch || path.channels() != self.channels {
            return Err(Error::ShapeMismatch {
                what: "replacement Brownian path (batch × channels)".into(),
                expected: self.batch * self.channels,
                found: path.len(),
            });
        }
        self.path = path;
        Ok(())
    }
    /// The calculus the term is read in.
    pub fn calculus(&self) -> Calculus {
        self.calculus
    }
    /// Samples in the batch.
    pub fn batch(&self) -> usize {
        self.batch
    }
    /// State dimension per sample.
    pub fn dim(&self) -> usize {
        self.dim
    }
    /// Number of parameters `[drift | diffusion]`.
    pub fn num_params(&self) -> usize {
        self.drift.params().len() + self.diffusion.params().len()
    }
    /// The parameters, flat `[drift | diffusion]`.
    pub fn params(&self) -> Vec<S> {
        let mut p = self.drift.params().to_vec();
        p.extend_from_slice(self.diffusion.params());
        p
    }
    /// Sets the parameters from a flat `[drift | diffusion]` slice.
    pub fn set_params(&mut self, p: &[S]) -> Result<()> {
        if p.len() != self.num_params() {
            return Err(Error::ShapeMismatch {
                what: "SDE parameters [drift | diffusion]".into(),
                expected: self.num_params(),
                found: p.len(),
            });
        }
        let nd = self.drift.params().len();
        self.drift.params_mut().copy_from_slice(&p[..nd]);
        self.diffusion.params_mut().copy_from_slice(&p[nd..]);
        Ok(())
    }

    fn diffusion_len(&self) -> usize {
        match self.diffusion.noise() {
            Noise::Diagonal => self.batch * self.dim,
            Noise::General => self.batch * self.dim * self.channels,
            Noise::Additive => self.dim * self.channels,
        }
    }

    /// `out += σ ∘ dW` for the diffusion values `g`.
    fn add_noise(&self, g: &[S], dw: &[S], out: &mut [S]) {
        let (d, m) = (self.dim, self.channels);
        match self.diffusion.noise() {
            Noise::Diagonal => out
                .iter_mut()
                .zip(g.iter().zip(dw))
                .for_each(|(o, (&g, &w))| *o += g * w),
            Noise::General => {
                for (b, ob) in out.chunks_exact_mut(d).enumerate() {
                    let wb = &dw[b * m..(b + 1) * m];
                    let gb = &g[b * d * m..(b + 1) * d * m];
                    for (o, row) in ob.iter_mut().zip(gb.chunks_exact(m)) {
                        *o += row
                            .iter()
                            .zip(wb)
                            .fold(S::zero(), |acc, (&g, &w)| acc + g * w);
                    }
                }
            }
            Noise::Additive => {
                for (b, ob) in out.chunks_exact_mut(d).enumerate() {
                    let wb = &dw[b * m..(b + 1) * m];
                    for (o, row) in ob.iter_mut().zip(g.chunks_exact(m)) {
                        *o += row
                            .iter()
                            .zip(wb)
                            .fold(S::zero(), |acc, (&g, &w)| acc + g * w);
                    }
                }
            }
        }
    }

    /// The cotangent of σ given the output cotangent: `ḡ = cot ⊗ dW` in σ's layout.
    fn noise_cotangent(&self, cot: &[S], dw: &[S], g_bar: &mut [S]) {
        let (d, m) = (self.dim, self.channels);
        match self.diffusion.noise() {
            Noise::Diagonal => g_bar
                .iter_mut()
                .zip(cot.iter().zip(dw))
                .for_each(|(g, (&c, &w))| *g = c * w),
            Noise::General => {
                for (b, cb) in cot.chunks_exact(d).enumerate() {
                    let wb = &dw[b * m..(b + 1) * m];
                    let gb = &mut g_bar[b * d * m..(b + 1) * d * m];
                    for (row, &c) in gb.chunks_exact_mut(m).zip(cb) {
                        row.iter_mut().zip(wb).for_each(|(g, &w)| *g = c * w);
                    }
                }
            }
            Noise::Additive => {
                g_bar.iter_mut().for_each(|g| *g = S::zero());
                for (b, cb) in cot.chunks_exact(d).enumerate() {
                    let wb = &dw[b * m..(b + 1) * m];
                    for (row, &c) in g_bar.chunks_exact_mut(m).zip(cb) {
                        row.iter_mut().zip(wb).for_each(|(g, &w)| *g += c * w);
                    }
                }
            }
        }
    }

    /// Cache layout: `[y | drift cache | diffusion cache]`.
    fn cache_split(&self) -> (usize, usize) {
        (self.batch * self.dim, self.drift.cache_len())
    }
}

/// The field value is `Pair { y: μ(t, y), z: σ(t, y) }` (σ in [`Diffusion`]'s layout); the
/// product with `(dt, ΔW)` is `μ dt + σ ∘ ΔW`.
impl<S: Real, F: VectorField<Scalar = S>, G: Diffusion<Scalar = S>> Term for SdeTerm<F, G> {
    type State = Vec<S>;
    type Control = SdeControl<S>;
    type Field = Pair<Vec<S>>;
    type Cache = Vec<S>;
    type ParamGrad = Vec<S>;
    type Scratch = ();

    fn new_control(&self) -> SdeControl<S> {
        SdeControl {
            dt: 0.0,
            dw: vec![S::zero(); self.batch * self.channels],
        }
    }
    fn contr(&self, t_a: f64, t_b: f64, out: &mut SdeControl<S>) {
        out.dt = t_b - t_a;
        // The integration loop has checked the times against `domain()`.
        self.path.increment_unchecked(t_a, t_b, &mut out.dw);
    }
    fn new_field(&self, like: &Vec<S>) -> Pair<Vec<S>> {
        Pair {
            y: like.zeros_like(),
            z: vec![S::zero(); self.diffusion_len()],
        }
    }
    fn new_cache(&self, like: &Vec<S>) -> Vec<S> {
        vec![S::zero(); like.len() + self.drift.cache_len() + self.diffusion.cache_len()]
    }
    fn new_scratch(&self, _like: &Vec<S>) {}
    fn new_param_grad(&self) -> Vec<S> {
        vec![S::zero(); self.num_params()]
    }
    fn vf(&self, t: f64, y: &Vec<S>, v: &mut Pair<Vec<S>>, cache: Option<&mut Vec<S>>, _: &mut ()) {
        match cache {
            Some(cache) => {
                let (n, nd) = self.cache_split();
                let (head, rest) = cache.split_at_mut(n);
                let (dc, gc) = rest.split_at_mut(nd);
                head.copy_from_slice(y);
                self.drift.eval_cached(t, y, &mut v.y, dc);
                self.diffusion.eval(t, y, &mut v.z, Some(gc));
            }
            None => {
                self.drift.eval(t, y, &mut v.y);
                self.diffusion.eval(t, y, &mut v.z, None);
            }
        }
    }
    fn prod(&self, v: &Pair<Vec<S>>, c: &SdeControl<S>, out: &mut Vec<S>) {
        let dt = S::of(c.dt);
        out.iter_mut().zip(&v.y).for_each(|(o, &m)| *o = m * dt);
        self.add_noise(&v.z, &c.dw, out);
    }
    fn prod_vjp(&self, c: &SdeControl<S>, cot: &Vec<S>, scale: S, v_bar: &mut Pair<Vec<S>>) {
        let s = scale * S::of(c.dt);
        v_bar.y.iter_mut().zip(cot).for_each(|(v, &g)| *v = s * g);
        self.noise_cotangent(cot, &c.dw, &mut v_bar.z);
        v_bar.z.scale(scale);
    }
    fn vf_vjp(
        &self,
        t: f64,
        cache: &Vec<S>,
        v_bar: &Pair<Vec<S>>,
        y_bar: &mut Vec<S>,
        p_bar: &mut Vec<S>,
        _: &mut (),
    ) {
        let (n, nd) = self.cache_split();
        let (y, rest) = cache.split_at(n);
        let (dc, gc) = rest.split_at(nd);
        let np = self.drift.params().len();
        let (pd, pg) = p_bar.split_at_mut(np);
        self.drift
            .vjp_cached(t, y, dc, &v_bar.y, S::one(), y_bar, pd);
        self.diffusion.vjp(t, y, gc, &v_bar.z, S::one(), y_bar, pg);
    }
    fn validate_state(&self, y: &Vec<S>) -> Result<()> {
        if y.len() != self.batch * self.dim {
            return Err(Error::ShapeMismatch {
                what: "SDE state (batch × dim)".into(),
                expected: self.batch * self.dim,
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
}
