//! Neural CDE gradients through the core's unchanged gradient methods.

use revode_cde::*;
use revode_core::prelude::*;

fn path(interp: Interpolation) -> Path {
    // 3 series × 12 irregular times × 2 channels, with a few missing values.
    let times: Vec<f64> = (0..12)
        .map(|k| k as f64 * 0.25 + 0.03 * ((k * 7 % 5) as f64))
        .collect();
    let mut values = Vec::new();
    for s in 0..3 {
        for (k, &t) in times.iter().enumerate() {
            let missing = (k + s) % 5 == 3;
            values.push(if missing {
                f64::NAN
            } else {
                (t * (1.0 + s as f64)).sin()
            });
            values.push((0.3 * t).cos() * (s as f64 - 1.0));
        }
    }
    let data = PathData {
        times,
        batch: 3,
        channels: 2,
        values,
    };
    Path::new(
        &data,
        &PathOptions {
            interpolation: interp,
            time_channel: true,
            ..Default::default()
        },
    )
    .unwrap()
}

fn rel(a: &[f64], b: &[f64]) -> f64 {
    let s = b.iter().fold(0.0f64, |m, v| m.max(v.abs())).max(1e-300);
    a.iter()
        .zip(b)
        .fold(0.0f64, |m, (x, y)| m.max((x - y).abs()))
        / s
}

fn loss(ys: &[Vec<f64>], cots: &mut [Vec<f64>]) -> f64 {
    let last = ys.len() - 1;
    let mut l = 0.0;
    for (i, v) in ys[last].iter().enumerate() {
        let w = 1.0 + 0.1 * i as f64;
        l += w * v * v;
        cots[last][i] = 2.0 * w * v;
    }
    l
}

#[test]
fn cde_reversible_equals_direct_and_finite_differences() {
    for interp in [
        Interpolation::Linear,
        Interpolation::HermiteCubic,
        Interpolation::NaturalCubic,
        Interpolation::Rectilinear,
    ] {
        let p = path(interp);
        let (t0, t1) = p.domain();
        let times = p.knots().to_vec();
        let field = CdeMlp::new(4, p.channels(), 16, 2, false, 1).unwrap();
        let z0: Vec<f64> = (0..12).map(|i| 0.1 * (i as f64 - 6.0)).collect();
        let make = |f: CdeMlp| {
            Reversible::new(
                Rk::new(CdeTerm::new(f, p.clone()).unwrap(), Tableau::midpoint()),
                0.999,
            )
            .unwrap()
        };
        let scheme = make(field.clone());
        let opts = SolveOptions::fixed(0.05);
        let d = gradient(
            &scheme,
            &z0,
            &times,
            &opts,
            &GradientMethod::Direct.into(),
            loss,
        )
        .unwrap();
        for m in [
            GradientMethod::Reversible,
            GradientMethod::Checkpointed { snapshots: Some(4) },
            GradientMethod::CheckpointedReversible { every: 5 },
        ] {
            let g = gradient(&scheme, &z0, &times, &opts, &m.clone().into(), loss).unwrap();
            assert!(
                rel(&g.params, &d.params) <= 1e-10,
                "{interp:?} {m:?}: {:e}",
                rel(&g.params, &d.params)
            );
            assert!(rel(&g.y0, &d.y0) <= 1e-10, "{interp:?} {m:?}");
        }
        // Central differences in a few parameters and every initial-state entry.
        let eval = |f: CdeMlp, z: &[f64]| {
            let sol = solve(&make(f), &z.to_vec(), &times, &opts).unwrap();
            let mut c: Vec<Vec<f64>> = sol.ys.iter().map(|y| vec![0.0; y.len()]).collect();
            loss(&sol.ys, &mut c)
        };
        let eps = 1e-6;
        let base = field.params().to_vec();
        for i in (0..base.len()).step_by(base.len() / 17) {
            let mut q = base.clone();
            q[i] += eps;
            let a = eval(field.clone().with_params(&q).unwrap(), &z0);
            q[i] -= 2.0 * eps;
            let b = eval(field.clone().with_params(&q).unwrap(), &z0);
            let fd = (a - b) / (2.0 * eps);
            assert!(
                (fd - d.params[i]).abs() <= 1e-6 * (1.0 + d.params[i].abs()),
                "{interp:?} θ[{i}]: {fd} vs {}",
                d.params[i]
            );
        }
        for i in 0..z0.len() {
            let mut z = z0.clone();
            z[i] += eps;
            let a = eval(field.clone(), &z);
            z[i] -= 2.0 * eps;
            let b = eval(field.clone(), &z);
            let fd = (a - b) / (2.0 * eps);
            assert!(
                (fd - d.y0[i]).abs() <= 1e-6 * (1.0 + d.y0[i].abs()),
                "{interp:?} z0[{i}]"
            );
        }
        let _ = (t0, t1);
    }
}

#[test]
fn cde_shape_errors() {
    let p = path(Interpolation::Linear);
    assert!(matches!(
        CdeTerm::new(CdeMlp::new(4, 2, 8, 1, false, 0).unwrap(), p.clone()),
        Err(Error::ShapeMismatch { .. })
    ));
    let term = CdeTerm::new(CdeMlp::new(4, 3, 8, 1, false, 0).unwrap(), p.clone()).unwrap();
    let scheme = Reversible::new(Rk::new(term, Tableau::rk4()), 0.999).unwrap();
    let r = solve(&scheme, &vec![0.0; 5], p.knots(), &SolveOptions::fixed(0.1));
    assert!(matches!(r, Err(Error::ShapeMismatch { .. })));
    let (a, b) = p.domain();
    let r = solve(
        &scheme,
        &vec![0.0; 12],
        &[a, b + 1.0],
        &SolveOptions::fixed(0.1),
    );
    assert!(matches!(r, Err(Error::OutsideDomain { .. })), "{r:?}");
}

/// Complete data (no missing values) for the data-gradient test.
fn complete_data() -> PathData {
    let times: Vec<f64> = (0..10)
        .map(|k| k as f64 * 0.3 + 0.02 * ((k * 3 % 4) as f64))
        .collect();
    let mut values = Vec::new();
    for s in 0..2 {
        for &t in &times {
            values.push((t * (1.0 + s as f64)).sin());
            values.push((0.7 * t).cos() + 0.2 * s as f64);
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
fn gradients_flow_into_the_data_values() {
    for interp in [
        Interpolation::Linear,
        Interpolation::HermiteCubic,
        Interpolation::Rectilinear,
    ] {
        let data = complete_data();
        let opts_path = PathOptions {
            interpolation: interp,
            time_channel: true,
            ..Default::default()
        };
        let field = CdeMlp::new(3, 3, 8, 1, false, 4).unwrap();
        let make = |values: &[f64]| {
            let d = PathData {
                values: values.to_vec(),
                ..data.clone()
            };
            let p = Path::new(&d, &opts_path).unwrap();
            let term = CdeTerm::new(field.clone(), p)
                .unwrap()
                .with_data_gradient()
                .unwrap();
            Reversible::new(Rk::new(term, Tableau::heun()), 0.999).unwrap()
        };
        let scheme = make(&data.values);
        let (t0, t1) = (data.times[0], data.times[9]);
        let z0: Vec<f64> = (0..6).map(|i| 0.2 * (i as f64 - 2.5)).collect();
        // Steps that straddle knots, so increments mix intervals.
        let opts = SolveOptions::fixed(0.11);
        let times = [t0, t1];
        let g = |m: GradientMethod| gradient(&scheme, &z0, &times, &opts, &m.into(), loss).unwrap();
        let direct = g(GradientMethod::Direct);
        let rev = g(GradientMethod::Reversible);
        let np = field.params().len();
        assert_eq!(direct.params.len(), np + data.values.len());
        assert!(rel(&rev.params, &direct.params) <= 1e-10, "{interp:?}");
        let value = |v: &[f64]| {
            let sol = solve(&make(v), &z0, &times, &opts).unwrap();
            let mut c = vec![vec![0.0; 6]; 2];
            loss(&sol.ys, &mut c)
        };
        let h = 1e-6;
        for j in 0..data.values.len() {
            let mut v = data.values.clone();
            v[j] += h;
            let up = value(&v);
            v[j] -= 2.0 * h;
            let fd = (up - value(&v)) / (2.0 * h);
            let an = direct.params[np + j];
            assert!(
                (fd - an).abs() <= 1e-6 * (1.0 + an.abs()),
                "{interp:?} value {j}: FD {fd} vs {an}"
            );
        }
    }
    // Natural cubic splines are global in their knots: a clear error.
    let p = Path::new(
        &complete_data(),
        &PathOptions {
            interpolation: Interpolation::NaturalCubic,
            ..Default::default()
        },
    )
    .unwrap();
    let f = CdeMlp::new(3, 2, 8, 1, false, 4).unwrap();
    assert!(matches!(
        CdeTerm::new(f, p).unwrap().with_data_gradient(),
        Err(Error::Unsupported(_))
    ));
}

#[test]
fn evaluate_data_vjp_equals_finite_differences() {
    // X(t) is linear in the data values: its pullback at knots and between them, for every
    // local interpolation, against central differences of Path::evaluate.
    let data = complete_data();
    for interp in [
        Interpolation::Linear,
        Interpolation::HermiteCubic,
        Interpolation::Rectilinear,
    ] {
        let po = PathOptions {
            interpolation: interp,
            time_channel: true,
            ..Default::default()
        };
        let at = |values: &[f64], t: f64| {
            let d = PathData {
                values: values.to_vec(),
                ..data.clone()
            };
            let p = Path::new(&d, &po).unwrap();
            let mut out = vec![0.0; 2 * 3];
            p.evaluate(t, &mut out).unwrap();
            out
        };
        let path = Path::new(&data, &po).unwrap();
        let cot = [0.3, -0.7, 1.1, 0.5, 0.2, -0.4];
        for t in [
            data.times[0],
            data.times[3],
            0.5 * (data.times[4] + data.times[5]),
        ] {
            let mut bar = vec![0.0; data.values.len()];
            path.evaluate_data_vjp(t, &cot, &mut bar).unwrap();
            for j in 0..data.values.len() {
                let mut v = data.values.clone();
                v[j] += 1e-6;
                let up = at(&v, t);
                v[j] -= 2e-6;
                let dn = at(&v, t);
                let fd: f64 = (0..6).map(|i| cot[i] * (up[i] - dn[i]) / 2e-6).sum();
                assert!(
                    (fd - bar[j]).abs() <= 1e-8,
                    "{interp:?} t {t} value {j}: {fd} vs {}",
                    bar[j]
                );
            }
        }
        let mut short = vec![0.0; 3];
        assert!(path
            .evaluate_data_vjp(data.times[0], &cot, &mut short)
            .is_err());
    }
}
