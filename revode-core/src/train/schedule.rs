//! Learning-rate schedules: a peak rate, a decay over the run and an optional linear warm-up.
//!
//! At step k of K (k = 0, …, K − 1), with progress p = k / K and final factor f:
//! constant η, linear η (1 − p (1 − f)), cosine η (f + (1 − f)(1 + cos πp)/2); during the
//! first w steps of warm-up the rate is further multiplied by (k + 1) / w.

use crate::{Error, Result};
use serde::{Deserialize, Serialize};

/// How the learning rate decays over the run.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub enum Decay {
    /// The peak rate throughout.
    Constant,
    /// Linear from the peak to `final_factor` × the peak.
    Linear {
        /// Fraction of the peak reached at the end.
        final_factor: f64,
    },
    /// Half a cosine from the peak to `final_factor` × the peak.
    Cosine {
        /// Fraction of the peak reached at the end.
        final_factor: f64,
    },
}

/// A learning-rate schedule ([module docs](self)).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Schedule {
    /// Peak learning rate η.
    pub lr: f64,
    /// Decay over the run.
    pub decay: Decay,
    /// Steps of linear warm-up (0: none).
    pub warmup: usize,
}

impl Schedule {
    /// η throughout.
    pub fn constant(lr: f64) -> Self {
        Schedule {
            lr,
            decay: Decay::Constant,
            warmup: 0,
        }
    }
    /// Linear decay from η to `final_factor` η.
    pub fn linear(lr: f64, final_factor: f64) -> Self {
        Schedule {
            lr,
            decay: Decay::Linear { final_factor },
            warmup: 0,
        }
    }
    /// Cosine decay from η to `final_factor` η.
    pub fn cosine(lr: f64, final_factor: f64) -> Self {
        Schedule {
            lr,
            decay: Decay::Cosine { final_factor },
            warmup: 0,
        }
    }
    /// The same schedule with `steps` of linear warm-up.
    pub fn with_warmup(mut self, steps: usize) -> Self {
        self.warmup = steps;
        self
    }

    /// A typed error unless η > 0 is finite and a final factor lies in [0, 1].
    pub fn validate(&self) -> Result<()> {
        let f = match self.decay {
            Decay::Constant => 1.0,
            Decay::Linear { final_factor } | Decay::Cosine { final_factor } => final_factor,
        };
        if !(self.lr > 0.0 && self.lr.is_finite() && (0.0..=1.0).contains(&f)) {
            return Err(Error::config(
                "schedule",
                format!(
                    "need a finite learning rate > 0 and a final factor in [0, 1] (lr = {}, final factor = {f})",
                    self.lr
                ),
            ));
        }
        Ok(())
    }

    /// The learning rate of step `k` (0-based) of a run of `total` steps.
    pub fn at(&self, k: usize, total: usize) -> f64 {
        let p = k as f64 / total.max(1) as f64;
        let decay = match self.decay {
            Decay::Constant => 1.0,
            Decay::Linear { final_factor: f } => 1.0 - p * (1.0 - f),
            Decay::Cosine { final_factor: f } => {
                f + (1.0 - f) * 0.5 * (1.0 + (std::f64::consts::PI * p).cos())
            }
        };
        let warm = if k < self.warmup {
            (k + 1) as f64 / self.warmup as f64
        } else {
            1.0
        };
        self.lr * decay * warm
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedules_hit_their_end_points() {
        let total = 100;
        assert_eq!(Schedule::constant(0.1).at(57, total), 0.1);
        let lin = Schedule::linear(0.1, 0.2);
        assert_eq!(lin.at(0, total), 0.1);
        assert!((lin.at(50, total) - 0.06).abs() < 1e-15);
        let cos = Schedule::cosine(1.0, 0.01);
        assert_eq!(cos.at(0, total), 1.0);
        assert!((cos.at(50, total) - 0.505).abs() < 1e-12);
        assert!((cos.at(100, total) - 0.01).abs() < 1e-12);
        let warm = Schedule::constant(1.0).with_warmup(4);
        let first: Vec<f64> = (0..6).map(|k| warm.at(k, total)).collect();
        assert_eq!(first, vec![0.25, 0.5, 0.75, 1.0, 1.0, 1.0]);
        assert!(Schedule::linear(0.1, 1.5).validate().is_err());
        assert!(Schedule::constant(0.0).validate().is_err());
        assert!(Schedule::constant(f64::NAN).validate().is_err());
    }
}
