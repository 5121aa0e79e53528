//! Data-parallel training of a neural SDE through the one trainer: each shard solves its own
//! paths on its own Brownian path (seeded by step and shard), and the result is the same to
//! the bit on 1 and 2 threads.

use revode_core::mlp::{Activation, MlpSpec};
use revode_core::train::{self, Schedule, TrainConfig, TrainState, Trainer};
use revode_core::{gradient, GradientMethod, Mlp, Result, ReversibleHeun, SolveOptions};
use revode_sde::{BrownianPath, Calculus, Diagonal, SdeTerm};

const PATHS: usize = 4;
const DIM: usize = 2;

fn spec() -> MlpSpec {
    MlpSpec {
        dim: DIM,
        hidden: 8,
        depth: 1,
        activation: Activation::Tanh,
        time: true,
        time_first: false,
        outputs: None,
    }
}

/// Shard `s`'s share of the minibatch loss mean_paths ‖y(1) − 1‖² over 2 shards, and its
/// reversible gradient, on the Brownian path of `(step, s)`.
fn shard(step: usize, s: usize, p: &[f64], g: &mut [f64]) -> Result<f64> {
    let n = spec().num_params();
    let drift = Mlp::from_spec(spec(), PATHS)?.with_params(&p[..n])?;
    let diffusion = Mlp::from_spec(spec(), PATHS)?.with_params(&p[n..])?;
    let path = BrownianPath::new(0.0, 1.0, PATHS, DIM, (step * 2 + s) as u64)?;
    let term = SdeTerm::new(drift, Diagonal(diffusion), path, Calculus::Stratonovich)?;
    let scheme = ReversibleHeun::new(term)?;
    let y0: Vec<f64> = (0..PATHS * DIM).map(|i| 0.1 * (i + s) as f64).collect();
    let w = 1.0 / (2 * PATHS) as f64;
    let r = gradient(
        &scheme,
        &y0,
        &[0.0, 1.0],
        &SolveOptions::fixed(0.05),
        &GradientMethod::Reversible.into(),
        |ys, cots| {
            let mut l = 0.0;
            for (y, c) in ys[1].iter().zip(cots[1].iter_mut()) {
                l += w * (y - 1.0) * (y - 1.0);
                *c = 2.0 * w * (y - 1.0);
            }
            l
        },
    )?;
    g.copy_from_slice(&r.params);
    Ok(r.loss)
}

#[test]
fn sharded_neural_sde_training_is_bitwise_on_1_and_2_threads() {
    let mut p0 = spec().init_uniform(1);
    p0.extend(spec().init_uniform(2));
    let run = |threads: usize| {
        let mut state = TrainState::new(p0.clone(), 0.02, 0.0, serde_json::Value::Null).unwrap();
        let f = train::sharded(2, threads, shard).unwrap();
        Trainer::new(TrainConfig::new(8, Schedule::constant(0.02)))
            .run_with(&mut state, f)
            .unwrap();
        state
    };
    let (one, two) = (run(1), run(2));
    let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    assert_eq!(bits(&one.params), bits(&two.params));
    assert_eq!(bits(&one.history), bits(&two.history));
    assert!(one.history.iter().all(|l| l.is_finite() && *l > 0.0));
    assert_ne!(
        bits(&one.params),
        bits(&p0),
        "training moved the parameters"
    );
}
