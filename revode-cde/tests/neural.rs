//! The dfdx CDE field: the same numbers as the native field with the same parameters, and the
//! core's gradient methods unchanged.

use dfdx::prelude::Cpu;
use revode_cde::*;
use revode_core::mlp::MlpSpec;
use revode_core::neural::{Batch, NeuralMlp};
use revode_core::prelude::*;

const HID: usize = 4;
const W: usize = 16;
/// HID × channels (2 data channels + time).
const OUT: usize = 12;

fn path(interp: Interpolation) -> Path {
    // 3 series × 10 irregular times × 2 channels, one value missing.
    let times: Vec<f64> = (0..10)
        .map(|k| k as f64 * 0.3 + 0.02 * (k % 3) as f64)
        .collect();
    let mut values = Vec::new();
    for s in 0..3 {
        for (k, &t) in times.iter().enumerate() {
            values.push(if (k + s) % 7 == 4 {
                f64::NAN
            } else {
                (t * (1.0 + s as f64)).sin()
            });
            values.push((0.4 * t).cos() * (s as f64 - 1.2));
        }
    }
    let data = PathData {
        times,
        batch: 3,
        channels: 2,
        values,
    };
    let opts = PathOptions {
        interpolation: interp,
        time_channel: true,
        ..Default::default()
    };
    Path::new(&data, &opts).unwrap()
}

fn spec() -> MlpSpec {
    MlpSpec {
        outputs: Some(OUT),
        depth: 2,
        ..MlpSpec::new(HID, W)
    }
}

fn rel(a: &[f64], b: &[f64]) -> f64 {
    let s = b.iter().fold(0.0f64, |m, v| m.max(v.abs())).max(1e-300);
    a.iter()
        .zip(b)
        .fold(0.0f64, |m, (x, y)| m.max((x - y).abs()))
        / s
}

/// Σ_i w_i z_i² at the last output.
fn loss<V: State>(ys: &[V], cots: &mut [V]) -> f64 {
    let last = ys.len() - 1;
    let v = ys[last].to_f64_vec();
    let w = |i: usize| 1.0 + 0.1 * i as f64;
    let g: Vec<f64> = v.iter().enumerate().map(|(i, x)| 2.0 * w(i) * x).collect();
    cots[last].set_from_f64(&g);
    v.iter().enumerate().map(|(i, x)| w(i) * x * x).sum()
}

type Neural = NeuralCdeTerm<f64, Cpu>;

fn neural(p: &Path, params: &[f64]) -> Neural {
    let dev = Cpu::default();
    let model = NeuralMlp::from_flat(&dev, spec(), params).unwrap();
    NeuralCdeTerm::new(model, p.clone(), &dev).unwrap()
}

#[test]
fn dfdx_field_equals_native_field_and_gradients_agree() {
    let dev = Cpu::default();
    for interp in [
        Interpolation::HermiteCubic,
        Interpolation::Linear,
        Interpolation::NaturalCubic,
    ] {
        let p = path(interp);
        let native = CdeMlp::new(HID, p.channels(), W, 2, false, 3).unwrap();
        let params = native.params().to_vec();
        assert_eq!(params.len(), spec().num_params(), "one parameter layout");
        let z0: Vec<f64> = (0..3 * HID).map(|i| 0.15 * (i as f64 - 5.0)).collect();
        let times = p.knots().to_vec();
        let opts = SolveOptions::fixed(0.07);
        let ns = Reversible::new(
            Rk::new(CdeTerm::new(native, p.clone()).unwrap(), Tableau::heun()),
            0.9,
        )
        .unwrap();
        let scheme = Reversible::new(Rk::new(neural(&p, &params), Tableau::heun()), 0.9).unwrap();
        let zb = Batch::<f64, Cpu>::from_rows(&dev, 3, HID, &z0).unwrap();
        // Same solution.
        let a = solve(&ns, &z0, &times, &opts).unwrap();
        let b = solve(&scheme, &zb, &times, &opts).unwrap();
        for (x, y) in a.ys.iter().zip(&b.ys) {
            assert!(
                rel(&y.to_host(), x) <= 1e-13,
                "{interp:?}: {:e}",
                rel(&y.to_host(), x)
            );
        }
        // Same gradients; reversible = direct to round-off.
        let g_native = gradient(
            &ns,
            &z0,
            &times,
            &opts,
            &GradientMethod::Direct.into(),
            loss,
        )
        .unwrap();
        let direct = gradient(
            &scheme,
            &zb,
            &times,
            &opts,
            &GradientMethod::Direct.into(),
            loss,
        )
        .unwrap();
        let rev = gradient(
            &scheme,
            &zb,
            &times,
            &opts,
            &GradientMethod::Reversible.into(),
            loss,
        )
        .unwrap();
        let (gd, gr) = (
            direct.params.model.to_flat(&spec()),
            rev.params.model.to_flat(&spec()),
        );
        assert!(
            rel(&gd, &g_native.params) <= 1e-11,
            "{interp:?}: {:e}",
            rel(&gd, &g_native.params)
        );
        assert!(rel(&gr, &gd) <= 1e-10, "{interp:?}: {:e}", rel(&gr, &gd));
        assert!(rel(&rev.y0.to_host(), &direct.y0.to_host()) <= 1e-10);
        assert!(rel(&direct.y0.to_host(), &g_native.y0) <= 1e-11);
        // Central differences in a spread of parameters.
        let value = |q: &[f64]| {
            let s = Reversible::new(Rk::new(neural(&p, q), Tableau::heun()), 0.9).unwrap();
            let sol = solve(&s, &zb, &times, &opts).unwrap();
            let mut c: Vec<_> = sol.ys.iter().map(|y| y.zeros_like()).collect();
            loss(&sol.ys, &mut c)
        };
        let eps = 1e-6;
        for i in (0..params.len()).step_by(params.len() / 13) {
            let mut q = params.clone();
            q[i] += eps;
            let up = value(&q);
            q[i] -= 2.0 * eps;
            let fd = (up - value(&q)) / (2.0 * eps);
            assert!(
                (fd - gd[i]).abs() <= 1e-6 * (1.0 + gd[i].abs()),
                "{interp:?} θ[{i}]: {fd} vs {}",
                gd[i]
            );
        }
    }
}

#[test]
fn dfdx_field_data_gradients_equal_native() {
    let p = path(Interpolation::HermiteCubic);
    let native = CdeMlp::new(HID, p.channels(), W, 2, false, 5).unwrap();
    let params = native.params().to_vec();
    let z0: Vec<f64> = (0..3 * HID).map(|i| 0.1 * (i as f64 - 4.0)).collect();
    let zb = Batch::<f64, Cpu>::from_rows(&Cpu::default(), 3, HID, &z0).unwrap();
    let times = [p.domain().0, p.domain().1];
    let opts = SolveOptions::fixed(0.11);
    let ns = Reversible::new(
        Rk::new(
            CdeTerm::new(native, p.clone())
                .unwrap()
                .with_data_gradient()
                .unwrap(),
            Tableau::midpoint(),
        ),
        0.999,
    )
    .unwrap();
    let term = neural(&p, &params).with_data_gradient().unwrap();
    let scheme = Reversible::new(Rk::new(term, Tableau::midpoint()), 0.999).unwrap();
    let g_native = gradient(
        &ns,
        &z0,
        &times,
        &opts,
        &GradientMethod::Direct.into(),
        loss,
    )
    .unwrap();
    let rev = gradient(
        &scheme,
        &zb,
        &times,
        &opts,
        &GradientMethod::Reversible.into(),
        loss,
    )
    .unwrap();
    let np = params.len();
    assert_eq!(rev.params.data.len(), g_native.params.len() - np);
    assert!(rel(&rev.params.data, &g_native.params[np..]) <= 1e-10);
    assert!(rel(&rev.params.model.to_flat(&spec()), &g_native.params[..np]) <= 1e-10);
}

#[test]
fn dfdx_field_shape_errors() {
    let p = path(Interpolation::Linear);
    let dev = Cpu::default();
    // 5 outputs cannot be 4 × 3.
    let s = MlpSpec {
        outputs: Some(5),
        ..MlpSpec::new(HID, W)
    };
    let model: NeuralMlp<f64, Cpu> = NeuralMlp::init_uniform(&dev, s, 1).unwrap();
    assert!(matches!(
        NeuralCdeTerm::new(model, p.clone(), &dev),
        Err(Error::ShapeMismatch { .. })
    ));
    // A state whose rows are not the path's batch.
    let term = neural(&p, &spec().init_uniform(1));
    let scheme = Reversible::new(Rk::new(term, Tableau::heun()), 0.9).unwrap();
    let z = Batch::<f64, Cpu>::from_rows(&dev, 2, HID, &[0.0; 2 * HID]).unwrap();
    let r = solve(&scheme, &z, &[0.0, 1.0], &SolveOptions::fixed(0.1));
    assert!(matches!(r, Err(Error::ShapeMismatch { .. })), "{r:?}");
    // A state with the path's rows but the wrong number of columns: a typed error, not a
    // panic inside a matmul.
    let z = Batch::<f64, Cpu>::from_rows(&dev, 3, HID + 1, &[0.0; 3 * (HID + 1)]).unwrap();
    let r = solve(&scheme, &z, &[0.0, 1.0], &SolveOptions::fixed(0.1));
    assert!(
        matches!(r, Err(Error::ShapeMismatch { expected: HID, .. })),
        "{r:?}"
    );
}
