//! The critic: the neural-CDE model the classifier uses ([`revode_cde::NcdeClassifier`],
//! one output) over the linear path of `(t, Y, Y_i Y_j)`; its scores, their gradients with respect
//! to its parameters and to the scored paths, and the gradient penalty.

use super::SdeGan;
use rayon::prelude::*;
use revode_cde::{Interpolation, Path, PathData, PathOptions};
use revode_core::{Error, GradientMethod, Result, SolveOptions};

/// What a critic pass returns: `Σ_b w·D(y_b)`, its parameter gradient and (when asked for)
/// its gradient with respect to the paths.
pub type CriticPass = (f64, Vec<f64>, Option<Vec<f64>>);

impl SdeGan {
    /// Index pairs `(i, j)`, `i ≤ j`, of the second-moment channels `Y_i Y_j` (none without
    /// `square_channel`; for one channel, `Y²`).
    fn products(&self) -> Vec<(usize, usize)> {
        if !self.config.square_channel {
            return Vec::new();
        }
        let c = self.channels;
        (0..c).flat_map(|i| (i..c).map(move |j| (i, j))).collect()
    }

    /// The critic's path data of scaled paths `y` (`batch × times × C`): `Y` and (with
    /// `square_channel`) every product `Y_i Y_j`, `i ≤ j`; with `tangent = Some(u)`, instead
    /// their derivatives along `u`: `u` and `u_i Y_j + Y_i u_j`.
    fn critic_data(&self, y: &[f64], tangent: Option<&[f64]>) -> PathData {
        let (n, c) = (self.times.len(), self.channels);
        let products = self.products();
        let mut values = Vec::with_capacity(y.len() / c * (c + products.len()));
        for (r, row) in y.chunks_exact(c).enumerate() {
            match tangent {
                None => {
                    values.extend_from_slice(row);
                    values.extend(products.iter().map(|&(i, j)| row[i] * row[j]));
                }
                Some(u) => {
                    let ur = &u[r * c..(r + 1) * c];
                    values.extend_from_slice(ur);
                    values.extend(
                        products
                            .iter()
                            .map(|&(i, j)| ur[i] * row[j] + row[i] * ur[j]),
                    );
                }
            }
        }
        PathData {
            times: self.times.clone(),
            batch: y.len() / (n * c),
            channels: c + products.len(),
            values,
        }
    }

    /// Linear interpolation with time as channel 0.
    fn critic_path_options() -> PathOptions {
        PathOptions {
            interpolation: Interpolation::Linear,
            time_channel: true,
            ..Default::default()
        }
    }

    /// The critic's control path of scaled paths `y`: time, then [`SdeGan::critic_data`],
    /// linearly interpolated.
    fn critic_path(&self, y: &[f64]) -> Result<Path> {
        Path::new(&self.critic_data(y, None), &Self::critic_path_options())
    }

    /// One solver step per observation interval (no stability check, as for the generator).
    fn critic_opts(&self) -> SolveOptions {
        SolveOptions {
            stability_check_dim: 0,
            stability_krylov: 0,
            ..SolveOptions::fixed(self.times[1] - self.times[0])
        }
    }

    fn check_paths(&self, y: &[f64]) -> Result<usize> {
        let per = self.times.len() * self.channels;
        if y.is_empty() || !y.len().is_multiple_of(per) {
            return Err(Error::ShapeMismatch {
                what: "critic input (batch × times × channels)".into(),
                expected: per,
                found: y.len(),
            });
        }
        Ok(y.len() / per)
    }

    /// Critic scores `D(y_b)` of scaled paths `y` (`batch × times × C`).
    pub fn scores(&self, critic: &[f64], y: &[f64]) -> Result<Vec<f64>> {
        self.check_paths(y)?;
        self.critic_model()
            .outputs(critic, &self.critic_path(y)?, &self.critic_opts())
    }

    /// `Σ_b weight·D(y_b)` over scaled paths `y`, its gradient with respect to the critic's
    /// parameters and, with `data_grad`, to `y`. Direct backpropagation: the critic's solves
    /// are short (one step per observation), so its tape is small.
    pub fn critic_chunk(
        &self,
        critic: &[f64],
        y: &[f64],
        weight: f64,
        data_grad: bool,
    ) -> Result<CriticPass> {
        self.check_paths(y)?;
        let path = self.critic_path(y)?;
        let g = self.critic_model().head_gradient(
            critic,
            &path,
            &self.critic_opts(),
            GradientMethod::Direct,
            data_grad,
            &mut |out, d_out| {
                d_out.iter_mut().for_each(|d| *d = weight);
                Ok(weight * out.iter().sum::<f64>())
            },
        )?;
        // Fold the product channels back: ∂(Y_i Y_j) = Y_j ∂Y_i + Y_i ∂Y_j.
        let c = self.channels;
        let products = self.products();
        let width = c + products.len();
        let y_bar = g.data.map(|d| {
            let mut out = vec![0.0; y.len()];
            for (row, (o, yr)) in out.chunks_exact_mut(c).zip(y.chunks_exact(c)).enumerate() {
                let dr = &d[row * width..(row + 1) * width];
                o.copy_from_slice(&dr[..c]);
                for (&(i, j), &dp) in products.iter().zip(&dr[c..]) {
                    if i == j {
                        o[i] += 2.0 * yr[i] * dp;
                    } else {
                        o[i] += dp * yr[j];
                        o[j] += dp * yr[i];
                    }
                }
            }
            out
        });
        Ok((g.loss, g.grad, y_bar))
    }

    /// [`SdeGan::critic_chunk`] over the GAN's chunks in parallel, summed in chunk order.
    pub fn critic_gradient(
        &self,
        critic: &[f64],
        y: &[f64],
        weight: f64,
        data_grad: bool,
    ) -> Result<CriticPass> {
        let batch = self.check_paths(y)?;
        let per = self.times.len() * self.channels;
        let parts = self
            .chunks(batch)
            .par_iter()
            .map(|&(s, len)| {
                self.critic_chunk(critic, &y[s * per..(s + len) * per], weight, data_grad)
            })
            .collect::<Result<Vec<_>>>()?;
        let mut score = 0.0;
        let mut grad = vec![0.0; critic.len()];
        let mut y_bar = data_grad.then(|| Vec::with_capacity(y.len()));
        for (sc, g, yb) in parts {
            score += sc;
            grad.iter_mut().zip(&g).for_each(|(a, b)| *a += b);
            if let (Some(all), Some(yb)) = (y_bar.as_mut(), yb) {
                all.extend(yb);
            }
        }
        Ok((score, grad, y_bar))
    }

    /// The gradient penalty `λ·mean_b (‖∇_Y D(Ŷ_b)‖ − 1)²` at scaled paths `yhat` and its
    /// gradient with respect to the critic's parameters.
    ///
    /// The gradient needs `∂²D/∂θ∂Y`. With `u_b = 2λ(‖g_b‖ − 1)/(B‖g_b‖)·g_b`, `g = ∇_Y D`,
    /// held fixed, the penalty's θ-gradient is `∇_θ (g·u)`, and `g·u = Σ_b D_Y D_b[u_b]` is the
    /// critic's derivative along `u`: computed exactly by forward mode through the critic's CDE
    /// and reverse mode on top ([`revode_cde::NcdeClassifier::tangent_gradient`]).
    pub fn penalty_gradient(&self, critic: &[f64], yhat: &[f64]) -> Result<(f64, Vec<f64>)> {
        let lambda = self.config.gradient_penalty;
        let batch = self.check_paths(yhat)?;
        let per = self.times.len() * self.channels;
        let (_, _, g) = self.critic_gradient(critic, yhat, 1.0, true)?;
        let g = g.unwrap_or_default();
        let mut u = vec![0.0; yhat.len()];
        let mut penalty = 0.0;
        for b in 0..batch {
            let gb = &g[b * per..(b + 1) * per];
            let norm = gb.iter().map(|v| v * v).sum::<f64>().sqrt();
            penalty += lambda * (norm - 1.0).powi(2) / batch as f64;
            if norm > 0.0 {
                let c = 2.0 * lambda * (norm - 1.0) / (batch as f64 * norm);
                for (uk, gk) in u[b * per..(b + 1) * per].iter_mut().zip(gb) {
                    *uk = c * gk;
                }
            }
        }
        // ∇_θ (g·u) per chunk in parallel, summed in chunk order.
        let parts = self
            .chunks(batch)
            .par_iter()
            .map(|&(s, len)| {
                let span = s * per..(s + len) * per;
                let (y, u) = (&yhat[span.clone()], &u[span]);
                self.critic_model().tangent_gradient(
                    critic,
                    &self.critic_data(y, None),
                    &self.critic_data(y, Some(u)).values,
                    &Self::critic_path_options(),
                    &self.critic_opts(),
                    GradientMethod::Direct,
                    &vec![1.0; len],
                )
            })
            .collect::<Result<Vec<_>>>()?;
        let mut grad = vec![0.0; critic.len()];
        for part in parts {
            grad.iter_mut().zip(&part.grad).for_each(|(a, b)| *a += b);
        }
        Ok((penalty, grad))
    }
}
