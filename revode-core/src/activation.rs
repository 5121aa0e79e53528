//! Fast, accurate activations for hand-written fields.
//!
//! The system `tanh` costs ≈ 10–21 ns per element on the project machine, more than the rest
//! of a small MLP. [`tanh`] here uses an odd Taylor polynomial near 0 and a table-driven
//! `exp` elsewhere; it stays within a few ulp of `f64::tanh` (tested).

use std::sync::OnceLock;

/// Taylor coefficients of tanh, a_n for xⁿ (n ≤ 23), from the recurrence implied by
/// t' = 1 − t²: (n+1)·a_{n+1} = [n = 0] − Σ_{k=0}^{n} a_k a_{n−k}.
const fn tanh_series() -> [f64; 24] {
    let mut a = [0.0f64; 24];
    let mut n = 0;
    while n < 23 {
        let mut s = if n == 0 { 1.0 } else { 0.0 };
        let mut k = 0;
        while k <= n {
            s -= a[k] * a[n - k];
            k += 1;
        }
        a[n + 1] = s / (n as f64 + 1.0);
        n += 1;
    }
    a
}

const SERIES: [f64; 24] = tanh_series();

/// Below this |x| the odd series (to x²³) is used: its truncation error is < 1e-17 relative.
const SMALL: f64 = 0.25;

/// 2^{j/64} for j = 0..63.
fn exp2_table() -> &'static [f64; 64] {
    static TABLE: OnceLock<[f64; 64]> = OnceLock::new();
    TABLE.get_or_init(|| {
        let mut t = [0.0; 64];
        for (j, v) in t.iter_mut().enumerate() {
            *v = (j as f64 / 64.0).exp2();
        }
        t
    })
}

/// e^{−u} for 0 ≤ u ≤ 40, via e^{−u} = 2^{k/64}·e^{r}, |r| ≤ ln2/128.
#[inline(always)]
fn exp_neg(u: f64, table: &[f64; 64]) -> f64 {
    const INV_STEP: f64 = 64.0 / std::f64::consts::LN_2;
    const STEP_HI: f64 = 0.010_830_424_695_086_549; // ln2/64 with 20 low mantissa bits cleared
    const STEP_LO: f64 = 1.162_596_423_439_437e-12; // ln2/64 − STEP_HI
                                                    // Round to nearest with the 1.5·2⁵² trick: `f64::round` is a libm call on baseline x86-64.
    const SHIFT: f64 = 6_755_399_441_055_744.0;
    let k = (-u * INV_STEP + SHIFT) - SHIFT;
    let r = (-u - k * STEP_HI) - k * STEP_LO;
    // e^r to degree 5: |r| ≤ 0.0054 leaves < 4e-17.
    let r2 = r * r;
    let p = 1.0 + r + r2 * (0.5 + r * (1.0 / 6.0)) + r2 * r2 * (1.0 / 24.0 + r * (1.0 / 120.0));
    let ki = k as i64;
    let (n, j) = (ki >> 6, (ki & 63) as usize);
    f64::from_bits(((1023 + n) as u64) << 52) * table[j] * p
}

/// Hyperbolic tangent within a few ulp of `f64::tanh`, several times faster.
#[inline(always)]
pub fn tanh(x: f64) -> f64 {
    let ax = x.abs();
    if ax < SMALL {
        let x2 = x * x;
        // Odd series x·Σ a_{2k+1} x^{2k}, Estrin-style in x⁴ to shorten the dependency chain.
        let x4 = x2 * x2;
        let c = |k: usize| SERIES[2 * k + 1];
        let p01 = c(0) + c(1) * x2;
        let p23 = c(2) + c(3) * x2;
        let p45 = c(4) + c(5) * x2;
        let p67 = c(6) + c(7) * x2;
        let p89 = c(8) + c(9) * x2;
        let p1011 = c(10) + c(11) * x2;
        let x8 = x4 * x4;
        let q0 = p01 + p23 * x4;
        let q1 = p45 + p67 * x4;
        let q2 = p89 + p1011 * x4;
        return x * (q0 + x8 * (q1 + x8 * q2));
    }
    if ax.is_nan() {
        return x;
    }
    let e = exp_neg((2.0 * ax).min(40.0), exp2_table());
    ((1.0 - e) / (1.0 + e)).copysign(x)
}

/// e^x for |x| ≤ 18 in f32, branch-free (vectorises): Cody–Waite reduction to |r| ≤ ln2/2 and a
/// degree-6 polynomial (relative error ≈ 1e-7).
#[inline(always)]
fn exp_f32(x: f32) -> f32 {
    const SHIFT: f32 = 12_582_912.0; // 1.5·2²³: adding and subtracting rounds to an integer
    const LN2_HI: f32 = 0.693_145_75;
    const LN2_LO: f32 = 1.428_606_8e-6;
    let shifted = x * std::f32::consts::LOG2_E + SHIFT;
    let k = shifted - SHIFT;
    let r = (x - k * LN2_HI) - k * LN2_LO;
    let p = 1.0
        + r * (1.0
            + r * (0.5
                + r * (1.0 / 6.0 + r * (1.0 / 24.0 + r * (1.0 / 120.0 + r * (1.0 / 720.0))))));
    // k is also the low bits of `shifted` (|k| < 2²²), read with integer arithmetic: no
    // float-to-int conversion (Rust's saturating `as` would keep the loop scalar).
    let k_int = shifted.to_bits().wrapping_sub(SHIFT.to_bits());
    f32::from_bits(k_int.wrapping_add(127) << 23) * p
}

/// Branch-free f32 tanh: 1 − 2/(e^{2x} + 1) on x clamped to [−9, 9] (tanh(9) rounds to 1 in
/// f32). Absolute error ≈ 1e-7; NaN propagates.
#[inline(always)]
pub fn tanh_f32(x: f32) -> f32 {
    let x = x.clamp(-9.0, 9.0);
    1.0 - 2.0 / (exp_f32(2.0 * x) + 1.0)
}

#[cfg(test)]
mod tests {
    #[test]
    fn tanh_f32_is_close() {
        let mut worst: f32 = 0.0;
        let mut x = -12.0f32;
        while x < 12.0 {
            worst = worst.max((super::tanh_f32(x) - x.tanh()).abs());
            x += 0.0013;
        }
        assert!(worst < 3e-7, "worst absolute error {worst:e}");
        assert!(super::tanh_f32(f32::NAN).is_nan());
        assert!((super::tanh_f32(f32::INFINITY) - 1.0).abs() <= 6e-8);
    }

    #[test]
    fn series_matches_known_coefficients() {
        let a = super::SERIES;
        assert_eq!(a[1], 1.0);
        assert!((a[3] + 1.0 / 3.0).abs() < 1e-16);
        assert!((a[5] - 2.0 / 15.0).abs() < 1e-16);
        assert!((a[7] + 17.0 / 315.0).abs() < 1e-16);
        assert!((a[9] - 62.0 / 2835.0).abs() < 1e-16);
        assert!(a[2] == 0.0 && a[4] == 0.0);
    }

    #[test]
    fn tanh_matches_libm() {
        let mut worst: f64 = 0.0;
        let mut x = -30.0;
        while x < 30.0 {
            let (a, b) = (super::tanh(x), x.tanh());
            let err = (a - b).abs() / b.abs().max(f64::MIN_POSITIVE);
            worst = worst.max(err);
            x += 0.000_731;
        }
        for &x in &[
            0.0, -0.0, 1e-300, -1e-20, 0.249_999, 0.25, 0.250_001, 354.0, -1e300,
        ] {
            let (a, b) = (super::tanh(x), f64::tanh(x));
            assert!(
                (a - b).abs() <= 4.0 * f64::EPSILON * b.abs(),
                "x={x}: {a} vs {b}"
            );
        }
        assert!(worst < 4.0 * f64::EPSILON, "worst relative error {worst:e}");
        assert!(super::tanh(f64::NAN).is_nan());
        assert_eq!(super::tanh(f64::INFINITY), 1.0);
        assert_eq!(super::tanh(f64::NEG_INFINITY), -1.0);
    }
}
