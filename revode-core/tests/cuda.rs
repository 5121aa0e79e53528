//! The same neural ODE on the CPU and on a CUDA GPU: equal values and gradients, and the
//! reversible gradient equal to the full tape on the GPU. Compiled by CI's CUDA type-check
//! (`--features cuda,dfdx/ci-check`); run by `scripts/gpu-check.sh` on a machine with a GPU.
#![cfg(feature = "cuda")]

use dfdx::prelude::*;
use revode_core::layer::Layer;
use revode_core::mlp::{Activation, MlpSpec};
use revode_core::neural::{Batch, NeuralMlp, NeuralOdeTerm, Vector};
use revode_core::prelude::*;

const D: usize = 4;
const H: usize = 16;

/// L = Σ y(t_k)² over the observations, on any device.
fn loss<Dev: Device<f64>>(ys: &[Batch<f64, Dev>], cots: &mut [Batch<f64, Dev>]) -> f64 {
    let mut l = 0.0;
    for (y, c) in ys.iter().zip(cots.iter_mut()) {
        let v = y.to_f64_vec();
        l += v.iter().map(|x| x * x).sum::<f64>();
        c.set_from_f64(&v.iter().map(|x| 2.0 * x).collect::<Vec<_>>());
    }
    l
}

/// (loss, flat parameter gradient) of one method on one device.
fn grad_on<Dev: Device<f64>>(dev: &Dev, method: GradientMethod) -> (f64, Vec<f64>) {
    let spec = MlpSpec {
        dim: D,
        hidden: H,
        depth: 2,
        activation: Activation::Tanh,
        time: true,
        time_first: false,
        outputs: None,
    };
    let model = NeuralMlp::<f64, Dev>::init_uniform(dev, spec.clone(), 3).unwrap();
    let scheme = Reversible::new(Rk::new(NeuralOdeTerm { model }, Tableau::rk4()), 0.999).unwrap();
    let rows = 8;
    let y: Vec<f64> = (0..rows * D).map(|i| (i as f64 * 0.37).sin()).collect();
    let y0 = Batch::<f64, Dev>::from_rows(dev, rows, D, &y).unwrap();
    let g = gradient(
        &scheme,
        &y0,
        &[0.0, 0.5, 1.0],
        &SolveOptions::fixed(0.05),
        &method.into(),
        loss,
    )
    .unwrap();
    (g.loss, g.params.to_flat(&spec))
}

fn max_rel(a: &[f64], b: &[f64]) -> f64 {
    let scale = b.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    a.iter()
        .zip(b)
        .fold(0.0f64, |m, (x, y)| m.max((x - y).abs()))
        / scale
}

#[test]
fn cuda_gradients_equal_cpu_and_full_tape() {
    let gpu = Cuda::try_build(0, 0).expect("a CUDA device (run on a machine with a GPU)");
    let cpu = Cpu::default();
    let (l_cpu, g_cpu) = grad_on(&cpu, GradientMethod::Reversible);
    let (l_gpu, g_gpu) = grad_on(&gpu, GradientMethod::Reversible);
    let (_, g_gpu_tape) = grad_on(&gpu, GradientMethod::Direct);
    // f64 throughout: the devices differ only in the order of floating-point sums.
    assert!(
        (l_cpu - l_gpu).abs() <= 1e-12 * l_cpu.abs(),
        "{l_cpu} vs {l_gpu}"
    );
    assert!(
        max_rel(&g_gpu, &g_cpu) < 1e-10,
        "{:e}",
        max_rel(&g_gpu, &g_cpu)
    );
    assert!(max_rel(&g_gpu, &g_gpu_tape) < 1e-10);
}

/// Σ_k ‖y(t_k) − 0.5‖² over the observations after t₀, with device operations only.
fn to_half<Dev: Device<f64>>(ys: &[Batch<f64, Dev>], cots: &mut [Batch<f64, Dev>]) -> f64 {
    let mut l = 0.0;
    for k in 1..ys.len() {
        let d = Batch(ys[k].0.clone() - 0.5);
        l += d.dot(&d);
        cots[k] = Batch(d.0 * 2.0);
    }
    l
}

/// Ten AdamW steps with θ, g and the moments resident on `dev`; the host copy at the end.
fn train_on<Dev: Device<f64>>(dev: &Dev) -> Vec<f64> {
    use revode_core::train::{Schedule, TrainConfig, TrainState, Trainer};
    use revode_core::FlatParams;
    let spec = MlpSpec {
        depth: 2,
        time: true,
        ..MlpSpec::new(D, H)
    };
    let mut model = NeuralMlp::<f64, Dev>::init_uniform(dev, spec, 3).unwrap();
    let y: Vec<f64> = (0..8 * D).map(|i| (i as f64 * 0.37).sin()).collect();
    let y0 = Batch::<f64, Dev>::from_rows(dev, 8, D, &y).unwrap();
    let mut state =
        TrainState::new(model.resident_params(), 0.01, 0.0, Default::default()).unwrap();
    let config = TrainConfig::new(10, Schedule::constant(0.01));
    Trainer::for_params(config)
        .run_with(
            &mut state,
            |_, theta: &Vector<f64, Dev>, g: &mut Vector<f64, Dev>| {
                model.set_resident_params(theta)?;
                let term = NeuralOdeTerm {
                    model: model.clone(),
                };
                let scheme = Reversible::new(Rk::new(term, Tableau::midpoint()), 0.999)?;
                let r = gradient(
                    &scheme,
                    &y0,
                    &[0.0, 0.5, 1.0],
                    &SolveOptions::fixed(0.1),
                    &GradientMethod::Reversible.into(),
                    to_half,
                )?;
                model.resident_grad(&r.params).write_to(g)?;
                Ok(r.loss)
            },
        )
        .unwrap();
    state.params.to_host()
}

#[test]
fn cuda_training_with_resident_parameters_equals_cpu() {
    let gpu = Cuda::try_build(0, 0).expect("a CUDA device (run on a machine with a GPU)");
    let (on_gpu, on_cpu) = (train_on(&gpu), train_on(&Cpu::default()));
    // Ten AdamW steps of f64 gradients that differ in the order of sums: round-off, bounded
    // well above it (AdamW divides by √v̂, so relative gradient differences pass through).
    assert!(
        max_rel(&on_gpu, &on_cpu) < 1e-9,
        "{:e}",
        max_rel(&on_gpu, &on_cpu)
    );
}
