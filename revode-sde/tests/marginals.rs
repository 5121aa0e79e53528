//! Generated against real marginals and correlations: exact values on small data, typed errors.

use ndarray::{Array2, Array3};
use revode_cde::TimeSeries;
use revode_core::Error;
use revode_sde::stats::{compare_marginals, correlation};

/// `n` series, `k` times, channels from `f(series, time, channel)`.
fn series(n: usize, k: usize, c: usize, f: impl Fn(usize, usize, usize) -> f64) -> TimeSeries {
    let values = Array3::from_shape_fn((n, k, c), |(i, t, ch)| f(i, t, ch));
    let times = Array2::from_shape_fn((1, k), |(_, t)| 0.5 * t as f64);
    TimeSeries::new(values, times, None, vec![]).unwrap()
}

#[test]
fn marginals_have_the_exact_small_sample_values() {
    // Real 1, 2, 3, 4 against generated 2, 4, 6, 8 at time 1 (index 2): means 2.5 and 5,
    // unbiased variances 5/3 and 20/3, KS distance ½.
    let real = series(4, 3, 1, |i, _, _| (i + 1) as f64);
    let fake = series(4, 3, 1, |i, _, _| 2.0 * (i + 1) as f64);
    let m = compare_marginals(&real, &fake, &[2]).unwrap();
    assert_eq!(m.len(), 1);
    let m = &m[0];
    assert_eq!((m.time, m.channel), (1.0, 0));
    assert!((m.mean_real - 2.5).abs() < 1e-15 && (m.mean_generated - 5.0).abs() < 1e-15);
    assert!((m.var_real - 5.0 / 3.0).abs() < 1e-14 && (m.var_generated - 20.0 / 3.0).abs() < 1e-14);
    assert!((m.ks - 0.5).abs() < 1e-15);
    // Mean error relative to max(|2.5|, √(5/3)) = 2.5; variance error (20/3 − 5/3)/(5/3) = 3.
    assert!((m.mean_error() - 1.0).abs() < 1e-15);
    assert!((m.var_error() - 3.0).abs() < 1e-13);
    // Against itself: every statistic agrees, at every index and channel.
    let two = series(5, 4, 2, |i, t, c| {
        (i * i + t) as f64 * if c == 0 { 1.0 } else { -0.3 }
    });
    for m in compare_marginals(&two, &two, &[0, 1, 3]).unwrap() {
        assert_eq!((m.ks, m.mean_error(), m.var_error()), (0.0, 0.0, 0.0));
    }
}

#[test]
fn correlations_of_exact_relations() {
    let d = series(6, 2, 3, |i, t, c| {
        let x = (i as f64 * 1.7).sin() + t as f64;
        match c {
            0 => x,
            1 => 3.0 * x - 2.0,
            _ => -0.5 * x + 7.0,
        }
    });
    assert!((correlation(&d, 0, 0, 0).unwrap() - 1.0).abs() < 1e-14);
    assert!((correlation(&d, 1, 0, 1).unwrap() - 1.0).abs() < 1e-14);
    assert!((correlation(&d, 1, 0, 2).unwrap() + 1.0).abs() < 1e-14);
    // Orthogonal centred columns: zero.
    let o = series(4, 1, 2, |i, _, c| {
        [[1.0, 1.0], [-1.0, 1.0], [1.0, -1.0], [-1.0, -1.0]][i][c]
    });
    assert!(correlation(&o, 0, 0, 1).unwrap().abs() < 1e-15);
}

#[test]
fn bad_inputs_are_typed_errors() {
    let a = series(4, 3, 2, |i, t, c| (i + t + c) as f64);
    let fewer_channels = series(4, 3, 1, |i, _, _| i as f64);
    let fewer_times = series(4, 2, 2, |i, _, _| i as f64);
    assert!(matches!(
        compare_marginals(&a, &fewer_channels, &[0]),
        Err(Error::ShapeMismatch { .. })
    ));
    assert!(matches!(
        compare_marginals(&a, &fewer_times, &[0]),
        Err(Error::ShapeMismatch { .. })
    ));
    assert!(matches!(
        compare_marginals(&a, &a, &[3]),
        Err(Error::Config { .. })
    ));
    let one = series(1, 3, 2, |_, _, _| 0.0);
    assert!(matches!(
        compare_marginals(&a, &one, &[0]),
        Err(Error::Config { .. })
    ));
    let mut missing = a.clone();
    missing.values[[2, 1, 1]] = f64::NAN;
    assert!(matches!(
        compare_marginals(&a, &missing, &[1]),
        Err(Error::NonFinite { index: 2, .. })
    ));
    assert!(compare_marginals(&a, &missing, &[0, 2]).is_ok());
    assert!(matches!(
        correlation(&a, 0, 0, 2),
        Err(Error::Config { .. })
    ));
    assert!(matches!(
        correlation(&one, 0, 0, 1),
        Err(Error::Config { .. })
    ));
    // A constant channel: 0/0, refused rather than NaN.
    let flat = series(4, 2, 2, |i, _, c| if c == 0 { i as f64 } else { 2.0 });
    assert!(matches!(
        correlation(&flat, 1, 0, 1),
        Err(Error::Config { .. })
    ));
}
