//! Forward mode through a neural CDE, with reverse mode on top: the directional derivative of the
//! outputs along a direction in the path's data, and the exact parameter gradient of that
//! derivative (what a WGAN gradient penalty needs: `∇_θ (∇_v D · u)`).
//!
//! The tangent of `dz = f(z)·dX` along data direction `u` (path `Ẋ`) is
//! `dż = (J_z f(z)·ż)·dX + f(z)·dẊ`. Together they form one CDE in `(z, ż)` driven by `(X, Ẋ)`,
//! with the block matrix field `F̃(z, ż) = [[f, 0], [J_z f·ż, f]]`. Every scheme revode runs is
//! built from field evaluations and linear combinations, so solving this CDE with the same
//! scheme and steps gives exactly the tangent of the discrete solution, and any gradient method
//! through it gives the exact parameter gradient of that tangent. The pullback of `F̃` is the
//! network's second-order pullback ([`revode_core::Mlp::vjp_tangent`]).

use crate::classifier::{FieldBackend, NcdeClassifier};
use crate::{CdeField, CdeMlp, CdeTerm, Path, PathData, PathOptions};
use revode_core::{Error, GradientMethod, Result, Rk, SolveOptions};

/// The tangent system's field `F̃(z, ż)` of a [`CdeMlp`]: hidden `2h`, channels `c + (c − k)`
/// where the first `k` channels (time) have no tangent. The path holds `X`'s `c` channels, then
/// `Ẋ`'s last `c − k`.
#[derive(Clone, Debug)]
pub struct TangentCdeMlp {
    base: CdeMlp,
    fixed: usize,
}

impl TangentCdeMlp {
    /// The tangent field of `base`, whose first `fixed` path channels are not perturbed.
    pub fn new(base: CdeMlp, fixed: usize) -> Result<Self> {
        if fixed > base.channels() {
            return Err(Error::config(
                "tangent field",
                format!("{fixed} fixed channels of {}", base.channels()),
            ));
        }
        Ok(TangentCdeMlp { base, fixed })
    }

    fn sizes(&self) -> (usize, usize, usize) {
        let c = self.base.channels();
        (self.base.hidden(), c, c + c - self.fixed)
    }
}

impl CdeField for TangentCdeMlp {
    fn hidden(&self) -> usize {
        2 * self.base.hidden()
    }
    fn channels(&self) -> usize {
        self.sizes().2
    }
    fn params(&self) -> &[f64] {
        self.base.params()
    }
    /// The network's tangent cache, then `f` and `ȯ` (the output layer's tangent).
    fn cache_len(&self) -> usize {
        let (h, c, _) = self.sizes();
        self.base.network().tangent_cache_len() + 2 * h * c
    }
    fn eval(&self, t: f64, z: &[f64], out: &mut [f64], cache: Option<&mut [f64]>) {
        let (h, c, cw) = self.sizes();
        let net = self.base.network();
        let mut own = Vec::new();
        let cache = match cache {
            Some(cache) => cache,
            None => {
                own.resize(self.cache_len(), 0.0);
                &mut own
            }
        };
        let (net_cache, rest) = cache.split_at_mut(net.tangent_cache_len());
        let (f, o_dot) = rest.split_at_mut(h * c);
        net.eval_tangent(t, &z[..h], &z[h..], f, o_dot, net_cache);
        f.iter_mut()
            .for_each(|v| *v = revode_core::activation::tanh(*v));
        out.iter_mut().for_each(|v| *v = 0.0);
        for i in 0..h {
            for j in 0..c {
                let fij = f[i * c + j];
                out[i * cw + j] = fij;
                out[(h + i) * cw + j] = (1.0 - fij * fij) * o_dot[i * c + j];
                if j >= self.fixed {
                    out[(h + i) * cw + c + j - self.fixed] = fij;
                }
            }
        }
    }
    /// With `ḟ = (1 − f²)·ȯ` and `f = tanh(o)`: `ȱ = (1 − f²)·ḟ̄` and
    /// `ō = (1 − f²)·(f̄ − 2f·ȯ·ḟ̄)`, then the network's second-order pullback.
    fn vjp(
        &self,
        t: f64,
        z: &[f64],
        cache: &[f64],
        g: &[f64],
        z_bar: &mut [f64],
        p_bar: &mut [f64],
    ) {
        let (h, c, cw) = self.sizes();
        let net = self.base.network();
        let (net_cache, rest) = cache.split_at(net.tangent_cache_len());
        let (f, o_dot) = rest.split_at(h * c);
        let (mut o_bar, mut o_dot_bar) = (vec![0.0; h * c], vec![0.0; h * c]);
        for i in 0..h {
            for j in 0..c {
                let k = i * c + j;
                let mut f_bar = g[i * cw + j];
                if j >= self.fixed {
                    f_bar += g[(h + i) * cw + c + j - self.fixed];
                }
                let fd_bar = g[(h + i) * cw + j];
                let s = 1.0 - f[k] * f[k];
                o_dot_bar[k] = s * fd_bar;
                o_bar[k] = s * (f_bar - 2.0 * f[k] * o_dot[k] * fd_bar);
            }
        }
        let (zb, zdb) = z_bar.split_at_mut(h);
        net.vjp_tangent(
            t,
            &z[..h],
            &z[h..],
            net_cache,
            &o_bar,
            &o_dot_bar,
            zb,
            zdb,
            p_bar,
        );
    }
}

/// What [`NcdeClassifier::tangent_gradient`] returns.
#[derive(Clone, Debug)]
pub struct TangentGradient {
    /// `ȯ_b = D_v o_b[u]`, the outputs' directional derivatives (`batch × classes`).
    pub outputs_dot: Vec<f64>,
    /// `L = Σ w·ȯ`.
    pub loss: f64,
    /// `∂L/∂θ` (flat, the model's layout).
    pub grad: Vec<f64>,
}

impl NcdeClassifier {
    /// The outputs' derivatives `ȯ = D_v o[u]` along a direction `u` in the path's data `v`
    /// (`tangent`, shaped like `data.values`, NaN exactly where `v` is missing), and the exact
    /// gradient of `L = Σ w·ȯ` with respect to the parameters, through the tangent CDE (module
    /// docs) with `method`. Native backend; paths without count channels.
    #[allow(clippy::too_many_arguments)]
    pub fn tangent_gradient(
        &self,
        p: &[f64],
        data: &PathData,
        tangent: &[f64],
        options: &PathOptions,
        opts: &SolveOptions,
        method: GradientMethod,
        weights: &[f64],
    ) -> Result<TangentGradient> {
        if self.backend != FieldBackend::Native {
            return Err(Error::Unsupported(
                "tangent gradients on the dfdx CDE backend; use the native backend".into(),
            ));
        }
        if matches!(opts.step, revode_core::prelude::StepControl::Adaptive(_)) {
            // The controller would size steps on the (z, ż) error: other steps than the
            // outputs' own solve, so ȯ would not be their derivative.
            return Err(Error::Unsupported(
                "tangent gradients with adaptive steps (use fixed steps)".into(),
            ));
        }
        if options.count_channels {
            return Err(Error::Unsupported(
                "tangent gradients of paths with count channels".into(),
            ));
        }
        let path = tangent_path(data, tangent, options)?;
        let (h, c, m) = (self.hidden, self.channels, self.classes);
        let batch = data.batch;
        if weights.len() != batch * m {
            return Err(Error::ShapeMismatch {
                what: "tangent-gradient weights (batch × classes)".into(),
                expected: batch * m,
                found: weights.len(),
            });
        }
        revode_core::error::check_finite("tangent-gradient weights", weights)?;
        let fixed = options.time_channel as usize;
        if path.channels() != 2 * c - fixed {
            return Err(Error::ShapeMismatch {
                what: "path channels (time, data, direction) vs the classifier's channels".into(),
                expected: 2 * c - fixed,
                found: path.channels(),
            });
        }
        let (zeta, field, readout) = self.split(p)?;
        // X̃(t0) = (x0, ẋ0 without the fixed channels); z0 = ζ(x0), ż0 = A·ẋ0.
        let cw = path.channels();
        let mut x_aug = vec![0.0; batch * cw];
        path.evaluate(path.domain().0, &mut x_aug)?;
        let (mut x0, mut x0_dot) = (vec![0.0; batch * c], vec![0.0; batch * c]);
        for b in 0..batch {
            let row = &x_aug[b * cw..(b + 1) * cw];
            x0[b * c..(b + 1) * c].copy_from_slice(&row[..c]);
            x0_dot[b * c + fixed..(b + 1) * c].copy_from_slice(&row[c..]);
        }
        let enc = self.encoder()?;
        let (mut z0, mut z0_dot) = (vec![0.0; batch * h], vec![0.0; batch * h]);
        enc.forward(zeta, &x0, &mut z0)?;
        enc.tangent(zeta, &x0_dot, &mut z0_dot)?;
        let state: Vec<f64> = (0..batch)
            .flat_map(|b| {
                z0[b * h..(b + 1) * h]
                    .iter()
                    .chain(&z0_dot[b * h..(b + 1) * h])
                    .copied()
            })
            .collect();
        let base = CdeMlp::new(h, c, self.width, self.depth, false, 0)?.with_params(field)?;
        let term = CdeTerm::new(TangentCdeMlp::new(base, fixed)?, path.clone())?;
        let map = Rk::new(term, self.tableau.clone());
        // ȯ = W ż(T): its weighted sum's cotangent on ż(T) is Wᵀw, and W̄ = wᵀ ż(T).
        let w = self.readout()?;
        let mut readout_grad = vec![0.0; readout.len()];
        let mut outputs_dot = vec![0.0; batch * m];
        let mut failure = None;
        let times = Self::times(&path);
        let g = self.final_gradient(
            map,
            &state,
            &times,
            opts,
            method,
            &mut |z, cot| {
                // Some methods call the loss more than once (the automatic interval's retries):
                // the readout's gradient is this call's alone.
                readout_grad.iter_mut().for_each(|v| *v = 0.0);
                let z_dot: Vec<f64> = z
                    .chunks_exact(2 * h)
                    .flat_map(|r| r[h..].iter().copied())
                    .collect();
                let mut zd_bar = vec![0.0; batch * h];
                let mut step = || -> Result<()> {
                    w.tangent(readout, &z_dot, &mut outputs_dot)?;
                    w.tangent_pullback(
                        readout,
                        &z_dot,
                        weights,
                        Some(&mut zd_bar),
                        &mut readout_grad,
                    )
                };
                if let Err(e) = step() {
                    failure = Some(e);
                    return f64::NAN;
                }
                for (row, zb) in cot.chunks_exact_mut(2 * h).zip(zd_bar.chunks_exact(h)) {
                    row[..h].iter_mut().for_each(|v| *v = 0.0);
                    row[h..].copy_from_slice(zb);
                }
                outputs_dot.iter().zip(weights).map(|(a, b)| a * b).sum()
            },
            |p| p,
        );
        if let Some(e) = failure {
            return Err(e);
        }
        let (loss, y0_bar, field_bar, _, _) = g?;
        let (mut z0_bar, mut z0_dot_bar) = (vec![0.0; batch * h], vec![0.0; batch * h]);
        for (b, row) in y0_bar.chunks_exact(2 * h).enumerate() {
            z0_bar[b * h..(b + 1) * h].copy_from_slice(&row[..h]);
            z0_dot_bar[b * h..(b + 1) * h].copy_from_slice(&row[h..]);
        }
        let mut grad = vec![0.0; zeta.len()];
        enc.pullback(zeta, &x0, &z0_bar, None, &mut grad)?;
        enc.tangent_pullback(zeta, &x0_dot, &z0_dot_bar, None, &mut grad)?;
        grad.extend(&field_bar);
        grad.extend(&readout_grad);
        // The encoder's and readout's parts are computed here, outside the solver's checks.
        if let Some(i) = grad.iter().position(|v| !v.is_finite()) {
            return Err(Error::NonFiniteGradient {
                what: format!("tangent gradient entry {i}"),
                step: None,
            });
        }
        Ok(TangentGradient {
            outputs_dot,
            loss,
            grad,
        })
    }
}

/// The path of `(v, u)`: the data's channels, then the direction's.
fn tangent_path(data: &PathData, tangent: &[f64], options: &PathOptions) -> Result<Path> {
    if data.channels == 0 {
        return Err(Error::Empty {
            what: "path channels".into(),
        });
    }
    if tangent.len() != data.values.len() {
        return Err(Error::ShapeMismatch {
            what: "tangent (shaped like the path data)".into(),
            expected: data.values.len(),
            found: tangent.len(),
        });
    }
    if let Some(i) = data
        .values
        .iter()
        .zip(tangent)
        .position(|(v, u)| v.is_nan() != u.is_nan() || u.is_infinite())
    {
        return Err(Error::NonFinite {
            what: "tangent (must be finite where the data is observed, NaN where missing)".into(),
            index: i,
        });
    }
    let c = data.channels;
    let mut values = Vec::with_capacity(2 * data.values.len());
    for (v, u) in data.values.chunks_exact(c).zip(tangent.chunks_exact(c)) {
        values.extend_from_slice(v);
        values.extend_from_slice(u);
    }
    Path::new(
        &PathData {
            times: data.times.clone(),
            batch: data.batch,
            channels: 2 * c,
            values,
        },
        options,
    )
}
