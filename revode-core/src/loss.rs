//! Losses with their cotangents, so that a loss closure does not write derivatives by hand,
//! and classification metrics.
//!
//! * [`mse`]: L = (1/n) Σ (ŷ − y)² over the n entries whose target is not NaN (NaN marks a
//!   missing observation); ∂L/∂ŷ = 2(ŷ − y)/n there, 0 elsewhere.
//! * [`cross_entropy`]: softmax cross-entropy averaged over rows,
//!   L = (1/B) Σ_b (log Σ_j e^{ℓ_bj} − ℓ_{b,y_b}); ∂L/∂ℓ_bj = (softmax(ℓ_b)_j − [j = y_b]) / B.
//! * [`Confusion`]: counts of (true class, predicted class), accuracy and per-class recall.

use crate::{Error, Result};

fn mismatch(what: &str, expected: usize, found: usize) -> Error {
    Error::ShapeMismatch {
        what: what.into(),
        expected,
        found,
    }
}

/// Mean squared error over the finite targets; writes ∂L/∂ŷ into `cot` (overwriting it).
/// A typed error when the lengths differ, a prediction is not finite, or no target is.
pub fn mse(pred: &[f64], target: &[f64], cot: &mut [f64]) -> Result<f64> {
    if target.len() != pred.len() || cot.len() != pred.len() {
        return Err(mismatch(
            "mse target/cotangent",
            pred.len(),
            if target.len() != pred.len() {
                target.len()
            } else {
                cot.len()
            },
        ));
    }
    crate::error::check_finite("mse predictions", pred)?;
    let n = target.iter().filter(|t| !t.is_nan()).count();
    if n == 0 {
        return Err(Error::config("mse", "every target is missing (NaN)"));
    }
    let mut loss = 0.0;
    for ((&p, &t), c) in pred.iter().zip(target).zip(cot.iter_mut()) {
        if t.is_nan() {
            *c = 0.0;
        } else {
            let r = p - t;
            loss += r * r / n as f64;
            *c = 2.0 * r / n as f64;
        }
    }
    Ok(loss)
}

/// The index of the largest entry (the first on ties; NaN never wins).
pub fn argmax(row: &[f64]) -> usize {
    row.iter()
        .enumerate()
        .fold((0, f64::NEG_INFINITY), |best, (j, &v)| {
            if v > best.1 {
                (j, v)
            } else {
                best
            }
        })
        .0
}

/// The mean softmax cross-entropy of `logits` (rows × `classes`, row-major) against `labels`;
/// writes ∂L/∂logits into `cot` (overwriting it). Returns the loss and the predicted classes.
pub fn cross_entropy(
    logits: &[f64],
    labels: &[usize],
    classes: usize,
    cot: &mut [f64],
) -> Result<(f64, Vec<usize>)> {
    let rows = labels.len();
    if classes == 0 || rows == 0 {
        return Err(Error::config(
            "cross-entropy",
            format!("need ≥ 1 class and ≥ 1 row (classes = {classes}, rows = {rows})"),
        ));
    }
    if logits.len() != rows * classes || cot.len() != logits.len() {
        return Err(mismatch(
            "cross-entropy logits/cotangent",
            rows * classes,
            if logits.len() != rows * classes {
                logits.len()
            } else {
                cot.len()
            },
        ));
    }
    if let Some(&bad) = labels.iter().find(|&&l| l >= classes) {
        return Err(Error::config(
            "labels",
            format!("label {bad} ≥ number of classes {classes}"),
        ));
    }
    crate::error::check_finite("logits", logits)?;
    let b = rows as f64;
    let mut loss = 0.0;
    let mut pred = Vec::with_capacity(rows);
    for (r, &label) in labels.iter().enumerate() {
        let row = &logits[r * classes..(r + 1) * classes];
        let m = row.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let sum: f64 = row.iter().map(|v| (v - m).exp()).sum();
        loss += (m + sum.ln() - row[label]) / b;
        pred.push(argmax(row));
        for j in 0..classes {
            cot[r * classes + j] = ((row[j] - m).exp() / sum - (j == label) as u8 as f64) / b;
        }
    }
    Ok((loss, pred))
}

/// A confusion matrix: `counts[t · classes + p]` series of true class t predicted as p.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Confusion {
    /// Number of classes.
    pub classes: usize,
    /// Row-major counts (true × predicted).
    pub counts: Vec<usize>,
}

impl Confusion {
    /// Counts `predicted` against `labels` (equal lengths, every class < `classes`).
    pub fn new(predicted: &[usize], labels: &[usize], classes: usize) -> Result<Self> {
        if predicted.len() != labels.len() {
            return Err(mismatch("predictions", labels.len(), predicted.len()));
        }
        if labels.is_empty() {
            return Err(Error::config("confusion matrix", "no labels"));
        }
        let mut counts = vec![0; classes * classes];
        for (&p, &t) in predicted.iter().zip(labels) {
            if p >= classes || t >= classes {
                return Err(Error::config(
                    "confusion matrix",
                    format!("class {} ≥ number of classes {classes}", p.max(t)),
                ));
            }
            counts[t * classes + p] += 1;
        }
        Ok(Confusion { classes, counts })
    }
    /// Fraction on the diagonal.
    pub fn accuracy(&self) -> f64 {
        let total: usize = self.counts.iter().sum();
        let right: usize = (0..self.classes)
            .map(|c| self.counts[c * self.classes + c])
            .sum();
        right as f64 / total as f64
    }
    /// Per true class, the fraction predicted correctly (NaN for a class with no series).
    pub fn recall(&self) -> Vec<f64> {
        (0..self.classes)
            .map(|t| {
                let row = &self.counts[t * self.classes..(t + 1) * self.classes];
                row[t] as f64 / row.iter().sum::<usize>() as f64
            })
            .collect()
    }
}

/// Fraction of `predicted` equal to `labels` (a typed error on unequal or empty inputs).
pub fn accuracy(predicted: &[usize], labels: &[usize]) -> Result<f64> {
    if predicted.len() != labels.len() {
        return Err(mismatch("predictions", labels.len(), predicted.len()));
    }
    if labels.is_empty() {
        return Err(Error::config("accuracy", "no labels"));
    }
    let right = predicted.iter().zip(labels).filter(|(p, l)| p == l).count();
    Ok(right as f64 / labels.len() as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fd(f: impl Fn(&[f64]) -> f64, x: &[f64], i: usize) -> f64 {
        let h = 1e-6;
        let (mut a, mut b) = (x.to_vec(), x.to_vec());
        a[i] += h;
        b[i] -= h;
        (f(&a) - f(&b)) / (2.0 * h)
    }

    #[test]
    fn cotangents_match_central_differences() {
        let pred = [0.3, -1.2, 2.0, 0.5];
        let target = [0.1, f64::NAN, 1.0, 0.7];
        let mut cot = [9.0; 4];
        let l = mse(&pred, &target, &mut cot).unwrap();
        assert!((l - (0.04 + 1.0 + 0.04) / 3.0).abs() < 1e-15);
        assert_eq!(cot[1], 0.0);
        let f = |p: &[f64]| mse(p, &target, &mut [0.0; 4]).unwrap();
        for (i, c) in cot.iter().enumerate() {
            assert!((fd(f, &pred, i) - c).abs() < 1e-8);
        }
        let logits = [0.2, -0.4, 1.1, 3.0, 0.0, -2.0];
        let labels = [2, 0];
        let mut cot = [0.0; 6];
        let (l, pred) = cross_entropy(&logits, &labels, 3, &mut cot).unwrap();
        assert_eq!(pred, vec![2, 0]);
        let f = |x: &[f64]| cross_entropy(x, &labels, 3, &mut [0.0; 6]).unwrap().0;
        assert!((f(&logits) - l).abs() == 0.0);
        for (i, c) in cot.iter().enumerate() {
            assert!((fd(f, &logits, i) - c).abs() < 1e-8);
        }
    }

    #[test]
    fn bad_inputs_are_typed_errors() {
        assert!(mse(&[1.0], &[f64::NAN], &mut [0.0]).is_err());
        assert!(mse(&[f64::INFINITY], &[1.0], &mut [0.0]).is_err());
        assert!(mse(&[1.0, 2.0], &[1.0], &mut [0.0; 2]).is_err());
        assert!(cross_entropy(&[0.0; 4], &[0, 2], 2, &mut [0.0; 4]).is_err());
        assert!(cross_entropy(&[0.0; 3], &[0, 1], 2, &mut [0.0; 3]).is_err());
        assert!(cross_entropy(&[f64::NAN, 0.0], &[0], 2, &mut [0.0; 2]).is_err());
        assert!(Confusion::new(&[0, 1], &[0], 2).is_err());
        assert!(Confusion::new(&[0, 3], &[0, 1], 2).is_err());
        assert!(accuracy(&[], &[]).is_err());
    }

    #[test]
    fn confusion_counts_and_rates() {
        let c = Confusion::new(&[0, 1, 1, 2, 2, 2], &[0, 1, 2, 2, 2, 0], 3).unwrap();
        assert_eq!(c.counts, vec![1, 0, 1, 0, 1, 0, 0, 1, 2]);
        assert!((c.accuracy() - 4.0 / 6.0).abs() < 1e-15);
        assert_eq!(c.recall(), vec![0.5, 1.0, 2.0 / 3.0]);
        assert_eq!(
            accuracy(&[0, 1, 1, 2, 2, 2], &[0, 1, 2, 2, 2, 0]).unwrap(),
            c.accuracy()
        );
    }
}
