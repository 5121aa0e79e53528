//! revode-sde: neural SDEs with exact, constant-memory gradients.
//!
//! - [`BrownianPath`]: a seeded Brownian path queried at any times in any order, bitwise
//!   reproducible, so the backward pass regenerates every increment exactly; optionally with
//!   space-time Lévy area.
//! - [`SdeTerm`]: drift and diffusion (diagonal, additive, general noise) as a core term with
//!   control `(dt, ΔW)`; the core's solve and gradient machinery apply unchanged.
//! - [`step_map`] / [`reversible_heun`]: Stratonovich Heun and midpoint (couple them with
//!   [`revode_core::Reversible`]), reversible Heun, and Euler–Maruyama for Itô simulation.
//! - [`gan`]: the SDE-GAN for any multi-channel time series, trained by the core's trainer;
//!   [`datasets`]: the experiments' Ornstein–Uhlenbeck processes.
#![deny(missing_docs)]

mod brownian;
pub mod datasets;
pub mod gan;
pub mod lorenz;
pub mod neural;
mod solver;
pub mod stats;
mod term;

pub use brownian::{BrownianPath, DEFAULT_LEVELS, MAX_LEVELS};
pub use neural::{
    LayerSdeCache, LayerSdeControl, LayerSdeGrads, LayerSdeTerm, NeuralSdeControl, NeuralSdeGrads,
    NeuralSdeTerm,
};
pub use revode_core;
pub use solver::{reversible_heun, step_map, SdeMap, SdeSolver};
pub use term::{Additive, Calculus, Diagonal, Diffusion, Noise, SdeControl, SdeTerm};

/// The SDE guide's examples, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../../docs/src/sde.md")]
pub struct GuideDoctests;
