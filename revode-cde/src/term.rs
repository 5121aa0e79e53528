//! The CDE term dz = f_θ(t, z) dX: a matrix-valued field times the path's increment.

use crate::Path;
use revode_core::{term::Traced, term::Workspace, Error, Mlp, MlpSpec, Result, Term, VectorField};

/// A matrix-valued field f_θ(t, z): `hidden` inputs → a `hidden × channels` matrix, with its
/// pullback. Implemented natively by [`CdeMlp`].
pub trait CdeField {
    /// Hidden state size.
    fn hidden(&self) -> usize;
    /// Path channels.
    fn channels(&self) -> usize;
    /// Flat parameters.
    fn params(&self) -> &[f64];
    /// Scalars a traced evaluation keeps per row.
    fn cache_len(&self) -> usize;
    /// `out ← f(t, z)` (row-major hidden × channels); fills `cache` when given.
    fn eval(&self, t: f64, z: &[f64], out: &mut [f64], cache: Option<&mut [f64]>);
    /// Pullback at the cached point with cotangent `g` on the output matrix:
    /// `z_bar += Jᵀg`, `p_bar += J_θᵀg`.
    fn vjp(
        &self,
        t: f64,
        z: &[f64],
        cache: &[f64],
        g: &[f64],
        z_bar: &mut [f64],
        p_bar: &mut [f64],
    );
}

/// Widest hidden layer of [`CdeMlp`] (the native MLP's limit).
pub const MAX_WIDTH: usize = revode_core::mlp::MAX_HIDDEN;

/// The CDE field `tanh(MLP_θ(t, z))` read as a `hidden × channels` matrix: revode-core's native
/// [`Mlp`] (`hidden (+ t) → width (tanh, × depth) → hidden·channels`, the [`MlpSpec`] layout)
/// plus the CDE's shape, an output tanh that bounds the field (Kidger et al. 2020).
#[derive(Clone, Debug)]
pub struct CdeMlp {
    channels: usize,
    net: Mlp<f64>,
}

impl CdeMlp {
    /// A field with uniform ±1/√fan_in initialisation from `seed`.
    pub fn new(
        hidden: usize,
        channels: usize,
        width: usize,
        depth: usize,
        time: bool,
        seed: u64,
    ) -> Result<Self> {
        if hidden == 0 || channels == 0 || width == 0 || depth == 0 {
            return Err(Error::config(
                "cde field",
                "hidden, channels, width and depth must be positive",
            ));
        }
        if width > MAX_WIDTH {
            return Err(Error::config(
                "cde field",
                format!("width {width} exceeds {MAX_WIDTH}"),
            ));
        }
        let spec = Self::spec(hidden, channels, width, depth, time);
        // The draw of the original implementation, kept so that seeds give the same models.
        let mut rng = revode_core::random::SplitMix64::new(seed ^ 0x5DEE_CE66_D1CE_4E5B);
        let mut params = Vec::with_capacity(spec.num_params());
        let mut fan_in = hidden + time as usize;
        for l in 0..=depth {
            let out = if l == depth { hidden * channels } else { width };
            let bound = 1.0 / (fan_in as f64).sqrt();
            params.extend((0..out * fan_in + out).map(|_| rng.symmetric(bound)));
            fan_in = width;
        }
        // One row at a time: the CDE term evaluates each series on its own.
        let net = Mlp::from_spec(spec, 1)?.with_params(&params)?;
        Ok(CdeMlp { channels, net })
    }
    /// The network's shape: `hidden (+ t) → width (× depth) → hidden·channels`, tanh.
    pub fn spec(hidden: usize, channels: usize, width: usize, depth: usize, time: bool) -> MlpSpec {
        MlpSpec {
            time,
            depth,
            outputs: Some(hidden * channels),
            ..MlpSpec::new(hidden, width)
        }
    }
    /// Replaces the parameters (the [`MlpSpec`] layout).
    pub fn with_params(mut self, p: &[f64]) -> Result<Self> {
        if p.len() != self.net.params().len() {
            return Err(Error::ShapeMismatch {
                what: "CDE field parameters".into(),
                expected: self.net.params().len(),
                found: p.len(),
            });
        }
        self.net = self.net.with_params(p)?;
        Ok(self)
    }
    /// The network under the output tanh.
    pub fn network(&self) -> &Mlp<f64> {
        &self.net
    }
}

impl CdeField for CdeMlp {
    // The CDE's hidden state is the network's input (its `dim`), not the network's width.
    #[allow(clippy::misnamed_getters)]
    fn hidden(&self) -> usize {
        self.net.spec().dim
    }
    fn channels(&self) -> usize {
        self.channels
    }
    fn params(&self) -> &[f64] {
        self.net.params()
    }
    /// The network's activations, then the bounded output.
    fn cache_len(&self) -> usize {
        self.net.cache_len() + self.net.out_len()
    }
    fn eval(&self, t: f64, z: &[f64], out: &mut [f64], cache: Option<&mut [f64]>) {
        let n_out = self.net.out_len();
        let out = &mut out[..n_out];
        match cache {
            Some(c) => {
                let (acts, f) = c.split_at_mut(self.net.cache_len());
                self.net.eval_cached(t, z, out, acts);
                out.iter_mut()
                    .for_each(|v| *v = revode_core::activation::tanh(*v));
                f.copy_from_slice(out);
            }
            None => {
                self.net.eval(t, z, out);
                out.iter_mut()
                    .for_each(|v| *v = revode_core::activation::tanh(*v));
            }
        }
    }
    /// Through the output tanh (`g ⊙ (1 − f²)`), then the network's pullback.
    fn vjp(
        &self,
        t: f64,
        z: &[f64],
        cache: &[f64],
        g: &[f64],
        z_bar: &mut [f64],
        p_bar: &mut [f64],
    ) {
        let (acts, f) = cache.split_at(self.net.cache_len());
        // On the stack for the usual sizes (this runs per series and stage), sized so that
        // the buffer zeroed per call stays close to the field's size.
        match f.len() {
            0..=64 => self.vjp_through_tanh::<64>(t, z, acts, f, g, z_bar, p_bar),
            65..=1024 => self.vjp_through_tanh::<1024>(t, z, acts, f, g, z_bar, p_bar),
            _ => {
                let d: Vec<f64> = g.iter().zip(f).map(|(g, f)| g * (1.0 - f * f)).collect();
                self.net.vjp_cached(t, z, acts, &d, 1.0, z_bar, p_bar);
            }
        }
    }
}

impl CdeMlp {
    /// `g ⊙ (1 − f²)` in an `N`-entry stack buffer, then the network's pullback.
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    fn vjp_through_tanh<const N: usize>(
        &self,
        t: f64,
        z: &[f64],
        acts: &[f64],
        f: &[f64],
        g: &[f64],
        z_bar: &mut [f64],
        p_bar: &mut [f64],
    ) {
        let mut d = [0.0; N];
        for ((d, g), f) in d.iter_mut().zip(g).zip(f) {
            *d = g * (1.0 - f * f);
        }
        self.net
            .vjp_cached(t, z, acts, &d[..f.len()], 1.0, z_bar, p_bar);
    }
}

/// The control of one CDE step: its interval and the path increment over it.
#[derive(Clone, Debug, Default)]
pub struct CdeControl {
    /// Start of the step.
    pub t_a: f64,
    /// End of the step.
    pub t_b: f64,
    /// `X(t_b) − X(t_a)`, `batch × channels`.
    pub dx: Vec<f64>,
}

/// dz = f_θ(t, z)·dX for every series of a batch (state `batch × hidden`), driven by a [`Path`].
#[derive(Clone, Debug)]
pub struct CdeTerm<F> {
    /// The field.
    pub field: F,
    /// The control path (its batch and channels must match the field and the state).
    pub path: Path,
    /// Whether gradients also flow into the path's data values (see
    /// [`CdeTerm::with_data_gradient`]).
    data_gradient: bool,
}

impl<F: CdeField> CdeTerm<F> {
    /// Couples a field with a path; their channels must agree.
    pub fn new(field: F, path: Path) -> Result<Self> {
        if field.channels() != path.channels() {
            return Err(Error::ShapeMismatch {
                what: "CDE field channels vs path channels".into(),
                expected: path.channels(),
                found: field.channels(),
            });
        }
        Ok(CdeTerm {
            field,
            path,
            data_gradient: false,
        })
    }

    /// Also differentiates with respect to the path's data values: the parameter cotangent
    /// becomes `[θ | data]`, the data part shaped like [`crate::PathData::values`] (e.g. the
    /// generated samples an SDE-GAN discriminator scores). Natural cubic paths refuse.
    pub fn with_data_gradient(mut self) -> Result<Self> {
        if self.path.interpolation() == crate::Interpolation::NaturalCubic {
            return Err(Error::Unsupported(
                "data gradients of natural cubic splines (global in the knots); use Hermite".into(),
            ));
        }
        self.data_gradient = true;
        Ok(self)
    }

    /// Per series: the state row, the field's activations, and (with data gradients) the
    /// field's output matrix.
    fn row_cache_len(&self) -> usize {
        let f = &self.field;
        f.hidden() + f.cache_len() + self.data_gradient as usize * f.hidden() * f.channels()
    }
}

/// The field value is the batch's `hidden × channels` matrices (row-major, series after
/// series); the product with the control is `M_b·dX_b` per series.
impl<F: CdeField> Term for CdeTerm<F> {
    type State = Vec<f64>;
    type Control = CdeControl;
    type Field = Vec<f64>;
    type Cache = Vec<f64>;
    type ParamGrad = Vec<f64>;
    /// `dX̄` (`batch × channels`), for gradients into the path's data.
    type Scratch = Vec<f64>;

    fn new_control(&self) -> CdeControl {
        CdeControl {
            dx: vec![0.0; self.path.batch() * self.path.channels()],
            ..CdeControl::default()
        }
    }
    fn contr(&self, t_a: f64, t_b: f64, out: &mut CdeControl) {
        out.t_a = t_a;
        out.t_b = t_b;
        // Times are validated against the domain before a solve; a failure here poisons the
        // step with NaN, which the loop reports as a non-finite state.
        if self.path.increment(t_a, t_b, &mut out.dx).is_err() {
            out.dx.iter_mut().for_each(|v| *v = f64::NAN);
        }
    }
    fn new_field(&self, _like: &Vec<f64>) -> Vec<f64> {
        vec![0.0; self.path.batch() * self.field.hidden() * self.field.channels()]
    }
    fn new_cache(&self, _like: &Vec<f64>) -> Vec<f64> {
        vec![0.0; self.path.batch() * self.row_cache_len()]
    }
    fn new_scratch(&self, _like: &Vec<f64>) -> Vec<f64> {
        let n = if self.data_gradient {
            self.path.batch() * self.path.channels()
        } else {
            0
        };
        vec![0.0; n]
    }
    fn new_param_grad(&self) -> Vec<f64> {
        let data = if self.data_gradient {
            self.path.data_len()
        } else {
            0
        };
        vec![0.0; self.field.params().len() + data]
    }
    fn validate_state(&self, y: &Vec<f64>) -> Result<()> {
        let expected = self.path.batch() * self.field.hidden();
        if y.len() != expected {
            return Err(Error::ShapeMismatch {
                what: "CDE state (batch × hidden)".into(),
                expected,
                found: y.len(),
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
        z: &Vec<f64>,
        v: &mut Vec<f64>,
        mut cache: Option<&mut Vec<f64>>,
        _: &mut Vec<f64>,
    ) {
        let (h, c) = (self.field.hidden(), self.field.channels());
        let rc = self.row_cache_len();
        let keep_matrix = self.data_gradient;
        for (b, m) in v.chunks_exact_mut(h * c).enumerate() {
            let zb = &z[b * h..(b + 1) * h];
            match cache.as_deref_mut().map(|cv| &mut cv[b * rc..(b + 1) * rc]) {
                Some(rcache) => {
                    rcache[..h].copy_from_slice(zb);
                    let (act, mat) =
                        rcache[h..].split_at_mut(rc - h - keep_matrix as usize * h * c);
                    self.field.eval(t, zb, m, Some(act));
                    if keep_matrix {
                        mat.copy_from_slice(m);
                    }
                }
                None => self.field.eval(t, zb, m, None),
            }
        }
    }
    fn prod(&self, v: &Vec<f64>, control: &CdeControl, out: &mut Vec<f64>) {
        let (h, c) = (self.field.hidden(), self.field.channels());
        for ((m, dxb), ob) in v
            .chunks_exact(h * c)
            .zip(control.dx.chunks_exact(c))
            .zip(out.chunks_exact_mut(h))
        {
            for (o, row) in ob.iter_mut().zip(m.chunks_exact(c)) {
                *o = row.iter().zip(dxb).map(|(a, d)| a * d).sum();
            }
        }
    }
    /// `V̄_b = (scale·cot_b) ⊗ dX_b`.
    fn prod_vjp(&self, control: &CdeControl, cot: &Vec<f64>, scale: f64, v_bar: &mut Vec<f64>) {
        let (h, c) = (self.field.hidden(), self.field.channels());
        for ((g, dxb), cb) in v_bar
            .chunks_exact_mut(h * c)
            .zip(control.dx.chunks_exact(c))
            .zip(cot.chunks_exact(h))
        {
            for (row, &ci) in g.chunks_exact_mut(c).zip(cb) {
                row.iter_mut()
                    .zip(dxb)
                    .for_each(|(g, d)| *g = scale * ci * d);
            }
        }
    }
    fn vf_vjp(
        &self,
        t: f64,
        cache: &Vec<f64>,
        v_bar: &Vec<f64>,
        y_bar: &mut Vec<f64>,
        p_bar: &mut Vec<f64>,
        _: &mut Vec<f64>,
    ) {
        let (h, c) = (self.field.hidden(), self.field.channels());
        let rc = self.row_cache_len();
        let act_end = h + self.field.cache_len();
        let np = self.field.params().len();
        for (b, g) in v_bar.chunks_exact(h * c).enumerate() {
            let rcache = &cache[b * rc..(b + 1) * rc];
            self.field.vjp(
                t,
                &rcache[..h],
                &rcache[h..act_end],
                g,
                &mut y_bar[b * h..(b + 1) * h],
                &mut p_bar[..np],
            );
        }
    }
    /// With data gradients, also `dX̄_b = M_bᵀ(scale·cot_b)` pulled through the path into the
    /// data part of `p_bar`.
    fn vf_prod_vjp(
        &self,
        at: Traced<'_, Self>,
        cot: &Vec<f64>,
        scale: f64,
        y_bar: &mut Vec<f64>,
        p_bar: &mut Vec<f64>,
        ws: &mut Workspace<Self>,
    ) {
        if self.data_gradient {
            let (h, c) = (self.field.hidden(), self.field.channels());
            let rc = self.row_cache_len();
            let act_end = h + self.field.cache_len();
            let np = self.field.params().len();
            let dxb = &mut ws.scratch;
            dxb.iter_mut().for_each(|v| *v = 0.0);
            for b in 0..self.path.batch() {
                let m = &at.cache[b * rc + act_end..(b + 1) * rc];
                for i in 0..h {
                    let ci = scale * cot[b * h + i];
                    for k in 0..c {
                        dxb[b * c + k] += m[i * c + k] * ci;
                    }
                }
            }
            // The times were validated by the solve; the shapes by construction.
            let _ =
                self.path
                    .increment_data_vjp(at.control.t_a, at.control.t_b, dxb, &mut p_bar[np..]);
        }
        self.prod_vjp(at.control, cot, scale, &mut ws.field_bar);
        self.vf_vjp(at.t, at.cache, &ws.field_bar, y_bar, p_bar, &mut ws.scratch);
    }
}
