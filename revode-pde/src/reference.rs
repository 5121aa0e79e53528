//! Reference solutions: Crank–Nicolson for diffusion with faer's sparse LU (factor once, solve
//! per step). Fine explicit references need nothing new: solve the same term with a small step.

use crate::grid::{Grid1d, Source};
use crate::ops;
use faer::linalg::solvers::Solve;
use faer::sparse::linalg::solvers::Lu;
use faer::sparse::{SparseColMat, Triplet};
use revode_core::{Error, Result};
use std::collections::BTreeMap;

/// Crank–Nicolson for `u_t = ν∇²u` on a 1-D grid:
/// `(I − ½hνL) u^{n+1} = (I + ½hνL) u^n + hν b` with the affine boundary part `b`.
/// Unconditionally stable, second order in h and Δx.
pub struct CrankNicolson {
    grid: Grid1d,
    nu: f64,
    h: f64,
    lu: Lu<usize, f64>,
    boundary: Vec<f64>,
}

impl CrankNicolson {
    /// Assembles and factors `I − ½hνL`.
    pub fn new(grid: Grid1d, nu: f64, h: f64) -> Result<Self> {
        if !(nu >= 0.0 && nu.is_finite()) {
            return Err(Error::config("nu", format!("{nu} must be finite and ≥ 0")));
        }
        if !(h > 0.0 && h.is_finite()) {
            return Err(Error::InvalidStepSize {
                h,
                reason: "must be positive and finite".into(),
            });
        }
        let n = grid.n();
        let dx = grid.dx();
        let w = 1.0 / (dx * dx);
        // L's entries from the face fluxes (u_R − u_L)/Δx: face f is the left face of cell f
        // (−F/Δx) and the right face of cell f − 1 (+F/Δx).
        let mut entries: BTreeMap<(usize, usize), f64> = BTreeMap::new();
        for f in 0..=n {
            let (l, r) = grid.face(f);
            for (row, sign) in [(f, -1.0), (f.wrapping_sub(1), 1.0)] {
                if row >= n {
                    continue;
                }
                for (src, coef) in [(r, 1.0), (l, -1.0)] {
                    if let Source::Cell(k) = src {
                        *entries.entry((row, k)).or_insert(0.0) += sign * coef * w;
                    }
                }
            }
        }
        let a = -0.5 * h * nu;
        let mut triplets: Vec<Triplet<usize, usize, f64>> =
            (0..n).map(|i| Triplet::new(i, i, 1.0)).collect();
        triplets.extend(
            entries
                .iter()
                .map(|(&(i, j), &v)| Triplet::new(i, j, a * v)),
        );
        let mat =
            SparseColMat::<usize, f64>::try_new_from_triplets(n, n, &triplets).map_err(|e| {
                Error::Unsupported(format!("assembling the Crank–Nicolson matrix: {e:?}"))
            })?;
        let lu = mat.sp_lu().map_err(|e| {
            Error::Unsupported(format!("factoring the Crank–Nicolson matrix: {e:?}"))
        })?;
        let mut boundary = vec![0.0; n];
        ops::laplacian(&grid, 1.0, &vec![0.0; n], &mut boundary);
        Ok(CrankNicolson {
            grid,
            nu,
            h,
            lu,
            boundary,
        })
    }

    /// The step.
    pub fn step_size(&self) -> f64 {
        self.h
    }

    /// One step of every field of a batch (`batch × n`, row-major) in place.
    pub fn step(&self, u: &mut [f64]) -> Result<()> {
        let n = self.grid.n();
        if !u.len().is_multiple_of(n) || u.is_empty() {
            return Err(Error::ShapeMismatch {
                what: "Crank–Nicolson fields (batch × n)".into(),
                expected: n,
                found: u.len(),
            });
        }
        let half = 0.5 * self.h * self.nu;
        let mut lap = vec![0.0; u.len()];
        ops::laplacian(&self.grid, 1.0, u, &mut lap);
        for (row_u, row_l) in u.chunks_mut(n).zip(lap.chunks(n)) {
            for ((v, &l), &b) in row_u.iter_mut().zip(row_l).zip(&self.boundary) {
                *v += half * (l + b);
            }
        }
        // batch × n row-major is n × batch column-major: one multi-column solve.
        let batch = u.len() / n;
        self.lu
            .solve_in_place(faer::MatMut::from_column_major_slice_mut(u, n, batch));
        Ok(())
    }

    /// Solves from `u0` through `times` (each a whole number of steps after the first).
    pub fn solve(&self, u0: &[f64], times: &[f64]) -> Result<Vec<Vec<f64>>> {
        revode_core::solve::validate_times(times)?;
        let mut u = u0.to_vec();
        let mut out = vec![u.clone()];
        for w in times.windows(2) {
            let steps = ((w[1] - w[0]) / self.h).round();
            if ((w[1] - w[0]) - steps * self.h).abs() > 1e-9 * self.h.max(w[1] - w[0]) {
                return Err(Error::config(
                    "times",
                    format!(
                        "{} − {} is not a whole number of Crank–Nicolson steps h = {}",
                        w[1], w[0], self.h
                    ),
                ));
            }
            for _ in 0..steps as usize {
                self.step(&mut u)?;
            }
            out.push(u.clone());
        }
        Ok(out)
    }
}
