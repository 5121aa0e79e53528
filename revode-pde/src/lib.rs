//! revode-pde: method-of-lines PDEs and neural surrogates trained with constant-memory
//! gradients.
//!
//! A discretised PDE is a core vector field: [`Heat`], [`Advection`], [`Burgers`],
//! [`FisherKpp`] and [`GrayScott`] act on batched fields over a [`Grid1d`] / [`Grid2d`] through
//! flux-form [`ops`] with hand-written pullbacks. [`step_options`] picks h from the explicit
//! stability limit (and refuses a user h beyond it); [`PdeTerm`] wraps a PDE as a core term that
//! refuses a fixed step beyond that limit, and invalid physical parameters, in every solve and
//! gradient. [`CrankNicolson`] gives diffusion
//! references. Stepping and gradients are the core's, unchanged.
#![deny(missing_docs)]

pub mod datasets;
mod grid;
mod limit_cache;
pub mod ops;
mod reference;
mod stability;
pub mod surrogate;
mod term;
mod terms;

pub use grid::{Boundary, Grid1d, Grid2d};
pub use reference::CrankNicolson;
pub use revode_core;
pub use stability::{max_step, step_options};
pub use term::PdeTerm;
pub use terms::{Advection, Burgers, FisherKpp, GrayScott, Heat, Pde};

/// The PDE guide's examples, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../../docs/src/pde.md")]
pub struct GuideDoctests;
