//! Neural vector fields on dfdx: batched states as device tensors, MLPs with a pullback on the
//! device, and the ODE term that plugs them into the core's step maps and gradient methods.
//!
//! Every size is chosen at run time: states are `batch × dim` tensors with `usize` dimensions
//! and the networks' weights are `(usize, usize)` tensors, so any width, depth and input or
//! output size works with no menu of compiled sizes. Every state operation is a dfdx tensor
//! operation, so the same code runs on `Cpu` and (with the `cuda` feature) on `Cuda`; the
//! parameters and their cotangents stay on the device, and only scalars (norms, the loss)
//! cross to the host during a solve.
//!
//! The pullback is written out layer by layer with dfdx matmuls over the activations the
//! traced evaluation cached, so a pullback costs no extra forward evaluation and needs neither
//! a tape object per stage (dfdx tapes are single-use and not `Clone`, which the full-tape
//! baseline needs) nor input-gradient hooks.
//!
//! For training, a flat device vector (`Vector<E, Dev>`) is the trainer's parameter type
//! ([`crate::FlatParams`]): θ, the gradient and AdamW's moments stay on the device.

mod batch;
mod flat;
mod layer;
mod mlp;

pub use batch::{Batch, Matrix, Vector};
pub use layer::NeuralOdeTerm;
pub use mlp::{NeuralCache, NeuralGrads, NeuralMlp};
