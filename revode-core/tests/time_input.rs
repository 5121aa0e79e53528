//! The MLP's time input first or last (`MlpSpec::time_first`): the same network with its first
//! layer's columns permuted gives the same field and pullbacks, on the per-sample path, the
//! batched gemm path and dfdx.

use revode_core::mlp::MlpSpec;
use revode_core::neural::NeuralMlp;
use revode_core::prelude::*;

const D: usize = 3;
const H: usize = 8;

fn spec(time_first: bool) -> MlpSpec {
    MlpSpec {
        time: true,
        time_first,
        ..MlpSpec::new(D, H)
    }
}

/// Moves the first layer's time column from last to first.
fn time_last_to_first(p: &[f64]) -> Vec<f64> {
    let mut q = p.to_vec();
    let inputs = D + 1;
    for j in 0..H {
        let row = &p[j * inputs..(j + 1) * inputs];
        q[j * inputs] = row[D];
        q[j * inputs + 1..(j + 1) * inputs].copy_from_slice(&row[..D]);
    }
    q
}

fn max_rel(a: &[f64], b: &[f64]) -> f64 {
    let scale = b.iter().fold(1e-300f64, |m, v| m.max(v.abs()));
    a.iter()
        .zip(b)
        .fold(0.0f64, |m, (x, y)| m.max((x - y).abs()))
        / scale
}

#[test]
fn time_first_is_time_last_with_permuted_columns() {
    // batch 1: the per-sample path; batch 32: the batched gemm path.
    for batch in [1usize, 32] {
        let last = Mlp::<f64>::from_spec(spec(false), batch)
            .unwrap()
            .init_uniform(4);
        let p_first = time_last_to_first(last.params());
        assert_ne!(p_first, last.params().to_vec());
        let first = Mlp::<f64>::from_spec(spec(true), batch)
            .unwrap()
            .with_params(&p_first)
            .unwrap();
        let y: Vec<f64> = (0..D * batch).map(|i| (i as f64 * 0.37).sin()).collect();
        let cot: Vec<f64> = (0..D * batch).map(|i| (i as f64 * 0.11).cos()).collect();
        let t = 0.7;
        let (mut a, mut b) = (vec![0.0; y.len()], vec![0.0; y.len()]);
        last.eval(t, &y, &mut a);
        first.eval(t, &y, &mut b);
        assert!(
            max_rel(&b, &a) < 1e-14,
            "batch {batch}: {:e}",
            max_rel(&b, &a)
        );
        let n = last.params().len();
        let (mut ya, mut pa) = (vec![0.0; y.len()], vec![0.0; n]);
        let (mut yb, mut pb) = (vec![0.0; y.len()], vec![0.0; n]);
        last.vjp(t, &y, &cot, 1.0, &mut ya, &mut pa);
        first.vjp(t, &y, &cot, 1.0, &mut yb, &mut pb);
        assert!(max_rel(&yb, &ya) < 1e-14, "batch {batch}: dL/dy");
        let pa_first = time_last_to_first(&pa);
        assert!(max_rel(&pb, &pa_first) < 1e-14, "batch {batch}: dL/dθ");
        // The time weights matter: a different t changes the output.
        first.eval(t + 1.0, &y, &mut a);
        assert!(max_rel(&a, &b) > 1e-6);
    }
}

#[test]
fn dfdx_reads_and_writes_the_time_first_layout() {
    let dev = dfdx::prelude::Cpu::default();
    let native = Mlp::<f64>::from_spec(spec(true), 4)
        .unwrap()
        .init_uniform(9);
    let net: NeuralMlp<f64, dfdx::prelude::Cpu> =
        NeuralMlp::from_flat(&dev, spec(true), native.params()).unwrap();
    assert_eq!(net.to_flat(), native.params().to_vec());
    let y: Vec<f64> = (0..D * 4).map(|i| (i as f64 * 0.29).sin()).collect();
    let x = revode_core::neural::Batch::<f64, _>::from_rows(&dev, 4, D, &y).unwrap();
    let out = net.forward(0.7, &x.0, None).as_vec();
    let mut want = vec![0.0; y.len()];
    native.eval(0.7, &y, &mut want);
    assert!(max_rel(&out, &want) < 1e-12, "{:e}", max_rel(&out, &want));
}
