//! dfdx neural fields: same function and gradients as the native MLP, and exact gradients
//! through every method.

mod common;
use common::rel;
use dfdx::prelude::*;
use revode_core::mlp::{Activation, MlpSpec};
use revode_core::neural::{Batch, NeuralMlp, NeuralOdeTerm};
use revode_core::prelude::*;

const D: usize = 3;
const H: usize = 10;

fn spec(act: Activation, depth: usize) -> MlpSpec {
    MlpSpec {
        dim: D,
        hidden: H,
        depth,
        activation: act,
        time: true,
        time_first: false,
        outputs: None,
    }
}

type Neural = NeuralOdeTerm<f64, Cpu>;

fn neural_scheme(spec: MlpSpec, seed: u64, lambda: f64) -> Reversible<Rk<Neural>> {
    let dev = Cpu::default();
    let model = NeuralMlp::init_uniform(&dev, spec, seed).unwrap();
    Reversible::new(Rk::new(NeuralOdeTerm { model }, Tableau::rk4()), lambda).unwrap()
}

fn y0_rows(rows: usize) -> Vec<f64> {
    (0..rows * D).map(|i| ((i as f64) * 0.37).sin()).collect()
}

/// Σ_k Σ_i y_ki² over observations (works for any state through its f64 view).
fn loss<V: State>(ys: &[V], cots: &mut [V]) -> f64 {
    let mut l = 0.0;
    for (y, c) in ys.iter().zip(cots.iter_mut()) {
        let v = y.to_f64_vec();
        l += v.iter().map(|x| x * x).sum::<f64>();
        let g: Vec<f64> = v.iter().map(|x| 2.0 * x).collect();
        c.set_from_f64(&g);
    }
    l
}

const TIMES: [f64; 3] = [0.0, 0.5, 1.2];

#[test]
fn dfdx_model_equals_native_model() {
    let dev = Cpu::default();
    for act in [Activation::Tanh, Activation::Softplus, Activation::LipSwish] {
        let s = spec(act, 2);
        let rows = 4;
        let native: Mlp<f64> = Mlp::from_spec(s.clone(), rows).unwrap().init_uniform(9);
        let model: NeuralMlp<f64, Cpu> = NeuralMlp::init_uniform(&dev, s.clone(), 9).unwrap();
        assert_eq!(
            model.to_flat(),
            native.params().to_vec(),
            "same layout and initialisation"
        );
        let y = y0_rows(rows);
        let mut out = vec![0.0; y.len()];
        native.eval(0.7, &y, &mut out);
        let x = Batch::<f64, Cpu>::from_rows(&dev, rows, D, &y).unwrap();
        let got = model.forward(0.7, &x.0, None).as_vec();
        assert!(rel(&got, &out) < 1e-13, "{act:?}: {:e}", rel(&got, &out));
        // Same gradients through a whole solve.
        let opts = SolveOptions::fixed(0.1);
        let ns = Reversible::new(Rk::new(OdeTerm::new(native), Tableau::rk4()), 0.999).unwrap();
        let g_native = gradient(
            &ns,
            &y,
            &TIMES,
            &opts,
            &GradientMethod::Reversible.into(),
            loss,
        )
        .unwrap();
        let scheme =
            Reversible::new(Rk::new(NeuralOdeTerm { model }, Tableau::rk4()), 0.999).unwrap();
        let g = gradient(
            &scheme,
            &x,
            &TIMES,
            &opts,
            &GradientMethod::Reversible.into(),
            loss,
        )
        .unwrap();
        let gp = g.params.to_flat(&s);
        assert!(
            rel(&gp, &g_native.params) < 1e-11,
            "{act:?}: {:e}",
            rel(&gp, &g_native.params)
        );
        assert!(rel(&g.y0.to_f64_vec(), &g_native.y0) < 1e-11);
    }
}

#[test]
fn dfdx_reversible_equals_direct_f64_and_finite_differences() {
    let dev = Cpu::default();
    for act in [
        Activation::Tanh,
        Activation::Relu,
        Activation::Softplus,
        Activation::LipSwish,
    ] {
        let s = spec(act, 2);
        let scheme = neural_scheme(s.clone(), 3, 0.999);
        let x = Batch::<f64, Cpu>::from_rows(&dev, 2, D, &y0_rows(2)).unwrap();
        let opts = SolveOptions::fixed(0.1);
        let d = gradient(
            &scheme,
            &x,
            &TIMES,
            &opts,
            &GradientMethod::Direct.into(),
            loss,
        )
        .unwrap();
        for m in [
            GradientMethod::Reversible,
            GradientMethod::Checkpointed { snapshots: Some(3) },
            GradientMethod::CheckpointedReversible { every: 4 },
        ] {
            let r = gradient(&scheme, &x, &TIMES, &opts, &m.clone().into(), loss).unwrap();
            let (a, b) = (r.params.to_flat(&s), d.params.to_flat(&s));
            assert!(rel(&a, &b) <= 1e-10, "{act:?} {m:?}: {:e}", rel(&a, &b));
            assert!(rel(&r.y0.to_f64_vec(), &d.y0.to_f64_vec()) <= 1e-10);
        }
        if act == Activation::Relu {
            continue; // the kink makes central differences unreliable
        }
        let base = NeuralMlp::<f64, Cpu>::init_uniform(&dev, s.clone(), 3)
            .unwrap()
            .to_flat();
        let eval = |p: &[f64]| {
            let model = NeuralMlp::<f64, Cpu>::from_flat(&dev, s.clone(), p).unwrap();
            let sc =
                Reversible::new(Rk::new(NeuralOdeTerm { model }, Tableau::rk4()), 0.999).unwrap();
            let sol = solve(&sc, &x, &TIMES, &opts).unwrap();
            let mut c: Vec<_> = sol.ys.iter().map(|y| y.zeros_like()).collect();
            loss(&sol.ys, &mut c)
        };
        let eps = 1e-6;
        let fd: Vec<f64> = (0..base.len())
            .map(|i| {
                let mut p = base.clone();
                p[i] += eps;
                let a = eval(&p);
                p[i] -= 2.0 * eps;
                (a - eval(&p)) / (2.0 * eps)
            })
            .collect();
        let g = d.params.to_flat(&s);
        assert!(rel(&g, &fd) <= 1e-6, "{act:?}: {:e}", rel(&g, &fd));
    }
}

#[test]
fn dfdx_reversible_equals_direct_f32() {
    let dev = Cpu::default();
    let s = spec(Activation::Tanh, 1);
    let model = NeuralMlp::<f32, Cpu>::init_uniform(&dev, s.clone(), 5).unwrap();
    let scheme =
        Reversible::new(Rk::new(NeuralOdeTerm { model }, Tableau::midpoint()), 0.999).unwrap();
    let y: Vec<f32> = y0_rows(8).iter().map(|&v| v as f32).collect();
    let x = Batch::<f32, Cpu>::from_rows(&dev, 8, D, &y).unwrap();
    let opts = SolveOptions::fixed(0.05);
    let d = gradient(
        &scheme,
        &x,
        &TIMES,
        &opts,
        &GradientMethod::Direct.into(),
        loss,
    )
    .unwrap();
    let r = gradient(
        &scheme,
        &x,
        &TIMES,
        &opts,
        &GradientMethod::Reversible.into(),
        loss,
    )
    .unwrap();
    let (a, b) = (r.params.to_flat(&s), d.params.to_flat(&s));
    assert!(rel(&a, &b) <= 1e-4, "{:e}", rel(&a, &b));
    assert!(rel(&r.y0.to_f64_vec(), &d.y0.to_f64_vec()) <= 1e-4);
}

#[test]
fn f32_sigmoid_path_matches_f64() {
    // f32 tanh layers run as 2σ(2z) − 1 with the affine parts folded into the weights; the
    // function and its gradient must match the f64 model to f32 round-off.
    let dev = Cpu::default();
    let s = spec(Activation::Tanh, 3);
    let rows = 5;
    let y: Vec<f64> = y0_rows(rows);
    let m64 = NeuralMlp::<f64, Cpu>::init_uniform(&dev, s.clone(), 2).unwrap();
    let m32 = NeuralMlp::<f32, Cpu>::init_uniform(&dev, s.clone(), 2).unwrap();
    let x64 = Batch::<f64, Cpu>::from_rows(&dev, rows, D, &y).unwrap();
    let y32: Vec<f32> = y.iter().map(|&v| v as f32).collect();
    let x32 = Batch::<f32, Cpu>::from_rows(&dev, rows, D, &y32).unwrap();
    let a = m64.forward(0.3, &x64.0, None).as_vec();
    let b: Vec<f64> = m32
        .forward(0.3, &x32.0, None)
        .as_vec()
        .iter()
        .map(|&v| v as f64)
        .collect();
    assert!(rel(&b, &a) < 1e-5, "forward {:e}", rel(&b, &a));
    let opts = SolveOptions::fixed(0.1);
    let g64 = gradient(
        &Reversible::new(
            Rk::new(NeuralOdeTerm { model: m64 }, Tableau::midpoint()),
            0.999,
        )
        .unwrap(),
        &x64,
        &TIMES,
        &opts,
        &GradientMethod::Direct.into(),
        loss,
    )
    .unwrap();
    let g32 = gradient(
        &Reversible::new(
            Rk::new(NeuralOdeTerm { model: m32 }, Tableau::midpoint()),
            0.999,
        )
        .unwrap(),
        &x32,
        &TIMES,
        &opts,
        &GradientMethod::Reversible.into(),
        loss,
    )
    .unwrap();
    let (p64, p32) = (g64.params.to_flat(&s), g32.params.to_flat(&s));
    assert!(rel(&p32, &p64) < 1e-4, "params {:e}", rel(&p32, &p64));
    assert!(rel(&g32.y0.to_f64_vec(), &g64.y0.to_f64_vec()) < 1e-4);
}

#[test]
fn native_batched_kernels_match_dfdx_and_rows() {
    // Batches ≥ 16 run through whole-batch gemm kernels: same values and gradients as the dfdx
    // model and as the row-by-row native path, for every activation, with time input, depth 3.
    let dev = Cpu::default();
    for act in [
        Activation::Tanh,
        Activation::Softplus,
        Activation::Relu,
        Activation::LipSwish,
    ] {
        let s = spec(act, 3);
        let rows = 20;
        let y = y0_rows(rows);
        let batched: Mlp<f64> = Mlp::from_spec(s.clone(), rows).unwrap().init_uniform(6);
        let single: Mlp<f64> = Mlp::from_spec(s.clone(), 1).unwrap().init_uniform(6);
        let mut out = vec![0.0; y.len()];
        batched.eval(0.4, &y, &mut out);
        let mut by_rows = vec![0.0; y.len()];
        for (yr, or) in y.chunks(D).zip(by_rows.chunks_mut(D)) {
            single.eval(0.4, yr, or);
        }
        assert!(
            rel(&out, &by_rows) < 1e-13,
            "{act:?}: {:e}",
            rel(&out, &by_rows)
        );
        let model = NeuralMlp::<f64, Cpu>::init_uniform(&dev, s.clone(), 6).unwrap();
        let x = Batch::<f64, Cpu>::from_rows(&dev, rows, D, &y).unwrap();
        let opts = SolveOptions::fixed(0.1);
        let gd = gradient(
            &Reversible::new(Rk::new(NeuralOdeTerm { model }, Tableau::rk4()), 0.999).unwrap(),
            &x,
            &TIMES,
            &opts,
            &GradientMethod::Reversible.into(),
            loss,
        )
        .unwrap();
        let scheme =
            Reversible::new(Rk::new(OdeTerm::new(batched), Tableau::rk4()), 0.999).unwrap();
        let gn = gradient(
            &scheme,
            &y,
            &TIMES,
            &opts,
            &GradientMethod::Reversible.into(),
            loss,
        )
        .unwrap();
        let gt = gradient(
            &scheme,
            &y,
            &TIMES,
            &opts,
            &GradientMethod::Direct.into(),
            loss,
        )
        .unwrap();
        assert!(
            rel(&gn.params, &gd.params.to_flat(&s)) < 1e-11,
            "{act:?} vs dfdx"
        );
        assert!(rel(&gn.y0, &gd.y0.to_f64_vec()) < 1e-11, "{act:?} vs dfdx");
        assert!(
            rel(&gn.params, &gt.params) < 1e-10,
            "{act:?} reversible vs tape"
        );
    }
}

/// The batched native path in f32 against the same model in f64 (parameter gradient of a
/// 200-step midpoint solve, batch 256, width 64, depth 2). Every cotangent is a sum of ≈ 256·400
/// terms; accumulated into the running total one row at a time, f32 round-off grew to ≈ 2e-5
/// (relative) on the compute-bound problem. Summed per pullback before being added, it stays
/// within a few times ε_f32·√(pullbacks).
#[test]
fn native_f32_gradient_matches_f64() {
    let mut spec = MlpSpec::new(16, 64);
    spec.depth = 2;
    let batch = 256;
    let p = spec.init_uniform(11);
    let y64: Vec<f64> = (0..batch * 16)
        .map(|i| ((i * 37 % 101) as f64 / 50.0) - 1.0)
        .collect();
    let y32: Vec<f32> = y64.iter().map(|&v| v as f32).collect();
    let g64 = batched_mse_gradient(&spec, batch, &p, &y64);
    let g32 = batched_mse_gradient(&spec, batch, &p, &y32);
    let err = rel(&g32, &g64);
    eprintln!("f32 vs f64 parameter gradient: {err:e}");
    assert!(err < 3e-6, "f32 gradient {err:e} from the f64 one");
}

/// dL/dθ (as f64) of L = mean(y(2)²) through 200 fixed midpoint steps of the native batched MLP.
fn batched_mse_gradient<S: Real>(spec: &MlpSpec, batch: usize, p: &[f64], y0: &Vec<S>) -> Vec<f64> {
    let field = Mlp::<S>::from_spec(spec.clone(), batch)
        .unwrap()
        .with_params(p)
        .unwrap();
    let s = Plain::new(Rk::new(OdeTerm::new(field), Tableau::midpoint()));
    let n = y0.len() as f64;
    let g = gradient(
        &s,
        y0,
        &[0.0, 2.0],
        &SolveOptions::fixed(0.01),
        &GradientMethod::Direct.into(),
        |ys, c| {
            for (g, v) in c[1].iter_mut().zip(&ys[1]) {
                *g = S::of(2.0 / n) * *v;
            }
            ys[1].iter().map(|v| v.as_f64().powi(2)).sum::<f64>() / n
        },
    )
    .unwrap();
    g.params.iter().map(|v| v.as_f64()).collect()
}
