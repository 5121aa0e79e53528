//! Reversible Heun (Kidger et al. 2021; METHOD.md §6), written over a base step map.
//!
//! With `Ψ_h(t, y)` the base increment (for an Euler map over an SDE term,
//! `f(t, y)h + g(t, y)ΔW`), the carry `(y, ŷ)` advances as
//!
//! ```text
//! ŷ_{n+1} = 2y_n − ŷ_n + Ψ_h(t_n, ŷ_n)
//! y_{n+1} = y_n + ½ Ψ_h(t_n, ŷ_n) − ½ Ψ_{−h}(t_{n+1}, ŷ_{n+1})
//! ```
//!
//! For the Euler map `−Ψ_{−h}(t_{n+1}, ŷ)` is exactly `f(t_{n+1}, ŷ)h + g(t_{n+1}, ŷ)ΔW` (the
//! control is negated exactly), so this is the scheme of METHOD.md §6. It converges to the
//! Stratonovich solution with strong order ½ (1 for additive noise) and is its own exact
//! inverse. Each step evaluates the base map twice: [`crate::Term::vf_prod`] fuses the field
//! with the control, so the field value at `ŷ_{n+1}` cannot be reused under the next step's
//! different control (the original caches it and needs one evaluation).

use crate::scheme::{ScalarOf, StateOf};
use crate::{Error, Pair, Real, Result, Scheme, State, Stats, StepMap};
use num_complex::Complex64;
use num_traits::One;

/// The reversible Heun scheme over a base step map (normally Euler over an SDE term).
#[derive(Clone, Debug)]
pub struct ReversibleHeun<M: StepMap> {
    map: M,
}

impl<M: StepMap> ReversibleHeun<M> {
    /// Wraps `map`; errors when the map cannot step backwards in time (an Itô method).
    pub fn new(map: M) -> Result<Self> {
        if !map.time_reversible() {
            return Err(Error::Unsupported(format!(
                "reversible Heun runs base steps backwards in time, which {} does not allow \
                 (an Itô term?); use a Stratonovich term",
                map.name()
            )));
        }
        Ok(ReversibleHeun { map })
    }
    /// Mutable access to the base map (e.g. to update parameters).
    pub fn map_mut(&mut self) -> &mut M {
        &mut self.map
    }
}

/// Work space of [`ReversibleHeun`].
pub struct ReversibleHeunScratch<M: StepMap> {
    w: M::State,
    u: M::State,
    tape_w: M::Tape,
    tape_u: M::Tape,
    map: M::Scratch,
}

impl<M: StepMap> ReversibleHeun<M> {
    /// Pullback of one step given the traced `w = Ψ_h(t_n, ŷ_n)` and `u = Ψ_{−h}(t_{n+1}, ŷ_{n+1})`.
    #[allow(clippy::too_many_arguments)]
    fn pull(
        &self,
        tape_w: &M::Tape,
        tape_u: &M::Tape,
        bar: &mut Pair<M::State>,
        p_bar: &mut M::ParamGrad,
        b: &mut M::State,
        s: &mut M::Scratch,
        stats: &mut Stats,
    ) {
        let one = ScalarOf::<M>::one();
        let half = ScalarOf::<M>::of(0.5);
        // a = ŷ̄' − ½ J_uᵀ ȳ'
        self.map
            .pullback(tape_u, &bar.y, -half, &mut bar.z, p_bar, s, stats);
        // b = a + ½ ȳ';  ȳ = ȳ' + 2a;  ŷ̄ = −a + J_wᵀ b
        b.lin_comb(one, &bar.z, half, &bar.y);
        bar.y.axpy(ScalarOf::<M>::of(2.0), &bar.z);
        bar.z.scale(-one);
        self.map
            .pullback(tape_w, b, one, &mut bar.z, p_bar, s, stats);
    }
}

impl<M: StepMap> Scheme for ReversibleHeun<M> {
    type Map = M;
    type Carry = Pair<M::State>;
    type Tape = (M::Tape, M::Tape);
    type Scratch = ReversibleHeunScratch<M>;

    fn map(&self) -> &M {
        &self.map
    }
    fn name(&self) -> String {
        format!("reversible-heun({})", self.map.name())
    }
    fn init(&self, y0: &StateOf<M>) -> Pair<M::State> {
        Pair {
            y: y0.clone(),
            z: y0.clone(),
        }
    }
    fn output<'a>(&self, c: &'a Pair<M::State>) -> &'a M::State {
        &c.y
    }
    fn output_mut<'a>(&self, c: &'a mut Pair<M::State>) -> &'a mut M::State {
        &mut c.y
    }
    fn coupled<'a>(&self, c: &'a Pair<M::State>) -> Option<&'a M::State> {
        Some(&c.z)
    }
    fn initial_cotangent(&self, bar: &Pair<M::State>, out: &mut M::State) {
        out.lin_comb(ScalarOf::<M>::one(), &bar.y, ScalarOf::<M>::one(), &bar.z);
    }
    fn new_tape(&self, like: &M::State) -> Self::Tape {
        (self.map.new_tape(like), self.map.new_tape(like))
    }
    fn new_scratch(&self, like: &M::State) -> Self::Scratch {
        ReversibleHeunScratch {
            w: like.zeros_like(),
            u: like.zeros_like(),
            tape_w: self.map.new_tape(like),
            tape_u: self.map.new_tape(like),
            map: self.map.new_scratch(like),
        }
    }
    fn step(
        &self,
        t_a: f64,
        t_b: f64,
        c: &mut Pair<M::State>,
        err: Option<&mut M::State>,
        tape: Option<&mut Self::Tape>,
        s: &mut Self::Scratch,
        stats: &mut Stats,
    ) {
        let (tape_w, tape_u) = match tape {
            Some((w, u)) => (Some(w), Some(u)),
            None => (None, None),
        };
        let one = ScalarOf::<M>::one();
        let half = ScalarOf::<M>::of(0.5);
        self.map
            .increment(t_a, t_b, &c.z, &mut s.w, None, tape_w, &mut s.map, stats);
        // ŷ' = 2y − ŷ + w
        c.z.scale_add(-one, ScalarOf::<M>::of(2.0), &c.y);
        c.z.axpy(one, &s.w);
        self.map
            .increment(t_b, t_a, &c.z, &mut s.u, err, tape_u, &mut s.map, stats);
        // y' = y + ½w − ½u
        c.y.axpy(half, &s.w);
        c.y.axpy(-half, &s.u);
    }
    fn pullback(
        &self,
        (tape_w, tape_u): &Self::Tape,
        bar: &mut Pair<M::State>,
        p_bar: &mut M::ParamGrad,
        s: &mut Self::Scratch,
        stats: &mut Stats,
    ) {
        self.pull(tape_w, tape_u, bar, p_bar, &mut s.w, &mut s.map, stats);
    }
    fn is_reversible(&self) -> bool {
        true
    }
    fn reconstruct(
        &self,
        t_a: f64,
        t_b: f64,
        c: &mut Pair<M::State>,
        s: &mut Self::Scratch,
        stats: &mut Stats,
    ) -> Result<()> {
        self.unstep(t_a, t_b, c, s, false, stats);
        Ok(())
    }
    fn reconstruct_pullback(
        &self,
        t_a: f64,
        t_b: f64,
        c: &mut Pair<M::State>,
        bar: &mut Pair<M::State>,
        p_bar: &mut M::ParamGrad,
        s: &mut Self::Scratch,
        stats: &mut Stats,
    ) -> Result<()> {
        self.unstep(t_a, t_b, c, s, true, stats);
        let ReversibleHeunScratch {
            w,
            tape_w,
            tape_u,
            map,
            ..
        } = s;
        self.pull(tape_w, tape_u, bar, p_bar, w, map, stats);
        Ok(())
    }
    fn amplification(&self, r: &dyn Fn(Complex64) -> Complex64, x: Complex64) -> f64 {
        // On y' = αy: Ψ_h = p·y with p = r(x) − 1 and −Ψ_{−h} = q·y with q = 1 − r(−x).
        // The step is the matrix [[1 + q, ½(p + q(p − 1))], [2, p − 1]] on (y, ŷ).
        let p = r(x) - 1.0;
        let q = 1.0 - r(-x);
        let (a, b, c, d) = (
            1.0 + q,
            0.5 * (p + q * (p - 1.0)),
            Complex64::new(2.0, 0.0),
            p - 1.0,
        );
        let tr = a + d;
        let det = a * d - b * c;
        let disc = (tr * tr - 4.0 * det).sqrt();
        ((tr + disc) * 0.5).norm().max(((tr - disc) * 0.5).norm())
    }
}

impl<M: StepMap> ReversibleHeun<M> {
    /// Runs one step backwards: `(y_{n+1}, ŷ_{n+1}) → (y_n, ŷ_n)`, tracing both evaluations
    /// into the scratch tapes when `trace` is set.
    fn unstep(
        &self,
        t_a: f64,
        t_b: f64,
        c: &mut Pair<M::State>,
        s: &mut ReversibleHeunScratch<M>,
        trace: bool,
        stats: &mut Stats,
    ) {
        let one = ScalarOf::<M>::one();
        let half = ScalarOf::<M>::of(0.5);
        let (tu, tw) = if trace {
            (Some(&mut s.tape_u), Some(&mut s.tape_w))
        } else {
            (None, None)
        };
        // u = Ψ_{−h}(t_{n+1}, ŷ_{n+1});  ŷ_n = 2y_{n+1} − ŷ_{n+1} + u
        self.map
            .increment(t_b, t_a, &c.z, &mut s.u, None, tu, &mut s.map, stats);
        c.z.scale_add(-one, ScalarOf::<M>::of(2.0), &c.y);
        c.z.axpy(one, &s.u);
        // w = Ψ_h(t_n, ŷ_n);  y_n = y_{n+1} − ½w + ½u
        self.map
            .increment(t_a, t_b, &c.z, &mut s.w, None, tw, &mut s.map, stats);
        c.y.axpy(-half, &s.w);
        c.y.axpy(half, &s.u);
    }
}
