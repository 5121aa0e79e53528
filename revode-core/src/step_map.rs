//! The base step map Ψ: `(t_a, t_b, y) ↦ increment`, with its pullback.

use crate::{Pair, State, Stats, Tableau};

/// A linear operator on flat `f64` vectors: `op(v, out)` sets `out = A v`.
pub type LinearOp<'a> = dyn FnMut(&[f64], &mut [f64]) + 'a;

/// A single-step base method: one step from `(t_a, y)` to `t_b` gives `y + Ψ(t_a, t_b, y)`.
///
/// `t_b < t_a` steps backwards in time (Ψ_{−h} of METHOD.md §2). This is the one abstraction
/// the reversible coupling, the integration loop and every gradient method are written against.
pub trait StepMap {
    /// The state type.
    type State: State;
    /// Parameter-cotangent accumulator.
    type ParamGrad: crate::GradBuffer;
    /// What a traced step keeps for its pullback.
    type Tape: Clone;
    /// Preallocated per-step work space.
    type Scratch;

    /// A short description, e.g. the tableau's name.
    fn name(&self) -> String;
    /// Order of the method.
    fn order(&self) -> u32;
    /// Whether [`StepMap::increment`] can produce an embedded error estimate.
    fn has_error_estimate(&self) -> bool;
    /// The Butcher tableau, when the map is a Runge–Kutta method (used by stability analysis).
    fn tableau(&self) -> Option<&Tableau>;
    /// Whether stepping backwards in time is valid (false for Itô methods).
    fn time_reversible(&self) -> bool;
    /// The interval of times the map can be evaluated on.
    fn domain(&self) -> (f64, f64);
    /// What owns [`StepMap::domain`], for error messages (e.g. "the CDE path").
    fn domain_owner(&self) -> String {
        self.name()
    }
    /// Refuses a fixed step `h` the map knows to be unstable (`lambda`: the coupling's λ when
    /// the map is run reversibly). Default: accept.
    fn check_step(&self, h: f64, lambda: Option<f64>) -> crate::Result<()> {
        let _ = (h, lambda);
        Ok(())
    }
    /// Checks that `y` has the shape the map expects.
    fn validate_state(&self, y: &Self::State) -> crate::Result<()>;
    /// A tape shaped for states like `like`.
    fn new_tape(&self, like: &Self::State) -> Self::Tape;
    /// Work space for states like `like`.
    fn new_scratch(&self, like: &Self::State) -> Self::Scratch;
    /// A zeroed parameter-cotangent accumulator.
    fn new_param_grad(&self) -> Self::ParamGrad;

    /// `out ← Ψ(t_a, t_b, y)`; with `err`, also the embedded error estimate; with `tape`, keep
    /// what [`StepMap::pullback`] needs.
    #[allow(clippy::too_many_arguments)]
    fn increment(
        &self,
        t_a: f64,
        t_b: f64,
        y: &Self::State,
        out: &mut Self::State,
        err: Option<&mut Self::State>,
        tape: Option<&mut Self::Tape>,
        scratch: &mut Self::Scratch,
        stats: &mut Stats,
    );

    /// Pullback of the traced increment: `y_bar += scale·(∂Ψ/∂y)ᵀ cot`,
    /// `p_bar += scale·(∂Ψ/∂θ)ᵀ cot`.
    #[allow(clippy::too_many_arguments)]
    fn pullback(
        &self,
        tape: &Self::Tape,
        cot: &Self::State,
        scale: <Self::State as State>::Scalar,
        y_bar: &mut Self::State,
        p_bar: &mut Self::ParamGrad,
        scratch: &mut Self::Scratch,
        stats: &mut Stats,
    );

    /// One step of backsolve's adjoint system ([`crate::adjoint`]) from `t_a` to `t_b`
    /// (normally `t_b < t_a`), by the same method: `ya = (y, a)` advances and `p_bar` gains the
    /// step's θ̄ increment.
    fn adjoint_step(
        &self,
        t_a: f64,
        t_b: f64,
        ya: &mut Pair<Self::State>,
        p_bar: &mut Self::ParamGrad,
        scratch: &mut Self::Scratch,
        stats: &mut Stats,
    );

    /// Calls `with(op)`, where `op(v, out)` sets `out = Jᵀv` for the Jacobian J of the per-stage
    /// product `f(t_a, y)·c(t_a, t_b)` at `y` (vectors in [`State::to_f64_vec`] order), and
    /// returns true; returns false when the map has no linearisation. Stability diagnostics of
    /// states of any size are built on it (Arnoldi on the VJP).
    fn with_linearised_vjp(
        &self,
        t_a: f64,
        t_b: f64,
        y: &Self::State,
        with: &mut dyn FnMut(&mut LinearOp<'_>),
    ) -> bool {
        let _ = (t_a, t_b, y, with);
        false
    }

    /// The dense Jacobian J of the per-stage product `f(t_a, y)·c(t_a, t_b)` at `y`, row-major,
    /// when the state has at most `max_dim` entries (one VJP per row).
    fn linearisation(
        &self,
        t_a: f64,
        t_b: f64,
        y: &Self::State,
        max_dim: usize,
    ) -> Option<Vec<f64>> {
        let n = y.len();
        if n == 0 || n > max_dim {
            return None;
        }
        let mut jac = vec![0.0; n * n];
        let mut unit = vec![0.0; n];
        let done = self.with_linearised_vjp(t_a, t_b, y, &mut |op| {
            for i in 0..n {
                unit.iter_mut().for_each(|u| *u = 0.0);
                unit[i] = 1.0;
                // Jᵀ e_i is the i-th row of J.
                op(&unit, &mut jac[i * n..(i + 1) * n]);
            }
        });
        done.then_some(jac)
    }
}
