//! Typed errors for every public entry point.

use thiserror::Error;

/// Result alias used throughout revode.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in revode, with what and where.
#[derive(Debug, Error, Clone, PartialEq)]
#[non_exhaustive]
pub enum Error {
    /// The coupling parameter λ must lie in (0, 1].
    #[error("coupling parameter λ = {lambda} is outside (0, 1]")]
    InvalidCoupling {
        /// The rejected value.
        lambda: f64,
    },
    /// An input contained NaN or ±∞.
    #[error("{what} is not finite at index {index}")]
    NonFinite {
        /// Which input.
        what: String,
        /// Position of the first offending value.
        index: usize,
    },
    /// An input that must not be empty was empty.
    #[error("{what} is empty")]
    Empty {
        /// Which input.
        what: String,
    },
    /// A step size that must be positive and finite was not.
    #[error("invalid step size h = {h}: {reason}")]
    InvalidStepSize {
        /// The rejected step size.
        h: f64,
        /// Why it was rejected.
        reason: String,
    },
    /// The integration interval is empty or reversed.
    #[error("invalid interval: t1 = {t1} must be greater than t0 = {t0}")]
    InvalidInterval {
        /// Start time.
        t0: f64,
        /// End time.
        t1: f64,
    },
    /// Observation times must be strictly increasing (no duplicates).
    #[error("observation times not strictly increasing at index {index}: {prev} then {next}")]
    UnsortedTimes {
        /// Index of the offending time.
        index: usize,
        /// The previous time.
        prev: f64,
        /// The offending time.
        next: f64,
    },
    /// A time lies outside the interval on which a term or path is defined.
    #[error("time {t} is outside the domain [{start}, {end}] of {what}")]
    OutsideDomain {
        /// Which object.
        what: String,
        /// The rejected time.
        t: f64,
        /// Start of the domain.
        start: f64,
        /// End of the domain.
        end: f64,
    },
    /// Sizes that must agree did not.
    #[error("shape mismatch in {what}: expected {expected}, found {found}")]
    ShapeMismatch {
        /// Which input.
        what: String,
        /// Expected size.
        expected: usize,
        /// Size found.
        found: usize,
    },
    /// The adaptive controller asked for a step below the minimum.
    #[error("step size underflow at t = {t}: h = {h} is below the minimum {h_min}")]
    StepSizeUnderflow {
        /// Time at which the controller gave up.
        t: f64,
        /// The proposed step.
        h: f64,
        /// The minimum allowed step.
        h_min: f64,
    },
    /// The solve needed more steps than allowed.
    #[error("maximum number of steps ({max_steps}) exceeded at t = {t}")]
    MaxStepsExceeded {
        /// The limit.
        max_steps: usize,
        /// Time reached.
        t: f64,
    },
    /// NaN or ±∞ appeared in the state during a solve.
    #[error("state became non-finite at step {step} (t = {t})")]
    NonFiniteState {
        /// Index of the step that produced it.
        step: usize,
        /// Time at the end of that step.
        t: f64,
    },
    /// A loss, a loss cotangent or a computed gradient became non-finite.
    #[error("{what} became non-finite{}", .step.map(|n| format!(" in the backward pass at step {n}")).unwrap_or_default())]
    NonFiniteGradient {
        /// Which quantity: "loss", "loss cotangent at observation k", "dL/dy0", "dL/dθ (entry i)".
        what: String,
        /// The solver step whose pullback first produced it, when known.
        step: Option<usize>,
    },
    /// The reconstructed initial state drifted further than allowed: the reversible scheme is
    /// unstable on this problem, and its gradient would be wrong.
    #[error(
        "reconstruction drift {error:e} exceeds the tolerance {tolerance:e}: the reversible \
         scheme is unstable here and its gradient is not trustworthy. Raise λ (closer to 1), \
         lower h, or use GradientMethod::CheckpointedReversibleAuto (DriftCheck::Off opts out)"
    )]
    ReconstructionDrift {
        /// Measured relative drift.
        error: f64,
        /// The tolerance in force (see `DriftCheck`).
        tolerance: f64,
    },
    /// A Butcher tableau failed validation.
    #[error("invalid tableau '{name}': {reason}")]
    InvalidTableau {
        /// Name of the tableau.
        name: String,
        /// What is wrong.
        reason: String,
    },
    /// A gradient method or scheme was asked for something it cannot do.
    #[error("unsupported: {0}")]
    Unsupported(String),
    /// A data file could not be parsed.
    #[error("{file}:{line}:{column}: {message}")]
    Parse {
        /// File name.
        file: String,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// What is wrong.
        message: String,
    },
    /// A configuration value is invalid.
    #[error("invalid configuration '{key}': {message}")]
    Config {
        /// The offending key.
        key: String,
        /// What is wrong.
        message: String,
    },
    /// A checkpoint is truncated, corrupted, of a foreign format, or made of parts that cannot
    /// be proven to belong together; nothing was loaded.
    #[error("checkpoint {files} refused: {message}")]
    Checkpoint {
        /// The file or files involved.
        files: String,
        /// What is wrong.
        message: String,
    },
    /// A distributed (multi-process) training step failed on some rank; every rank returns
    /// this error from the same step, so none waits in a collective.
    #[error("distributed training, rank {rank} at step {step}: {message}")]
    Distributed {
        /// The rank where it happened (the lowest one when several failed).
        rank: usize,
        /// The training step.
        step: usize,
        /// What went wrong.
        message: String,
    },
    /// An I/O operation failed.
    #[error("I/O error on {path}: {message}")]
    Io {
        /// The path involved.
        path: String,
        /// The OS message.
        message: String,
    },
}

impl Error {
    /// Shorthand for [`Error::Config`].
    pub fn config(key: impl Into<String>, message: impl Into<String>) -> Self {
        Error::Config {
            key: key.into(),
            message: message.into(),
        }
    }
}

/// Checks that every value is finite, naming the input and the first bad index.
pub fn check_finite<S: crate::Real>(what: &str, values: &[S]) -> Result<()> {
    match values.iter().position(|v| !v.is_finite()) {
        Some(index) => Err(Error::NonFinite {
            what: what.to_string(),
            index,
        }),
        None => Ok(()),
    }
}
