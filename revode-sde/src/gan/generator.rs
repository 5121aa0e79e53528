//! The generator: `x0 = ζ(V)`, `dx = μ(t, x) dt + σ(t, x) ∘ dW` (tanh-bounded, diagonal
//! noise), `Y(t_k) = A x(t_k) + a`; generated paths and the reversible gradient of a loss of
//! them, the SDE reconstructed backwards on its regenerated Brownian path.

use super::{mlp_spec, SdeGan};
use crate::{BrownianPath, Calculus, Diagonal, SdeMap, SdeTerm};
use ndarray::{Array2, Array3};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};
use rayon::prelude::*;
use revode_cde::TimeSeries;
use revode_core::linear::Linear;
use revode_core::{
    gradient, solve, Error, GradientMethod, Mlp, Result, ReversibleHeun, Rk, SolveOptions, Tableau,
    VectorField,
};

/// An MLP with a tanh on its output, `tanh(MLP(t, y))` (bounded drift and diffusion, as in
/// Kidger et al.'s generator). The cache holds the MLP's cache and the tanh.
#[derive(Clone, Debug)]
pub struct Bounded {
    /// The network.
    pub mlp: Mlp<f64>,
}

thread_local! {
    /// The cotangent behind the tanh, reused across pullbacks (no allocation per stage).
    static INNER_COT: std::cell::RefCell<Vec<f64>> = const { std::cell::RefCell::new(Vec::new()) };
}

impl VectorField for Bounded {
    type Scalar = f64;
    fn dim(&self) -> usize {
        self.mlp.dim()
    }
    fn params(&self) -> &[f64] {
        self.mlp.params()
    }
    fn params_mut(&mut self) -> &mut [f64] {
        self.mlp.params_mut()
    }
    fn eval(&self, t: f64, y: &[f64], out: &mut [f64]) {
        self.mlp.eval(t, y, out);
        out.iter_mut().for_each(|v| *v = v.tanh());
    }
    fn vjp(&self, t: f64, y: &[f64], cot: &[f64], s: f64, yb: &mut [f64], pb: &mut [f64]) {
        revode_core::field::vjp_through_cache(self, t, y, cot, s, yb, pb);
    }
    fn cache_len(&self) -> usize {
        self.mlp.cache_len() + self.mlp.dim()
    }
    fn eval_cached(&self, t: f64, y: &[f64], out: &mut [f64], cache: &mut [f64]) {
        let (inner, outs) = cache.split_at_mut(self.mlp.cache_len());
        self.mlp.eval_cached(t, y, out, inner);
        for (o, c) in out.iter_mut().zip(outs.iter_mut()) {
            *c = o.tanh();
            *o = *c;
        }
    }
    fn vjp_cached(
        &self,
        t: f64,
        y: &[f64],
        cache: &[f64],
        cot: &[f64],
        s: f64,
        yb: &mut [f64],
        pb: &mut [f64],
    ) {
        let (inner, outs) = cache.split_at(self.mlp.cache_len());
        INNER_COT.with(|buf| {
            let mut inner_cot = buf.borrow_mut();
            inner_cot.clear();
            inner_cot.extend(cot.iter().zip(outs).map(|(c, o)| c * (1.0 - o * o)));
            self.mlp.vjp_cached(t, y, inner, &inner_cot, s, yb, pb);
        });
    }
}

/// The generator of one chunk: the SDE's step map, ζ, its input V and the initial state.
struct Parts {
    map: SdeMap<Bounded, Diagonal<Bounded>>,
    zeta: Mlp<f64>,
    v: Vec<f64>,
    x0: Vec<f64>,
}

/// The noise seed of chunk `i` (chunk 0 keeps `seed`).
pub(crate) fn chunk_seed(seed: u64, i: usize) -> u64 {
    seed ^ (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

fn normals(n: usize, seed: u64) -> Vec<f64> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..n).map(|_| StandardNormal.sample(&mut rng)).collect()
}

/// What [`SdeGan::generator_gradient`] returns.
#[derive(Clone, Debug)]
pub struct GeneratorGradient {
    /// The loss of the generated batch.
    pub loss: f64,
    /// ∂L/∂θ_generator.
    pub grad: Vec<f64>,
    /// The generated batch (scaled units, `batch × times × C`).
    pub paths: Vec<f64>,
    /// Peak stored states of the SDE's gradient (reversible: constant in the steps).
    pub stored_states: usize,
}

/// A loss of chunk `i`'s generated paths: `loss(i, paths, paths_bar) → L` writes ∂L/∂paths.
pub type PathLoss<'a> = dyn Fn(usize, &[f64], &mut [f64]) -> Result<f64> + Sync + 'a;

impl SdeGan {
    /// Fixed steps, without the per-solve stability check (nothing in training reads its
    /// warnings, and on the critic's short solves it would cost a third of the work).
    pub(crate) fn opts(&self) -> SolveOptions {
        let dt = self.times[1] - self.times[0];
        SolveOptions {
            stability_check_dim: 0,
            stability_krylov: 0,
            ..SolveOptions::fixed(dt / self.config.steps_per_interval as f64)
        }
    }

    /// `(start, len)` of each chunk of a batch of `batch` paths.
    pub(crate) fn chunks(&self, batch: usize) -> Vec<(usize, usize)> {
        let c = self.config.chunks.clamp(1, batch.max(1));
        (0..c)
            .map(|i| (i * batch / c, (i + 1) * batch / c - i * batch / c))
            .collect()
    }

    fn readout(&self) -> Result<Linear> {
        Linear::new(self.config.hidden, self.channels)
    }

    /// The SDE for `batch` paths on the Brownian path of `seed`, ζ, its input V and x0.
    fn parts(&self, gen: &[f64], batch: usize, seed: u64) -> Result<Parts> {
        let (h, w) = (self.config.hidden, self.config.width);
        let [nz, nm, ns, _] = self.generator_blocks();
        let zeta = Mlp::from_spec(mlp_spec(h, w, false), batch)?.with_params(&gen[..nz])?;
        let field = |r: std::ops::Range<usize>| -> Result<Bounded> {
            Ok(Bounded {
                mlp: Mlp::from_spec(mlp_spec(h, w, true), batch)?.with_params(&gen[r])?,
            })
        };
        let drift = field(nz..nz + nm)?;
        let diffusion = field(nz + nm..nz + nm + ns)?;
        let v = normals(batch * h, seed);
        let mut x0 = vec![0.0; batch * h];
        zeta.eval(0.0, &v, &mut x0);
        let path = BrownianPath::new(
            0.0,
            self.config.horizon,
            batch,
            h,
            seed ^ 0xB5AD_4ECE_DA1C_E2A9,
        )?;
        let term = SdeTerm::new(drift, Diagonal(diffusion), path, Calculus::Stratonovich)?;
        Ok(Parts {
            map: Rk::new(term, Tableau::euler()),
            zeta,
            v,
            x0,
        })
    }

    fn readout_params<'a>(&self, gen: &'a [f64]) -> &'a [f64] {
        let [nz, nm, ns, nr] = self.generator_blocks();
        &gen[nz + nm + ns..nz + nm + ns + nr]
    }

    /// Writes `Y(t_k)` of the states `xs` (one `batch × hidden` state per time) into `y`
    /// (`batch × times × C`).
    fn read_paths(&self, gen: &[f64], xs: &[Vec<f64>], y: &mut [f64]) -> Result<()> {
        let (n, c) = (self.times.len(), self.channels);
        let batch = y.len() / (n * c);
        let mut col = vec![0.0; batch * c];
        for (k, x) in xs.iter().enumerate() {
            self.readout()?
                .forward(self.readout_params(gen), x, &mut col)?;
            for b in 0..batch {
                y[(b * n + k) * c..(b * n + k + 1) * c].copy_from_slice(&col[b * c..(b + 1) * c]);
            }
        }
        Ok(())
    }

    fn check_generator(&self, gen: &[f64]) -> Result<()> {
        if gen.len() != self.generator_len() {
            return Err(Error::ShapeMismatch {
                what: "generator parameters".into(),
                expected: self.generator_len(),
                found: gen.len(),
            });
        }
        Ok(())
    }

    /// `batch` generated paths in scaled units (`batch × times × C`) from noise `seed`, chunk
    /// by chunk in parallel (chunk `i` draws from `chunk_seed(seed, i)`).
    pub fn generate_scaled(&self, gen: &[f64], batch: usize, seed: u64) -> Result<Vec<f64>> {
        self.check_generator(gen)?;
        let parts = self
            .chunks(batch)
            .par_iter()
            .enumerate()
            .map(|(i, &(_, len))| {
                let parts = self.parts(gen, len, chunk_seed(seed, i))?;
                let scheme = ReversibleHeun::new(parts.map.into_term())?;
                let sol = solve(&scheme, &parts.x0, &self.times, &self.opts())?;
                let mut y = vec![0.0; len * self.times.len() * self.channels];
                self.read_paths(gen, &sol.ys, &mut y)?;
                Ok(y)
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(parts.concat())
    }

    /// `paths` generated sample paths in the data's units, as a [`TimeSeries`] on the data's
    /// grid; `params` is `[generator | critic]` or the generator's block alone.
    pub fn sample(&self, params: &[f64], paths: usize, seed: u64) -> Result<TimeSeries> {
        let gen = &params[..self.generator_len().min(params.len())];
        let (n, c) = (self.times.len(), self.channels);
        let mut values = Vec::with_capacity(paths * n * c);
        let chunk = 2048;
        let mut done = 0;
        while done < paths {
            let b = chunk.min(paths - done);
            let y = self.generate_scaled(gen, b, seed.wrapping_add(done as u64))?;
            let kc = n * c;
            values.extend(
                y.iter()
                    .enumerate()
                    .map(|(i, v)| v * self.scale[i % c] + self.shift[i % kc]),
            );
            done += b;
        }
        // TimeSeries reads NaN as missing: a generator that diverged must not pass as data.
        if let Some(i) = values.iter().position(|v| !v.is_finite()) {
            return Err(Error::NonFinite {
                what: "generated paths".into(),
                index: i,
            });
        }
        let values = Array3::from_shape_vec((paths, n, c), values)
            .map_err(|e| Error::config("gan sample", e.to_string()))?;
        let grid = Array2::from_shape_vec((1, n), self.data_times.clone())
            .map_err(|e| Error::config("gan sample", e.to_string()))?;
        TimeSeries::new(values, grid, None, Vec::new())
    }

    /// The loss `Σ_chunks loss(Y_chunk)` of `batch` generated paths from noise `seed`, and its
    /// gradient with respect to the generator's parameters `gen` (reversible: constant memory
    /// in the number of steps). Chunks run in parallel and are summed in chunk order.
    pub fn generator_gradient(
        &self,
        gen: &[f64],
        batch: usize,
        seed: u64,
        loss: &PathLoss,
    ) -> Result<GeneratorGradient> {
        self.check_generator(gen)?;
        let parts = self
            .chunks(batch)
            .par_iter()
            .enumerate()
            .map(|(i, &(_, len))| self.chunk_gradient(gen, len, i, chunk_seed(seed, i), loss))
            .collect::<Result<Vec<_>>>()?;
        let mut out = GeneratorGradient {
            loss: 0.0,
            grad: vec![0.0; gen.len()],
            paths: Vec::with_capacity(batch * self.times.len() * self.channels),
            stored_states: 0,
        };
        for p in parts {
            out.loss += p.loss;
            out.grad.iter_mut().zip(&p.grad).for_each(|(a, b)| *a += b);
            out.paths.extend(p.paths);
            out.stored_states = out.stored_states.max(p.stored_states);
        }
        Ok(out)
    }

    fn chunk_gradient(
        &self,
        gen: &[f64],
        b: usize,
        chunk: usize,
        seed: u64,
        loss: &PathLoss,
    ) -> Result<GeneratorGradient> {
        let (n, c) = (self.times.len(), self.channels);
        let Parts { map, zeta, v, x0 } = self.parts(gen, b, seed)?;
        let scheme = ReversibleHeun::new(map.into_term())?;
        let head = self.readout()?;
        let r = self.readout_params(gen);
        let mut read_grad = vec![0.0; r.len()];
        let mut paths = vec![0.0; b * n * c];
        let mut failure = None;
        let g = gradient(
            &scheme,
            &x0,
            &self.times,
            &self.opts(),
            &GradientMethod::Reversible.into(),
            |xs, cots| {
                // The readout's gradient is this loss call's alone (a method may call it twice).
                read_grad.iter_mut().for_each(|v| *v = 0.0);
                let mut pull = || -> Result<f64> {
                    self.read_paths(gen, xs, &mut paths)?;
                    let mut y_bar = vec![0.0; paths.len()];
                    let l = loss(chunk, &paths, &mut y_bar)?;
                    let mut col = vec![0.0; b * c];
                    for (k, (x, cot)) in xs.iter().zip(cots.iter_mut()).enumerate() {
                        for j in 0..b {
                            col[j * c..(j + 1) * c]
                                .copy_from_slice(&y_bar[(j * n + k) * c..(j * n + k + 1) * c]);
                        }
                        cot.iter_mut().for_each(|v| *v = 0.0);
                        head.pullback(r, x, &col, Some(cot), &mut read_grad)?;
                    }
                    Ok(l)
                };
                pull().unwrap_or_else(|e| {
                    failure = Some(e);
                    f64::NAN
                })
            },
        );
        if let Some(e) = failure {
            return Err(e);
        }
        let g = g?;
        let [nz, nm, ns, _] = self.generator_blocks();
        let mut grad = vec![0.0; gen.len()];
        let mut v_bar = vec![0.0; v.len()];
        zeta.vjp(0.0, &v, &g.y0, 1.0, &mut v_bar, &mut grad[..nz]);
        grad[nz..nz + nm + ns].copy_from_slice(&g.params[..nm + ns]);
        grad[nz + nm + ns..].copy_from_slice(&read_grad);
        Ok(GeneratorGradient {
            loss: g.loss,
            grad,
            paths,
            stored_states: g.stats.peak_stored_states,
        })
    }
}
