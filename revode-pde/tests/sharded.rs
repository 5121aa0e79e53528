//! Data-parallel training of a PDE surrogate through the one trainer: the minibatch's fields
//! split into shards on rayon threads give the same bits on 1 and 2 threads, and the summed
//! shard gradients equal the whole batch's gradient (the fields evolve independently).

use revode_core::train::{self, Schedule, TrainConfig, TrainState, Trainer};
use revode_core::{gradient, GradientMethod, Result, Tableau, VectorField};
use revode_pde::datasets::random_bumps;
use revode_pde::surrogate::{reference, scheme, FisherSurrogate, PointMlp, Trajectories};
use revode_pde::{step_options, Boundary, FisherKpp, Grid1d};

const CELLS: usize = 24;

fn model(batch: usize) -> FisherSurrogate {
    FisherSurrogate {
        grid: Grid1d::new(CELLS, 0.0, 1.0, Boundary::Neumann).unwrap(),
        batch,
        nu: 0.002,
        reaction_bound: 10.0,
        through_origin: true,
        reaction: PointMlp::new(1, 8, 3).unwrap(),
    }
}

/// Rows `fields` of every state of `data` (each state is batch × cells).
fn select(data: &Trajectories, fields: std::ops::Range<usize>) -> Trajectories {
    Trajectories {
        times: data.times.clone(),
        states: data
            .states
            .iter()
            .map(|s| s[fields.start * CELLS..fields.end * CELLS].to_vec())
            .collect(),
    }
}

/// Sum of squared errors over the observations after the first, divided by `scale`, and its
/// gradient with respect to the reaction's parameters `p`.
fn loss_grad(
    data: &Trajectories,
    batch: usize,
    p: &[f64],
    g: &mut [f64],
    scale: f64,
) -> Result<f64> {
    let mut field = model(batch);
    field.params_mut().copy_from_slice(p);
    let opts = step_options(&field, &Tableau::heun(), Some(0.5), None)?;
    let s = scheme(field, &Tableau::heun(), 0.5)?;
    let r = gradient(
        &s,
        &data.states[0],
        &data.times,
        &opts,
        &GradientMethod::Reversible.into(),
        |ys, cots| {
            let mut l = 0.0;
            for ((y, d), c) in ys.iter().zip(&data.states).zip(cots.iter_mut()).skip(1) {
                for ((&a, &b), c) in y.iter().zip(d).zip(c.iter_mut()) {
                    l += (a - b) * (a - b) / scale;
                    *c = 2.0 * (a - b) / scale;
                }
            }
            l
        },
    )?;
    g.iter_mut().zip(&r.params).for_each(|(g, v)| *g += v);
    Ok(r.loss)
}

#[test]
fn sharded_surrogate_training_is_bitwise_across_threads_and_equals_the_whole_batch() {
    let grid = Grid1d::new(CELLS, 0.0, 1.0, Boundary::Neumann).unwrap();
    let times: Vec<f64> = (0..=3).map(|k| 0.1 * k as f64).collect();
    let truth = FisherKpp::new(grid, 4, 0.002, 5.0).unwrap();
    let data = reference(&truth, &random_bumps(&grid, 4, 2), &times).unwrap();
    let shards = [select(&data, 0..2), select(&data, 2..4)];
    let p0 = model(4).params().to_vec();
    let scale = 1.0;

    // Summed shard gradients against the batch-4 gradient, at the initial parameters.
    let mut whole = vec![0.0; p0.len()];
    let lw = loss_grad(&data, 4, &p0, &mut whole, scale).unwrap();
    let mut parts = vec![0.0; p0.len()];
    let mut lp = 0.0;
    for s in &shards {
        lp += loss_grad(s, 2, &p0, &mut parts, scale).unwrap();
    }
    assert!((lw - lp).abs() <= 1e-13 * lw, "{lw} vs {lp}");
    let norm = whole.iter().map(|v| v * v).sum::<f64>().sqrt();
    for (a, b) in whole.iter().zip(&parts) {
        assert!((a - b).abs() <= 1e-12 * norm, "{a} vs {b}");
    }

    let run = |threads: usize| {
        let mut state = TrainState::new(p0.clone(), 0.02, 0.0, serde_json::Value::Null).unwrap();
        let f = train::sharded(2, threads, |_, s, p, g| {
            loss_grad(&shards[s], 2, p, g, scale)
        })
        .unwrap();
        Trainer::new(TrainConfig::new(6, Schedule::constant(0.02)))
            .run_with(&mut state, f)
            .unwrap();
        state
    };
    let one = run(1);
    let two = run(2);
    let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    assert_eq!(bits(&one.params), bits(&two.params));
    assert_eq!(bits(&one.history), bits(&two.history));
    assert!(one.history[5] < one.history[0], "{:?}", one.history);
}
