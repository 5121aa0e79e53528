//! Backsolve's adjoint term: the augmented system that the base method integrates backwards.
//!
//! For `dy = f(t, y)·dc`, the continuous adjoint of a loss `L(y(T))` solves, from `T` back to
//! `t₀`,
//!
//! ```text
//! dy = f(t, y)·dc,   da = −(∂(f·dc)/∂y)ᵀ a,   dθ̄ = −(∂(f·dc)/∂θ)ᵀ a,
//! ```
//!
//! with `a(T) = ∂L/∂y(T)` and `θ̄(T) = 0`; then `a(t₀) ≈ ∂L/∂y₀` and `θ̄(t₀) ≈ ∂L/∂θ`
//! (Chen et al. 2018). [`AdjointTerm`] is that right-hand side: its state is the pair
//! `(y, a)` (a [`Pair`] with `z = a`), and each evaluation also returns the θ̄ rate.
//! [`crate::Rk`] runs it through the *same* stage recursion and tableau as the forward solve,
//! so backsolve is "the same method on the adjoint system", not a second integrator.
//!
//! Two choices, and why:
//! - **Fused evaluation only.** For a general control `c` (a CDE's path increment, an SDE's
//!   Brownian increment) the adjoint's field *value*, independent of `c`, is the matrix whose
//!   k-th column is `−(∂f_k/∂y)ᵀa`: one VJP per control channel. The product with `c` needs a
//!   single VJP of `f·c`, so the adjoint term evaluates `(f·c, −(∂(f·c)/∂y)ᵀa)` in one go,
//!   as Diffrax's `AdjointTerm.vf_prod` does.
//! - **θ̄ as a quadrature.** θ̄ never feeds back into the field, so its stage values are never
//!   needed: the method's increment of θ̄ is `Σᵢ bᵢ kᵢ^θ`, and stage `i` adds `bᵢ kᵢ^θ` straight
//!   into the caller's accumulator. This is the tableau's update applied to the θ̄ component,
//!   without storing `s` parameter-sized stage values.

use crate::term::{ScalarOfTerm, Traced, Workspace};
use crate::{Pair, Real, State, Term};

/// The adjoint system of a [`Term`] (see the module docs): state `(y, a)`, plus the θ̄ rate.
pub struct AdjointTerm<'a, T: Term> {
    term: &'a T,
}

/// Work space of a backsolve step: the control, the stage recursion's values and what one
/// [`AdjointTerm`] evaluation uses.
pub struct AdjointScratch<T: Term> {
    pub(crate) control: T::Control,
    pub(crate) stage: Pair<T::State>,
    pub(crate) ks: Vec<Pair<T::State>>,
    pub(crate) eval: AdjointWork<T>,
}

/// What one [`AdjointTerm`] evaluation uses: one cache (the primal evaluation is pulled back at
/// once), the term's workspace, and an accumulator for stages whose θ̄ weight is zero.
pub struct AdjointWork<T: Term> {
    cache: T::Cache,
    ws: Workspace<T>,
    sink: T::ParamGrad,
}

impl<T: Term> AdjointScratch<T> {
    /// Work space for `stages` stages of states like `like`.
    pub fn new(term: &T, like: &T::State, stages: usize) -> Self {
        let pair = || Pair {
            y: like.zeros_like(),
            z: like.zeros_like(),
        };
        AdjointScratch {
            control: term.new_control(),
            stage: pair(),
            ks: (0..stages).map(|_| pair()).collect(),
            eval: AdjointWork {
                cache: term.new_cache(like),
                ws: Workspace::new(term, like),
                sink: term.new_param_grad(),
            },
        }
    }
}

impl<'a, T: Term> AdjointTerm<'a, T> {
    /// The adjoint system of `term`.
    pub fn new(term: &'a T) -> Self {
        AdjointTerm { term }
    }

    /// One evaluation at `(t, (y, a))` under the control `c`:
    /// `out ← (f(t, y)·c, −(∂(f·c)/∂y)ᵀa)` and `p_bar += −w·(∂(f·c)/∂θ)ᵀa`, where `w` is the
    /// stage's weight in the step's update (`bᵢ`).
    pub fn vf_prod(
        &self,
        at: (f64, &T::Control),
        ya: &Pair<T::State>,
        out: &mut Pair<T::State>,
        w: ScalarOfTerm<T>,
        p_bar: &mut T::ParamGrad,
        work: &mut AdjointWork<T>,
    ) {
        let (t, control) = at;
        let AdjointWork { cache, ws, sink } = work;
        self.term
            .vf_prod(t, &ya.y, control, &mut out.y, Some(cache), ws);
        let traced = Traced { t, control, cache };
        out.z.set_zero();
        let one = <ScalarOfTerm<T> as num_traits::One>::one();
        if w != <ScalarOfTerm<T> as Real>::of(0.0) {
            // One pullback serves both components: scale by −w for θ̄, then undo w on a's rate.
            self.term
                .vf_prod_vjp(traced, &ya.z, -w, &mut out.z, p_bar, ws);
            out.z.scale(one / w);
        } else {
            self.term
                .vf_prod_vjp(traced, &ya.z, -one, &mut out.z, sink, ws);
        }
    }
}
