//! Explicit Runge–Kutta step maps over any [`Term`], with pullbacks (METHOD.md §3).

use crate::adjoint::{AdjointScratch, AdjointTerm};
use crate::term::{Traced, Workspace};
use crate::{Pair, Real, State, Stats, StepMap, Tableau, Term};

type Sc<T> = <<T as Term>::State as State>::Scalar;

/// An explicit Runge–Kutta method applied to a term: the base step map Ψ.
///
/// Stage `i` evaluates `k_i = vf_prod(t_a + c_i·(t_b − t_a), Y_i, c)` with the control increment
/// `c` over the whole step and `Y_i = y + Σ_j a_ij k_j`; the increment is `Σ b_i k_i`.
/// First-same-as-last reuse is never used.
#[derive(Clone, Debug)]
pub struct Rk<T: Term> {
    term: T,
    tableau: Tableau,
    a: Vec<Vec<(usize, Sc<T>)>>,
    b: Vec<Sc<T>>,
    e: Option<Vec<Sc<T>>>,
    solution_stages: usize,
}

/// What a traced Runge–Kutta step keeps: the control, the step's times and each stage's cache.
pub struct RkTape<T: Term> {
    t_a: f64,
    t_b: f64,
    control: T::Control,
    caches: Vec<T::Cache>,
}

impl<T: Term> Clone for RkTape<T> {
    fn clone(&self) -> Self {
        RkTape {
            t_a: self.t_a,
            t_b: self.t_b,
            control: self.control.clone(),
            caches: self.caches.clone(),
        }
    }
}

/// Preallocated stage storage for one Runge–Kutta step and its pullback.
pub struct RkScratch<T: Term> {
    control: T::Control,
    stage: T::State,
    ks: Vec<T::State>,
    kbar: Vec<T::State>,
    tmp: T::State,
    ws: Workspace<T>,
    /// Backsolve's stage storage, made on its first step.
    adjoint: Option<AdjointScratch<T>>,
}

impl<T: Term> Rk<T> {
    /// Combines a term with a tableau.
    pub fn new(term: T, tableau: Tableau) -> Self {
        let a = tableau
            .a()
            .iter()
            .map(|row| {
                row.iter()
                    .enumerate()
                    .filter(|(_, &v)| v != 0.0)
                    .map(|(j, &v)| (j, Sc::<T>::of(v)))
                    .collect()
            })
            .collect();
        let b = tableau.b().iter().map(|&v| Sc::<T>::of(v)).collect();
        let e = tableau
            .error_weights()
            .map(|e| e.iter().map(|&v| Sc::<T>::of(v)).collect());
        let solution_stages = tableau.solution_stages();
        Rk {
            term,
            tableau,
            a,
            b,
            e,
            solution_stages,
        }
    }
    /// The term.
    pub fn term(&self) -> &T {
        &self.term
    }
    /// The term, unwrapped.
    pub fn into_term(self) -> T {
        self.term
    }
    /// Mutable access to the term (e.g. to update parameters between solves).
    pub fn term_mut(&mut self) -> &mut T {
        &mut self.term
    }

    #[inline]
    fn stage_time(&self, i: usize, t_a: f64, t_b: f64) -> f64 {
        let c = self.tableau.c()[i];
        if c == 1.0 {
            t_b
        } else {
            t_a + c * (t_b - t_a)
        }
    }

    /// The stage recursion, shared by the forward step and backsolve's adjoint step: for
    /// `i < n`, `Y_i = y + Σ_j a_ij k_j` and `k_i = eval(i, t_i, Y_i)`, over any state type.
    fn run_stages<V: State<Scalar = Sc<T>>>(
        &self,
        n: usize,
        (t_a, t_b): (f64, f64),
        y: &V,
        stage: &mut V,
        ks: &mut [V],
        mut eval: impl FnMut(usize, f64, &V, &mut V),
    ) {
        for i in 0..n {
            let t = self.stage_time(i, t_a, t_b);
            let (done, rest) = ks.split_at_mut(i);
            if self.a[i].is_empty() {
                eval(i, t, y, &mut rest[0]);
            } else {
                stage.copy_from(y);
                for &(j, a) in &self.a[i] {
                    stage.axpy(a, &done[j]);
                }
                eval(i, t, stage, &mut rest[0]);
            }
        }
    }

    /// Evaluates the first `n` stages of the step `span = (t_a, t_b)` from `y` into
    /// `scratch.ks`, caching into `caches` when given.
    fn stages(
        &self,
        n: usize,
        (t_a, t_b): (f64, f64),
        y: &T::State,
        scratch: &mut RkScratch<T>,
        mut caches: Option<&mut [T::Cache]>,
    ) {
        let RkScratch {
            control,
            stage,
            ks,
            ws,
            ..
        } = scratch;
        self.term.contr(t_a, t_b, control);
        let control = &*control;
        self.run_stages(n, (t_a, t_b), y, stage, ks, |i, t, yi, k| {
            let cache = caches.as_deref_mut().and_then(|c| c.get_mut(i));
            self.term.vf_prod(t, yi, control, k, cache, ws);
        });
    }
}

fn weighted_sum<V: State>(out: &mut V, w: &[V::Scalar], ks: &[V]) {
    out.set_zero();
    for (&w, k) in w.iter().zip(ks) {
        if w != V::Scalar::zero() {
            out.axpy(w, k);
        }
    }
}

use num_traits::{One, Zero};

impl<T: Term> StepMap for Rk<T> {
    type State = T::State;
    type ParamGrad = T::ParamGrad;
    type Tape = RkTape<T>;
    type Scratch = RkScratch<T>;

    fn name(&self) -> String {
        self.tableau.name().to_string()
    }
    fn order(&self) -> u32 {
        self.tableau.order()
    }
    fn has_error_estimate(&self) -> bool {
        self.e.is_some()
    }
    fn tableau(&self) -> Option<&Tableau> {
        Some(&self.tableau)
    }
    fn time_reversible(&self) -> bool {
        self.term.time_reversible()
    }
    fn domain(&self) -> (f64, f64) {
        self.term.domain()
    }
    fn domain_owner(&self) -> String {
        self.term.domain_owner()
    }
    fn check_step(&self, h: f64, lambda: Option<f64>) -> crate::Result<()> {
        self.term.check_step(h, &self.tableau, lambda)
    }
    fn validate_state(&self, y: &T::State) -> crate::Result<()> {
        self.term.validate_state(y)
    }
    fn new_tape(&self, like: &T::State) -> RkTape<T> {
        RkTape {
            t_a: 0.0,
            t_b: 0.0,
            control: self.term.new_control(),
            caches: (0..self.solution_stages)
                .map(|_| self.term.new_cache(like))
                .collect(),
        }
    }
    fn new_scratch(&self, like: &T::State) -> RkScratch<T> {
        let s = self.tableau.stages();
        let z = || like.zeros_like();
        RkScratch {
            control: self.term.new_control(),
            stage: z(),
            ks: (0..s).map(|_| z()).collect(),
            kbar: (0..s).map(|_| z()).collect(),
            tmp: z(),
            ws: Workspace::new(&self.term, like),
            adjoint: None,
        }
    }
    fn new_param_grad(&self) -> T::ParamGrad {
        self.term.new_param_grad()
    }

    fn increment(
        &self,
        t_a: f64,
        t_b: f64,
        y: &T::State,
        out: &mut T::State,
        err: Option<&mut T::State>,
        tape: Option<&mut RkTape<T>>,
        scratch: &mut RkScratch<T>,
        stats: &mut Stats,
    ) {
        let n = match (&err, &self.e) {
            (Some(_), Some(_)) => self.tableau.stages(),
            _ => self.solution_stages,
        };
        match tape {
            Some(tape) => {
                tape.t_a = t_a;
                tape.t_b = t_b;
                self.stages(n, (t_a, t_b), y, scratch, Some(&mut tape.caches));
                tape.control.clone_from(&scratch.control);
            }
            None => self.stages(n, (t_a, t_b), y, scratch, None),
        }
        stats.evaluations += n as u64 * self.term.evals_per_call();
        weighted_sum(out, &self.b[..self.solution_stages], &scratch.ks);
        if let Some(err) = err {
            match &self.e {
                Some(e) => weighted_sum(err, e, &scratch.ks),
                None => err.set_zero(),
            }
        }
    }

    fn pullback(
        &self,
        tape: &RkTape<T>,
        cot: &T::State,
        scale: Sc<T>,
        y_bar: &mut T::State,
        p_bar: &mut T::ParamGrad,
        scratch: &mut RkScratch<T>,
        stats: &mut Stats,
    ) {
        let n = self.solution_stages;
        for i in 0..n {
            scratch.kbar[i].copy_from(cot);
            scratch.kbar[i].scale(scale * self.b[i]);
        }
        for i in (0..n).rev() {
            let t = self.stage_time(i, tape.t_a, tape.t_b);
            let at = Traced {
                t,
                control: &tape.control,
                cache: &tape.caches[i],
            };
            let (before, rest) = scratch.kbar.split_at_mut(i);
            let kbar_i = &rest[0];
            let ws = &mut scratch.ws;
            if self.a[i].is_empty() {
                self.term
                    .vf_prod_vjp(at, kbar_i, Sc::<T>::one(), y_bar, p_bar, ws);
            } else {
                scratch.tmp.set_zero();
                self.term
                    .vf_prod_vjp(at, kbar_i, Sc::<T>::one(), &mut scratch.tmp, p_bar, ws);
                y_bar.axpy(Sc::<T>::one(), &scratch.tmp);
                for &(j, a) in &self.a[i] {
                    before[j].axpy(a, &scratch.tmp);
                }
            }
        }
        stats.pullbacks += n as u64;
    }

    /// The same stage recursion and weights over [`AdjointTerm`]'s state `(y, a)`; stage `i`
    /// adds `b_i k_i^θ` to `p_bar`.
    fn adjoint_step(
        &self,
        t_a: f64,
        t_b: f64,
        ya: &mut Pair<T::State>,
        p_bar: &mut T::ParamGrad,
        scratch: &mut RkScratch<T>,
        stats: &mut Stats,
    ) {
        let n = self.solution_stages;
        let s = self.tableau.stages();
        let adj = scratch
            .adjoint
            .get_or_insert_with(|| AdjointScratch::new(&self.term, &ya.y, s));
        self.term.contr(t_a, t_b, &mut adj.control);
        let AdjointScratch {
            control,
            stage,
            ks,
            eval,
        } = adj;
        let control = &*control;
        let term = AdjointTerm::new(&self.term);
        self.run_stages(n, (t_a, t_b), &*ya, stage, ks, |i, t, yi, k| {
            term.vf_prod((t, control), yi, k, self.b[i], p_bar, eval);
        });
        stats.evaluations += n as u64 * self.term.evals_per_call();
        stats.pullbacks += n as u64;
        for (&b, k) in self.b.iter().zip(ks.iter()).take(n) {
            if b != Sc::<T>::zero() {
                ya.axpy(b, k);
            }
        }
    }

    fn with_linearised_vjp(
        &self,
        t_a: f64,
        t_b: f64,
        y: &T::State,
        with: &mut dyn FnMut(&mut crate::step_map::LinearOp<'_>),
    ) -> bool {
        let mut control = self.term.new_control();
        self.term.contr(t_a, t_b, &mut control);
        let mut cache = self.term.new_cache(y);
        let mut out = y.zeros_like();
        let mut ws = Workspace::new(&self.term, y);
        self.term
            .vf_prod(t_a, y, &control, &mut out, Some(&mut cache), &mut ws);
        let mut sink = self.term.new_param_grad();
        let mut cot = y.zeros_like();
        let mut row = y.zeros_like();
        with(&mut |v: &[f64], out: &mut [f64]| {
            cot.set_from_f64(v);
            row.set_zero();
            let at = Traced {
                t: t_a,
                control: &control,
                cache: &cache,
            };
            self.term
                .vf_prod_vjp(at, &cot, Sc::<T>::one(), &mut row, &mut sink, &mut ws);
            out.copy_from_slice(&row.to_f64_vec());
        });
        true
    }
}
