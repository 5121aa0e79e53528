//! The neural SDE over any layer: on dfdx and on the native MLP, the same numbers as the native
//! term with the same parameters; exact reversible gradients on a fixed Brownian path; Itô
//! refused for reversible gradients.

use dfdx::prelude::Cpu;
use revode_core::mlp::{Mlp, MlpSpec};
use revode_core::neural::{Batch, NeuralMlp};
use revode_core::prelude::*;
use revode_sde::*;

const D: usize = 3;
const H: usize = 8;
const BATCH: usize = 4;
const TIMES: [f64; 3] = [0.0, 0.5, 1.0];

fn spec() -> MlpSpec {
    MlpSpec {
        time: true,
        ..MlpSpec::new(D, H)
    }
}

fn path() -> BrownianPath {
    BrownianPath::new(0.0, 1.0, BATCH, D, 17).unwrap()
}

fn rel(a: &[f64], b: &[f64]) -> f64 {
    let s = b.iter().fold(0.0f64, |m, v| m.max(v.abs())).max(1e-300);
    a.iter()
        .zip(b)
        .fold(0.0f64, |m, (x, y)| m.max((x - y).abs()))
        / s
}

fn loss<V: State>(ys: &[V], cots: &mut [V]) -> f64 {
    let mut l = 0.0;
    for (y, c) in ys.iter().zip(cots.iter_mut()) {
        let v = y.to_f64_vec();
        l += v.iter().map(|x| x * x + x.sin()).sum::<f64>();
        let g: Vec<f64> = v.iter().map(|x| 2.0 * x + x.cos()).collect();
        c.set_from_f64(&g);
    }
    l
}

/// Drift and diffusion parameters (the diffusion scaled down to keep σ moderate).
fn params() -> (Vec<f64>, Vec<f64>) {
    let s = spec();
    let mu = s.init_uniform(1);
    let sigma: Vec<f64> = s.init_uniform(2).iter().map(|v| 0.5 * v).collect();
    (mu, sigma)
}

type Neural = NeuralSdeTerm<f64, Cpu>;

fn neural(mu: &[f64], sigma: &[f64], calculus: Calculus) -> Neural {
    let dev = Cpu::default();
    NeuralSdeTerm::new(
        NeuralMlp::from_flat(&dev, spec(), mu).unwrap(),
        NeuralMlp::from_flat(&dev, spec(), sigma).unwrap(),
        path(),
        calculus,
    )
    .unwrap()
}

fn y0() -> (Vec<f64>, Batch<f64, Cpu>) {
    let v: Vec<f64> = (0..BATCH * D)
        .map(|i| 0.4 * (i as f64 * 0.7).sin())
        .collect();
    let b = Batch::from_rows(&Cpu::default(), BATCH, D, &v).unwrap();
    (v, b)
}

#[test]
fn dfdx_sde_equals_native_sde() {
    let (mu, sigma) = params();
    let native = SdeTerm::new(
        Mlp::from_spec(spec(), BATCH)
            .unwrap()
            .with_params(&mu)
            .unwrap(),
        Diagonal(
            Mlp::from_spec(spec(), BATCH)
                .unwrap()
                .with_params(&sigma)
                .unwrap(),
        ),
        path(),
        Calculus::Stratonovich,
    )
    .unwrap();
    let (v, b) = y0();
    let opts = SolveOptions::fixed(1.0 / 32.0);
    let ns = reversible_heun(native).unwrap();
    let ds = ReversibleHeun::new(neural(&mu, &sigma, Calculus::Stratonovich)).unwrap();
    let a = solve(&ns, &v, &TIMES, &opts).unwrap();
    let c = solve(&ds, &b, &TIMES, &opts).unwrap();
    for (x, y) in a.ys.iter().zip(&c.ys) {
        assert!(rel(&y.to_host(), x) <= 1e-13, "{:e}", rel(&y.to_host(), x));
    }
    let gn = gradient(
        &ns,
        &v,
        &TIMES,
        &opts,
        &GradientMethod::Reversible.into(),
        loss,
    )
    .unwrap();
    let gd = gradient(
        &ds,
        &b,
        &TIMES,
        &opts,
        &GradientMethod::Reversible.into(),
        loss,
    )
    .unwrap();
    let mut flat = gd.params.drift.to_flat(&spec());
    flat.extend(gd.params.diffusion.to_flat(&spec()));
    assert!(
        rel(&flat, &gn.params) <= 1e-11,
        "{:e}",
        rel(&flat, &gn.params)
    );
    assert!(rel(&gd.y0.to_host(), &gn.y0) <= 1e-11);
}

#[test]
fn dfdx_sde_reversible_equals_direct_and_finite_differences() {
    let (mu, sigma) = params();
    let (_, b) = y0();
    let opts = SolveOptions::fixed(1.0 / 16.0);
    let flat = |g: &NeuralSdeGrads<f64, Cpu>| {
        let mut f = g.drift.to_flat(&spec());
        f.extend(g.diffusion.to_flat(&spec()));
        f
    };
    // Reversible Heun, and the core coupling over Stratonovich Heun and midpoint.
    let rh = ReversibleHeun::new(neural(&mu, &sigma, Calculus::Stratonovich)).unwrap();
    let d = gradient(&rh, &b, &TIMES, &opts, &GradientMethod::Direct.into(), loss).unwrap();
    let r = gradient(
        &rh,
        &b,
        &TIMES,
        &opts,
        &GradientMethod::Reversible.into(),
        loss,
    )
    .unwrap();
    assert!(rel(&flat(&r.params), &flat(&d.params)) <= 1e-10);
    assert!(rel(&r.y0.to_host(), &d.y0.to_host()) <= 1e-10);
    for tab in [Tableau::heun(), Tableau::midpoint()] {
        let s = Reversible::new(
            Rk::new(neural(&mu, &sigma, Calculus::Stratonovich), tab),
            0.9,
        )
        .unwrap();
        let d = gradient(&s, &b, &TIMES, &opts, &GradientMethod::Direct.into(), loss).unwrap();
        let r = gradient(
            &s,
            &b,
            &TIMES,
            &opts,
            &GradientMethod::Reversible.into(),
            loss,
        )
        .unwrap();
        assert!(rel(&flat(&r.params), &flat(&d.params)) <= 1e-10);
    }
    // Central differences through reversible Heun on the same path.
    let value = |m: &[f64], s: &[f64]| {
        let sc = ReversibleHeun::new(neural(m, s, Calculus::Stratonovich)).unwrap();
        let sol = solve(&sc, &b, &TIMES, &opts).unwrap();
        let mut c: Vec<_> = sol.ys.iter().map(|y| y.zeros_like()).collect();
        loss(&sol.ys, &mut c)
    };
    let g = flat(&d.params);
    let eps = 1e-6;
    let n = mu.len();
    for i in (0..2 * n).step_by(7) {
        let (mut m, mut s) = (mu.clone(), sigma.clone());
        let slot = |m: &mut Vec<f64>, s: &mut Vec<f64>, dv: f64| {
            if i < n {
                m[i] += dv
            } else {
                s[i - n] += dv
            }
        };
        slot(&mut m, &mut s, eps);
        let up = value(&m, &s);
        slot(&mut m, &mut s, -2.0 * eps);
        let fd = (up - value(&m, &s)) / (2.0 * eps);
        assert!(
            (fd - g[i]).abs() <= 1e-6 * (1.0 + g[i].abs()),
            "θ[{i}]: {fd} vs {}",
            g[i]
        );
    }
}

#[test]
fn dfdx_sde_errors() {
    let (mu, sigma) = params();
    let dev = Cpu::default();
    // Brownian channels must equal the state dimension (diagonal noise).
    let wrong = BrownianPath::new(0.0, 1.0, BATCH, D + 1, 1).unwrap();
    let r = NeuralSdeTerm::new(
        NeuralMlp::<f64, Cpu>::from_flat(&dev, spec(), &mu).unwrap(),
        NeuralMlp::from_flat(&dev, spec(), &sigma).unwrap(),
        wrong,
        Calculus::Stratonovich,
    );
    assert!(matches!(r, Err(Error::ShapeMismatch { .. })));
    // Itô noise cannot run a reversible scheme.
    let ito = ReversibleHeun::new(neural(&mu, &sigma, Calculus::Ito));
    assert!(ito.is_err());
    let ito = Reversible::new(
        Rk::new(neural(&mu, &sigma, Calculus::Ito), Tableau::heun()),
        0.9,
    );
    assert!(ito.is_err());
}

/// The same generic term over the native MLP (a `Vec` state) = the native `SdeTerm` with
/// diagonal noise: solution and reversible gradient.
#[test]
fn layer_sde_on_the_native_mlp_equals_native_sde() {
    let (mu, sigma) = params();
    let mlp = |p: &[f64]| {
        Mlp::from_spec(spec(), BATCH)
            .unwrap()
            .with_params(p)
            .unwrap()
    };
    let native = SdeTerm::new(
        mlp(&mu),
        Diagonal(mlp(&sigma)),
        path(),
        Calculus::Stratonovich,
    )
    .unwrap();
    let layered = LayerSdeTerm::new(mlp(&mu), mlp(&sigma), path(), Calculus::Stratonovich).unwrap();
    let (v, _) = y0();
    let opts = SolveOptions::fixed(1.0 / 32.0);
    let ns = reversible_heun(native).unwrap();
    let ls = ReversibleHeun::new(layered).unwrap();
    let a = solve(&ns, &v, &TIMES, &opts).unwrap();
    let c = solve(&ls, &v, &TIMES, &opts).unwrap();
    for (x, y) in a.ys.iter().zip(&c.ys) {
        assert!(rel(y, x) <= 1e-14, "{:e}", rel(y, x));
    }
    let method = GradientMethod::Reversible.into();
    let gn = gradient(&ns, &v, &TIMES, &opts, &method, loss).unwrap();
    let gl = gradient(&ls, &v, &TIMES, &opts, &method, loss).unwrap();
    assert!(rel(&gl.y0, &gn.y0) <= 1e-12, "{:e}", rel(&gl.y0, &gn.y0));
    let flat: Vec<f64> = gl
        .params
        .drift
        .iter()
        .chain(&gl.params.diffusion)
        .copied()
        .collect();
    assert!(
        rel(&flat, &gn.params) <= 1e-12,
        "{:e}",
        rel(&flat, &gn.params)
    );
}

/// A native layer built for another batch than the Brownian path's is refused up front (it
/// would otherwise leave rows of the state untouched).
#[test]
fn layer_sde_refuses_a_layer_of_another_batch() {
    let (mu, sigma) = params();
    let mlp = |p: &[f64], rows: usize| {
        Mlp::<f64>::from_spec(spec(), rows)
            .unwrap()
            .with_params(p)
            .unwrap()
    };
    for (drift_rows, diffusion_rows) in [(BATCH, BATCH - 1), (BATCH + 1, BATCH)] {
        let r = LayerSdeTerm::new(
            mlp(&mu, drift_rows),
            mlp(&sigma, diffusion_rows),
            path(),
            Calculus::Stratonovich,
        );
        assert!(matches!(r, Err(Error::ShapeMismatch { .. })), "{r:?}");
    }
}
