//! Training with the parameters and AdamW's moments where the model lives
//! (`Layer::Params`): for a dfdx model, a device tensor. The resident layout equals the host
//! layout; one generic training program gives the same bits through the device vector as
//! through the flat host view; a checkpoint taken on the device resumes there bit for bit.

use dfdx::prelude::*;
use revode_core::layer::{Layer, LayerTerm};
use revode_core::mlp::{Activation, MlpSpec};
use revode_core::neural::{Batch, NeuralMlp};
use revode_core::prelude::*;
use revode_core::train::{self, Schedule, TrainConfig, TrainState, Trainer};
use revode_core::{FlatParams, Result};

const ROWS: usize = 6;
const DIM: usize = 3;

fn spec(time: bool, time_first: bool) -> MlpSpec {
    MlpSpec {
        depth: 2,
        time,
        time_first,
        activation: Activation::Tanh,
        ..MlpSpec::new(DIM, 8)
    }
}

/// Every layout case: time input before, after or absent (with `time_first` set or not),
/// depth 1, 2 and 3, outputs equal to or other than the input size.
fn layouts() -> Vec<MlpSpec> {
    let mut out = Vec::new();
    for (time, first) in [(true, true), (true, false), (false, false), (false, true)] {
        for depth in 1..=3 {
            for outputs in [None, Some(5)] {
                out.push(MlpSpec {
                    depth,
                    outputs,
                    ..spec(time, first)
                });
            }
        }
    }
    out
}

fn bits(v: &[f64]) -> Vec<u64> {
    v.iter().map(|x| x.to_bits()).collect()
}

fn batch(dev: &Cpu, phase: f64) -> Batch<f64, Cpu> {
    let v: Vec<f64> = (0..ROWS * DIM)
        .map(|i| (i as f64 * 0.37 + phase).sin())
        .collect();
    Batch::from_rows(dev, ROWS, DIM, &v).unwrap()
}

/// L = Σ_k ‖y(t_k) − target_k‖² / n over the observations after t₀, written once for any
/// state with the `State` operations (device tensor operations for a dfdx batch).
fn mse<V: State<Scalar = f64>>(targets: &[V]) -> impl FnMut(&[V], &mut [V]) -> f64 + '_ {
    move |ys, cots| {
        let n = (ys[0].len() * (ys.len() - 1)) as f64;
        let mut l = 0.0;
        for k in 1..ys.len() {
            let mut d = ys[k].clone();
            d.axpy(-1.0, &targets[k]);
            l += d.dot(&d) / n;
            d.scale(2.0 / n);
            cots[k].copy_from(&d);
        }
        l
    }
}

/// One minibatch's loss and resident gradient of a neural ODE fitted by reversible midpoint.
fn loss_and_grad<L: Layer<Scalar = f64> + Clone>(
    model: &mut L,
    theta: &<L::Params as FlatParams>::View,
    y0: &L::Batch,
    targets: &[L::Batch],
) -> Result<(f64, L::Params)> {
    model.set_resident_params(theta)?;
    let term = LayerTerm {
        model: model.clone(),
    };
    let scheme = Reversible::new(Rk::new(term, Tableau::midpoint()), 0.999)?;
    let times = [0.0, 0.4, 0.8, 1.2];
    let g = gradient(
        &scheme,
        y0,
        &times,
        &SolveOptions::fixed(0.1),
        &GradientMethod::Reversible.into(),
        mse(targets),
    )?;
    Ok((g.loss, model.resident_grad(&g.params)))
}

fn config(steps: usize, clip: Option<f64>) -> TrainConfig {
    TrainConfig {
        clip_norm: clip,
        average_from: Some(5),
        eval_every: 3,
        patience: Some(3),
        ..TrainConfig::new(steps, Schedule::linear(0.02, 0.1))
    }
}

/// The evaluation: ‖θ̄ − 0.1‖², lower is better (any function of θ would do: it exercises
/// the best-parameters bookkeeping where θ lives).
fn metric(p: &[f64]) -> f64 {
    p.iter().map(|x| (x - 0.1) * (x - 0.1)).sum()
}

/// The model, y₀ and the targets at the four times.
type Problem = (NeuralMlp<f64, Cpu>, Batch<f64, Cpu>, Vec<Batch<f64, Cpu>>);

fn problem() -> Problem {
    let dev = Cpu::default();
    let model = NeuralMlp::init_uniform(&dev, spec(true, false), 4).unwrap();
    let targets = (0..4).map(|k| batch(&dev, 0.5 * k as f64)).collect();
    (model, batch(&dev, 0.0), targets)
}

/// AdamW with weight decay and two learning-rate groups, so every part of the update runs.
fn state_of<V: FlatParams>(params: V) -> TrainState<V> {
    let n = params.count();
    let mut s = TrainState::new(params, 0.02, 1e-3, serde_json::Value::Null).unwrap();
    s.opt = s
        .opt
        .clone()
        .with_groups(vec![(n / 3, 1.0), (n - n / 3, 0.5)])
        .unwrap();
    s
}

/// The dfdx model trained through the flat host view (one copy each way per step).
fn train_host_view(steps: usize, clip: Option<f64>) -> TrainState {
    let (mut model, y0, targets) = problem();
    let mut state = state_of(model.flat_params());
    Trainer::new(config(steps, clip))
        .with_eval(|_, p| Ok(metric(p)))
        .run(&mut state, |_, theta, g| {
            model.set_flat_params(theta)?;
            let on_device = model.resident_params();
            let (l, grad) = loss_and_grad(&mut model, &on_device, &y0, &targets)?;
            g.copy_from_slice(&grad.to_host());
            Ok(l)
        })
        .unwrap();
    state
}

type OnDevice = <NeuralMlp<f64, Cpu> as Layer>::Params;

/// The same model trained with θ, g and the moments on the device; with a checkpoint every
/// 3 steps, and a simulated crash at step `crash_at`.
fn train_resident(
    state: &mut TrainState<OnDevice>,
    steps: usize,
    clip: Option<f64>,
    checkpoint: Option<(std::path::PathBuf, usize)>,
) -> Result<()> {
    let (mut model, y0, targets) = problem();
    let crash_at = checkpoint.as_ref().map(|c| c.1);
    let config = TrainConfig {
        checkpoint: checkpoint.map(|c| c.0),
        checkpoint_every: 3,
        ..config(steps, clip)
    };
    let eval = |_, p: &OnDevice| Ok(metric(&p.to_host()));
    let mut trainer = Trainer::for_params(config).with_eval_of(eval);
    trainer.run_with(state, |k, theta: &OnDevice, g: &mut OnDevice| {
        if Some(k) == crash_at {
            return Err(revode_core::Error::config("test", "simulated crash"));
        }
        let (l, grad) = loss_and_grad(&mut model, theta, &y0, &targets)?;
        grad.write_to(g)?;
        Ok(l)
    })
}

#[test]
fn resident_layout_is_the_host_layout() {
    let dev = Cpu::default();
    for spec in layouts() {
        let mut m = NeuralMlp::<f64, Cpu>::init_uniform(&dev, spec, 5).unwrap();
        assert_eq!(bits(&m.resident_params().to_host()), bits(&m.flat_params()));
        let n = m.flat_params().len();
        let p: Vec<f64> = (0..n).map(|i| (i as f64 * 0.71).sin()).collect();
        let on_device = m.resident_params().placed(&p).unwrap();
        m.set_resident_params(&on_device).unwrap();
        assert_eq!(bits(&m.flat_params()), bits(&p));
        // A gradient from a real pullback: the resident copy is the flat one.
        let x = batch(&dev, 0.3);
        let mut out = m.output_like(&x);
        let mut cache = Default::default();
        Layer::forward(&m, 0.2, &x, &mut out, Some(&mut cache));
        let (mut x_bar, mut grad) = (x.zeros_like(), m.zero_grad());
        Layer::pullback(&m, 0.2, &cache, &out, 1.0, &mut x_bar, &mut grad);
        assert_eq!(
            bits(&m.resident_grad(&grad).to_host()),
            bits(&m.flat_grad(&grad))
        );
        // Refused: a wrong length, a non-finite entry.
        let short = dev.tensor_from_vec(vec![0.0; n - 1], (n - 1,));
        assert!(m.set_resident_params(&short).is_err());
        assert_eq!(on_device.first_non_finite(), None);
        for x in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            let mut bad = p.clone();
            bad[n / 2] = x;
            let bad = on_device.placed(&bad).unwrap();
            let err = m.set_resident_params(&bad).unwrap_err();
            assert!(err.to_string().contains("MLP parameters"), "{err}");
            assert_eq!(bad.first_non_finite(), Some(n / 2));
        }
        assert_eq!(
            bits(&m.flat_params()),
            bits(&p),
            "a refused θ changes nothing"
        );
    }
}

#[test]
fn training_on_the_device_equals_training_through_the_host_view() {
    // Without clipping every operation is the host formula in the same order: equal bits.
    let host = train_host_view(12, None);
    let (model, ..) = problem();
    let mut dev = state_of(model.resident_params());
    train_resident(&mut dev, 12, None, None).unwrap();
    let moved = dev.to_host();
    assert_eq!(bits(&moved.history), bits(&host.history));
    assert_eq!(bits(&moved.params), bits(&host.params));
    assert_eq!(moved.opt, host.opt);
    assert_eq!(moved.average.as_ref().unwrap().1, 7);
    let (b, hb) = (moved.best.unwrap(), host.best.unwrap());
    assert_eq!((b.step, b.value.to_bits()), (hb.step, hb.value.to_bits()));
    assert_eq!(bits(&b.params), bits(&hb.params));
    assert_eq!(moved.evals.len(), 4);
    assert_eq!(
        bits(&moved.average.unwrap().0),
        bits(&host.average.unwrap().0)
    );
    assert!(
        host.history[11] < 0.65 * host.history[0],
        "{:?}",
        host.history
    );
    // Clipping scales by c/‖g‖, whose sum runs in another order on the device: round-off.
    let host = train_host_view(12, Some(0.05));
    let mut dev = state_of(model.resident_params());
    train_resident(&mut dev, 12, Some(0.05), None).unwrap();
    let moved = dev.to_host();
    assert!(host.grad_norms.iter().all(|&n| n > 0.05), "clipping ran");
    for (a, b) in moved.params.iter().zip(&host.params) {
        assert!((a - b).abs() <= 1e-13 * b.abs().max(1.0), "{a} vs {b}");
    }
}

#[test]
fn a_device_checkpoint_resumes_bit_for_bit() {
    let dir = std::env::temp_dir().join(format!("revode-resident-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let base = dir.join("run");
    let (model, ..) = problem();
    let mut whole = state_of(model.resident_params());
    train_resident(&mut whole, 10, None, None).unwrap();
    let mut first = state_of(model.resident_params());
    assert!(train_resident(&mut first, 10, None, Some((base.clone(), 7))).is_err());
    let mut resumed = train::load(&base)
        .unwrap()
        .moved_like(&model.resident_params())
        .unwrap();
    assert_eq!(resumed.step(), 6);
    train_resident(&mut resumed, 10, None, None).unwrap();
    assert_eq!(resumed.to_host(), whole.to_host());
    // A checkpoint for another model size is refused when moved onto the device.
    let other = NeuralMlp::<f64, Cpu>::init_uniform(&Cpu::default(), spec(false, false), 1)
        .unwrap()
        .resident_params();
    assert!(train::load(&base).unwrap().moved_like(&other).is_err());
    std::fs::remove_dir_all(&dir).unwrap();
}
