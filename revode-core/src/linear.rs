//! A dense affine layer y = W x + b on a batch of rows, with its pullback: the readout and the
//! initial-condition encoder of the neural CDE classifier and critic.
//!
//! Parameters are flat: W (outputs × inputs, row-major), then b (outputs). For a batch X
//! (rows × inputs) and cotangent Ȳ: W̄ += Ȳᵀ X, b̄ += Σ_rows Ȳ, X̄ += Ȳ W.

use crate::{Error, Result};

/// y = W x + b ([module docs](self)).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Linear {
    /// Input size.
    pub inputs: usize,
    /// Output size.
    pub outputs: usize,
}

impl Linear {
    /// A layer from `inputs` to `outputs` (both ≥ 1).
    pub fn new(inputs: usize, outputs: usize) -> Result<Self> {
        if inputs == 0 || outputs == 0 {
            return Err(Error::config(
                "linear layer",
                format!("sizes must be positive (inputs = {inputs}, outputs = {outputs})"),
            ));
        }
        Ok(Linear { inputs, outputs })
    }
    /// Number of parameters: outputs × (inputs + 1).
    pub fn num_params(&self) -> usize {
        self.outputs * (self.inputs + 1)
    }
    /// Parameters uniform in ±1/√inputs from `rng`.
    pub fn init(&self, rng: &mut crate::random::SplitMix64) -> Vec<f64> {
        let b = 1.0 / (self.inputs as f64).sqrt();
        (0..self.num_params()).map(|_| rng.symmetric(b)).collect()
    }

    fn check(&self, p: &[f64], x: &[f64], y: &[f64]) -> Result<usize> {
        let rows = x.len() / self.inputs;
        let bad = |what: &str, expected: usize, found: usize| {
            Err(Error::ShapeMismatch {
                what: format!("linear layer {what}"),
                expected,
                found,
            })
        };
        if p.len() != self.num_params() {
            return bad("parameters", self.num_params(), p.len());
        }
        if x.len() != rows * self.inputs {
            return bad("input", rows * self.inputs, x.len());
        }
        if y.len() != rows * self.outputs {
            return bad("output", rows * self.outputs, y.len());
        }
        Ok(rows)
    }

    /// Y = X Wᵀ + b for the rows of `x` into `y`.
    pub fn forward(&self, p: &[f64], x: &[f64], y: &mut [f64]) -> Result<()> {
        self.apply(p, x, y, true)
    }

    /// The tangent Ẏ = Ẋ Wᵀ of the rows of `x_dot` (forward-mode: no bias).
    pub fn tangent(&self, p: &[f64], x_dot: &[f64], y_dot: &mut [f64]) -> Result<()> {
        self.apply(p, x_dot, y_dot, false)
    }

    /// Adds W̄ = Ȳᵀ X and b̄ = Σ Ȳ into `p_bar` and, when given, X̄ = Ȳ W into `x_bar`.
    pub fn pullback(
        &self,
        p: &[f64],
        x: &[f64],
        y_bar: &[f64],
        x_bar: Option<&mut [f64]>,
        p_bar: &mut [f64],
    ) -> Result<()> {
        self.pull(p, x, y_bar, x_bar, p_bar, true)
    }

    /// The pullback of [`Linear::tangent`]: adds W̄ = Ẏ̄ᵀ Ẋ into `p_bar` (no b̄) and, when
    /// given, Ẋ̄ = Ẏ̄ W into `x_dot_bar`.
    pub fn tangent_pullback(
        &self,
        p: &[f64],
        x_dot: &[f64],
        y_dot_bar: &[f64],
        x_dot_bar: Option<&mut [f64]>,
        p_bar: &mut [f64],
    ) -> Result<()> {
        self.pull(p, x_dot, y_dot_bar, x_dot_bar, p_bar, false)
    }

    fn apply(&self, p: &[f64], x: &[f64], y: &mut [f64], bias: bool) -> Result<()> {
        let rows = self.check(p, x, y)?;
        let (n, m) = (self.inputs, self.outputs);
        let (w, b) = p.split_at(m * n);
        for r in 0..rows {
            let xr = &x[r * n..(r + 1) * n];
            for j in 0..m {
                let b0 = if bias { b[j] } else { 0.0 };
                y[r * m + j] = b0
                    + w[j * n..(j + 1) * n]
                        .iter()
                        .zip(xr)
                        .map(|(a, v)| a * v)
                        .sum::<f64>();
            }
        }
        Ok(())
    }

    fn pull(
        &self,
        p: &[f64],
        x: &[f64],
        y_bar: &[f64],
        mut x_bar: Option<&mut [f64]>,
        p_bar: &mut [f64],
        bias: bool,
    ) -> Result<()> {
        let rows = self.check(p, x, y_bar)?;
        if p_bar.len() != p.len() || x_bar.as_ref().is_some_and(|xb| xb.len() != x.len()) {
            return Err(Error::ShapeMismatch {
                what: "linear layer cotangent buffers".into(),
                expected: p.len(),
                found: p_bar.len(),
            });
        }
        let (n, m) = (self.inputs, self.outputs);
        let w = &p[..m * n];
        for r in 0..rows {
            for j in 0..m {
                let d = y_bar[r * m + j];
                if bias {
                    p_bar[m * n + j] += d;
                }
                for i in 0..n {
                    p_bar[j * n + i] += d * x[r * n + i];
                    if let Some(xb) = x_bar.as_deref_mut() {
                        xb[r * n + i] += d * w[j * n + i];
                    }
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pullback_matches_central_differences() {
        let l = Linear::new(3, 2).unwrap();
        let mut rng = crate::random::SplitMix64::new(5);
        let p = l.init(&mut rng);
        let x: Vec<f64> = (0..12).map(|i| (i as f64 * 0.7).sin()).collect();
        let ybar: Vec<f64> = (0..8).map(|i| (i as f64 * 1.3).cos()).collect();
        // L = <Ȳ, Y(p, x)>, linear in each argument: central differences are exact up to
        // round-off of O(1e-16 / h).
        let loss = |p: &[f64], x: &[f64]| {
            let mut y = vec![0.0; 8];
            l.forward(p, x, &mut y).unwrap();
            y.iter().zip(&ybar).map(|(a, b)| a * b).sum::<f64>()
        };
        let (mut pb, mut xb) = (vec![0.0; p.len()], vec![0.0; x.len()]);
        l.pullback(&p, &x, &ybar, Some(&mut xb), &mut pb).unwrap();
        let h = 1e-5;
        for i in 0..p.len() {
            let (mut a, mut b) = (p.clone(), p.clone());
            a[i] += h;
            b[i] -= h;
            assert!(((loss(&a, &x) - loss(&b, &x)) / (2.0 * h) - pb[i]).abs() < 1e-9);
        }
        for i in 0..x.len() {
            let (mut a, mut b) = (x.clone(), x.clone());
            a[i] += h;
            b[i] -= h;
            assert!(((loss(&p, &a) - loss(&p, &b)) / (2.0 * h) - xb[i]).abs() < 1e-9);
        }
        assert!(l.forward(&p[1..], &x, &mut [0.0; 8]).is_err());
        assert!(l.forward(&p, &x[1..], &mut [0.0; 8]).is_err());
        assert!(Linear::new(0, 2).is_err());
    }

    #[test]
    fn tangent_is_the_linear_part() {
        let l = Linear::new(3, 2).unwrap();
        let p = l.init(&mut crate::random::SplitMix64::new(9));
        let x: Vec<f64> = (0..6).map(|i| (i as f64 * 0.3).cos()).collect();
        let ybar = [0.4, -1.1, 0.7, 0.2];
        let (mut y, mut yd) = (vec![0.0; 4], vec![0.0; 4]);
        l.forward(&p, &x, &mut y).unwrap();
        l.tangent(&p, &x, &mut yd).unwrap();
        for (r, (a, b)) in y.iter().zip(&yd).enumerate() {
            assert!((a - p[6 + r % 2] - b).abs() < 1e-15);
        }
        let (mut pb, mut xb) = (vec![0.0; p.len()], vec![0.0; 6]);
        let (mut tb, mut xtb) = (vec![0.0; p.len()], vec![0.0; 6]);
        l.pullback(&p, &x, &ybar, Some(&mut xb), &mut pb).unwrap();
        l.tangent_pullback(&p, &x, &ybar, Some(&mut xtb), &mut tb)
            .unwrap();
        assert_eq!(xb, xtb);
        assert_eq!(pb[..6], tb[..6]);
        assert_eq!(tb[6..], [0.0, 0.0]);
    }
}
