//! Solver and gradient statistics.

use serde::{Deserialize, Serialize};

/// A diagnostic that did not stop the computation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Warning {
    /// A fixed-step solve runs outside the scheme's linear stability region: the linearised
    /// step amplifies some mode faster than the exact flow of the linearisation does.
    OutsideStabilityRegion {
        /// Time at which the linearisation was taken.
        t: f64,
        /// Spectral radius of the linearised step.
        amplification: f64,
        /// The exact flow's growth factor of that mode over one step (`|e^x|`).
        exact: f64,
    },
}

/// Counts of what a solve or gradient did.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Stats {
    /// Accepted steps.
    pub accepted_steps: u64,
    /// Rejected steps (adaptive only).
    pub rejected_steps: u64,
    /// Vector-field evaluations (one per RK stage).
    pub evaluations: u64,
    /// Vector-field pullbacks (one per RK stage pulled back).
    pub pullbacks: u64,
    /// Largest number of solver states held at once (checkpoints, tapes, the carry).
    pub peak_stored_states: usize,
    /// Relative reconstruction error of the initial state, when the method reconstructs.
    pub reconstruction_error: Option<f64>,
    /// The checkpoint interval a checkpointed-reversible gradient used (chosen by
    /// [`crate::GradientMethod::CheckpointedReversibleAuto`] or given).
    pub checkpoint_interval: Option<usize>,
    /// Full gradient passes run (more than one when the interval was refined).
    pub attempts: u32,
    /// Diagnostics that did not stop the computation.
    pub warnings: Vec<Warning>,
}
