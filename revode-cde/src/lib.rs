//! # revode-cde
//!
//! Controlled paths from irregular, partly missing data (linear, rectilinear, backward-Hermite
//! cubic, natural cubic spline) and a reader for the UEA/sktime `.ts` format. Neural CDEs reuse
//! revode-core's coupling, loop and gradient methods unchanged: only a term and a control are new.
#![deny(missing_docs)]

pub mod classifier;
pub mod dataset;
pub mod datasets;
pub mod neural;
pub mod path;
pub mod tangent;
pub mod term;
pub mod ts;

pub use classifier::{BatchResult, FieldBackend, ModelGradient, NcdeClassifier, OutputLoss};
pub use dataset::{Standardiser, TimeSeries};
pub use neural::{NeuralCdeControl, NeuralCdeGrads, NeuralCdeTerm};
pub use path::{AllMissing, Interpolation, Path, PathData, PathOptions};
pub use revode_core;
pub use tangent::{TangentCdeMlp, TangentGradient};
pub use term::{CdeControl, CdeField, CdeMlp, CdeTerm};
pub use ts::{read_ts, TsDataset};

/// The guide's examples (docs/src/cde.md), compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../../docs/src/cde.md")]
pub struct GuideDoctests;
