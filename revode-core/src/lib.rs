//! # revode-core
//!
//! Algebraically reversible solvers (McCallum & Foster, arXiv 2410.11648) with exact
//! O(1)-memory gradients, and the baselines they are compared with.
//!
//! The library rests on one abstraction: a base step map Ψ ([`StepMap`]) with its pullback.
//! [`Rk`] turns any [`Term`] (vector field × control increment) and any explicit
//! [`Tableau`] into one. A [`Scheme`] carries a state across steps: [`Plain`] runs the base
//! method, [`Reversible`] couples it (METHOD.md §2). [`solve`] is the single integration loop
//! (fixed or adaptive steps); [`gradient`] computes dL/dy0 and dL/dθ with any
//! [`GradientMethod`].
//!
//! ```
//! use revode_core::prelude::*;
//!
//! /// y' = −θ y, with θ a parameter.
//! struct Decay { theta: [f64; 1] }
//! impl VectorField for Decay {
//!     type Scalar = f64;
//!     fn dim(&self) -> usize { 1 }
//!     fn params(&self) -> &[f64] { &self.theta }
//!     fn params_mut(&mut self) -> &mut [f64] { &mut self.theta }
//!     fn eval(&self, _t: f64, y: &[f64], out: &mut [f64]) { out[0] = -self.theta[0] * y[0]; }
//!     fn vjp(&self, _t: f64, y: &[f64], cot: &[f64], s: f64, yb: &mut [f64], pb: &mut [f64]) {
//!         yb[0] -= s * self.theta[0] * cot[0];
//!         pb[0] -= s * y[0] * cot[0];
//!     }
//! }
//!
//! let map = Rk::new(OdeTerm::new(Decay { theta: [0.5] }), Tableau::midpoint());
//! let scheme = Reversible::new(map, 0.999)?;
//! let times = [0.0, 1.0];
//! // L = y(1)²; the loss closure writes ∂L/∂y at each observation time.
//! let g = gradient(&scheme, &vec![1.0], &times, &SolveOptions::fixed(0.01),
//!     &GradientMethod::Reversible.into(), |ys, cots| {
//!         cots[1][0] = 2.0 * ys[1][0];
//!         ys[1][0] * ys[1][0]
//!     })?;
//! // Exact: L = e^{−2θ}, dL/dθ = −2e^{−2θ} = −2e^{−1}.
//! assert!((g.params[0] + 2.0 * (-1.0f64).exp()).abs() < 1e-4);
//! assert!(g.stats.reconstruction_error.unwrap() < 1e-13);
//! # Ok::<(), revode_core::Error>(())
//! ```
#![deny(missing_docs)]

pub mod activation;
pub mod adjoint;
mod batched;
#[cfg(feature = "train")]
pub mod checkpoint;
pub mod controller;
pub mod error;
pub mod field;
pub mod files;
pub mod fit;
pub mod flat;
pub mod grad_buffer;
pub mod gradient;
pub mod layer;
pub mod linear;
pub mod loss;
pub mod mlp;
mod mlp_spec;
#[cfg(feature = "neural")]
pub mod neural;
mod observe;
pub mod random;
pub mod reversible_heun;
pub mod revolve;
pub mod rk;
pub mod scalar;
pub mod scheme;
pub mod solve;
pub mod stability;
pub mod stability_advice;
pub mod state;
pub mod state_ndarray;
pub mod stats;
pub mod step_map;
pub mod tableau;
pub mod term;
#[cfg(feature = "train")]
pub mod train;

// The names a user needs; plumbing lives in its module (e.g. `rk::RkTape`, `state::Pair`).
pub use controller::Adaptive;
pub use error::{Error, Result};
pub use field::VectorField;
pub use flat::FlatParams;
pub use gradient::{gradient, GradientMethod, GradientOptions};
pub use layer::{Layer, LayerTerm};
pub use mlp::{Mlp, MlpSpec};
pub use reversible_heun::ReversibleHeun;
pub use rk::Rk;
pub use scheme::{Plain, Reversible, Scheme};
pub use solve::{solve, Solution, SolveOptions};
pub use state::State;
pub use state_ndarray::Contiguous;
pub use tableau::Tableau;
pub use term::{OdeTerm, Term};

// Crate-internal shorthands.
pub(crate) use grad_buffer::GradBuffer;
pub(crate) use scalar::Real;
pub(crate) use solve::StepControl;
pub(crate) use state::Pair;
pub(crate) use stats::{Stats, Warning};
pub(crate) use step_map::StepMap;

/// One glob import for applications and tests: the root's names, the traits whose methods
/// they call, and the types results are read through.
pub mod prelude {
    pub use crate::grad_buffer::GradBuffer;
    pub use crate::gradient::{DriftCheck, Gradient};
    pub use crate::scalar::Real;
    pub use crate::scheme::Start;
    pub use crate::solve::StepControl;
    pub use crate::state::Pair;
    pub use crate::stats::{Stats, Warning};
    pub use crate::step_map::StepMap;
    pub use crate::{
        gradient, solve, Adaptive, Error, GradientMethod, GradientOptions, Mlp, OdeTerm, Plain,
        Result, Reversible, ReversibleHeun, Rk, Scheme, Solution, SolveOptions, State, Tableau,
        Term, VectorField,
    };
}

/// The README's example, compiled and run as a doctest.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;

/// The book's guide pages, compiled and run as doctests.
#[cfg(doctest)]
pub mod book {
    #[doc = include_str!("../../docs/src/core.md")]
    pub struct Core;
    #[doc = include_str!("../../docs/src/your-own-model.md")]
    pub struct YourOwnModel;
    #[doc = include_str!("../../docs/src/neural-odes.md")]
    pub struct NeuralOdes;
    #[doc = include_str!("../../docs/src/choosing-lambda.md")]
    pub struct ChoosingLambda;
    #[doc = include_str!("../../docs/src/method.md")]
    pub struct Method;
}
