//! The `Layer` trait: one generic program over both MLP backends, the ODE term of any layer,
//! and the layer file (save on one backend, load on the other; bad files refused).

mod common;
use common::rel;
use dfdx::prelude::*;
use revode_core::layer::{load, Layer, LayerTerm};
use revode_core::mlp::{Activation, MlpSpec};
use revode_core::neural::{Batch, NeuralMlp};
use revode_core::prelude::*;

fn spec() -> MlpSpec {
    MlpSpec {
        depth: 2,
        time: true,
        activation: Activation::Softplus,
        ..MlpSpec::new(3, 9)
    }
}

const ROWS: usize = 4;

fn rows() -> Vec<f64> {
    (0..ROWS * 3).map(|i| (i as f64 * 0.41).cos()).collect()
}

/// Written once for any layer: value, input pullback and flat parameter pullback.
fn value_and_pullback<L: Layer<Scalar = f64>>(layer: &L, x: &L::Batch) -> [Vec<f64>; 3] {
    let mut out = layer.output_like(x);
    let mut cache = L::Cache::default();
    layer.forward(0.4, x, &mut out, Some(&mut cache));
    let cot = out.clone();
    let (mut x_bar, mut grad) = (x.zeros_like(), layer.zero_grad());
    layer.pullback(0.4, &cache, &cot, 0.5, &mut x_bar, &mut grad);
    [out.to_f64_vec(), x_bar.to_f64_vec(), layer.flat_grad(&grad)]
}

fn native() -> Mlp<f64> {
    let mut m = Mlp::from_spec(spec(), ROWS).unwrap();
    m.init_from_seed(5).unwrap();
    m
}

fn dfdx() -> NeuralMlp<f64, Cpu> {
    NeuralMlp::init_uniform(&Cpu::default(), spec(), 5).unwrap()
}

#[test]
fn one_generic_program_runs_on_both_backends() {
    let a = value_and_pullback(&native(), &rows());
    let x = Batch::from_rows(&Cpu::default(), ROWS, 3, &rows()).unwrap();
    let b = value_and_pullback(&dfdx(), &x);
    for (p, q) in a.iter().zip(&b) {
        assert!(rel(p, q) < 1e-12, "{:e}", rel(p, q));
    }
    assert_eq!(native().flat_params(), dfdx().flat_params());
}

#[test]
fn networks_with_other_outputs_agree_on_both_backends() {
    // 3 inputs → 5 outputs (a readout, or a CDE's matrix field), 8 rows (row path) and 20
    // rows (gemm path).
    for rows in [8, 20] {
        let s = MlpSpec {
            outputs: Some(5),
            ..spec()
        };
        let mut native = Mlp::<f64>::from_spec(s.clone(), rows).unwrap();
        native.init_from_seed(3).unwrap();
        let x: Vec<f64> = (0..rows * 3).map(|i| (i as f64 * 0.23).sin()).collect();
        let a = value_and_pullback(&native, &x);
        assert_eq!(a[0].len(), rows * 5);
        let net = NeuralMlp::<f64, Cpu>::init_uniform(&Cpu::default(), s, 3).unwrap();
        let xb = Batch::from_rows(&Cpu::default(), rows, 3, &x).unwrap();
        let b = value_and_pullback(&net, &xb);
        for (p, q) in a.iter().zip(&b) {
            assert!(rel(p, q) < 1e-12, "{rows} rows: {:e}", rel(p, q));
        }
    }
}

/// Loss Σ y(T)².
fn sum_sq<V: State>(ys: &[V], cots: &mut [V]) -> f64 {
    let v = ys[ys.len() - 1].to_f64_vec();
    let last = cots.len() - 1;
    cots[last].set_from_f64(&v.iter().map(|x| 2.0 * x).collect::<Vec<_>>());
    v.iter().map(|x| x * x).sum()
}

#[test]
fn layer_term_equals_the_vector_field_term_on_both_backends() {
    let opts = SolveOptions::fixed(0.1);
    let times = [0.0, 1.0];
    let m = GradientMethod::Reversible.into();
    let field = Reversible::new(Rk::new(OdeTerm::new(native()), Tableau::rk4()), 0.999).unwrap();
    let reference = gradient(&field, &rows(), &times, &opts, &m, sum_sq).unwrap();
    let on_native = Reversible::new(
        Rk::new(LayerTerm { model: native() }, Tableau::rk4()),
        0.999,
    )
    .unwrap();
    let g = gradient(&on_native, &rows(), &times, &opts, &m, sum_sq).unwrap();
    assert!(rel(&g.params, &reference.params) < 1e-13);
    assert!(rel(&g.y0, &reference.y0) < 1e-13);
    let on_dfdx =
        Reversible::new(Rk::new(LayerTerm { model: dfdx() }, Tableau::rk4()), 0.999).unwrap();
    let x = Batch::from_rows(&Cpu::default(), ROWS, 3, &rows()).unwrap();
    let g = gradient(&on_dfdx, &x, &times, &opts, &m, sum_sq).unwrap();
    let gp = g.params.to_flat(&spec());
    assert!(
        rel(&gp, &reference.params) < 1e-12,
        "{:e}",
        rel(&gp, &reference.params)
    );
    assert!(rel(&g.y0.to_f64_vec(), &reference.y0) < 1e-12);
}

#[test]
fn layer_term_refuses_a_non_vector_field_and_a_wrong_state() {
    let s = MlpSpec {
        outputs: Some(2),
        ..spec()
    };
    let model = NeuralMlp::<f64, Cpu>::init_uniform(&Cpu::default(), s, 1).unwrap();
    let scheme = Plain::new(Rk::new(LayerTerm { model }, Tableau::rk4()));
    let x = Batch::from_rows(&Cpu::default(), ROWS, 3, &rows()).unwrap();
    let r = solve(&scheme, &x, &[0.0, 1.0], &SolveOptions::fixed(0.1));
    assert!(matches!(r, Err(Error::Config { .. })), "{r:?}");
    // The same refusal for the native network, through LayerTerm and through OdeTerm.
    let mut wide = Mlp::<f64>::from_spec(
        MlpSpec {
            outputs: Some(2),
            ..spec()
        },
        ROWS,
    )
    .unwrap();
    wide.init_from_seed(1).unwrap();
    let scheme = Plain::new(Rk::new(
        LayerTerm {
            model: wide.clone(),
        },
        Tableau::rk4(),
    ));
    let r = solve(&scheme, &rows(), &[0.0, 1.0], &SolveOptions::fixed(0.1));
    assert!(matches!(r, Err(Error::Config { .. })), "{r:?}");
    let scheme = Plain::new(Rk::new(OdeTerm::new(wide), Tableau::rk4()));
    let r = solve(&scheme, &rows(), &[0.0, 1.0], &SolveOptions::fixed(0.1));
    assert!(matches!(r, Err(Error::Config { .. })), "{r:?}");
    let scheme = Plain::new(Rk::new(LayerTerm { model: native() }, Tableau::rk4()));
    let r = solve(
        &scheme,
        &vec![0.0; 5],
        &[0.0, 1.0],
        &SolveOptions::fixed(0.1),
    );
    assert!(matches!(r, Err(Error::ShapeMismatch { .. })), "{r:?}");
}

#[test]
fn saved_on_one_backend_loads_on_the_other_bit_for_bit() {
    let dir = std::env::temp_dir().join(format!("revode-layers-{}", std::process::id()));
    let file = dir.join("mlp.json");
    let mut trained = native();
    let p: Vec<f64> = trained
        .flat_params()
        .iter()
        .map(|v| v * 1.37 + 1e-17)
        .collect();
    trained.set_flat_params(&p).unwrap();
    trained.save(&file).unwrap();
    let mut on_dfdx = dfdx();
    on_dfdx.load_params(&file).unwrap();
    assert_eq!(on_dfdx.flat_params(), p, "exact round trip");
    let (s, q) = load(&file).unwrap();
    assert_eq!((s, q), (spec(), p));

    // Another shape: refused, nothing changed.
    let mut other =
        NeuralMlp::<f64, Cpu>::init_uniform(&Cpu::default(), MlpSpec::new(3, 9), 0).unwrap();
    let before = other.flat_params();
    assert!(matches!(
        other.load_params(&file),
        Err(Error::Checkpoint { .. })
    ));
    assert_eq!(other.flat_params(), before);
    // Truncated, foreign, inconsistent and missing files: typed errors.
    let text = std::fs::read_to_string(&file).unwrap();
    let bad = dir.join("bad.json");
    std::fs::write(&bad, &text[..text.len() / 2]).unwrap();
    assert!(matches!(load(&bad), Err(Error::Checkpoint { .. })));
    std::fs::write(&bad, text.replace("revode-layer-1", "other-1")).unwrap();
    assert!(matches!(load(&bad), Err(Error::Checkpoint { .. })));
    let mut f: serde_json::Value = serde_json::from_str(&text).unwrap();
    f["params"].as_array_mut().unwrap().pop();
    std::fs::write(&bad, f.to_string()).unwrap();
    assert!(matches!(load(&bad), Err(Error::Checkpoint { .. })));
    assert!(matches!(
        load(&dir.join("absent.json")),
        Err(Error::Io { .. })
    ));
    let _ = std::fs::remove_dir_all(&dir);
}
