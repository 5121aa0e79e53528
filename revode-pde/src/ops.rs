//! Finite-difference operators in flux form, with hand-written pullbacks.
//!
//! Every operator is a divergence `out_i = (F_{i+½} − F_{i−½})/Δx` of a two-point face flux
//! `F(u_L, u_R)` whose states come from the grid's cells or its boundary ghosts. Conservation on
//! periodic grids is therefore structural: the fluxes telescope. Operators act on one line of
//! a field (`stride` apart, for the 2-D axes); the batched wrappers split rows over rayon when
//! the field is large.

use crate::grid::{Grid1d, Grid2d, Source};
use rayon::prelude::*;

/// Fields with at least this many values are processed in parallel.
pub const PARALLEL_MIN: usize = 1 << 15;

/// A two-point face flux and its partial derivatives.
pub trait Flux: Sync {
    /// `F(u_L, u_R)`.
    fn flux(&self, l: f64, r: f64) -> f64;
    /// `(∂F/∂u_L, ∂F/∂u_R)`.
    fn partials(&self, l: f64, r: f64) -> (f64, f64);
}

/// Diffusive flux `(u_R − u_L)/Δx`: its divergence is the second-order Laplacian.
pub struct DiffusiveFlux {
    /// `1/Δx`.
    pub inv_dx: f64,
}

impl Flux for DiffusiveFlux {
    #[inline]
    fn flux(&self, l: f64, r: f64) -> f64 {
        (r - l) * self.inv_dx
    }
    #[inline]
    fn partials(&self, _l: f64, _r: f64) -> (f64, f64) {
        (-self.inv_dx, self.inv_dx)
    }
}

/// Upwind advective flux `c·u_upwind` (first order).
pub struct Upwind {
    /// Advection speed.
    pub c: f64,
}

impl Flux for Upwind {
    #[inline]
    fn flux(&self, l: f64, r: f64) -> f64 {
        if self.c >= 0.0 {
            self.c * l
        } else {
            self.c * r
        }
    }
    #[inline]
    fn partials(&self, _l: f64, _r: f64) -> (f64, f64) {
        if self.c >= 0.0 {
            (self.c, 0.0)
        } else {
            (0.0, self.c)
        }
    }
}

/// Central flux `½(u_L + u_R)`: its divergence is the second-order central first derivative.
pub struct Central;

impl Flux for Central {
    #[inline]
    fn flux(&self, l: f64, r: f64) -> f64 {
        0.5 * (l + r)
    }
    #[inline]
    fn partials(&self, _l: f64, _r: f64) -> (f64, f64) {
        (0.5, 0.5)
    }
}

/// Rusanov (local Lax–Friedrichs) flux for Burgers' `f(u) = u²/2`:
/// `½(f(u_L) + f(u_R)) − ½·max(|u_L|, |u_R|)·(u_R − u_L)`.
pub struct Rusanov;

impl Flux for Rusanov {
    #[inline]
    fn flux(&self, l: f64, r: f64) -> f64 {
        let a = l.abs().max(r.abs());
        0.25 * (l * l + r * r) - 0.5 * a * (r - l)
    }
    #[inline]
    fn partials(&self, l: f64, r: f64) -> (f64, f64) {
        // The max is differentiated on the branch it takes (a subgradient at ties).
        let (a, da_l, da_r) = if l.abs() >= r.abs() {
            (l.abs(), l.signum(), 0.0)
        } else {
            (r.abs(), 0.0, r.signum())
        };
        let jump = r - l;
        (
            0.5 * l + 0.5 * a - 0.5 * da_l * jump,
            0.5 * r - 0.5 * a - 0.5 * da_r * jump,
        )
    }
}

/// A line of a field: `n` values `stride` apart from `offset`.
#[derive(Clone, Copy)]
struct Line {
    offset: usize,
    stride: usize,
}

impl Line {
    #[inline]
    fn at(&self, k: usize) -> usize {
        self.offset + k * self.stride
    }
}

#[inline]
fn state(g: &Grid1d, u: &[f64], line: Line, s: Source) -> f64 {
    match s {
        Source::Cell(k) => u[line.at(k)],
        Source::Fixed(v) => {
            let _ = g;
            v
        }
    }
}

/// `out_i += scale·(F_{i+½} − F_{i−½})/Δx` along one line.
fn divergence_line<F: Flux>(
    g: &Grid1d,
    flux: &F,
    scale: f64,
    u: &[f64],
    out: &mut [f64],
    line: Line,
) {
    let s = scale / g.dx();
    let face = |f: usize| {
        let (l, r) = g.face(f);
        flux.flux(state(g, u, line, l), state(g, u, line, r))
    };
    let mut prev = face(0);
    for i in 0..g.n() {
        let next = face(i + 1);
        out[line.at(i)] += s * (next - prev);
        prev = next;
    }
}

/// Pullback of [`divergence_line`]: `u_bar += scale·Jᵀ cot`.
fn divergence_line_vjp<F: Flux>(
    g: &Grid1d,
    flux: &F,
    scale: f64,
    u: &[f64],
    cot: &[f64],
    u_bar: &mut [f64],
    line: Line,
) {
    let s = scale / g.dx();
    for f in 0..=g.n() {
        // F_f enters out_f with −1 (the left face of cell f) and out_{f−1} with +1.
        let mut fbar = 0.0;
        if f < g.n() {
            fbar -= cot[line.at(f)];
        }
        if f > 0 {
            fbar += cot[line.at(f - 1)];
        }
        if fbar == 0.0 {
            continue;
        }
        let (l, r) = g.face(f);
        let (dl, dr) = flux.partials(state(g, u, line, l), state(g, u, line, r));
        if let Source::Cell(k) = l {
            u_bar[line.at(k)] += s * fbar * dl;
        }
        if let Source::Cell(k) = r {
            u_bar[line.at(k)] += s * fbar * dr;
        }
    }
}

/// Runs `f(row_in, row_out)` over the rows of a batched field, in parallel when it is large.
fn rows<F>(len: usize, u: &[f64], out: &mut [f64], f: F)
where
    F: Fn(&[f64], &mut [f64]) + Sync,
{
    if u.len() >= PARALLEL_MIN {
        u.par_chunks(len)
            .zip(out.par_chunks_mut(len))
            .for_each(|(a, b)| f(a, b));
    } else {
        u.chunks(len)
            .zip(out.chunks_mut(len))
            .for_each(|(a, b)| f(a, b));
    }
}

/// [`rows`] with a second input (the cotangent).
fn rows2<F>(len: usize, u: &[f64], c: &[f64], out: &mut [f64], f: F)
where
    F: Fn(&[f64], &[f64], &mut [f64]) + Sync,
{
    if u.len() >= PARALLEL_MIN {
        u.par_chunks(len)
            .zip(c.par_chunks(len))
            .zip(out.par_chunks_mut(len))
            .for_each(|((a, c), b)| f(a, c, b));
    } else {
        u.chunks(len)
            .zip(c.chunks(len))
            .zip(out.chunks_mut(len))
            .for_each(|((a, c), b)| f(a, c, b));
    }
}

const ROW: Line = Line {
    offset: 0,
    stride: 1,
};

/// `out += scale·div F(u)` for every row of a batched 1-D field (`batch × n`).
pub fn divergence<F: Flux>(g: &Grid1d, flux: &F, scale: f64, u: &[f64], out: &mut [f64]) {
    rows(g.n(), u, out, |a, b| {
        divergence_line(g, flux, scale, a, b, ROW)
    });
}

/// Pullback of [`divergence`]: `u_bar += scale·Jᵀ cot`.
pub fn divergence_vjp<F: Flux>(
    g: &Grid1d,
    flux: &F,
    scale: f64,
    u: &[f64],
    cot: &[f64],
    u_bar: &mut [f64],
) {
    rows2(g.n(), u, cot, u_bar, |a, c, b| {
        divergence_line_vjp(g, flux, scale, a, c, b, ROW)
    });
}

/// `out += scale·∇²u` (second order) for a batched 1-D field.
pub fn laplacian(g: &Grid1d, scale: f64, u: &[f64], out: &mut [f64]) {
    divergence(
        g,
        &DiffusiveFlux {
            inv_dx: 1.0 / g.dx(),
        },
        scale,
        u,
        out,
    );
}

/// Pullback of [`laplacian`] (the operator's linear part; boundary values carry no cotangent).
pub fn laplacian_vjp(g: &Grid1d, scale: f64, cot: &[f64], u_bar: &mut [f64]) {
    let flux = DiffusiveFlux {
        inv_dx: 1.0 / g.dx(),
    };
    divergence_vjp(g, &flux, scale, cot, cot, u_bar);
}

/// `out += scale·∇²u` for a batched 2-D field (`batch × ny × nx`).
pub fn laplacian_2d(g: &Grid2d, scale: f64, u: &[f64], out: &mut [f64]) {
    let (nx, ny) = (g.x().n(), g.y().n());
    let (fx, fy) = (
        DiffusiveFlux {
            inv_dx: 1.0 / g.x().dx(),
        },
        DiffusiveFlux {
            inv_dx: 1.0 / g.y().dx(),
        },
    );
    rows(nx * ny, u, out, |a, b| {
        for j in 0..ny {
            divergence_line(
                g.x(),
                &fx,
                scale,
                a,
                b,
                Line {
                    offset: j * nx,
                    stride: 1,
                },
            );
        }
        for i in 0..nx {
            divergence_line(
                g.y(),
                &fy,
                scale,
                a,
                b,
                Line {
                    offset: i,
                    stride: nx,
                },
            );
        }
    });
}

/// Pullback of [`laplacian_2d`].
pub fn laplacian_2d_vjp(g: &Grid2d, scale: f64, cot: &[f64], u_bar: &mut [f64]) {
    let (nx, ny) = (g.x().n(), g.y().n());
    let (fx, fy) = (
        DiffusiveFlux {
            inv_dx: 1.0 / g.x().dx(),
        },
        DiffusiveFlux {
            inv_dx: 1.0 / g.y().dx(),
        },
    );
    rows2(nx * ny, cot, cot, u_bar, |a, c, b| {
        for j in 0..ny {
            let line = Line {
                offset: j * nx,
                stride: 1,
            };
            divergence_line_vjp(g.x(), &fx, scale, a, c, b, line);
        }
        for i in 0..nx {
            let line = Line {
                offset: i,
                stride: nx,
            };
            divergence_line_vjp(g.y(), &fy, scale, a, c, b, line);
        }
    });
}
