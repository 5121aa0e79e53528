//! Data-parallel gradients within one process: a minibatch split into a fixed number of
//! shards, their gradients computed on a rayon pool and summed in shard order. The sum's
//! order does not depend on the thread count, so 1, 2 or 8 threads give bitwise the same
//! gradient; only the shard count is part of the result.

use super::LossAndGrad;
use crate::{Error, Result};
use rayon::prelude::*;

/// A minibatch split into shards: `shard(step, s, θ, g_s)` for s = 0, …, `shards` − 1 runs on
/// `threads` threads; the loss and gradient are Σ_s loss_s and Σ_s g_s, summed in the order
/// s = 0, 1, …. Each shard's loss should be its share of the minibatch loss (e.g. a sum over
/// its samples divided by the minibatch size). Pass it to [`Trainer::run_with`](super::Trainer::run_with).
pub struct Sharded<F> {
    shard: F,
    shards: usize,
    pool: rayon::ThreadPool,
    buffers: Vec<Vec<f64>>,
}

/// [`Sharded`] over `shards` shards on a pool of `threads` threads.
pub fn sharded<F>(shards: usize, threads: usize, shard: F) -> Result<Sharded<F>>
where
    F: Fn(usize, usize, &[f64], &mut [f64]) -> Result<f64> + Sync,
{
    if shards == 0 || threads == 0 {
        return Err(Error::config(
            "sharded",
            format!("need ≥ 1 shard and ≥ 1 thread (shards = {shards}, threads = {threads})"),
        ));
    }
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .map_err(|e| Error::config("sharded", format!("thread pool: {e}")))?;
    Ok(Sharded {
        shard,
        shards,
        pool,
        buffers: Vec::new(),
    })
}

impl<F> LossAndGrad for Sharded<F>
where
    F: Fn(usize, usize, &[f64], &mut [f64]) -> Result<f64> + Sync,
{
    fn loss_and_grad(&mut self, step: usize, params: &[f64], grad: &mut [f64]) -> Result<f64> {
        if self.buffers.len() != self.shards || self.buffers[0].len() != grad.len() {
            self.buffers = vec![vec![0.0; grad.len()]; self.shards];
        }
        let shard = &self.shard;
        let buffers = &mut self.buffers;
        let losses: Vec<Result<f64>> = self.pool.install(|| {
            buffers
                .par_iter_mut()
                .enumerate()
                .map(|(s, b)| {
                    b.iter_mut().for_each(|x| *x = 0.0);
                    shard(step, s, params, b)
                })
                .collect()
        });
        let mut loss = 0.0;
        for (l, b) in losses.into_iter().zip(buffers.iter()) {
            loss += l?;
            grad.iter_mut().zip(b).for_each(|(g, x)| *g += x);
        }
        Ok(loss)
    }
}
