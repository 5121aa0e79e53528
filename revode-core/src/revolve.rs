//! Binomial checkpointing (Griewank's revolve): schedules and the recursive reversal.

use crate::observe::ObsCursor;
use crate::scheme::StateOf;
use crate::solve::{Grid, Workspace};
use crate::{Scheme, State, Stats, StepMap};

/// β(s, r) = C(s + r, s): the most steps reversible with s snapshots and r repetitions.
pub(crate) fn beta(s: usize, r: usize) -> u128 {
    let mut v: u128 = 1;
    for i in 1..=s.min(r) as u128 {
        v = v * (s.max(r) as u128 + i) / i;
        if v > u64::MAX as u128 {
            return u64::MAX as u128;
        }
    }
    v
}

/// Forward steps revolve takes to reverse `l` steps with `s` snapshots (the initial state
/// included): Griewank & Walther's minimum `r·l − β(s+1, r−1)`, with r the least repetition
/// number such that β(s, r) ≥ l, and `l(l−1)/2` with one snapshot. The cost of a
/// checkpointed gradient before running it; saturates at `u64::MAX`.
pub fn forward_steps(l: usize, s: usize) -> u64 {
    if l <= 1 {
        return 0;
    }
    if s <= 1 {
        return (l as u128 * (l as u128 - 1) / 2).min(u64::MAX as u128) as u64;
    }
    let mut r = 0;
    while beta(s, r) < l as u128 {
        r += 1;
    }
    let tail = if r == 0 { 0 } else { beta(s + 1, r - 1) };
    (r as u128 * l as u128)
        .saturating_sub(tail)
        .min(u64::MAX as u128) as u64
}

/// Length of the left part when reversing `l ≥ 2` steps with `s ≥ 2` snapshots.
///
/// With r the least repetition number such that β(s, r) ≥ l, every split in
/// `[max(l − β(s−1, r), β(s, r−2)), min(β(s, r−1), l − β(s−1, r−1))]` attains the minimal number
/// of forward steps (Griewank & Walther 2000); the smallest is taken. The unit test checks
/// optimality against exhaustive dynamic programming.
pub(crate) fn split(l: usize, s: usize) -> usize {
    let mut r = 0;
    while beta(s, r) < l as u128 {
        r += 1;
    }
    let l = l as i128;
    let b = |s: usize, r: i64| {
        if r < 0 {
            0
        } else {
            beta(s, r as usize) as i128
        }
    };
    let r = r as i64;
    let lo = (l - b(s - 1, r)).max(b(s, r - 2)).max(1);
    let hi = b(s, r - 1).min(l - b(s - 1, r - 1)).min(l - 1);
    lo.min(hi).max(1) as usize
}

/// The checkpoints the first forward sweep stores for `n` steps and `c` snapshots (the initial
/// state excluded): the split points of the recursion's first descent.
pub fn descent(n: usize, c: usize) -> Vec<usize> {
    let (mut a, mut s) = (0usize, c);
    let mut out = Vec::new();
    while s > 1 && n - a > 1 {
        a += split(n - a, s);
        out.push(a);
        s -= 1;
    }
    out
}

/// Reverses segments of a solve from stored start states.
pub(crate) struct Reverser<'a, S: Scheme> {
    scheme: &'a S,
    grid: &'a Grid,
    cots: &'a [StateOf<S::Map>],
    stored: usize,
    peak: usize,
    /// The first step (in backward order) whose pullback left a non-finite adjoint.
    pub first_bad: Option<usize>,
}

impl<'a, S: Scheme> Reverser<'a, S> {
    pub fn new(scheme: &'a S, grid: &'a Grid, cots: &'a [StateOf<S::Map>]) -> Self {
        Reverser {
            scheme,
            grid,
            cots,
            stored: 0,
            peak: 0,
            first_bad: None,
        }
    }

    /// Pulls the adjoint back over steps `[a, b)` given the carry at `a`, using at most
    /// `slots` stored states (that carry included). Returns the peak number stored.
    #[allow(clippy::too_many_arguments)]
    pub fn reverse(
        &mut self,
        a: usize,
        b: usize,
        slots: usize,
        start: S::Carry,
        bar: &mut S::Carry,
        obs: &mut ObsCursor,
        p_bar: &mut <S::Map as StepMap>::ParamGrad,
        ws: &mut Workspace<S>,
        stats: &mut Stats,
    ) -> usize {
        self.stored = 1;
        self.peak = 1;
        let mut work = start.clone();
        self.rec(a, b, slots, &start, &mut work, bar, obs, p_bar, ws, stats);
        self.peak
    }

    fn advance(
        &self,
        from: usize,
        to: usize,
        work: &mut S::Carry,
        ws: &mut Workspace<S>,
        stats: &mut Stats,
    ) {
        for n in from..to {
            let (t_a, t_b) = (self.grid.t(n), self.grid.t(n + 1));
            self.scheme
                .step(t_a, t_b, work, None, None, &mut ws.scratch, stats);
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn last_step(
        &mut self,
        n: usize,
        work: &mut S::Carry,
        bar: &mut S::Carry,
        obs: &mut ObsCursor,
        p_bar: &mut <S::Map as StepMap>::ParamGrad,
        ws: &mut Workspace<S>,
        stats: &mut Stats,
    ) {
        let (t_a, t_b) = (self.grid.t(n), self.grid.t(n + 1));
        self.scheme.step(
            t_a,
            t_b,
            work,
            None,
            Some(&mut ws.tape),
            &mut ws.scratch,
            stats,
        );
        self.scheme
            .pullback(&ws.tape, bar, p_bar, &mut ws.scratch, stats);
        if self.first_bad.is_none() && !bar.all_finite() {
            self.first_bad = Some(n);
        }
        obs.add(self.scheme, n, self.cots, bar);
    }

    #[allow(clippy::too_many_arguments)]
    fn rec(
        &mut self,
        a: usize,
        b: usize,
        s: usize,
        state_a: &S::Carry,
        work: &mut S::Carry,
        bar: &mut S::Carry,
        obs: &mut ObsCursor,
        p_bar: &mut <S::Map as StepMap>::ParamGrad,
        ws: &mut Workspace<S>,
        stats: &mut Stats,
    ) {
        let l = b - a;
        if l == 0 {
            return;
        }
        if l == 1 || s <= 1 {
            for target in (a..b).rev() {
                work.copy_from(state_a);
                self.advance(a, target, work, ws, stats);
                self.last_step(target, work, bar, obs, p_bar, ws, stats);
            }
            return;
        }
        let m = a + split(l, s);
        work.copy_from(state_a);
        self.advance(a, m, work, ws, stats);
        let snapshot = work.clone();
        self.stored += 1;
        self.peak = self.peak.max(self.stored);
        self.rec(m, b, s - 1, &snapshot, work, bar, obs, p_bar, ws, stats);
        drop(snapshot);
        self.stored -= 1;
        self.rec(a, m, s, state_a, work, bar, obs, p_bar, ws, stats);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Forward steps the recursion takes (not counting the last traced step of each target).
    fn cost(l: usize, s: usize) -> usize {
        if l <= 1 {
            return 0;
        }
        if s <= 1 {
            return l * (l - 1) / 2;
        }
        let m = split(l, s);
        m + cost(l - m, s - 1) + cost(m, s)
    }

    #[test]
    fn beta_is_binomial() {
        assert_eq!(beta(2, 3), 10);
        assert_eq!(beta(1, 5), 6);
        assert_eq!(beta(0, 7), 1);
        assert_eq!(beta(5, 0), 1);
    }

    #[test]
    fn forward_steps_by_hand() {
        // Three snapshots for ten steps: r = 2 (C(5,3) = 10), 2·10 − β(4, 1) = 20 − 5 = 15.
        assert_eq!(forward_steps(10, 3), 15);
        // One snapshot: every step recomputed from the start, 0 + 1 + … + 9.
        assert_eq!(forward_steps(10, 1), 45);
        // Enough snapshots for every step: each advanced once, the last not at all.
        assert_eq!(forward_steps(10, 10), 9);
        assert_eq!(forward_steps(1, 3), 0);
    }

    #[test]
    #[allow(clippy::needless_range_loop)]
    fn split_is_optimal() {
        // Exhaustive optimum over all split points, by dynamic programming.
        let (lmax, smax) = (120usize, 6usize);
        let mut opt = vec![vec![0usize; lmax + 1]; smax + 1];
        for l in 1..=lmax {
            opt[1][l] = l * (l - 1) / 2;
        }
        for s in 2..=smax {
            for l in 2..=lmax {
                opt[s][l] = (1..l)
                    .map(|m| m + opt[s - 1][l - m] + opt[s][m])
                    .min()
                    .unwrap_or(0);
            }
        }
        for s in 1..=smax {
            for l in 1..=lmax {
                assert_eq!(cost(l, s), opt[s][l], "l={l} s={s}");
                assert_eq!(forward_steps(l, s), opt[s][l] as u64, "l={l} s={s}");
            }
        }
    }
}
