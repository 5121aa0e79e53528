//! Explicit stability limits from the grid: the default step, and a clear error past it.

use crate::Pde;
use revode_core::stability::{max_stable_step, max_stable_step_plain};
use revode_core::{Error, Result, SolveOptions, Tableau};

/// The largest stable fixed step for `pde` with `tableau`, plain (`lambda = None`) or in the
/// reversible coupling with `lambda`: every eigenvalue bound `α` must keep `hα` in the
/// method's stability region. Points with a positive real part (growth, e.g. a reaction's
/// linearisation) are physical instabilities no step should damp; they only cap h so that a
/// step grows such a mode by at most e^½ (accuracy, not stability).
///
/// Errors: [`Pde::check_params`]'s error for invalid physical parameters (a negative
/// diffusivity has no stability limit, only growth), [`Error::Unsupported`] when no step is
/// stable.
pub fn max_step<P: Pde>(pde: &P, tableau: &Tableau, lambda: Option<f64>) -> Result<f64> {
    pde.check_params()?;
    let all = pde.spectrum();
    let growth = all.iter().map(|z| z.re).fold(0.0, f64::max);
    let spectrum: Vec<_> = all.into_iter().filter(|z| z.re <= 0.0).collect();
    let scale = spectrum.iter().map(|z| z.norm()).fold(0.0, f64::max);
    let cap = if scale > 0.0 { 100.0 / scale } else { 1e6 };
    let h = match lambda {
        Some(l) => max_stable_step(tableau, l, &spectrum, cap)?,
        None => max_stable_step_plain(tableau, &spectrum, cap)?,
    };
    let h = h.map(|h| if growth > 0.0 { h.min(0.5 / growth) } else { h });
    h.ok_or_else(|| {
        Error::Unsupported(format!(
            "no explicit step is stable for this problem with {} (λ = {lambda:?}): its spectrum \
             touches the imaginary axis; use a dissipative discretisation or smaller λ",
            tableau.name()
        ))
    })
}

/// Fixed-step options for `pde`: `h` when it is within the stability limit (an error naming
/// the limit and the step numbers otherwise), or 0.9 × the limit by default. A solve through
/// [`crate::PdeTerm`] applies the same refusal to any fixed step it is given.
pub fn step_options<P: Pde>(
    pde: &P,
    tableau: &Tableau,
    lambda: Option<f64>,
    h: Option<f64>,
) -> Result<SolveOptions> {
    let limit = crate::limit_cache::cached_max_step(pde, tableau, lambda)?;
    let h = match h {
        None => 0.9 * limit,
        Some(h) => {
            crate::term::refuse_beyond(pde, tableau, lambda, h, limit)?;
            h
        }
    };
    Ok(SolveOptions::fixed(h))
}
