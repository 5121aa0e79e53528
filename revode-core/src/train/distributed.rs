//! Data-parallel training across processes with MPI (feature `mpi`; rsmpi over the system's
//! MPI, e.g. Open MPI).
//!
//! A minibatch is split into a fixed number S of shards; rank r of p computes the contiguous
//! shards ⌊rS/p⌋ … ⌊(r+1)S/p⌋ − 1, and one all-gather gives every rank every shard's loss and
//! gradient, which each rank sums in shard order 0, 1, …, S − 1. The sum is therefore the same
//! bits for any number of ranks (and equal to [`Sharded`](super::Sharded) with S shards on one
//! process), so parameters stay identical on every rank without a broadcast per step, and a run
//! resumes from a checkpoint on a different number of ranks exactly.
//!
//! Every rank enters the same collectives every step, with a status word: a shard that fails
//! makes every rank return [`Error::Distributed`] from that step, naming the rank and step, and
//! none waits forever. Every `check_every` steps the ranks compare a 64-bit hash of their
//! parameters and stop with an error if they differ. Limits: MPI has no timeouts on collectives,
//! so a rank that hangs inside its own computation (or a lost node) stalls the others until the
//! launcher (`mpirun`, Slurm) kills the job; a rank that crashes makes Open MPI's `mpirun` abort
//! the whole job.

use super::LossAndGrad;
use crate::{Error, Result};
use mpi::datatype::PartitionMut;
use mpi::topology::SimpleCommunicator;
use mpi::traits::*;
use mpi::Count;
use std::ops::Range;

/// The rows of shard `s` when a minibatch of `len` rows is split into `shards` contiguous
/// shards (the first `len mod shards` shards get one row more).
pub fn shard_rows(len: usize, shards: usize, s: usize) -> Range<usize> {
    let (q, r) = (len / shards, len % shards);
    let start = s * q + s.min(r);
    start..start + q + usize::from(s < r)
}

/// A distributed loss and gradient ([module docs](self)); pass it to
/// [`Trainer::run_with`](super::Trainer::run_with).
pub struct Distributed<F> {
    world: SimpleCommunicator,
    shard: F,
    shards: usize,
    check_every: usize,
}

impl<F> Distributed<F>
where
    F: FnMut(usize, usize, &[f64], &mut [f64]) -> Result<f64>,
{
    /// `shard(step, s, θ, g_s)` computes shard s's loss (its share of the minibatch loss) and
    /// writes its gradient into `g_s` (zeroed beforehand); `shards` ≥ the number of ranks.
    pub fn new(world: SimpleCommunicator, shards: usize, shard: F) -> Result<Self> {
        let p = world.size() as usize;
        if shards < p {
            return Err(Error::config(
                "distributed",
                format!("{shards} shards cannot be spread over {p} ranks (need shards ≥ ranks)"),
            ));
        }
        Ok(Distributed {
            world,
            shard,
            shards,
            check_every: 100,
        })
    }
    /// Compares the ranks' parameter hashes every `k` steps (0: never; default 100).
    pub fn with_check_every(mut self, k: usize) -> Self {
        self.check_every = k;
        self
    }
    /// This process's rank.
    pub fn rank(&self) -> usize {
        self.world.rank() as usize
    }
    /// Number of ranks.
    pub fn size(&self) -> usize {
        self.world.size() as usize
    }
    /// The shards rank `r` computes.
    pub fn shards_of(&self, r: usize) -> Range<usize> {
        let p = self.size();
        r * self.shards / p..(r + 1) * self.shards / p
    }
    /// Overwrites `params` with rank 0's (call once before training).
    pub fn broadcast(&self, params: &mut [f64]) {
        self.world.process_at_rank(0).broadcast_into(params);
    }

    fn check_identical(&self, step: usize, params: &[f64]) -> Result<()> {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for v in params {
            for b in v.to_bits().to_le_bytes() {
                h = (h ^ b as u64).wrapping_mul(0x0100_0000_01b3);
            }
        }
        let mut all = vec![0u64; self.size()];
        self.world.all_gather_into(&h, &mut all[..]);
        match all.iter().position(|&x| x != all[0]) {
            Some(r) => Err(Error::Distributed {
                rank: r,
                step,
                message: "parameters differ from rank 0's (hash mismatch)".into(),
            }),
            None => Ok(()),
        }
    }
}

impl<F> LossAndGrad for Distributed<F>
where
    F: FnMut(usize, usize, &[f64], &mut [f64]) -> Result<f64>,
{
    fn loss_and_grad(&mut self, step: usize, params: &[f64], grad: &mut [f64]) -> Result<f64> {
        if self.check_every > 0 && step.is_multiple_of(self.check_every) {
            self.check_identical(step, params)?;
        }
        let n = grad.len();
        let rec = n + 2; // [status, loss, gradient…] per shard
        let mine = self.shards_of(self.rank());
        let mut local = vec![0.0; mine.len() * rec];
        let mut own_error = None;
        for (k, s) in mine.clone().enumerate() {
            let r = &mut local[k * rec..(k + 1) * rec];
            let (head, g) = r.split_at_mut(2);
            match (self.shard)(step, s, params, g) {
                Ok(l) => head[1] = l,
                Err(e) => {
                    head[0] = 1.0;
                    own_error.get_or_insert(e);
                }
            }
        }
        let counts: Vec<Count> = (0..self.size())
            .map(|r| (self.shards_of(r).len() * rec) as Count)
            .collect();
        let displs: Vec<Count> = counts
            .iter()
            .scan(0, |acc, &c| {
                let d = *acc;
                *acc += c;
                Some(d)
            })
            .collect();
        let mut all = vec![0.0; self.shards * rec];
        {
            let mut part = PartitionMut::new(&mut all[..], counts, &displs[..]);
            self.world.all_gather_varcount_into(&local[..], &mut part);
        }
        if let Some(s) = (0..self.shards).find(|&s| all[s * rec] != 0.0) {
            let rank = (0..self.size())
                .find(|&r| self.shards_of(r).contains(&s))
                .unwrap_or(0);
            let message = match own_error {
                Some(e) if rank == self.rank() => format!("shard {s}: {e}"),
                _ => format!("shard {s} failed there"),
            };
            return Err(Error::Distributed {
                rank,
                step,
                message,
            });
        }
        let mut loss = 0.0;
        for r in all.chunks_exact(rec) {
            loss += r[1];
            grad.iter_mut().zip(&r[2..]).for_each(|(g, x)| *g += x);
        }
        Ok(loss)
    }
}

#[cfg(test)]
mod tests {
    use super::shard_rows;

    #[test]
    fn shard_rows_cover_the_batch_in_order() {
        for (len, shards) in [(10, 3), (8, 8), (5, 7), (256, 8)] {
            let rows: Vec<usize> = (0..shards)
                .flat_map(|s| shard_rows(len, shards, s))
                .collect();
            assert_eq!(rows, (0..len).collect::<Vec<_>>());
        }
    }
}
