//! Neural CDE classification: z0 = ζ_θ(x(t0)), dz = f_θ(z) dX over the path, logits = W z(T) + b,
//! softmax cross-entropy. Gradients go through revode-core's gradient methods unchanged.
//!
//! The solve is the base tableau's reversible coupling (`lambda: Some(λ)`) or the plain base
//! method itself (`lambda: None`: the non-reversible baseline, with direct or checkpointed
//! gradients).

use crate::{CdeField, CdeMlp, CdeTerm, NeuralCdeTerm, Path};
use dfdx::prelude::AutoDevice;
use revode_core::linear::Linear;
use revode_core::loss::{argmax, cross_entropy};
use revode_core::mlp::MlpSpec;
use revode_core::neural::{Batch, NeuralMlp};
use revode_core::scheme::StateOf;
use revode_core::step_map::StepMap;
use revode_core::{
    gradient, Error, GradientMethod, Plain, Result, Reversible, Rk, Scheme, SolveOptions, State,
    Tableau,
};

/// Which implementation evaluates the CDE field (same parameters, same numbers to round-off).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum FieldBackend {
    /// [`CdeMlp`]: revode-core's native [`revode_core::Mlp`], one series at a time on the host
    /// (fast for small widths).
    #[default]
    Native,
    /// [`NeuralCdeTerm`] on dfdx's default device (CPU; CUDA with the `cuda` feature): the
    /// state is a device tensor; any hidden size, width, depth and channel count.
    Dfdx,
}

/// What a solve-and-pullback returns to the classifier: loss, `∂L/∂z0`, `∂L/∂θ_field` (host,
/// flat), peak stored states and accepted steps.
type FieldGradient = (f64, Vec<f64>, Vec<f64>, usize, usize);

/// A loss of the model's outputs: `head(o, ō) → L` writes `ō = ∂L/∂o`.
pub type OutputLoss<'a> = dyn FnMut(&[f64], &mut [f64]) -> Result<f64> + 'a;

/// The loss of the final hidden state: writes `∂L/∂z(T)` into the buffer, returns `L`.
type FinalLoss<'a> = dyn FnMut(&[f64], &mut [f64]) -> f64 + 'a;

/// The field's network, the same [`MlpSpec`] on both backends.
fn dfdx_spec(cls: &NcdeClassifier) -> MlpSpec {
    CdeMlp::spec(cls.hidden, cls.channels, cls.width, cls.depth, false)
}

/// The base step map `Rk(f_θ, tableau)` with the dfdx field.
fn dfdx_map(
    cls: &NcdeClassifier,
    field: &[f64],
    path: &Path,
    dev: &AutoDevice,
) -> Result<Rk<NeuralCdeTerm<f64, AutoDevice>>> {
    let model = NeuralMlp::from_flat(dev, dfdx_spec(cls), field)?;
    Ok(Rk::new(
        NeuralCdeTerm::new(model, path.clone(), dev)?,
        cls.tableau.clone(),
    ))
}

fn dfdx_final(
    cls: &NcdeClassifier,
    field: &[f64],
    path: &Path,
    z0: &[f64],
    opts: &SolveOptions,
) -> Result<Vec<f64>> {
    let dev = AutoDevice::default();
    let map = dfdx_map(cls, field, path, &dev)?;
    let z0 = Batch::<f64, AutoDevice>::from_rows(&dev, path.batch(), cls.hidden, z0)?;
    Ok(cls
        .final_state(map, &z0, &NcdeClassifier::times(path), opts)?
        .to_host())
}

fn dfdx_gradient(
    cls: &NcdeClassifier,
    field: &[f64],
    path: &Path,
    z0: &[f64],
    opts: &SolveOptions,
    method: GradientMethod,
    loss: &mut FinalLoss,
) -> Result<FieldGradient> {
    let dev = AutoDevice::default();
    let map = dfdx_map(cls, field, path, &dev)?;
    let spec = dfdx_spec(cls);
    let z0 = Batch::<f64, AutoDevice>::from_rows(&dev, path.batch(), cls.hidden, z0)?;
    let times = NcdeClassifier::times(path);
    cls.final_gradient(map, &z0, &times, opts, method, loss, |g| {
        g.model.to_flat(&spec)
    })
}

/// Solves with `scheme` and returns `z(T)`, the state at the last time.
fn solve_final<S: Scheme>(
    scheme: &S,
    z0: &StateOf<S::Map>,
    times: &[f64],
    opts: &SolveOptions,
) -> Result<StateOf<S::Map>> {
    let mut sol = revode_core::solve(scheme, z0, times, opts)?;
    let last = sol.ys.len() - 1;
    Ok(sol.ys.swap_remove(last))
}

/// Pulls `loss(z(T))` back through the solve with `scheme` and `method`: the loss, `∂L/∂z0`
/// and `∂L/∂θ_field` (flattened by `flat`) on the host, peak stored states and steps.
fn gradient_final<S: Scheme>(
    scheme: &S,
    z0: &StateOf<S::Map>,
    times: &[f64],
    opts: &SolveOptions,
    method: GradientMethod,
    loss: &mut FinalLoss,
    flat: impl FnOnce(<S::Map as StepMap>::ParamGrad) -> Vec<f64>,
) -> Result<FieldGradient> {
    let g = gradient(scheme, z0, times, opts, &method.into(), |ys, cots| {
        let last = ys.len() - 1;
        let mut cot = vec![0.0; ys[last].len()];
        let l = loss(&ys[last].to_f64_vec(), &mut cot);
        cots[last].set_from_f64(&cot);
        l
    })?;
    Ok((
        g.loss,
        g.y0.to_f64_vec(),
        flat(g.params),
        g.stats.peak_stored_states,
        g.steps,
    ))
}

/// The classifier's shape. Parameters (flat): ζ weight (hidden × channels) and bias, then the CDE
/// field's, then the readout weight (classes × hidden) and bias.
#[derive(Clone, Debug)]
pub struct NcdeClassifier {
    /// Hidden state size.
    pub hidden: usize,
    /// Path channels.
    pub channels: usize,
    /// Number of classes.
    pub classes: usize,
    /// Field width.
    pub width: usize,
    /// Field depth.
    pub depth: usize,
    /// Base method (explicit Runge–Kutta tableau).
    pub tableau: Tableau,
    /// `Some(λ)`: the reversible coupling of the base method, `y ← λy + (1−λ)z + Ψ(z)`,
    /// `z ← z − Ψ(y)` with λ ∈ (0, 1] (reversible gradients). `None`: the plain base method
    /// `y ← y + Ψ(y)` (the non-reversible baseline: direct or checkpointed gradients; the
    /// reversible methods are an [`Error::Unsupported`]).
    pub lambda: Option<f64>,
    /// Which implementation evaluates the field.
    pub backend: FieldBackend,
}

/// What [`NcdeClassifier::head_gradient`] returns.
#[derive(Clone, Debug)]
pub struct ModelGradient {
    /// The head's loss.
    pub loss: f64,
    /// ∂L/∂θ (flat, the model's layout).
    pub grad: Vec<f64>,
    /// ∂L/∂v for the path's data values, when asked for.
    pub data: Option<Vec<f64>>,
    /// Peak stored states reported by the gradient method.
    pub stored_states: usize,
    /// Accepted solver steps.
    pub steps: usize,
}

/// Loss, accuracy and gradient of one batch.
#[derive(Clone, Debug)]
pub struct BatchResult {
    /// Mean cross-entropy.
    pub loss: f64,
    /// Fraction classified correctly.
    pub accuracy: f64,
    /// dL/dθ (flat).
    pub grad: Vec<f64>,
    /// Peak stored states reported by the gradient method.
    pub stored_states: usize,
    /// Accepted solver steps.
    pub steps: usize,
}

impl NcdeClassifier {
    fn field_len(&self) -> Result<usize> {
        Ok(
            CdeMlp::new(self.hidden, self.channels, self.width, self.depth, false, 0)?
                .params()
                .len(),
        )
    }
    /// Checks the sizes: positive.
    pub fn validate(&self) -> Result<()> {
        if self.classes == 0 {
            return Err(Error::config("classifier", "classes must be positive"));
        }
        self.field_len()?;
        Ok(())
    }
    /// Number of parameters.
    pub fn num_params(&self) -> Result<usize> {
        Ok(self.hidden * self.channels
            + self.hidden
            + self.field_len()?
            + self.classes * self.hidden
            + self.classes)
    }
    /// Initial parameters from `seed` (uniform ±1/√fan_in).
    pub fn init(&self, seed: u64) -> Result<Vec<f64>> {
        let mut p = Vec::with_capacity(self.num_params()?);
        let mut rng = revode_core::random::SplitMix64::new(seed ^ 0xA076_1D64_78BD_642F);
        let mut uniform = |bound: f64| rng.symmetric(bound);
        let b = 1.0 / (self.channels as f64).sqrt();
        p.extend((0..self.hidden * (self.channels + 1)).map(|_| uniform(b)));
        p.extend(
            CdeMlp::new(
                self.hidden,
                self.channels,
                self.width,
                self.depth,
                false,
                seed,
            )?
            .params(),
        );
        let b = 1.0 / (self.hidden as f64).sqrt();
        p.extend((0..self.classes * (self.hidden + 1)).map(|_| uniform(b)));
        Ok(p)
    }

    pub(crate) fn split<'a>(&self, p: &'a [f64]) -> Result<(&'a [f64], &'a [f64], &'a [f64])> {
        let n = self.num_params()?;
        if p.len() != n {
            return Err(Error::ShapeMismatch {
                what: "classifier parameters".into(),
                expected: n,
                found: p.len(),
            });
        }
        let a = self.hidden * (self.channels + 1);
        let f = a + self.field_len()?;
        Ok((&p[..a], &p[a..f], &p[f..]))
    }

    /// The base step map `Rk(f_θ, tableau)` with the native field.
    fn map(&self, field: &[f64], path: &Path, data_gradient: bool) -> Result<Rk<CdeTerm<CdeMlp>>> {
        let f = CdeMlp::new(self.hidden, self.channels, self.width, self.depth, false, 0)?
            .with_params(field)?;
        let mut term = CdeTerm::new(f, path.clone())?;
        if data_gradient {
            term = term.with_data_gradient()?;
        }
        Ok(Rk::new(term, self.tableau.clone()))
    }

    /// `z(T)` from `z0` with the classifier's scheme over `map` (module docs).
    fn final_state<M: StepMap>(
        &self,
        map: M,
        z0: &M::State,
        times: &[f64],
        opts: &SolveOptions,
    ) -> Result<M::State> {
        match self.lambda {
            Some(l) => solve_final(&Reversible::new(map, l)?, z0, times, opts),
            None => solve_final(&Plain::new(map), z0, times, opts),
        }
    }

    /// [`gradient_final`] with the classifier's scheme over `map` (module docs).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn final_gradient<M: StepMap>(
        &self,
        map: M,
        z0: &M::State,
        times: &[f64],
        opts: &SolveOptions,
        method: GradientMethod,
        loss: &mut FinalLoss,
        flat: impl FnOnce(M::ParamGrad) -> Vec<f64>,
    ) -> Result<FieldGradient> {
        match self.lambda {
            Some(l) => {
                let scheme = Reversible::new(map, l)?;
                gradient_final(&scheme, z0, times, opts, method, loss, flat)
            }
            None => gradient_final(&Plain::new(map), z0, times, opts, method, loss, flat),
        }
    }

    /// The initial-condition encoder ζ: channels → hidden.
    pub(crate) fn encoder(&self) -> Result<Linear> {
        Linear::new(self.channels, self.hidden)
    }
    /// The linear readout: hidden → classes.
    pub(crate) fn readout(&self) -> Result<Linear> {
        Linear::new(self.hidden, self.classes)
    }

    /// x(t0) and z0 = ζ(x(t0)) for every series.
    fn initial(&self, zeta: &[f64], path: &Path) -> Result<(Vec<f64>, Vec<f64>)> {
        let mut x0 = vec![0.0; path.batch() * self.channels];
        path.evaluate(path.domain().0, &mut x0)?;
        let mut z0 = vec![0.0; path.batch() * self.hidden];
        self.encoder()?.forward(zeta, &x0, &mut z0)?;
        Ok((x0, z0))
    }

    fn logits(&self, readout: &[f64], z: &[f64]) -> Result<Vec<f64>> {
        let mut out = vec![0.0; z.len() / self.hidden * self.classes];
        self.readout()?.forward(readout, z, &mut out)?;
        Ok(out)
    }

    /// Observation times: the path's knots (steps stop on them).
    pub(crate) fn times(path: &Path) -> Vec<f64> {
        path.knots().to_vec()
    }

    /// The outputs `W z(T) + b` of every series (`batch × classes`, row-major): logits for a
    /// classifier, scores for a critic.
    pub fn outputs(&self, p: &[f64], path: &Path, opts: &SolveOptions) -> Result<Vec<f64>> {
        let (zeta, field, readout) = self.split(p)?;
        let (_, z0) = self.initial(zeta, path)?;
        let z_end = match self.backend {
            FieldBackend::Native => {
                self.final_state(self.map(field, path, false)?, &z0, &Self::times(path), opts)?
            }
            FieldBackend::Dfdx => dfdx_final(self, field, path, &z0, opts)?,
        };
        self.logits(readout, &z_end)
    }

    /// Predicted class of every series.
    pub fn predict(&self, p: &[f64], path: &Path, opts: &SolveOptions) -> Result<Vec<usize>> {
        let logits = self.outputs(p, path, opts)?;
        Ok(logits.chunks(self.classes).map(argmax).collect())
    }

    /// Mean cross-entropy, accuracy and the gradient for one batch with the given method.
    pub fn loss_and_grad(
        &self,
        p: &[f64],
        path: &Path,
        labels: &[usize],
        opts: &SolveOptions,
        method: GradientMethod,
    ) -> Result<BatchResult> {
        if labels.len() != path.batch() {
            return Err(Error::ShapeMismatch {
                what: "labels".into(),
                expected: path.batch(),
                found: labels.len(),
            });
        }
        let mut correct = 0usize;
        let g = self.head_gradient(p, path, opts, method, false, &mut |logits, dlogits| {
            let (loss, pred) = cross_entropy(logits, labels, self.classes, dlogits)?;
            correct = pred.iter().zip(labels).filter(|(p, l)| p == l).count();
            Ok(loss)
        })?;
        Ok(BatchResult {
            loss: g.loss,
            accuracy: correct as f64 / path.batch() as f64,
            grad: g.grad,
            stored_states: g.stored_states,
            steps: g.steps,
        })
    }

    /// Any loss of the outputs: `head(o, ō)` gets the outputs `o = W z(T) + b` (`batch ×
    /// classes`), returns the loss and writes `ō = ∂L/∂o`; the result is `∂L/∂θ` through the
    /// solve with `method`, and with `data_gradient` also `∂L/∂v` for the path's data values
    /// `v` (shaped like [`crate::PathData::values`]; native backend; what an SDE-GAN critic's
    /// generator needs).
    pub fn head_gradient(
        &self,
        p: &[f64],
        path: &Path,
        opts: &SolveOptions,
        method: GradientMethod,
        data_gradient: bool,
        head: &mut OutputLoss,
    ) -> Result<ModelGradient> {
        let (zeta, field, readout) = self.split(p)?;
        let (x0, z0) = self.initial(zeta, path)?;
        let w = self.readout()?;
        let mut readout_grad = vec![0.0; readout.len()];
        // The gradient's loss closure returns a number; a failure inside it is kept here and
        // returned in place of whatever the solver made of the NaN it sees.
        let mut failure = None;
        let result = self.field_gradient(
            field,
            path,
            &z0,
            opts,
            method,
            data_gradient,
            &mut |z, cot| {
                // Some methods call the loss more than once (the automatic interval's retries):
                // the readout's gradient is this call's alone.
                readout_grad.iter_mut().for_each(|v| *v = 0.0);
                let mut head_loss = || -> Result<f64> {
                    let out = self.logits(readout, z)?;
                    let mut d_out = vec![0.0; out.len()];
                    let loss = head(&out, &mut d_out)?;
                    w.pullback(readout, z, &d_out, Some(cot), &mut readout_grad)?;
                    Ok(loss)
                };
                head_loss().unwrap_or_else(|e| {
                    failure = Some(e);
                    f64::NAN
                })
            },
        );
        if let Some(e) = failure {
            return Err(e);
        }
        let (loss, z0_bar, mut field_bar, stored_states, steps) = result?;
        let mut grad = vec![0.0; zeta.len()];
        let mut x0_bar = data_gradient.then(|| vec![0.0; x0.len()]);
        self.encoder()?
            .pullback(zeta, &x0, &z0_bar, x0_bar.as_deref_mut(), &mut grad)?;
        let data = if data_gradient {
            let mut data = field_bar.split_off(self.field_len()?);
            if let Some(x0_bar) = &x0_bar {
                path.evaluate_data_vjp(path.domain().0, x0_bar, &mut data)?;
            }
            Some(data)
        } else {
            None
        };
        grad.extend(&field_bar);
        grad.extend(&readout_grad);
        Ok(ModelGradient {
            loss,
            grad,
            data,
            stored_states,
            steps,
        })
    }

    /// Solves from `z0` and pulls `loss(z(T))` back to `z0` and the field's parameters.
    #[allow(clippy::too_many_arguments)]
    fn field_gradient(
        &self,
        field: &[f64],
        path: &Path,
        z0: &[f64],
        opts: &SolveOptions,
        method: GradientMethod,
        data_gradient: bool,
        loss: &mut FinalLoss,
    ) -> Result<FieldGradient> {
        if self.backend == FieldBackend::Dfdx {
            if data_gradient {
                return Err(Error::Unsupported(
                    "data gradients on the dfdx CDE backend; use the native backend".into(),
                ));
            }
            return dfdx_gradient(self, field, path, z0, opts, method, loss);
        }
        let map = self.map(field, path, data_gradient)?;
        let times = Self::times(path);
        self.final_gradient(map, &z0.to_vec(), &times, opts, method, loss, |p| p)
    }

    /// The scheme's name (for reports): "midpoint" (plain) or "reversible(midpoint, λ=0.999)".
    pub fn scheme_name(&self) -> String {
        match self.lambda {
            Some(l) => format!("reversible({}, λ={l})", self.tableau.name()),
            None => self.tableau.name().to_string(),
        }
    }
}
