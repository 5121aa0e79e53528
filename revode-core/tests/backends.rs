//! The two MLP backends — native CPU ([`Mlp`]) and dfdx ([`NeuralMlp`], run-time sizes) — give
//! the same values and pullbacks to round-off for random shapes, outputs included (f64).

mod common;
use common::rel;
use dfdx::prelude::*;
use proptest::prelude::*;
use revode_core::mlp::{Activation, MlpSpec};
use revode_core::neural::{Batch, NeuralCache, NeuralMlp};
use revode_core::prelude::*;

fn activation() -> impl Strategy<Value = Activation> {
    prop_oneof![
        Just(Activation::Tanh),
        Just(Activation::Softplus),
        Just(Activation::Relu),
        Just(Activation::LipSwish),
    ]
}

/// Deterministic values in (−1, 1) from a seed.
fn values(n: usize, seed: u64) -> Vec<f64> {
    (0..n)
        .map(|i| ((i as f64 + 1.0) * 0.7361 + seed as f64 * 0.113).sin())
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]
    /// Batches from 1 to 40 rows cover the native row-by-row path and its gemm path (≥ 16).
    #[test]
    fn native_and_dfdx_agree(
        dim in 1usize..7,
        outputs in 1usize..7,
        hidden in 1usize..48,
        depth in 1usize..4,
        act in activation(),
        time in any::<bool>(),
        time_first in any::<bool>(),
        rows in 1usize..40,
        seed in 0u64..1000,
    ) {
        let spec = MlpSpec { dim, hidden, depth, activation: act, time, time_first, outputs: Some(outputs) };
        let native: Mlp<f64> = Mlp::from_spec(spec.clone(), rows).unwrap().init_uniform(seed);
        let dev = Cpu::default();
        let net = NeuralMlp::<f64, Cpu>::init_uniform(&dev, spec.clone(), seed).unwrap();
        prop_assert_eq!(net.to_flat(), native.params().to_vec());
        let (t, y, cot) = (0.3 + seed as f64 * 1e-3, values(rows * dim, seed), values(rows * outputs, seed + 7));
        let scale = 0.7;
        // Values.
        let mut out = vec![0.0; rows * outputs];
        native.eval(t, &y, &mut out);
        let x = Batch::<f64, Cpu>::from_rows(&dev, rows, dim, &y).unwrap();
        let mut cache = NeuralCache::default();
        let got = net.forward(t, &x.0, Some(&mut cache)).as_vec();
        prop_assert!(rel(&got, &out) < 1e-12, "values {:e}", rel(&got, &out));
        // Pullbacks with respect to the input and the parameters.
        let (mut y_bar, mut p_bar) = (vec![0.0; y.len()], vec![0.0; native.params().len()]);
        native.vjp(t, &y, &cot, scale, &mut y_bar, &mut p_bar);
        let c = Batch::<f64, Cpu>::from_rows(&dev, rows, outputs, &cot).unwrap();
        let mut x_bar = x.zeros_like();
        let mut grads = net.zero_grads();
        net.backward(t, &cache, &c.0, scale, &mut x_bar.0, &mut grads);
        prop_assert!(rel(&x_bar.to_f64_vec(), &y_bar) < 1e-12, "input {:e}", rel(&x_bar.to_f64_vec(), &y_bar));
        let g = grads.to_flat(&spec);
        prop_assert!(rel(&g, &p_bar) < 1e-12, "parameters {:e}", rel(&g, &p_bar));
    }
}

/// Any width, including ones no menu would hold, and outputs different from the input size.
#[test]
fn dfdx_accepts_any_size_and_checks_the_input() {
    let dev = Cpu::default();
    let spec = MlpSpec {
        outputs: Some(21),
        depth: 2,
        ..MlpSpec::new(7, 37)
    };
    let net = NeuralMlp::<f64, Cpu>::init_uniform(&dev, spec, 1).unwrap();
    let x = Batch::<f64, Cpu>::from_rows(&dev, 5, 7, &values(35, 1)).unwrap();
    let out = net.forward(0.0, &x.0, None);
    assert_eq!(*out.shape(), (5, 21));
    assert!(net.check_input(7).is_ok());
    assert!(matches!(
        net.check_input(6),
        Err(Error::ShapeMismatch {
            expected: 7,
            found: 6,
            ..
        })
    ));
    assert!(Batch::<f64, Cpu>::from_rows(&dev, 5, 7, &values(34, 1)).is_err());
}
