//! Uniform 1-D and 2-D grids with their boundary conditions.

use revode_core::{Error, Result};
use serde::{Deserialize, Serialize};

/// A boundary condition, applied through a ghost value beyond each end.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub enum Boundary {
    /// `u(lo) = u(hi)`: points `lo + iΔx`, `Δx = (hi − lo)/n`.
    Periodic,
    /// Fixed values at `lo` and `hi` (boundary nodes, not unknowns): interior points
    /// `lo + (i + 1)Δx`, `Δx = (hi − lo)/(n + 1)`.
    Dirichlet {
        /// Value at `lo`.
        left: f64,
        /// Value at `hi`.
        right: f64,
    },
    /// Zero flux: cell centres `lo + (i + ½)Δx`, `Δx = (hi − lo)/n`, mirrored ghost cells.
    Neumann,
}

/// A uniform 1-D grid of `n` unknowns on `[lo, hi]`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Grid1d {
    /// Unknowns.
    pub n: usize,
    /// Left end of the domain.
    pub lo: f64,
    /// Right end of the domain.
    pub hi: f64,
    /// Boundary condition at both ends.
    pub boundary: Boundary,
}

/// Where a face's state comes from: an unknown, or a fixed boundary value.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Source {
    Cell(usize),
    Fixed(f64),
}

impl Grid1d {
    /// A grid; errors on fewer than 3 unknowns, an empty or non-finite domain, or non-finite
    /// boundary values.
    pub fn new(n: usize, lo: f64, hi: f64, boundary: Boundary) -> Result<Self> {
        if n < 3 {
            return Err(Error::config(
                "grid",
                format!("need at least 3 points, got {n}"),
            ));
        }
        if !(lo.is_finite() && hi.is_finite() && lo < hi) {
            return Err(Error::InvalidInterval { t0: lo, t1: hi });
        }
        if let Boundary::Dirichlet { left, right } = boundary {
            if !(left.is_finite() && right.is_finite()) {
                return Err(Error::config(
                    "boundary",
                    format!("Dirichlet values must be finite (left {left}, right {right})"),
                ));
            }
        }
        Ok(Grid1d {
            n,
            lo,
            hi,
            boundary,
        })
    }

    /// The spacing Δx.
    pub fn dx(&self) -> f64 {
        let len = self.hi - self.lo;
        match self.boundary {
            Boundary::Dirichlet { .. } => len / (self.n + 1) as f64,
            _ => len / self.n as f64,
        }
    }

    /// Coordinates of the unknowns.
    pub fn points(&self) -> Vec<f64> {
        let dx = self.dx();
        let shift = match self.boundary {
            Boundary::Periodic => 0.0,
            Boundary::Dirichlet { .. } => 1.0,
            Boundary::Neumann => 0.5,
        };
        (0..self.n)
            .map(|i| self.lo + (i as f64 + shift) * dx)
            .collect()
    }

    /// Sources of the left and right states of face `f` (`0..=n`; face f lies between cells
    /// f − 1 and f).
    #[inline]
    pub(crate) fn face(&self, f: usize) -> (Source, Source) {
        let n = self.n;
        if f > 0 && f < n {
            return (Source::Cell(f - 1), Source::Cell(f));
        }
        match (self.boundary, f == 0) {
            (Boundary::Periodic, _) => (Source::Cell(n - 1), Source::Cell(0)),
            (Boundary::Dirichlet { left, .. }, true) => (Source::Fixed(left), Source::Cell(0)),
            (Boundary::Dirichlet { right, .. }, false) => {
                (Source::Cell(n - 1), Source::Fixed(right))
            }
            (Boundary::Neumann, true) => (Source::Cell(0), Source::Cell(0)),
            (Boundary::Neumann, false) => (Source::Cell(n - 1), Source::Cell(n - 1)),
        }
    }

    /// This grid with the boundary's fixed values set to zero (the linear part of an affine
    /// operator, for pullbacks).
    pub(crate) fn homogeneous(&self) -> Grid1d {
        let boundary = match self.boundary {
            Boundary::Dirichlet { .. } => Boundary::Dirichlet {
                left: 0.0,
                right: 0.0,
            },
            b => b,
        };
        Grid1d { boundary, ..*self }
    }
}

/// A uniform 2-D grid: `x` along rows (contiguous), `y` across them; a field is `ny × nx`,
/// row-major. Each axis carries its own boundary condition.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Grid2d {
    /// The x axis.
    pub x: Grid1d,
    /// The y axis.
    pub y: Grid1d,
}

impl Grid2d {
    /// Unknowns per field.
    pub fn len(&self) -> usize {
        self.x.n * self.y.n
    }
    /// Always false (grids have at least 3 points per axis).
    pub fn is_empty(&self) -> bool {
        false
    }
}
