//! Training: AdamW on a flat parameter view, learning-rate schedules, the one training loop
//! ([`Trainer`]) with clipping, weight averaging, evaluation, early stopping, progress bars and
//! atomic checkpoints that resume bit for bit, and data-parallel shards: threads ([`sharded`])
//! and, with the `mpi` feature, processes (`distributed`). Parameters and optimiser state live
//! where the model lives ([`FlatParams`]): host vectors, or a dfdx model's device tensors.

mod adamw;
#[cfg(feature = "mpi")]
pub mod distributed;
mod schedule;
mod shards;
mod state;
mod trainer;

pub use crate::flat::{AdamStep, FlatParams};
pub use adamw::AdamW;
pub use schedule::{Decay, Schedule};
pub use shards::{sharded, Sharded};
pub use state::{load, save, write_atomic, Best, TrainState};
pub use trainer::{Combine, Local, LossAndGrad, TrainConfig, Trainer};
