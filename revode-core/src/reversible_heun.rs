//! Reversible Heun (Kidger et al. 2021, "Efficient and Accurate Gradients for Neural SDEs",
//! Algorithm 1; METHOD.md §6) at one field evaluation per step.
//!
//! The carry is `(y, ŷ, V)` with `V = f(t_n, ŷ_n)` the field value (drift and diffusion for an
//! SDE). With `c_n` the control over `[t_n, t_{n+1}]` and `P(V) = V·c_n` ([`Term::prod`]):
//!
//! ```text
//! ŷ_{n+1} = 2y_n − ŷ_n + P(V_n)
//! V_{n+1} = f(t_{n+1}, ŷ_{n+1})
//! y_{n+1} = y_n + ½P(V_n) + ½P(V_{n+1})
//! ```
//!
//! `V_{n+1}` is reused by the next step under the next control, so a forward step costs one
//! evaluation. The step is its own exact inverse: `ŷ_n = 2y_{n+1} − ŷ_{n+1} − P(V_{n+1})`,
//! `V_n = f(t_n, ŷ_n)`, `y_n = y_{n+1} − ½P(V_n) − ½P(V_{n+1})`: one evaluation per step
//! backwards, and one pullback (at `ŷ_{n+1}`, whose evaluation the previous backward step
//! kept). The adjoint of one step, with `Ṽ = V̄' + ½Pᵀȳ'` and `a = ŷ̄' + J_f(ŷ_{n+1})ᵀṼ`:
//! `ȳ = ȳ' + 2a`, `ŷ̄ = −a`, `V̄ = Pᵀ(½ȳ' + a)`.
//!
//! It converges to the Stratonovich solution with strong order ½ (1 for additive noise).

use crate::scheme::{ScalarOf, Start};
use crate::state::nan_max;
use crate::term::{Traced, Workspace};
use crate::{Error, Real, Result, Rk, Scheme, State, Stats, Tableau, Term};
use num_complex::Complex64;
use num_traits::One;

/// The reversible Heun scheme over a term (normally an SDE term in Stratonovich form).
#[derive(Clone, Debug)]
pub struct ReversibleHeun<T: Term> {
    /// The Euler map over the term: names, domain, shapes and stability analysis.
    map: Rk<T>,
}

impl<T: Term> ReversibleHeun<T> {
    /// Wraps `term`; errors when it cannot step backwards in time (an Itô term).
    pub fn new(term: T) -> Result<Self> {
        if !term.time_reversible() {
            return Err(Error::Unsupported(
                "reversible Heun runs steps backwards in time, which this term does not allow \
                 (an Itô term?); use a Stratonovich term"
                    .into(),
            ));
        }
        Ok(ReversibleHeun {
            map: Rk::new(term, Tableau::euler()),
        })
    }
    /// The term.
    pub fn term(&self) -> &T {
        self.map.term()
    }
    /// Mutable access to the term (e.g. to update parameters).
    pub fn term_mut(&mut self) -> &mut T {
        self.map.term_mut()
    }
}

/// The carry of [`ReversibleHeun`]: the output `y`, the auxiliary `ŷ` and the field value `V`
/// at `ŷ`. Implements [`State`] componentwise.
#[derive(Clone, Debug, PartialEq)]
pub struct HeunCarry<V, F> {
    /// The output state y.
    pub y: V,
    /// The auxiliary state ŷ.
    pub z: V,
    /// The field value at `(t, ŷ)`.
    pub v: F,
}

/// What a traced step keeps: the new time, the control and the evaluation at `ŷ_{n+1}`.
pub struct HeunTape<T: Term> {
    t: f64,
    control: T::Control,
    cache: T::Cache,
}

impl<T: Term> Clone for HeunTape<T> {
    fn clone(&self) -> Self {
        HeunTape {
            t: self.t,
            control: self.control.clone(),
            cache: self.cache.clone(),
        }
    }
}

/// Work space of [`ReversibleHeun`]; it also keeps the evaluation made by the last backward
/// step, which the next backward step pulls back through.
pub struct ReversibleHeunScratch<T: Term> {
    control: T::Control,
    w: T::State,
    u: T::State,
    /// `(t, ŷ)` at which `cache` was evaluated, when it is valid.
    kept: Option<(f64, T::State)>,
    cache: T::Cache,
    /// `(t0, y0)` and the evaluation [`Scheme::init`] made there, for the initial pullback.
    start: Option<(f64, T::State)>,
    start_cache: T::Cache,
    adj: AdjointSpace<T>,
}

/// Buffers of one step's adjoint.
struct AdjointSpace<T: Term> {
    q: T::State,
    v_bar: T::Field,
    ws: Workspace<T>,
}

type Carry<T> = HeunCarry<<T as Term>::State, <T as Term>::Field>;

impl<T: Term> ReversibleHeun<T> {
    /// The adjoint of one step given the evaluation at `ŷ_{n+1}`.
    fn pull(
        term: &T,
        at: Traced<'_, T>,
        bar: &mut Carry<T>,
        p_bar: &mut T::ParamGrad,
        s: &mut AdjointSpace<T>,
        stats: &mut Stats,
    ) {
        let (t, control, cache) = (at.t, at.control, at.cache);
        let one = ScalarOf::<Rk<T>>::one();
        let half = ScalarOf::<Rk<T>>::of(0.5);
        // Ṽ = V̄' + ½Pᵀȳ';  a = ŷ̄' + Jᵀ Ṽ (in bar.z)
        term.prod_vjp(control, &bar.y, half, &mut s.v_bar);
        s.v_bar.axpy(one, &bar.v);
        term.vf_vjp(t, cache, &s.v_bar, &mut bar.z, p_bar, &mut s.ws.scratch);
        stats.pullbacks += 1;
        // V̄ = Pᵀ(½ȳ' + a);  ȳ = ȳ' + 2a;  ŷ̄ = −a
        s.q.lin_comb(half, &bar.y, one, &bar.z);
        term.prod_vjp(control, &s.q, one, &mut bar.v);
        bar.y.axpy(ScalarOf::<Rk<T>>::of(2.0), &bar.z);
        bar.z.scale(-one);
    }

    /// Runs one step backwards with `s.control` already set: `(y_{n+1}, ŷ_{n+1}, V_{n+1})` at
    /// `t_b` becomes the carry at `t_a`; the evaluation of `V_n` is kept in `s.cache`.
    fn unstep(&self, t_a: f64, c: &mut Carry<T>, s: &mut ReversibleHeunScratch<T>, st: &mut Stats) {
        let term = self.map.term();
        let one = ScalarOf::<Rk<T>>::one();
        let half = ScalarOf::<Rk<T>>::of(0.5);
        // u = P(V_{n+1});  ŷ_n = 2y_{n+1} − ŷ_{n+1} − u
        term.prod(&c.v, &s.control, &mut s.u);
        c.z.scale_add(-one, ScalarOf::<Rk<T>>::of(2.0), &c.y);
        c.z.axpy(-one, &s.u);
        // V_n = f(t_n, ŷ_n);  y_n = y_{n+1} − ½P(V_n) − ½u
        term.vf(
            t_a,
            &c.z,
            &mut c.v,
            Some(&mut s.cache),
            &mut s.adj.ws.scratch,
        );
        st.evaluations += term.evals_per_call();
        match &mut s.kept {
            Some((t, z)) => {
                *t = t_a;
                z.copy_from(&c.z);
            }
            None => s.kept = Some((t_a, c.z.clone())),
        }
        term.prod(&c.v, &s.control, &mut s.w);
        c.y.axpy(-half, &s.w);
        c.y.axpy(-half, &s.u);
    }

    /// Makes `s.cache` the evaluation at `(t, z)`, reusing the kept one when it matches.
    fn evaluation_at(
        &self,
        t: f64,
        z: &T::State,
        s: &mut ReversibleHeunScratch<T>,
        st: &mut Stats,
    ) {
        let fresh = match &s.kept {
            Some((tk, zk)) => *tk != t || zk.max_abs_diff(z) != ScalarOf::<Rk<T>>::zero(),
            None => true,
        };
        if fresh {
            let term = self.map.term();
            let ws = &mut s.adj.ws;
            term.vf(t, z, &mut ws.field, Some(&mut s.cache), &mut ws.scratch);
            st.evaluations += term.evals_per_call();
            s.kept = None;
        }
    }
}

use num_traits::Zero;

impl<T: Term> Scheme for ReversibleHeun<T> {
    type Map = Rk<T>;
    type Carry = Carry<T>;
    type Tape = HeunTape<T>;
    type Scratch = ReversibleHeunScratch<T>;

    fn map(&self) -> &Rk<T> {
        &self.map
    }
    fn name(&self) -> String {
        "reversible-heun".into()
    }
    fn init(&self, start: Start<'_, T::State>, s: &mut Self::Scratch, st: &mut Stats) -> Carry<T> {
        let term = self.map.term();
        let mut v = term.new_field(start.y0);
        let cache = Some(&mut s.start_cache);
        term.vf(start.t0, start.y0, &mut v, cache, &mut s.adj.ws.scratch);
        st.evaluations += term.evals_per_call();
        s.start = Some((start.t0, start.y0.clone()));
        HeunCarry {
            y: start.y0.clone(),
            z: start.y0.clone(),
            v,
        }
    }
    fn new_carry(&self, like: &T::State) -> Carry<T> {
        HeunCarry {
            y: like.zeros_like(),
            z: like.zeros_like(),
            v: self.map.term().new_field(like),
        }
    }
    fn output<'a>(&self, c: &'a Carry<T>) -> &'a T::State {
        &c.y
    }
    fn output_mut<'a>(&self, c: &'a mut Carry<T>) -> &'a mut T::State {
        &mut c.y
    }
    fn coupled<'a>(&self, c: &'a Carry<T>) -> Option<&'a T::State> {
        Some(&c.z)
    }
    /// `ȳ0 = ȳ + ŷ̄ + J_f(t0, y0)ᵀ V̄`, through the evaluation [`Scheme::init`] kept (made
    /// afresh when this scratch did not start at `(t0, y0)`).
    fn initial_cotangent(
        &self,
        start: Start<'_, T::State>,
        bar: &Carry<T>,
        out: &mut T::State,
        p_bar: &mut T::ParamGrad,
        s: &mut Self::Scratch,
        st: &mut Stats,
    ) {
        let term = self.map.term();
        let one = ScalarOf::<Rk<T>>::one();
        out.lin_comb(one, &bar.y, one, &bar.z);
        let zero = ScalarOf::<Rk<T>>::zero();
        let kept = match &s.start {
            Some((t, y)) => *t == start.t0 && y.max_abs_diff(start.y0) == zero,
            None => false,
        };
        if !kept {
            s.kept = None;
            self.evaluation_at(start.t0, start.y0, s, st);
            std::mem::swap(&mut s.cache, &mut s.start_cache);
        }
        let ws = &mut s.adj.ws.scratch;
        term.vf_vjp(start.t0, &s.start_cache, &bar.v, out, p_bar, ws);
        st.pullbacks += 1;
    }
    fn new_tape(&self, like: &T::State) -> HeunTape<T> {
        let term = self.map.term();
        HeunTape {
            t: 0.0,
            control: term.new_control(),
            cache: term.new_cache(like),
        }
    }
    fn new_scratch(&self, like: &T::State) -> Self::Scratch {
        let term = self.map.term();
        ReversibleHeunScratch {
            control: term.new_control(),
            w: like.zeros_like(),
            u: like.zeros_like(),
            kept: None,
            cache: term.new_cache(like),
            start: None,
            start_cache: term.new_cache(like),
            adj: AdjointSpace {
                q: like.zeros_like(),
                v_bar: term.new_field(like),
                ws: Workspace::new(term, like),
            },
        }
    }
    fn step(
        &self,
        t_a: f64,
        t_b: f64,
        c: &mut Carry<T>,
        err: Option<&mut T::State>,
        tape: Option<&mut HeunTape<T>>,
        s: &mut Self::Scratch,
        st: &mut Stats,
    ) {
        let term = self.map.term();
        let one = ScalarOf::<Rk<T>>::one();
        let half = ScalarOf::<Rk<T>>::of(0.5);
        s.kept = None;
        term.contr(t_a, t_b, &mut s.control);
        // w = P(V_n);  ŷ_{n+1} = 2y − ŷ + w
        term.prod(&c.v, &s.control, &mut s.w);
        c.z.scale_add(-one, ScalarOf::<Rk<T>>::of(2.0), &c.y);
        c.z.axpy(one, &s.w);
        // V_{n+1} = f(t_{n+1}, ŷ_{n+1}), the one evaluation of the step.
        match tape {
            Some(tape) => {
                tape.t = t_b;
                tape.control.clone_from(&s.control);
                term.vf(
                    t_b,
                    &c.z,
                    &mut c.v,
                    Some(&mut tape.cache),
                    &mut s.adj.ws.scratch,
                );
            }
            None => term.vf(t_b, &c.z, &mut c.v, None, &mut s.adj.ws.scratch),
        }
        st.evaluations += term.evals_per_call();
        // y_{n+1} = y + ½w + ½P(V_{n+1})
        term.prod(&c.v, &s.control, &mut s.u);
        c.y.axpy(half, &s.w);
        c.y.axpy(half, &s.u);
        if let Some(err) = err {
            err.set_zero();
        }
    }
    fn pullback(
        &self,
        tape: &HeunTape<T>,
        bar: &mut Carry<T>,
        p_bar: &mut T::ParamGrad,
        s: &mut Self::Scratch,
        st: &mut Stats,
    ) {
        let at = Traced {
            t: tape.t,
            control: &tape.control,
            cache: &tape.cache,
        };
        Self::pull(self.map.term(), at, bar, p_bar, &mut s.adj, st);
    }
    fn is_reversible(&self) -> bool {
        true
    }
    fn reconstruct(
        &self,
        t_a: f64,
        t_b: f64,
        c: &mut Carry<T>,
        s: &mut Self::Scratch,
        st: &mut Stats,
    ) -> Result<()> {
        self.map.term().contr(t_a, t_b, &mut s.control);
        self.unstep(t_a, c, s, st);
        Ok(())
    }
    fn reconstruct_pullback(
        &self,
        t_a: f64,
        t_b: f64,
        c: &mut Carry<T>,
        bar: &mut Carry<T>,
        p_bar: &mut T::ParamGrad,
        s: &mut Self::Scratch,
        st: &mut Stats,
    ) -> Result<()> {
        let term = self.map.term();
        // The evaluation at (t_{n+1}, ŷ_{n+1}): kept by the previous backward step.
        self.evaluation_at(t_b, &c.z, s, st);
        term.contr(t_a, t_b, &mut s.control);
        let at = Traced {
            t: t_b,
            control: &s.control,
            cache: &s.cache,
        };
        Self::pull(term, at, bar, p_bar, &mut s.adj, st);
        self.unstep(t_a, c, s, st);
        Ok(())
    }
    fn amplification(&self, r: &dyn Fn(Complex64) -> Complex64, x: Complex64) -> f64 {
        // On y' = αy: P(V_n) = x·ŷ_n, so with p = r(x) − 1 = x (Euler) and q = 1 − r(−x) = x
        // the step is the matrix [[1 + q, ½(p + q(p − 1))], [2, p − 1]] on (y, ŷ).
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

impl<V: State, F: State<Scalar = V::Scalar>> State for HeunCarry<V, F> {
    type Scalar = V::Scalar;
    fn zeros_like(&self) -> Self {
        HeunCarry {
            y: self.y.zeros_like(),
            z: self.z.zeros_like(),
            v: self.v.zeros_like(),
        }
    }
    fn len(&self) -> usize {
        self.y.len() + self.z.len() + self.v.len()
    }
    fn copy_from(&mut self, o: &Self) {
        self.y.copy_from(&o.y);
        self.z.copy_from(&o.z);
        self.v.copy_from(&o.v);
    }
    fn set_zero(&mut self) {
        self.y.set_zero();
        self.z.set_zero();
        self.v.set_zero();
    }
    fn axpy(&mut self, a: V::Scalar, x: &Self) {
        self.y.axpy(a, &x.y);
        self.z.axpy(a, &x.z);
        self.v.axpy(a, &x.v);
    }
    fn scale(&mut self, a: V::Scalar) {
        self.y.scale(a);
        self.z.scale(a);
        self.v.scale(a);
    }
    fn scale_add(&mut self, a: V::Scalar, b: V::Scalar, x: &Self) {
        self.y.scale_add(a, b, &x.y);
        self.z.scale_add(a, b, &x.z);
        self.v.scale_add(a, b, &x.v);
    }
    fn lin_comb(&mut self, a: V::Scalar, x: &Self, b: V::Scalar, y: &Self) {
        self.y.lin_comb(a, &x.y, b, &y.y);
        self.z.lin_comb(a, &x.z, b, &y.z);
        self.v.lin_comb(a, &x.v, b, &y.v);
    }
    fn dot(&self, o: &Self) -> V::Scalar {
        self.y.dot(&o.y) + self.z.dot(&o.z) + self.v.dot(&o.v)
    }
    fn all_finite(&self) -> bool {
        self.y.all_finite() && self.z.all_finite() && self.v.all_finite()
    }
    fn max_abs(&self) -> V::Scalar {
        nan_max(
            nan_max(self.y.max_abs(), self.z.max_abs()),
            self.v.max_abs(),
        )
    }
    fn max_abs_diff(&self, o: &Self) -> V::Scalar {
        let yz = nan_max(self.y.max_abs_diff(&o.y), self.z.max_abs_diff(&o.z));
        nan_max(yz, self.v.max_abs_diff(&o.v))
    }
    fn scaled_rms(&self, a: &Self, b: &Self, atol: f64, rtol: f64) -> f64 {
        let parts = [
            (self.y.len(), self.y.scaled_rms(&a.y, &b.y, atol, rtol)),
            (self.z.len(), self.z.scaled_rms(&a.z, &b.z, atol, rtol)),
            (self.v.len(), self.v.scaled_rms(&a.v, &b.v, atol, rtol)),
        ];
        let sum: f64 = parts.iter().map(|&(n, e)| n as f64 * e * e).sum();
        (sum / (self.len() as f64).max(1.0)).sqrt()
    }
    fn scaled_max(&self, a: &Self, b: &Self, atol: f64, rtol: f64) -> f64 {
        let yz = nan_max(
            self.y.scaled_max(&a.y, &b.y, atol, rtol),
            self.z.scaled_max(&a.z, &b.z, atol, rtol),
        );
        nan_max(yz, self.v.scaled_max(&a.v, &b.v, atol, rtol))
    }
    fn to_f64_vec(&self) -> Vec<f64> {
        let mut out = self.y.to_f64_vec();
        out.extend(self.z.to_f64_vec());
        out.extend(self.v.to_f64_vec());
        out
    }
    fn set_from_f64(&mut self, values: &[f64]) -> bool {
        if values.len() != self.len() {
            return false;
        }
        let (a, rest) = values.split_at(self.y.len());
        let (b, c) = rest.split_at(self.z.len());
        self.y.set_from_f64(a) && self.z.set_from_f64(b) && self.v.set_from_f64(c)
    }
}
