//! Observation cotangents in the backward pass: the loss's `∂L/∂y(t_k)` enters the adjoint of
//! the carry's output when the backward sweep reaches the step boundary of `t_k`.

use crate::scheme::{ScalarOf, StateOf};
use crate::solve::Grid;
use crate::{Scheme, State};
use num_traits::One;

/// Walks observation cotangents backwards: adds `g_k` when the adjoint reaches boundary n.
pub(crate) struct ObsCursor {
    at: Vec<usize>,
    next: usize,
}

impl ObsCursor {
    pub(crate) fn new(grid: &Grid, every_step: bool) -> Self {
        let at = if every_step {
            (0..=grid.len()).collect()
        } else {
            grid.observation_boundaries()
        };
        ObsCursor { next: at.len(), at }
    }
    /// Adds every cotangent that sits at boundary `n` (visited in decreasing n).
    pub(crate) fn add<S: Scheme>(
        &mut self,
        scheme: &S,
        n: usize,
        cots: &[StateOf<S::Map>],
        bar: &mut S::Carry,
    ) {
        while self.next > 0 && self.at[self.next - 1] == n {
            self.next -= 1;
            scheme
                .output_mut(bar)
                .axpy(ScalarOf::<S::Map>::one(), &cots[self.next]);
        }
    }
}
