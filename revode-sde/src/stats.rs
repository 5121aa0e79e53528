//! Kolmogorov–Smirnov statistics for testing random paths, and generated paths' marginals
//! and correlations compared with real ones.

use revode_cde::TimeSeries;
use revode_core::{Error, Result};

/// The standard normal CDF.
pub fn normal_cdf(x: f64) -> f64 {
    0.5 * libm::erfc(-x / std::f64::consts::SQRT_2)
}

/// Asymptotic Kolmogorov survival function `Q(λ) = 2 Σ (−1)^{k−1} e^{−2k²λ²}`.
fn kolmogorov_q(lambda: f64) -> f64 {
    if lambda < 0.2 {
        return 1.0;
    }
    let mut sum = 0.0;
    for k in 1..=100 {
        let k = k as f64;
        let term = (-2.0 * k * k * lambda * lambda).exp();
        sum += if k as i64 % 2 == 1 { term } else { -term };
        if term < 1e-17 {
            break;
        }
    }
    (2.0 * sum).clamp(0.0, 1.0)
}

/// A Kolmogorov–Smirnov result.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct KsTest {
    /// The statistic D (sup distance between distribution functions).
    pub statistic: f64,
    /// The p-value (Stephens' finite-sample correction of the asymptotic law).
    pub p_value: f64,
}

fn p_value(d: f64, n_eff: f64) -> f64 {
    let s = n_eff.sqrt();
    kolmogorov_q((s + 0.12 + 0.11 / s) * d)
}

/// One-sample test of `samples` against the standard normal.
pub fn ks_normal(samples: &[f64]) -> KsTest {
    let mut x: Vec<f64> = samples.to_vec();
    x.sort_by(f64::total_cmp);
    let n = x.len() as f64;
    let mut d: f64 = 0.0;
    for (i, &v) in x.iter().enumerate() {
        let f = normal_cdf(v);
        d = d.max((i as f64 + 1.0) / n - f).max(f - i as f64 / n);
    }
    KsTest {
        statistic: d,
        p_value: p_value(d, n),
    }
}

/// Two-sample test of `a` against `b`.
pub fn ks_two_sample(a: &[f64], b: &[f64]) -> KsTest {
    let mut a = a.to_vec();
    let mut b = b.to_vec();
    a.sort_by(f64::total_cmp);
    b.sort_by(f64::total_cmp);
    let (na, nb) = (a.len() as f64, b.len() as f64);
    let (mut i, mut j, mut d) = (0usize, 0usize, 0.0f64);
    while i < a.len() && j < b.len() {
        let v = a[i].min(b[j]);
        while i < a.len() && a[i] <= v {
            i += 1;
        }
        while j < b.len() && b[j] <= v {
            j += 1;
        }
        d = d.max((i as f64 / na - j as f64 / nb).abs());
    }
    KsTest {
        statistic: d,
        p_value: p_value(d, na * nb / (na + nb)),
    }
}

/// Mean and (unbiased) variance.
pub fn mean_var(x: &[f64]) -> (f64, f64) {
    let n = x.len() as f64;
    let m = x.iter().sum::<f64>() / n;
    let v = x.iter().map(|v| (v - m) * (v - m)).sum::<f64>() / (n - 1.0).max(1.0);
    (m, v)
}

/// One channel's marginal at one observation, generated paths against real ones: the
/// two-sample KS distance, the means and the unbiased variances.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Marginal {
    /// Observation time (of the first real series).
    pub time: f64,
    /// Channel index.
    pub channel: usize,
    /// Two-sample KS distance.
    pub ks: f64,
    /// Mean of the real values.
    pub mean_real: f64,
    /// Mean of the generated values.
    pub mean_generated: f64,
    /// Unbiased variance of the real values.
    pub var_real: f64,
    /// Unbiased variance of the generated values.
    pub var_generated: f64,
}

impl Marginal {
    /// (generated − real mean) / max(|real mean|, real sd): relative where the mean is large,
    /// in units of the spread where it is near zero.
    pub fn mean_error(&self) -> f64 {
        (self.mean_generated - self.mean_real) / self.var_real.sqrt().max(self.mean_real.abs())
    }
    /// Relative variance error (generated − real) / real.
    pub fn var_error(&self) -> f64 {
        (self.var_generated - self.var_real) / self.var_real
    }
}

/// Values of channel `c` at observation `k` of every series; missing values are an error.
fn column(d: &TimeSeries, k: usize, c: usize, what: &str) -> Result<Vec<f64>> {
    let (_, n, channels) = d.values.dim();
    if k >= n || c >= channels {
        return Err(Error::config(
            "marginals",
            format!("observation {k}, channel {c} is outside the {what} paths' {n} × {channels}"),
        ));
    }
    let col: Vec<f64> = (0..d.len()).map(|i| d.values[[i, k, c]]).collect();
    if let Some(i) = col.iter().position(|v| !v.is_finite()) {
        return Err(Error::NonFinite {
            what: format!("{what} paths at observation {k}, channel {c} (series {i})"),
            index: i,
        });
    }
    Ok(col)
}

/// Every channel's marginal at each observation index in `at`, `generated` against `real`
/// (the two must have the same channels and observation count; at least two series each).
pub fn compare_marginals(
    real: &TimeSeries,
    generated: &TimeSeries,
    at: &[usize],
) -> Result<Vec<Marginal>> {
    check_pair(real, generated)?;
    let mut out = Vec::with_capacity(at.len() * real.channels());
    for &k in at {
        for c in 0..real.channels() {
            let (r, f) = (
                column(real, k, c, "real")?,
                column(generated, k, c, "generated")?,
            );
            let ((mean_real, var_real), (mean_generated, var_generated)) =
                (mean_var(&r), mean_var(&f));
            out.push(Marginal {
                time: real.times[[0, k]],
                channel: c,
                ks: ks_two_sample(&r, &f).statistic,
                mean_real,
                mean_generated,
                var_real,
                var_generated,
            });
        }
    }
    Ok(out)
}

/// The Pearson correlation of channels `a` and `b` at observation `k` across the series
/// (unbiased covariance over the unbiased deviations, so it is exactly 1 for b = a); a
/// constant channel has none and is an error.
pub fn correlation(d: &TimeSeries, k: usize, a: usize, b: usize) -> Result<f64> {
    let (x, y) = (column(d, k, a, "given")?, column(d, k, b, "given")?);
    if x.len() < 2 {
        return Err(Error::config("correlation", "needs at least two series"));
    }
    let ((mx, vx), (my, vy)) = (mean_var(&x), mean_var(&y));
    if vx == 0.0 || vy == 0.0 {
        return Err(Error::config(
            "correlation",
            format!("channel {a} or {b} is constant at observation {k}: no correlation"),
        ));
    }
    let cov = x
        .iter()
        .zip(&y)
        .map(|(p, q)| (p - mx) * (q - my))
        .sum::<f64>()
        / (x.len() - 1) as f64;
    Ok(cov / (vx * vy).sqrt())
}

fn check_pair(real: &TimeSeries, generated: &TimeSeries) -> Result<()> {
    if real.len() < 2 || generated.len() < 2 {
        return Err(Error::config(
            "marginals",
            format!(
                "need at least two series on each side, got {} real and {} generated",
                real.len(),
                generated.len()
            ),
        ));
    }
    for (what, r, g) in [
        ("channels", real.channels(), generated.channels()),
        ("observations", real.time_len(), generated.time_len()),
    ] {
        if r != g {
            return Err(Error::ShapeMismatch {
                what: format!("generated paths' {what}"),
                expected: r,
                found: g,
            });
        }
    }
    Ok(())
}
