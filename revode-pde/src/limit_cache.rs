//! A process-wide memo of explicit stability limits ([`max_step`]), so that terms rebuilt per
//! gradient do not rescan the stability region.

use crate::{max_step, Pde};
use revode_core::{Result, Tableau};
use std::sync::Mutex;

/// What a stability limit was computed for, and the limit.
#[derive(Clone, Debug, PartialEq)]
struct Limit {
    tableau: Tableau,
    lambda: Option<f64>,
    spectrum: Vec<num_complex::Complex64>,
    limit: f64,
}

/// Limits computed recently, in this process: [`max_step`] scans the stability region (tens of
/// milliseconds), and a training loop builds a fresh term, with the same spectrum bound, for
/// every gradient. The limit is a function of the tableau, λ and the spectrum bound alone, so a
/// hit is exact.
static LIMITS: Mutex<Vec<Limit>> = Mutex::new(Vec::new());

/// How many limits [`LIMITS`] keeps (oldest dropped first).
const KEPT_LIMITS: usize = 16;

/// [`max_step`], remembered in [`LIMITS`]; the parameters are checked every time.
pub(crate) fn cached_max_step<P: Pde>(
    pde: &P,
    tableau: &Tableau,
    lambda: Option<f64>,
) -> Result<f64> {
    pde.check_params()?;
    let spectrum = pde.spectrum();
    let found = |all: &Vec<Limit>| {
        all.iter()
            .find(|c| c.lambda == lambda && &c.tableau == tableau && c.spectrum == spectrum)
            .map(|c| c.limit)
    };
    if let Some(limit) = found(&LIMITS.lock().unwrap_or_else(|e| e.into_inner())) {
        return Ok(limit);
    }
    let limit = max_step(pde, tableau, lambda)?;
    let mut all = LIMITS.lock().unwrap_or_else(|e| e.into_inner());
    if found(&all).is_none() {
        if all.len() == KEPT_LIMITS {
            all.remove(0);
        }
        all.push(Limit {
            tableau: tableau.clone(),
            lambda,
            spectrum,
            limit,
        });
    }
    Ok(limit)
}
