//! Uniform 1-D and 2-D grids with their boundary conditions.

use ndarray::{ArrayView2, ArrayView3, ArrayViewMut2, ArrayViewMut3};
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

/// A uniform 1-D grid of `n` unknowns on `[lo, hi]`: built only through [`Grid1d::new`]
/// (also when deserialised), so `n ≥ 3`, `lo < hi` and `0 < Δx`, `1/Δx² < ∞` always hold.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "RawGrid1d")]
pub struct Grid1d {
    n: usize,
    lo: f64,
    hi: f64,
    boundary: Boundary,
}

/// The serialised fields of a [`Grid1d`], validated by [`Grid1d::new`] on the way in.
#[derive(Deserialize)]
struct RawGrid1d {
    n: usize,
    lo: f64,
    hi: f64,
    boundary: Boundary,
}

impl TryFrom<RawGrid1d> for Grid1d {
    type Error = Error;
    fn try_from(r: RawGrid1d) -> Result<Self> {
        Grid1d::new(r.n, r.lo, r.hi, r.boundary)
    }
}

/// Where a face's state comes from: an unknown, or a fixed boundary value.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Source {
    Cell(usize),
    Fixed(f64),
}

impl Grid1d {
    /// A grid of `n` unknowns on `[lo, hi]`. Errors: [`Error::Config`] (key `grid`) for
    /// `n < 3` (the three-point stencils) or a spacing whose `Δx` or `1/Δx²` is not a positive
    /// finite number (e.g. `hi − lo` overflowing); [`Error::InvalidInterval`] unless
    /// `lo < hi`, both finite; [`Error::Config`] (key `boundary`) for non-finite Dirichlet values.
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
        let grid = Grid1d {
            n,
            lo,
            hi,
            boundary,
        };
        let dx = grid.dx();
        if !(dx > 0.0 && dx.is_finite() && (1.0 / (dx * dx)).is_finite()) {
            return Err(Error::config(
                "grid",
                format!(
                    "spacing Δx = {dx:e} of {n} points on [{lo:e}, {hi:e}]: Δx and 1/Δx² must be \
                     positive and finite"
                ),
            ));
        }
        Ok(grid)
    }

    /// Number of unknowns.
    pub fn n(&self) -> usize {
        self.n
    }
    /// Left end of the domain.
    pub fn lo(&self) -> f64 {
        self.lo
    }
    /// Right end of the domain.
    pub fn hi(&self) -> f64 {
        self.hi
    }
    /// Boundary condition at both ends.
    pub fn boundary(&self) -> Boundary {
        self.boundary
    }

    /// The spacing Δx.
    pub fn dx(&self) -> f64 {
        let len = self.hi - self.lo;
        match self.boundary {
            Boundary::Dirichlet { .. } => len / (self.n + 1) as f64,
            _ => len / self.n as f64,
        }
    }

    /// A batch of fields (`batch × n` values) as an ndarray view `batch × n`; a length that
    /// is not a whole number of fields is an error.
    pub fn view<'a>(&self, u: &'a [f64]) -> Result<ArrayView2<'a, f64>> {
        let batch = whole_fields(u.len(), self.n)?;
        ArrayView2::from_shape((batch, self.n), u).map_err(shape_error)
    }
    /// [`Grid1d::view`], mutable (to build initial conditions in place).
    pub fn view_mut<'a>(&self, u: &'a mut [f64]) -> Result<ArrayViewMut2<'a, f64>> {
        let batch = whole_fields(u.len(), self.n)?;
        ArrayViewMut2::from_shape((batch, self.n), u).map_err(shape_error)
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

/// The number of fields of `field` values each in `len` values, or a shape error.
fn whole_fields(len: usize, field: usize) -> Result<usize> {
    if len == 0 || !len.is_multiple_of(field) {
        return Err(revode_core::Error::ShapeMismatch {
            what: format!("a batch of fields of {field} values"),
            expected: field * (len / field).max(1),
            found: len,
        });
    }
    Ok(len / field)
}

fn shape_error(e: ndarray::ShapeError) -> revode_core::Error {
    revode_core::Error::config("grid view", e.to_string())
}

/// A uniform 2-D grid: `x` along rows (contiguous), `y` across them; a field is `ny × nx`,
/// row-major. Each axis carries its own boundary condition.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Grid2d {
    x: Grid1d,
    y: Grid1d,
}

impl Grid2d {
    /// The grid with axes `x` (along rows) and `y` (across them); each axis is already a
    /// validated [`Grid1d`], so every pair is a valid grid.
    pub fn new(x: Grid1d, y: Grid1d) -> Self {
        Grid2d { x, y }
    }
    /// The x axis (along rows, contiguous).
    pub fn x(&self) -> &Grid1d {
        &self.x
    }
    /// The y axis (across rows).
    pub fn y(&self) -> &Grid1d {
        &self.y
    }
    /// Unknowns per field.
    pub fn len(&self) -> usize {
        self.x.n * self.y.n
    }
    /// Always false (grids have at least 3 points per axis).
    pub fn is_empty(&self) -> bool {
        false
    }
    /// A batch of fields (`batch × ny × nx` values, row-major) as an ndarray view
    /// `batch × ny × nx`; a length that is not a whole number of fields is an error.
    pub fn view<'a>(&self, u: &'a [f64]) -> Result<ArrayView3<'a, f64>> {
        let batch = whole_fields(u.len(), self.len())?;
        ArrayView3::from_shape((batch, self.y.n, self.x.n), u).map_err(shape_error)
    }
    /// [`Grid2d::view`], mutable (to build initial conditions in place).
    pub fn view_mut<'a>(&self, u: &'a mut [f64]) -> Result<ArrayViewMut3<'a, f64>> {
        let batch = whole_fields(u.len(), self.len())?;
        ArrayViewMut3::from_shape((batch, self.y.n, self.x.n), u).map_err(shape_error)
    }
    /// This grid with both axes' fixed boundary values set to zero.
    pub(crate) fn homogeneous(&self) -> Grid2d {
        Grid2d {
            x: self.x.homogeneous(),
            y: self.y.homogeneous(),
        }
    }
}

#[cfg(test)]
mod view_tests {
    use super::*;

    #[test]
    fn views_have_the_field_layout_and_refuse_partial_fields() {
        let g = Grid1d::new(4, 0.0, 1.0, Boundary::Periodic).unwrap();
        let mut u: Vec<f64> = (0..8).map(f64::from).collect();
        let v = g.view(&u).unwrap();
        assert_eq!((v.dim(), v[[1, 2]]), ((2, 4), 6.0));
        g.view_mut(&mut u).unwrap()[[0, 3]] = -1.0;
        assert_eq!(u[3], -1.0);
        assert!(g.view(&u[..7]).is_err() && g.view(&[]).is_err());
        let g2 = Grid2d::new(g, Grid1d::new(3, 0.0, 1.0, Boundary::Periodic).unwrap());
        let w: Vec<f64> = (0..24).map(f64::from).collect();
        let v = g2.view(&w).unwrap();
        assert_eq!((v.dim(), v[[1, 2, 3]]), ((2, 3, 4), 23.0));
        assert!(g2.view(&w[..13]).is_err());
    }
}
