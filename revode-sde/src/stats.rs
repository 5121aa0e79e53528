//! Kolmogorov–Smirnov statistics for testing random paths and generated marginals.

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
