//! Interpolation: knots, derivatives, exactness, missing data, increments.

use revode_cde::*;
use revode_core::Error;

const ALL: [Interpolation; 4] = [
    Interpolation::Linear,
    Interpolation::Rectilinear,
    Interpolation::HermiteCubic,
    Interpolation::NaturalCubic,
];

fn opts(i: Interpolation) -> PathOptions {
    PathOptions {
        interpolation: i,
        ..Default::default()
    }
}

/// Irregular times; 2 series × 2 channels of smooth but non-polynomial data.
fn data() -> PathData {
    let times = vec![0.0, 0.3, 0.45, 1.1, 1.7, 2.0, 2.9];
    let mut values = Vec::new();
    for s in 0..2 {
        for &t in &times {
            values.push((t + s as f64).sin());
            values.push((0.5 * t).exp() - s as f64);
        }
    }
    PathData {
        times,
        batch: 2,
        channels: 2,
        values,
    }
}

#[test]
fn knots_are_reproduced_exactly() {
    let d = data();
    for i in ALL {
        let p = Path::new(&d, &opts(i)).unwrap();
        let mut out = vec![0.0; 4];
        for (k, &t) in d.times.iter().enumerate() {
            p.evaluate(t, &mut out).unwrap();
            for s in 0..2 {
                for c in 0..2 {
                    let want = d.values[(s * d.times.len() + k) * 2 + c];
                    assert_eq!(
                        out[s * 2 + c],
                        want,
                        "{i:?} knot {k} series {s} channel {c}"
                    );
                }
            }
        }
    }
}

#[test]
fn derivatives_match_finite_differences_and_are_continuous() {
    let d = data();
    for i in [
        Interpolation::Linear,
        Interpolation::HermiteCubic,
        Interpolation::NaturalCubic,
    ] {
        let p = Path::new(&d, &opts(i)).unwrap();
        let (mut a, mut b, mut g) = (vec![0.0; 4], vec![0.0; 4], vec![0.0; 4]);
        for &t in &[0.1, 0.4, 0.8, 1.5, 2.5] {
            let e = 1e-6;
            p.evaluate(t + e, &mut a).unwrap();
            p.evaluate(t - e, &mut b).unwrap();
            p.derivative(t, &mut g).unwrap();
            for j in 0..4 {
                let fd = (a[j] - b[j]) / (2.0 * e);
                assert!(
                    (fd - g[j]).abs() < 1e-7 * (1.0 + g[j].abs()),
                    "{i:?} t={t}: {fd} vs {}",
                    g[j]
                );
            }
        }
        if i == Interpolation::Linear {
            continue;
        }
        // C¹ at interior knots: the derivative just left and right agree.
        for &t in &d.times[1..d.times.len() - 1] {
            p.derivative(t - 1e-9, &mut a).unwrap();
            p.derivative(t, &mut b).unwrap();
            for j in 0..4 {
                assert!(
                    (a[j] - b[j]).abs() < 1e-6,
                    "{i:?} knot {t}: {} vs {}",
                    a[j],
                    b[j]
                );
            }
        }
    }
}

#[test]
fn lines_are_exact_and_natural_splines_are_c2() {
    let times = vec![0.0, 0.2, 0.9, 1.0, 2.5];
    let values: Vec<f64> = times.iter().map(|t| 3.0 - 2.0 * t).collect();
    let d = PathData {
        times,
        batch: 1,
        channels: 1,
        values,
    };
    for i in [
        Interpolation::Linear,
        Interpolation::HermiteCubic,
        Interpolation::NaturalCubic,
    ] {
        let p = Path::new(&d, &opts(i)).unwrap();
        let (mut v, mut g) = ([0.0], [0.0]);
        for k in 0..=50 {
            let t = 2.5 * k as f64 / 50.0;
            p.evaluate(t, &mut v).unwrap();
            p.derivative(t, &mut g).unwrap();
            assert!((v[0] - (3.0 - 2.0 * t)).abs() < 1e-13, "{i:?} t={t}");
            assert!((g[0] + 2.0).abs() < 1e-12, "{i:?} t={t}");
        }
    }
    // Natural spline: second derivative continuous at interior knots and zero at both ends.
    let d = data();
    let p = Path::new(&d, &opts(Interpolation::NaturalCubic)).unwrap();
    let second = |t: f64| {
        let (mut a, mut b) = (vec![0.0; 4], vec![0.0; 4]);
        let e = 1e-5;
        p.derivative((t + e).min(2.9), &mut a).unwrap();
        p.derivative((t - e).max(0.0), &mut b).unwrap();
        let span = (t + e).min(2.9) - (t - e).max(0.0);
        a.iter()
            .zip(&b)
            .map(|(x, y)| (x - y) / span)
            .collect::<Vec<f64>>()
    };
    for j in 0..4 {
        assert!(
            second(0.0)[j].abs() < 1e-3 && second(2.9)[j].abs() < 1e-3,
            "natural end conditions"
        );
    }
    for &t in &d.times[1..d.times.len() - 1] {
        let (l, r) = (second(t - 1e-3), second(t + 1e-3));
        for j in 0..4 {
            assert!(
                (l[j] - r[j]).abs() < 1e-2 * (1.0 + l[j].abs()),
                "C² at {t}: {} vs {}",
                l[j],
                r[j]
            );
        }
    }
}

#[test]
fn increments_are_exactly_antisymmetric() {
    let d = data();
    for i in ALL {
        let p = Path::new(&d, &opts(i)).unwrap();
        let (mut a, mut b) = (vec![0.0; 4], vec![0.0; 4]);
        for &(s, t) in &[(0.1, 2.2), (1.7, 0.3), (0.45, 0.45), (0.0, 2.9)] {
            p.increment(s, t, &mut a).unwrap();
            p.increment(t, s, &mut b).unwrap();
            for j in 0..4 {
                assert!(a[j] == -b[j], "{i:?}: {} vs {}", a[j], -b[j]);
            }
        }
    }
    // The step path's increment across a knot includes the jump.
    let p = Path::new(&d, &opts(Interpolation::Rectilinear)).unwrap();
    let mut inc = vec![0.0; 4];
    p.increment(0.35, 0.5, &mut inc).unwrap();
    assert_eq!(inc[0], d.values[2 * 2] - d.values[2]);
}

#[test]
fn missing_values() {
    let nan = f64::NAN;
    let times = vec![0.0, 1.0, 2.0, 3.0, 4.0];
    // Channel 0: leading NaN, an interior gap, trailing NaN.
    let values = vec![nan, nan, 2.0, nan, 6.0]
        .into_iter()
        .flat_map(|v| [v, 1.0])
        .collect();
    let d = PathData {
        times,
        batch: 1,
        channels: 2,
        values,
    };
    let p = Path::new(
        &d,
        &PathOptions {
            interpolation: Interpolation::Linear,
            ..Default::default()
        },
    )
    .unwrap();
    let mut out = vec![0.0; 2];
    for (t, want) in [(0.0, 2.0), (1.0, 2.0), (2.5, 3.0), (3.0, 4.0), (4.0, 6.0)] {
        p.evaluate(t, &mut out).unwrap();
        assert_eq!(out[0], want, "t={t}");
    }
    let trailing = PathData {
        times: vec![0.0, 1.0, 2.0],
        batch: 1,
        channels: 1,
        values: vec![1.0, 5.0, nan],
    };
    let p = Path::new(&trailing, &PathOptions::default()).unwrap();
    let mut o = [0.0];
    p.evaluate(2.0, &mut o).unwrap();
    assert_eq!(o[0], 5.0, "forward fill");
    // An all-NaN channel is an error naming the series and the channel, unless zeros are allowed.
    let empty = PathData {
        times: vec![0.0, 1.0],
        batch: 2,
        channels: 2,
        values: vec![1.0, 1.0, 1.0, 1.0, nan, 2.0, nan, 3.0],
    };
    match Path::new(&empty, &PathOptions::default()) {
        Err(Error::Config { message, .. }) => {
            assert!(message.contains("series 1, channel 0"), "{message}")
        }
        other => panic!("expected an error, got {other:?}"),
    }
    let p = Path::new(
        &empty,
        &PathOptions {
            all_missing: AllMissing::Zeros,
            ..Default::default()
        },
    )
    .unwrap();
    let mut o = vec![9.0; 4];
    p.evaluate(0.5, &mut o).unwrap();
    assert_eq!(o[2], 0.0);
}

#[test]
fn time_and_count_channels() {
    let nan = f64::NAN;
    let d = PathData {
        times: vec![0.0, 1.0, 3.0],
        batch: 1,
        channels: 1,
        values: vec![1.0, nan, 2.0],
    };
    let o = PathOptions {
        interpolation: Interpolation::Linear,
        time_channel: true,
        count_channels: true,
        ..Default::default()
    };
    let p = Path::new(&d, &o).unwrap();
    assert_eq!(p.channels(), 3);
    let mut out = vec![0.0; 3];
    p.evaluate(3.0, &mut out).unwrap();
    assert_eq!(
        out,
        vec![3.0, 2.0, 2.0 / 3.0],
        "two of three times observed"
    );
    p.evaluate(1.0, &mut out).unwrap();
    assert_eq!(out[2], 1.0 / 3.0, "one observation by t = 1");
}

#[test]
fn bad_input_is_an_error() {
    let mut out = vec![0.0; 4];
    let p = Path::new(&data(), &PathOptions::default()).unwrap();
    assert!(matches!(
        p.evaluate(3.5, &mut out),
        Err(Error::OutsideDomain { .. })
    ));
    assert!(matches!(
        p.evaluate(1.0, &mut [0.0; 3]),
        Err(Error::ShapeMismatch { .. })
    ));
    let mut d = data();
    d.values.pop();
    assert!(matches!(
        Path::new(&d, &PathOptions::default()),
        Err(Error::ShapeMismatch { .. })
    ));
    let mut d = data();
    d.times[2] = d.times[1];
    assert!(Path::new(&d, &PathOptions::default()).is_err());
    let mut d = data();
    d.values[3] = f64::INFINITY;
    assert!(matches!(
        Path::new(&d, &PathOptions::default()),
        Err(Error::NonFinite { .. })
    ));
}
