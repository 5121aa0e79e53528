//! SDE solvers: base step maps for the core's schemes, checked against the term's calculus.
//!
//! Stratonovich Heun and midpoint are the core's Runge–Kutta maps over an [`SdeTerm`]; they may
//! be coupled with [`revode_core::Reversible`] unchanged. Reversible Heun is
//! [`revode_core::ReversibleHeun`] over the Euler map. Euler–Maruyama converges to the Itô
//! solution and only runs forwards: reversible schemes, backsolve and the reversible gradient
//! refuse it with an error.

use crate::{Calculus, Diffusion, SdeTerm};
use revode_core::{scalar::Real, Error, Result, ReversibleHeun, Rk, Tableau, VectorField};

/// An SDE term with its base Runge–Kutta map.
pub type SdeMap<F, G> = Rk<SdeTerm<F, G>>;

/// The SDE solvers revode provides.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SdeSolver {
    /// Euler–Maruyama (Itô; strong order ½, 1 for additive noise). Forward only.
    EulerMaruyama,
    /// Stratonovich Heun (strong order ½ in general, 1 for commutative or additive noise).
    Heun,
    /// Stratonovich midpoint (same orders as Heun).
    Midpoint,
}

impl SdeSolver {
    /// The calculus the solver converges to.
    pub fn calculus(self) -> Calculus {
        match self {
            SdeSolver::EulerMaruyama => Calculus::Ito,
            _ => Calculus::Stratonovich,
        }
    }
    /// A short name.
    pub fn name(self) -> &'static str {
        match self {
            SdeSolver::EulerMaruyama => "euler-maruyama",
            SdeSolver::Heun => "heun",
            SdeSolver::Midpoint => "midpoint",
        }
    }
}

fn check<F, G: Diffusion>(term: &SdeTerm<F, G>, want: Calculus, solver: &str) -> Result<()>
where
    F: VectorField<Scalar = G::Scalar>,
    G::Scalar: Real,
{
    if term.calculus() != want {
        return Err(Error::Unsupported(format!(
            "{solver} converges to the {want:?} solution but the term is {:?}; build the term \
             with Calculus::{want:?} (Itô ↔ Stratonovich needs a drift correction)",
            term.calculus()
        )));
    }
    Ok(())
}

/// The base step map of `solver` over `term`; errors when the term's calculus differs.
pub fn step_map<F, G>(term: SdeTerm<F, G>, solver: SdeSolver) -> Result<SdeMap<F, G>>
where
    G: Diffusion,
    F: VectorField<Scalar = G::Scalar>,
{
    check(&term, solver.calculus(), solver.name())?;
    let tableau = match solver {
        SdeSolver::EulerMaruyama => Tableau::euler(),
        SdeSolver::Heun => Tableau::heun(),
        SdeSolver::Midpoint => Tableau::midpoint(),
    };
    Ok(Rk::new(term, tableau))
}

/// Reversible Heun over a Stratonovich term.
pub fn reversible_heun<F, G>(term: SdeTerm<F, G>) -> Result<ReversibleHeun<SdeTerm<F, G>>>
where
    G: Diffusion,
    F: VectorField<Scalar = G::Scalar>,
{
    check(&term, Calculus::Stratonovich, "reversible Heun")?;
    ReversibleHeun::new(term)
}
