//! Forward-over-reverse differentiation of the native [`Mlp`]: the tangent `ḟ = J_y f(t, y)·ẏ`
//! beside the value, and the pullback of the pair `(f, ḟ)` to `y`, `ẏ` and the parameters. With
//! it, second derivatives of a model built from the network (the parameter gradient of a
//! gradient's norm, as in a WGAN gradient penalty) are exact, not differences of gradients.
//!
//! Per hidden layer `l`, with `x_0 = (y, t)` and `ẋ_0 = (ẏ, 0)`:
//! `p_l = W_l x_{l−1} + b_l`, `x_l = σ(p_l)`, and the tangent `ṗ_l = W_l ẋ_{l−1}`,
//! `ẋ_l = σ'(p_l)·ṗ_l`; the output `o = W x + b`, `ȯ = W ẋ`. The pullback of cotangents
//! `(ō, ȱ)` runs the chain backwards:
//! `p̄_l = σ'(p_l)·x̄_l + σ''(p_l)·ṗ_l·ẋ̄_l`, `ṗ̄_l = σ'(p_l)·ẋ̄_l`,
//! `W̄_l += p̄_l x_{l−1}ᵀ + ṗ̄_l ẋ_{l−1}ᵀ`, `b̄_l += p̄_l`, `x̄_{l−1} = W_lᵀ p̄_l`,
//! `ẋ̄_{l−1} = W_lᵀ ṗ̄_l`.
//!
//! Row by row (the row path's layout); the time input is not differentiated.

use super::Mlp;
use crate::Real;

impl<S: Real> Mlp<S> {
    /// Scalars [`Mlp::eval_tangent`] caches: `p_l`, `x_l` and `ṗ_l` of every hidden layer, per
    /// row.
    pub fn tangent_cache_len(&self) -> usize {
        3 * self.spec.hidden * self.spec.depth * self.batch
    }

    /// The first layer's input row `(y, t)` in the weight's column order, and its tangent.
    fn input_row(&self, t: f64, y: &[S], y_dot: &[S]) -> (Vec<f64>, Vec<f64>) {
        let n = self.spec.inputs();
        let sc = self.spec.state_column();
        let (mut x, mut xd) = (vec![0.0; n], vec![0.0; n]);
        for (i, (v, d)) in y.iter().zip(y_dot).enumerate() {
            x[sc + i] = v.as_f64();
            xd[sc + i] = d.as_f64();
        }
        if let Some(tc) = self.spec.time_column() {
            x[tc] = t;
        }
        (x, xd)
    }

    /// Layer `l`'s weight (row-major, outputs × inputs) and bias.
    fn layer(&self, l: usize) -> (&[S], &[S], usize) {
        let h = self.spec.hidden;
        let (outputs, inputs) = match l {
            0 => (h, self.spec.inputs()),
            l if l == self.spec.depth => (self.spec.out_dim(), h),
            _ => (h, h),
        };
        let off = self.offsets[l];
        let w = &self.params[off..off + outputs * inputs];
        (w, &self.params[off + outputs * inputs..][..outputs], inputs)
    }

    /// `out ← f(t, y)` and `out_dot ← J_y f(t, y)·y_dot` for every row, caching what
    /// [`Mlp::vjp_tangent`] needs. Lengths (the [`VectorField`](crate::VectorField)
    /// contract): `y`, `y_dot` batch × dim; `out`, `out_dot` batch × out_dim; `cache`
    /// [`Mlp::tangent_cache_len`].
    pub fn eval_tangent(
        &self,
        t: f64,
        y: &[S],
        y_dot: &[S],
        out: &mut [S],
        out_dot: &mut [S],
        cache: &mut [S],
    ) {
        let (d, o, h) = (self.spec.dim, self.spec.out_dim(), self.spec.hidden);
        let act = self.spec.activation;
        let per = 3 * h * self.spec.depth;
        for r in 0..self.batch {
            let rows = r * d..(r + 1) * d;
            let (mut x, mut xd) = self.input_row(t, &y[rows.clone()], &y_dot[rows]);
            let c = &mut cache[r * per..(r + 1) * per];
            for l in 0..self.spec.depth {
                let (w, b, inputs) = self.layer(l);
                let (mut nx, mut nxd) = (vec![0.0; h], vec![0.0; h]);
                for j in 0..h {
                    let row = &w[j * inputs..(j + 1) * inputs];
                    let mut p = b[j].as_f64();
                    let mut pd = 0.0;
                    for ((wi, xi), xdi) in row.iter().zip(&x).zip(&xd) {
                        p += wi.as_f64() * xi;
                        pd += wi.as_f64() * xdi;
                    }
                    let a = act.apply(p);
                    c[3 * l * h + j] = S::of(p);
                    c[(3 * l + 1) * h + j] = S::of(a);
                    c[(3 * l + 2) * h + j] = S::of(pd);
                    nx[j] = a;
                    nxd[j] = act.derivative(p, a) * pd;
                }
                (x, xd) = (nx, nxd);
            }
            let (w, b, _) = self.layer(self.spec.depth);
            for k in 0..o {
                let row = &w[k * h..(k + 1) * h];
                let mut v = b[k].as_f64();
                let mut vd = 0.0;
                for ((wj, xj), xdj) in row.iter().zip(&x).zip(&xd) {
                    v += wj.as_f64() * xj;
                    vd += wj.as_f64() * xdj;
                }
                out[r * o + k] = S::of(v);
                out_dot[r * o + k] = S::of(vd);
            }
        }
    }

    /// The pullback of `(f, ḟ)` at the point [`Mlp::eval_tangent`] cached, with cotangents
    /// `cot` on `f` and `cot_dot` on `ḟ` (batch × out_dim each): `y_bar`, `y_dot_bar`
    /// (batch × dim) and `p_bar` (the parameters' length) are accumulated.
    #[allow(clippy::too_many_arguments)]
    pub fn vjp_tangent(
        &self,
        t: f64,
        y: &[S],
        y_dot: &[S],
        cache: &[S],
        cot: &[S],
        cot_dot: &[S],
        y_bar: &mut [S],
        y_dot_bar: &mut [S],
        p_bar: &mut [S],
    ) {
        let (d, o, h, depth) = (
            self.spec.dim,
            self.spec.out_dim(),
            self.spec.hidden,
            self.spec.depth,
        );
        let act = self.spec.activation;
        let per = 3 * h * depth;
        for r in 0..self.batch {
            let c = &cache[r * per..(r + 1) * per];
            let p_of = |l: usize, j: usize| c[3 * l * h + j].as_f64();
            let a_of = |l: usize, j: usize| c[(3 * l + 1) * h + j].as_f64();
            let pd_of = |l: usize, j: usize| c[(3 * l + 2) * h + j].as_f64();
            // Layer l's input row and its tangent, rebuilt from the cache.
            let inputs_of = |l: usize| -> (Vec<f64>, Vec<f64>) {
                if l == 0 {
                    let rows = r * d..(r + 1) * d;
                    return self.input_row(t, &y[rows.clone()], &y_dot[rows]);
                }
                let x = (0..h).map(|j| a_of(l - 1, j)).collect();
                let xd = (0..h)
                    .map(|j| act.derivative(p_of(l - 1, j), a_of(l - 1, j)) * pd_of(l - 1, j))
                    .collect();
                (x, xd)
            };
            // Output layer: x̄ and ẋ̄ of the last hidden layer.
            let (mut xb, mut xdb) = (vec![0.0; h], vec![0.0; h]);
            let (x, xd) = inputs_of(depth);
            let off = self.offsets[depth];
            let (w, _, _) = self.layer(depth);
            for k in 0..o {
                let (ck, cdk) = (cot[r * o + k].as_f64(), cot_dot[r * o + k].as_f64());
                p_bar[off + o * h + k] += S::of(ck);
                for j in 0..h {
                    p_bar[off + k * h + j] += S::of(ck * x[j] + cdk * xd[j]);
                    let wkj = w[k * h + j].as_f64();
                    xb[j] += wkj * ck;
                    xdb[j] += wkj * cdk;
                }
            }
            // Hidden layers, top down.
            for l in (0..depth).rev() {
                let (w, _, inputs) = self.layer(l);
                let off = self.offsets[l];
                let (x, xd) = inputs_of(l);
                let (mut below, mut below_dot) = (vec![0.0; inputs], vec![0.0; inputs]);
                for j in 0..h {
                    let (p, a, pd) = (p_of(l, j), a_of(l, j), pd_of(l, j));
                    let s1 = act.derivative(p, a);
                    let pb = s1 * xb[j] + act.second_derivative(p, a) * pd * xdb[j];
                    let pdb = s1 * xdb[j];
                    p_bar[off + h * inputs + j] += S::of(pb);
                    let row = &w[j * inputs..(j + 1) * inputs];
                    for i in 0..inputs {
                        p_bar[off + j * inputs + i] += S::of(pb * x[i] + pdb * xd[i]);
                        let wji = row[i].as_f64();
                        below[i] += wji * pb;
                        below_dot[i] += wji * pdb;
                    }
                }
                (xb, xdb) = (below, below_dot);
            }
            let sc = self.spec.state_column();
            for i in 0..d {
                let at = r * d + i;
                y_bar[at] += S::of(xb[sc + i]);
                y_dot_bar[at] += S::of(xdb[sc + i]);
            }
        }
    }
}
