//! Fitting a neural ODE to observed trajectories: the model, the solver and the gradient
//! method in one value, [`TrajectoryFit`].
//!
//! The model is `y' = f_θ(t, y)` with `f_θ` an MLP ([`MlpSpec`]) applied to each of `batch`
//! rows of the state (`batch × dim` entries). For observation times `τ_0 < … < τ_K` and a loss
//! `L(τ, ŷ(τ_0), …, ŷ(τ_K))` of the solver's outputs, [`TrajectoryFit::gradient`] returns `L`
//! and `dL/dθ` (and `dL/dy0`) of the discrete solve, by whichever [`GradientMethod`] the
//! configuration names: the method is a field, not a different loop. [`TrajectoryFit::objective`]
//! is the loss-and-gradient closure of `train::Trainer::run`.
//!
//! ```
//! use revode_core::fit::{mse_after_first, Solver, TrajectoryFit};
//! use revode_core::prelude::*;
//! use revode_core::MlpSpec;
//! let times: Vec<f64> = (0..=10).map(|k| 0.2 * k as f64).collect();
//! let data: Vec<Vec<f64>> = times.iter().map(|&t| vec![t.cos(), -t.sin()]).collect();
//! let fit = TrajectoryFit::new(
//!     MlpSpec::new(2, 8),
//!     Solver::Reversible { tableau: Tableau::midpoint(), lambda: 0.999 },
//!     SolveOptions::fixed(0.05),
//! );
//! let params = fit.spec.init_uniform(0);
//! let g = fit.gradient(&params, &data[0], &times, mse_after_first(data.clone()))?;
//! assert_eq!(g.params.len(), params.len());
//! assert_eq!(g.stats.peak_stored_states, 1); // the reversible gradient stores one state
//! # Ok::<(), revode_core::Error>(())
//! ```

use crate::gradient::{gradient_observed, Gradient};
use crate::{
    Error, GradientMethod, GradientOptions, Mlp, MlpSpec, OdeTerm, Plain, Result, Reversible, Rk,
    Scheme, SolveOptions, Tableau,
};
use serde::{Deserialize, Serialize};

/// The step map of a fitted model: an explicit Runge–Kutta step of the MLP field.
pub type FitMap = Rk<OdeTerm<Mlp<f64>>>;

/// What [`TrajectoryFit::gradient`] returns: the loss, `dL/dy0`, `dL/dθ`, the outputs, the
/// accepted steps and the computation's statistics.
pub type FitGradient = Gradient<Vec<f64>, Vec<f64>>;

/// The scheme that integrates the model.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Solver {
    /// The reversible coupling of the tableau with parameter λ ∈ (0, 1] ([`Reversible`]).
    Reversible {
        /// Base method.
        tableau: Tableau,
        /// Coupling parameter.
        lambda: f64,
    },
    /// The tableau on its own ([`Plain`]); not reversible.
    Plain {
        /// Base method.
        tableau: Tableau,
    },
}

impl Solver {
    /// The gradient method that suits the solver: reversible for [`Solver::Reversible`],
    /// checkpointing with the default number of snapshots for [`Solver::Plain`].
    pub fn natural_method(&self) -> GradientMethod {
        match self {
            Solver::Reversible { .. } => GradientMethod::Reversible,
            Solver::Plain { .. } => GradientMethod::Checkpointed { snapshots: None },
        }
    }
}

/// A neural-ODE trajectory fit: MLP field, solver, gradient method and step control.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrajectoryFit {
    /// Shape of the MLP field (its flat parameter layout is the parameter vector θ).
    pub spec: MlpSpec,
    /// Rows of the state: the field is applied to each of `batch` rows of `dim` entries.
    pub batch: usize,
    /// The scheme.
    pub solver: Solver,
    /// Gradient method, drift check, and whether the loss sees every accepted step
    /// ([`GradientOptions::observe_steps`]) instead of only the observation times.
    pub grad: GradientOptions,
    /// Fixed or adaptive steps.
    pub solve: SolveOptions,
}

impl TrajectoryFit {
    /// A fit of one trajectory (`batch` 1) with the solver's [`Solver::natural_method`].
    pub fn new(spec: MlpSpec, solver: Solver, solve: SolveOptions) -> Self {
        TrajectoryFit {
            spec,
            batch: 1,
            grad: solver.natural_method().into(),
            solver,
            solve,
        }
    }
    /// The same fit with `batch` rows.
    pub fn with_batch(mut self, batch: usize) -> Self {
        self.batch = batch;
        self
    }
    /// The same fit with another gradient method (keeping the drift check and `observe_steps`).
    pub fn with_method(mut self, method: GradientMethod) -> Self {
        self.grad.method = method;
        self
    }
    /// Number of parameters, `spec.num_params()`.
    pub fn num_params(&self) -> usize {
        self.spec.num_params()
    }

    fn field(&self, params: &[f64]) -> Result<OdeTerm<Mlp<f64>>> {
        let mlp = Mlp::from_spec(self.spec.clone(), self.batch)?.with_params(params)?;
        Ok(OdeTerm::new(mlp))
    }

    /// The loss of the outputs at `times` from `y0` under parameters `params`, and its
    /// gradient. `loss(output times, outputs, cotangents)` returns `L` and writes `∂L/∂ŷ` into
    /// the zeroed cotangents; an error it returns is this function's error. Typed errors for
    /// a parameter vector of the wrong length ([`Error::ShapeMismatch`]), a `y0` that is not
    /// `batch × dim` long ([`Error::ShapeMismatch`]), fewer than two times ([`Error::Empty`]),
    /// times not strictly increasing ([`Error::UnsortedTimes`], [`Error::InvalidInterval`]),
    /// and a reversible method with a plain solver ([`Error::Unsupported`]).
    pub fn gradient<L>(
        &self,
        params: &[f64],
        y0: &[f64],
        times: &[f64],
        mut loss: L,
    ) -> Result<FitGradient>
    where
        L: FnMut(&[f64], &[Vec<f64>], &mut [Vec<f64>]) -> Result<f64>,
    {
        let term = self.field(params)?;
        let mut failure = None;
        let observed = |t: &[f64], ys: &[Vec<f64>], cots: &mut [Vec<f64>]| match loss(t, ys, cots) {
            Ok(value) => value,
            Err(e) => {
                failure.get_or_insert(e);
                f64::NAN
            }
        };
        let y0 = y0.to_vec();
        let g = match &self.solver {
            Solver::Reversible { tableau, lambda } => {
                let scheme = Reversible::new(Rk::new(term, tableau.clone()), *lambda)?;
                self.observed(&scheme, &y0, times, observed)
            }
            Solver::Plain { tableau } => {
                let scheme = Plain::new(Rk::new(term, tableau.clone()));
                self.observed(&scheme, &y0, times, observed)
            }
        };
        match failure {
            Some(e) => Err(e),
            None => g,
        }
    }

    fn observed<S, L>(
        &self,
        scheme: &S,
        y0: &Vec<f64>,
        times: &[f64],
        loss: L,
    ) -> Result<FitGradient>
    where
        S: Scheme<Map = FitMap>,
        L: FnMut(&[f64], &[Vec<f64>], &mut [Vec<f64>]) -> f64,
    {
        gradient_observed(scheme, y0, times, &self.solve, &self.grad, loss)
    }

    /// The model's outputs at `times` from `y0` (the same forward pass as [`Self::gradient`]),
    /// with the same typed errors.
    pub fn predict(&self, params: &[f64], y0: &[f64], times: &[f64]) -> Result<Vec<Vec<f64>>> {
        let term = self.field(params)?;
        let y0 = y0.to_vec();
        let sol = match &self.solver {
            Solver::Reversible { tableau, lambda } => {
                let scheme = Reversible::new(Rk::new(term, tableau.clone()), *lambda)?;
                crate::solve(&scheme, &y0, times, &self.solve)?
            }
            Solver::Plain { tableau } => crate::solve(
                &Plain::new(Rk::new(term, tableau.clone())),
                &y0,
                times,
                &self.solve,
            )?,
        };
        Ok(sol.ys)
    }

    /// The loss-and-gradient closure of `train::Trainer::run` for a fixed `y0`,
    /// `times` and `loss`: it writes `dL/dθ` into the trainer's buffer and returns `L`.
    pub fn objective<'a, L>(
        &'a self,
        y0: &'a [f64],
        times: &'a [f64],
        mut loss: L,
    ) -> impl FnMut(usize, &[f64], &mut [f64]) -> Result<f64> + 'a
    where
        L: FnMut(&[f64], &[Vec<f64>], &mut [Vec<f64>]) -> Result<f64> + 'a,
    {
        move |_, params, grad| {
            let g = self.gradient(params, y0, times, &mut loss)?;
            grad.copy_from_slice(&g.params);
            Ok(g.loss)
        }
    }
}

/// A loss of a fit's outputs: `loss(output times, outputs, cotangents)` returns `L` and writes
/// `∂L/∂ŷ` into the zeroed cotangents (one per output). Every such closure is one.
pub trait TrajectoryLoss: Fn(&[f64], &[Vec<f64>], &mut [Vec<f64>]) -> Result<f64> {}

impl<F: Fn(&[f64], &[Vec<f64>], &mut [Vec<f64>]) -> Result<f64>> TrajectoryLoss for F {}

/// The mean squared error against `target` at every observation after the first,
/// `L = (1/n) Σ_{k≥1} Σ_i (ŷ_{k,i} − y_{k,i})²` over the n finite targets (a NaN target is a
/// missing observation), with `∂L/∂ŷ_{k,i} = 2(ŷ_{k,i} − y_{k,i})/n` there and 0 elsewhere:
/// [`crate::loss::mse`] over the concatenated observations. The first observation is the
/// initial state, which the fit does not change. A typed error when the outputs are not as
/// many, or not as long, as the targets.
pub fn mse_after_first(target: Vec<Vec<f64>>) -> impl TrajectoryLoss + Send + Sync {
    let flat: Vec<f64> = target.iter().skip(1).flatten().copied().collect();
    move |_, ys, cots| {
        if ys.len() != target.len() {
            return Err(Error::ShapeMismatch {
                what: "observations vs targets".into(),
                expected: target.len(),
                found: ys.len(),
            });
        }
        if let Some(k) = (0..ys.len()).find(|&k| ys[k].len() != target[k].len()) {
            return Err(Error::ShapeMismatch {
                what: format!("observation {k} vs its target"),
                expected: target[k].len(),
                found: ys[k].len(),
            });
        }
        let pred: Vec<f64> = ys.iter().skip(1).flatten().copied().collect();
        let mut cot = vec![0.0; pred.len()];
        let value = crate::loss::mse(&pred, &flat, &mut cot)?;
        let mut rest = cot.as_slice();
        for c in cots.iter_mut().skip(1) {
            let (head, tail) = rest.split_at(c.len());
            c.copy_from_slice(head);
            rest = tail;
        }
        Ok(value)
    }
}
