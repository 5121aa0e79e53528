//! revode-sde: in progress (see the issues); builds on revode-core.
#![deny(missing_docs)]

pub use revode_core;
