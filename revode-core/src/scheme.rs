//! Schemes: the plain base method, and the reversible coupling of it (METHOD.md §2–3).

use crate::{Error, Pair, Real, Result, State, Stats, StepMap};
use num_complex::Complex64;

/// State type of a step map.
pub type StateOf<M> = <M as StepMap>::State;
/// Scalar type of a step map.
pub type ScalarOf<M> = <StateOf<M> as State>::Scalar;

/// The start of a solve: the initial time and state.
#[derive(Clone, Copy, Debug)]
pub struct Start<'a, V> {
    /// The initial time.
    pub t0: f64,
    /// The initial state.
    pub y0: &'a V,
}

/// A one-step scheme on a carried solver state, built from a base [`StepMap`].
///
/// The carry is what the scheme propagates: `y` for the plain method, `(y, z)` for the
/// reversible coupling. The output (what observations and losses see) is always `y`.
pub trait Scheme {
    /// The base step map.
    type Map: StepMap;
    /// The carried state.
    type Carry: State<Scalar = ScalarOf<Self::Map>>;
    /// What a traced step keeps for its pullback.
    type Tape: Clone;
    /// Per-step work space.
    type Scratch;

    /// The base step map.
    fn map(&self) -> &Self::Map;
    /// A short description, e.g. "reversible(rk4, λ=0.999)".
    fn name(&self) -> String;
    /// The carry that starts from `y0` at `t0` (a scheme that carries a field value evaluates
    /// it here).
    fn init(
        &self,
        start: Start<'_, StateOf<Self::Map>>,
        scratch: &mut Self::Scratch,
        stats: &mut Stats,
    ) -> Self::Carry;
    /// A zero carry shaped for states like `like` (work space).
    fn new_carry(&self, like: &StateOf<Self::Map>) -> Self::Carry;
    /// The output component y of a carry.
    fn output<'a>(&self, carry: &'a Self::Carry) -> &'a StateOf<Self::Map>;
    /// Mutable output component.
    fn output_mut<'a>(&self, carry: &'a mut Self::Carry) -> &'a mut StateOf<Self::Map>;
    /// The coupled (auxiliary) component of a carry, when the scheme has one: `z` of the
    /// reversible coupling's `(y, z)`, `ŷ` of reversible Heun's `(y, ŷ)`. `None` by default.
    fn coupled<'a>(&self, _carry: &'a Self::Carry) -> Option<&'a StateOf<Self::Map>> {
        None
    }
    /// The cotangent of `y0` given the cotangent of the initial carry: pulls `carry_bar` back
    /// through [`Scheme::init`] into `out`, and into `p_bar` when `init` evaluates the field.
    fn initial_cotangent(
        &self,
        start: Start<'_, StateOf<Self::Map>>,
        carry_bar: &Self::Carry,
        out: &mut StateOf<Self::Map>,
        p_bar: &mut <Self::Map as StepMap>::ParamGrad,
        scratch: &mut Self::Scratch,
        stats: &mut Stats,
    );
    /// A tape for carries like `like`.
    fn new_tape(&self, like: &StateOf<Self::Map>) -> Self::Tape;
    /// Work space for carries like `like`.
    fn new_scratch(&self, like: &StateOf<Self::Map>) -> Self::Scratch;

    /// Advances `carry` from `t_a` to `t_b`; with `err`, writes the error estimate that drives
    /// adaptive steps; with `tape`, keeps what [`Scheme::pullback`] needs.
    #[allow(clippy::too_many_arguments)]
    fn step(
        &self,
        t_a: f64,
        t_b: f64,
        carry: &mut Self::Carry,
        err: Option<&mut StateOf<Self::Map>>,
        tape: Option<&mut Self::Tape>,
        scratch: &mut Self::Scratch,
        stats: &mut Stats,
    );

    /// Pullback of a traced step: `carry_bar` goes from the cotangent after the step to the
    /// cotangent before it; parameter cotangents accumulate into `p_bar`.
    fn pullback(
        &self,
        tape: &Self::Tape,
        carry_bar: &mut Self::Carry,
        p_bar: &mut <Self::Map as StepMap>::ParamGrad,
        scratch: &mut Self::Scratch,
        stats: &mut Stats,
    );

    /// Whether the scheme can run its steps backwards exactly.
    fn is_reversible(&self) -> bool {
        false
    }

    /// Refuses a fixed step `h` the base map knows to be unstable under this scheme
    /// ([`StepMap::check_step`]; the reversible coupling passes its λ).
    fn check_step(&self, h: f64) -> Result<()> {
        self.map().check_step(h, None)
    }

    /// Exact inverse of [`Scheme::step`]: `carry` at `t_b` becomes the carry at `t_a`.
    fn reconstruct(
        &self,
        _t_a: f64,
        _t_b: f64,
        _carry: &mut Self::Carry,
        _scratch: &mut Self::Scratch,
        _stats: &mut Stats,
    ) -> Result<()> {
        Err(Error::Unsupported(format!(
            "{} is not algebraically reversible; use Reversible::new to couple it",
            self.name()
        )))
    }

    /// One step of Algorithm 1: reconstructs `carry` from `t_b` back to `t_a` and pulls the
    /// cotangent back across the step, evaluating each base step once.
    #[allow(clippy::too_many_arguments)]
    fn reconstruct_pullback(
        &self,
        t_a: f64,
        t_b: f64,
        carry: &mut Self::Carry,
        carry_bar: &mut Self::Carry,
        p_bar: &mut <Self::Map as StepMap>::ParamGrad,
        scratch: &mut Self::Scratch,
        stats: &mut Stats,
    ) -> Result<()> {
        let _ = (t_a, t_b, carry, carry_bar, p_bar, scratch, stats);
        Err(Error::Unsupported(format!(
            "{} is not algebraically reversible; the reversible gradient needs Reversible::new",
            self.name()
        )))
    }

    /// Spectral radius of the scheme's step on y' = αy at `x = hα`, given the base method's
    /// stability function `r` (diagnostics).
    fn amplification(&self, r: &dyn Fn(Complex64) -> Complex64, x: Complex64) -> f64;
}

/// The base method on its own: `y ← y + Ψ(t_a, t_b, y)`.
#[derive(Clone, Debug)]
pub struct Plain<M> {
    map: M,
}

impl<M: StepMap> Plain<M> {
    /// Uses the base step map directly (not reversible).
    pub fn new(map: M) -> Self {
        Plain { map }
    }
    /// Mutable access to the base map (e.g. to update parameters).
    pub fn map_mut(&mut self) -> &mut M {
        &mut self.map
    }
}

/// Work space of [`Plain`].
pub struct PlainScratch<M: StepMap> {
    tmp: M::State,
    map: M::Scratch,
}

impl<M: StepMap> Scheme for Plain<M> {
    type Map = M;
    type Carry = M::State;
    type Tape = M::Tape;
    type Scratch = PlainScratch<M>;

    fn map(&self) -> &M {
        &self.map
    }
    fn name(&self) -> String {
        self.map.name()
    }
    fn init(&self, start: Start<'_, M::State>, _: &mut PlainScratch<M>, _: &mut Stats) -> M::State {
        start.y0.clone()
    }
    fn new_carry(&self, like: &M::State) -> M::State {
        like.zeros_like()
    }
    fn output<'a>(&self, c: &'a M::State) -> &'a M::State {
        c
    }
    fn output_mut<'a>(&self, c: &'a mut M::State) -> &'a mut M::State {
        c
    }
    fn initial_cotangent(
        &self,
        _: Start<'_, M::State>,
        carry_bar: &M::State,
        out: &mut M::State,
        _: &mut M::ParamGrad,
        _: &mut PlainScratch<M>,
        _: &mut Stats,
    ) {
        out.copy_from(carry_bar);
    }
    fn new_tape(&self, like: &M::State) -> M::Tape {
        self.map.new_tape(like)
    }
    fn new_scratch(&self, like: &M::State) -> PlainScratch<M> {
        PlainScratch {
            tmp: like.zeros_like(),
            map: self.map.new_scratch(like),
        }
    }
    fn step(
        &self,
        t_a: f64,
        t_b: f64,
        y: &mut M::State,
        err: Option<&mut M::State>,
        tape: Option<&mut M::Tape>,
        s: &mut PlainScratch<M>,
        stats: &mut Stats,
    ) {
        self.map
            .increment(t_a, t_b, y, &mut s.tmp, err, tape, &mut s.map, stats);
        y.axpy(ScalarOf::<M>::one(), &s.tmp);
    }
    fn pullback(
        &self,
        tape: &M::Tape,
        y_bar: &mut M::State,
        p_bar: &mut M::ParamGrad,
        s: &mut PlainScratch<M>,
        stats: &mut Stats,
    ) {
        s.tmp.copy_from(y_bar);
        self.map.pullback(
            tape,
            &s.tmp,
            ScalarOf::<M>::one(),
            y_bar,
            p_bar,
            &mut s.map,
            stats,
        );
    }
    fn amplification(&self, r: &dyn Fn(Complex64) -> Complex64, x: Complex64) -> f64 {
        r(x).norm()
    }
}

use num_traits::One;

/// The reversible coupling of a base step map with parameter λ ∈ (0, 1] (METHOD.md §2):
///
/// ```text
/// y_{n+1} = λ y_n + (1 − λ) z_n + Ψ_h(t_n, z_n)
/// z_{n+1} = z_n − Ψ_{−h}(t_{n+1}, y_{n+1})
/// ```
#[derive(Clone, Debug)]
pub struct Reversible<M: StepMap> {
    map: M,
    lambda: f64,
    lam: ScalarOf<M>,
    one_minus: ScalarOf<M>,
    inv: ScalarOf<M>,
}

/// The paper's default coupling parameter.
pub const DEFAULT_LAMBDA: f64 = 0.999;

impl<M: StepMap> Reversible<M> {
    /// Couples `map` with parameter `lambda`; errors when λ ∉ (0, 1] or the map cannot step
    /// backwards in time.
    pub fn new(map: M, lambda: f64) -> Result<Self> {
        if !(lambda > 0.0 && lambda <= 1.0) {
            return Err(Error::InvalidCoupling { lambda });
        }
        if !map.time_reversible() {
            return Err(Error::Unsupported(format!(
                "the reversible coupling runs base steps backwards in time, which {} does not \
                 allow (an Itô method?); use a Stratonovich base method",
                map.name()
            )));
        }
        Ok(Reversible {
            map,
            lambda,
            lam: ScalarOf::<M>::of(lambda),
            one_minus: ScalarOf::<M>::of(1.0 - lambda),
            inv: ScalarOf::<M>::of(1.0 / lambda),
        })
    }
    /// The coupling parameter λ.
    pub fn lambda(&self) -> f64 {
        self.lambda
    }
    /// Mutable access to the base map (e.g. to update parameters).
    pub fn map_mut(&mut self) -> &mut M {
        &mut self.map
    }
}

/// Work space of [`Reversible`].
pub struct ReversibleScratch<M: StepMap> {
    tmp: M::State,
    tape: M::Tape,
    map: M::Scratch,
}

impl<M: StepMap> Scheme for Reversible<M> {
    type Map = M;
    type Carry = Pair<M::State>;
    /// Tapes of the forward base step (from z) and the backward base step (from y).
    type Tape = (M::Tape, M::Tape);
    type Scratch = ReversibleScratch<M>;

    fn map(&self) -> &M {
        &self.map
    }
    fn name(&self) -> String {
        let l = format!("{:.4}", self.lambda);
        let l = l.trim_end_matches('0').trim_end_matches('.');
        format!("reversible({}, λ={l})", self.map.name())
    }
    fn init(
        &self,
        start: Start<'_, M::State>,
        _: &mut ReversibleScratch<M>,
        _: &mut Stats,
    ) -> Pair<M::State> {
        Pair {
            y: start.y0.clone(),
            z: start.y0.clone(),
        }
    }
    fn new_carry(&self, like: &M::State) -> Pair<M::State> {
        Pair {
            y: like.zeros_like(),
            z: like.zeros_like(),
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
    fn initial_cotangent(
        &self,
        _: Start<'_, M::State>,
        bar: &Pair<M::State>,
        out: &mut M::State,
        _: &mut M::ParamGrad,
        _: &mut ReversibleScratch<M>,
        _: &mut Stats,
    ) {
        // z_0 = y_0, so both cotangents flow into y_0.
        out.lin_comb(ScalarOf::<M>::one(), &bar.y, ScalarOf::<M>::one(), &bar.z);
    }
    fn new_tape(&self, like: &M::State) -> Self::Tape {
        (self.map.new_tape(like), self.map.new_tape(like))
    }
    fn new_scratch(&self, like: &M::State) -> ReversibleScratch<M> {
        ReversibleScratch {
            tmp: like.zeros_like(),
            tape: self.map.new_tape(like),
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
        s: &mut ReversibleScratch<M>,
        stats: &mut Stats,
    ) {
        let (tape_w, tape_u) = match tape {
            Some((w, u)) => (Some(w), Some(u)),
            None => (None, None),
        };
        let one = ScalarOf::<M>::one();
        // y ← λy + (1−λ)z + Ψ_h(t_a, z)
        self.map
            .increment(t_a, t_b, &c.z, &mut s.tmp, None, tape_w, &mut s.map, stats);
        c.y.scale_add(self.lam, self.one_minus, &c.z);
        c.y.axpy(one, &s.tmp);
        // z ← z − Ψ_{−h}(t_b, y); its embedded error drives the controller (METHOD.md §4).
        self.map
            .increment(t_b, t_a, &c.y, &mut s.tmp, err, tape_u, &mut s.map, stats);
        c.z.axpy(-one, &s.tmp);
    }
    fn pullback(
        &self,
        (tape_w, tape_u): &Self::Tape,
        bar: &mut Pair<M::State>,
        p_bar: &mut M::ParamGrad,
        s: &mut ReversibleScratch<M>,
        stats: &mut Stats,
    ) {
        let one = ScalarOf::<M>::one();
        // z' = z − u(y'):  ȳ' −= J_uᵀ z̄'.
        self.map
            .pullback(tape_u, &bar.z, -one, &mut bar.y, p_bar, &mut s.map, stats);
        // y' = λy + (1−λ)z + w(z):  z̄ += (1−λ)ȳ' + J_wᵀ ȳ';  ȳ = λȳ'.
        self.map
            .pullback(tape_w, &bar.y, one, &mut bar.z, p_bar, &mut s.map, stats);
        bar.z.axpy(self.one_minus, &bar.y);
        bar.y.scale(self.lam);
    }
    fn is_reversible(&self) -> bool {
        true
    }
    fn reconstruct(
        &self,
        t_a: f64,
        t_b: f64,
        c: &mut Pair<M::State>,
        s: &mut ReversibleScratch<M>,
        stats: &mut Stats,
    ) -> Result<()> {
        let one = ScalarOf::<M>::one();
        self.map
            .increment(t_b, t_a, &c.y, &mut s.tmp, None, None, &mut s.map, stats);
        c.z.axpy(one, &s.tmp);
        self.map
            .increment(t_a, t_b, &c.z, &mut s.tmp, None, None, &mut s.map, stats);
        self.undo_y(c, s);
        Ok(())
    }
    fn reconstruct_pullback(
        &self,
        t_a: f64,
        t_b: f64,
        c: &mut Pair<M::State>,
        bar: &mut Pair<M::State>,
        p_bar: &mut M::ParamGrad,
        s: &mut ReversibleScratch<M>,
        stats: &mut Stats,
    ) -> Result<()> {
        let one = ScalarOf::<M>::one();
        // 1. u = Ψ_{−h}(t_{n+1}, y_{n+1}) traced; z_n = z_{n+1} + u.
        self.map.increment(
            t_b,
            t_a,
            &c.y,
            &mut s.tmp,
            None,
            Some(&mut s.tape),
            &mut s.map,
            stats,
        );
        c.z.axpy(one, &s.tmp);
        // 3. a_y ← a_y − J_uᵀ a_z (and a_θ likewise).
        self.map
            .pullback(&s.tape, &bar.z, -one, &mut bar.y, p_bar, &mut s.map, stats);
        // 2. w = Ψ_h(t_n, z_n) traced; y_n = λ⁻¹(y_{n+1} − (1−λ) z_n − w).
        self.map.increment(
            t_a,
            t_b,
            &c.z,
            &mut s.tmp,
            None,
            Some(&mut s.tape),
            &mut s.map,
            stats,
        );
        self.undo_y(c, s);
        // 4. a_θ += J_θᵀ a_y; a_z ← a_z + (1−λ) a_y + J_wᵀ a_y; a_y ← λ a_y.
        self.map
            .pullback(&s.tape, &bar.y, one, &mut bar.z, p_bar, &mut s.map, stats);
        bar.z.axpy(self.one_minus, &bar.y);
        bar.y.scale(self.lam);
        Ok(())
    }
    fn check_step(&self, h: f64) -> Result<()> {
        self.map.check_step(h, Some(self.lambda))
    }
    fn amplification(&self, r: &dyn Fn(Complex64) -> Complex64, x: Complex64) -> f64 {
        crate::stability::coupled_spectral_radius(r(x), r(-x), self.lambda)
    }
}

impl<M: StepMap> Reversible<M> {
    /// `y ← λ⁻¹ (y − (1−λ) z − w)` with `w` in `s.tmp`.
    fn undo_y(&self, c: &mut Pair<M::State>, s: &mut ReversibleScratch<M>) {
        let one = ScalarOf::<M>::one();
        c.y.axpy(-self.one_minus, &c.z);
        c.y.axpy(-one, &s.tmp);
        c.y.scale(self.inv);
    }
}
