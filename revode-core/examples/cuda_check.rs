//! Runs one reversible and one full-tape gradient of the same neural ODE on the CPU and on a
//! CUDA GPU, and compares them. Build with `--features cuda` (needs the CUDA toolkit and a GPU).

#[cfg(feature = "cuda")]
fn main() -> revode_core::Result<()> {
    use dfdx::prelude::*;
    use revode_core::mlp::{Activation, MlpSpec};
    use revode_core::neural::{Batch, NeuralMlp, NeuralOdeTerm};
    use revode_core::prelude::*;
    use std::time::Instant;

    const D: usize = 32;
    const H: usize = 128;
    let rows = 256;
    let spec = MlpSpec {
        dim: D,
        hidden: H,
        depth: 2,
        activation: Activation::Tanh,
        time: false,
        time_first: false,
        outputs: None,
    };
    let params = spec.init_uniform(0);
    let y: Vec<f32> = (0..rows * D).map(|i| ((i as f32) * 0.61).sin()).collect();
    let times = [0.0, 1.0];
    let mut opts = SolveOptions::fixed(0.01);
    opts.stability_check_dim = 0;
    opts.stability_krylov = 0;
    let gpu =
        Cuda::try_build(0, 0).map_err(|e| Error::Unsupported(format!("no CUDA device: {e:?}")))?;
    let cpu = Cpu::default();
    let mut results = Vec::new();
    /// L = mean(y(1)²), written for any dfdx device.
    fn mse<Dev: Device<f32>>(ys: &[Batch<f32, Dev>], cots: &mut [Batch<f32, Dev>]) -> f64 {
        let v = ys[ys.len() - 1].to_f64_vec();
        let g: Vec<f64> = v.iter().map(|x| 2.0 * x / v.len() as f64).collect();
        let last = cots.len() - 1;
        cots[last].set_from_f64(&g);
        v.iter().map(|x| x * x).sum::<f64>() / v.len() as f64
    }
    macro_rules! run_on {
        ($dev:expr, $name:expr) => {{
            let model = NeuralMlp::<f32, _>::from_flat(&$dev, spec.clone(), &params)?;
            let scheme =
                Reversible::new(Rk::new(NeuralOdeTerm { model }, Tableau::midpoint()), 0.999)?;
            let y0 = Batch::<f32, _>::from_rows(&$dev, rows, D, &y)?;
            for m in [GradientMethod::Direct, GradientMethod::Reversible] {
                let _ = gradient(&scheme, &y0, &times, &opts, &m.clone().into(), mse)?; // warm-up
                let t = Instant::now();
                let g = gradient(&scheme, &y0, &times, &opts, &m.clone().into(), mse)?;
                let secs = t.elapsed().as_secs_f64();
                println!(
                    "{:>4} {:>10}: {:8.3} s, loss {:.6e}",
                    $name,
                    m.label(),
                    secs,
                    g.loss
                );
                results.push(g.params.to_flat(&spec));
            }
        }};
    }
    run_on!(cpu, "cpu");
    run_on!(gpu, "cuda");
    let rel = |a: &[f64], b: &[f64]| {
        let s = b.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        a.iter()
            .zip(b)
            .fold(0.0f64, |m, (x, y)| m.max((x - y).abs()))
            / s
    };
    println!(
        "cpu reversible vs cpu direct:  {:.2e}",
        rel(&results[1], &results[0])
    );
    println!(
        "cuda reversible vs cuda direct: {:.2e}",
        rel(&results[3], &results[2])
    );
    println!(
        "cuda reversible vs cpu reversible: {:.2e}",
        rel(&results[3], &results[1])
    );
    Ok(())
}

#[cfg(not(feature = "cuda"))]
fn main() {
    eprintln!("cuda_check needs `--features cuda` (the CUDA toolkit and a GPU at build time)");
}
