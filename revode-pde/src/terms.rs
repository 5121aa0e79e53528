//! PDE right-hand sides as core vector fields over batched fields (method of lines).
//!
//! Each is a [`VectorField`] on `batch × grid` states with its parameters (diffusivity, speed,
//! reaction rate…) exposed for gradients; wrap it in [`crate::PdeTerm`] and every core scheme
//! and gradient method applies unchanged. [`Pde`] adds the spectrum bound that fixes the
//! explicit stability limit, and the check of the physical parameters. (A plain
//! [`revode_core::OdeTerm`] also works but checks neither: it solves past the limit.)

use crate::grid::{Grid1d, Grid2d};
use crate::ops::{self, Flux, Rusanov, Upwind};
use num_complex::Complex64;
use revode_core::stability::Spectrum;
use revode_core::{Error, Result, VectorField};

/// A method-of-lines right-hand side with a bound on its Jacobian's spectrum.
pub trait Pde: VectorField<Scalar = f64> {
    /// Points whose convex hull contains the Jacobian's eigenvalues (for any state the
    /// problem visits): the input of the explicit stability limit.
    fn spectrum(&self) -> Vec<Complex64>;
    /// The dimensionless step numbers at step `h` (diffusion number, CFL number), for messages.
    fn step_numbers(&self, h: f64) -> String;
    /// Checks the physical parameters, which `params_mut` (or a public field) can change after
    /// construction: e.g. a diffusivity must be finite and ≥ 0 (`ν < 0` is the backward heat
    /// equation, ill-posed, and has no stability limit). [`crate::PdeTerm`] calls it before every
    /// solve and gradient, [`crate::max_step`] before computing a limit. Default: accept.
    fn check_params(&self) -> Result<()> {
        Ok(())
    }
}

fn check_batch(batch: usize) -> Result<()> {
    if batch == 0 {
        return Err(Error::config("batch", "must be positive"));
    }
    Ok(())
}

/// `Err(Config)` naming `name` and `v` unless `v` is finite (and ≥ 0 when `nonneg`).
pub(crate) fn check_param(name: &str, v: f64, nonneg: bool) -> Result<()> {
    if !v.is_finite() || (nonneg && v < 0.0) {
        return Err(Error::config(
            name,
            format!("{v} must be finite{}", if nonneg { " and ≥ 0" } else { "" }),
        ));
    }
    Ok(())
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// The heat equation `u_t = ν u_xx`. Parameters: `[ν]`.
#[derive(Clone, Debug)]
pub struct Heat {
    /// The grid.
    pub grid: Grid1d,
    /// Fields in the batch.
    pub batch: usize,
    nu: [f64; 1],
}

impl Heat {
    /// Heat with diffusivity `nu ≥ 0` on `batch` fields.
    pub fn new(grid: Grid1d, batch: usize, nu: f64) -> Result<Self> {
        check_batch(batch)?;
        check_param("nu", nu, true)?;
        Ok(Heat {
            grid,
            batch,
            nu: [nu],
        })
    }
}

impl VectorField for Heat {
    type Scalar = f64;
    fn dim(&self) -> usize {
        self.batch * self.grid.n()
    }
    fn params(&self) -> &[f64] {
        &self.nu
    }
    fn params_mut(&mut self) -> &mut [f64] {
        &mut self.nu
    }
    fn eval(&self, _t: f64, y: &[f64], out: &mut [f64]) {
        out.fill(0.0);
        ops::laplacian(&self.grid, self.nu[0], y, out);
    }
    fn vjp(&self, _t: f64, y: &[f64], cot: &[f64], s: f64, yb: &mut [f64], pb: &mut [f64]) {
        let mut lap = vec![0.0; y.len()];
        ops::laplacian(&self.grid, 1.0, y, &mut lap);
        self.vjp_cached(0.0, y, &lap, cot, s, yb, pb);
    }
    fn cache_len(&self) -> usize {
        self.dim()
    }
    fn eval_cached(&self, _t: f64, y: &[f64], out: &mut [f64], cache: &mut [f64]) {
        cache.fill(0.0);
        ops::laplacian(&self.grid, 1.0, y, cache);
        out.iter_mut()
            .zip(cache.iter())
            .for_each(|(o, &l)| *o = self.nu[0] * l);
    }
    fn vjp_cached(
        &self,
        _t: f64,
        _y: &[f64],
        cache: &[f64],
        cot: &[f64],
        s: f64,
        yb: &mut [f64],
        pb: &mut [f64],
    ) {
        ops::laplacian_vjp(&self.grid.homogeneous(), s * self.nu[0], cot, yb);
        pb[0] += s * dot(cot, cache);
    }
}

impl Pde for Heat {
    fn check_params(&self) -> Result<()> {
        check_param("nu", self.nu[0], true)
    }
    fn spectrum(&self) -> Vec<Complex64> {
        let dx = self.grid.dx();
        Spectrum::real_interval(-4.0 * self.nu[0] / (dx * dx), 0.0, 64)
    }
    fn step_numbers(&self, h: f64) -> String {
        let dx = self.grid.dx();
        format!(
            "diffusion number νh/Δx² = {:.4}",
            self.nu[0] * h / (dx * dx)
        )
    }
}

/// Picks the upwind state: `u_L` when `left`, else `u_R` (the derivative of the upwind flux
/// with respect to its speed).
struct Select {
    left: bool,
}

impl Flux for Select {
    #[inline]
    fn flux(&self, l: f64, r: f64) -> f64 {
        if self.left {
            l
        } else {
            r
        }
    }
    #[inline]
    fn partials(&self, _l: f64, _r: f64) -> (f64, f64) {
        if self.left {
            (1.0, 0.0)
        } else {
            (0.0, 1.0)
        }
    }
}

/// Linear advection `u_t + c u_x = 0`, first-order upwind in flux form. Parameters: `[c]`.
#[derive(Clone, Debug)]
pub struct Advection {
    /// The grid.
    pub grid: Grid1d,
    /// Fields in the batch.
    pub batch: usize,
    c: [f64; 1],
}

impl Advection {
    /// Advection at speed `c`.
    pub fn new(grid: Grid1d, batch: usize, c: f64) -> Result<Self> {
        check_batch(batch)?;
        check_param("c", c, false)?;
        Ok(Advection {
            grid,
            batch,
            c: [c],
        })
    }
}

impl VectorField for Advection {
    type Scalar = f64;
    fn dim(&self) -> usize {
        self.batch * self.grid.n()
    }
    fn params(&self) -> &[f64] {
        &self.c
    }
    fn params_mut(&mut self) -> &mut [f64] {
        &mut self.c
    }
    fn eval(&self, _t: f64, y: &[f64], out: &mut [f64]) {
        out.fill(0.0);
        ops::divergence(&self.grid, &Upwind { c: self.c[0] }, -1.0, y, out);
    }
    fn vjp(&self, t: f64, y: &[f64], cot: &[f64], s: f64, yb: &mut [f64], pb: &mut [f64]) {
        revode_core::field::vjp_through_cache(self, t, y, cot, s, yb, pb);
    }
    /// The cache keeps ∂out/∂c (the upwind divergence at unit speed).
    fn cache_len(&self) -> usize {
        self.dim()
    }
    fn eval_cached(&self, t: f64, y: &[f64], out: &mut [f64], cache: &mut [f64]) {
        self.eval(t, y, out);
        cache.fill(0.0);
        let sel = Select {
            left: self.c[0] >= 0.0,
        };
        ops::divergence(&self.grid, &sel, -1.0, y, cache);
    }
    fn vjp_cached(
        &self,
        _t: f64,
        y: &[f64],
        cache: &[f64],
        cot: &[f64],
        s: f64,
        yb: &mut [f64],
        pb: &mut [f64],
    ) {
        ops::divergence_vjp(&self.grid, &Upwind { c: self.c[0] }, -s, y, cot, yb);
        pb[0] += s * dot(cot, cache);
    }
}

impl Pde for Advection {
    fn check_params(&self) -> Result<()> {
        check_param("c", self.c[0], false)
    }
    fn spectrum(&self) -> Vec<Complex64> {
        let a = self.c[0].abs() / self.grid.dx();
        Spectrum::disc(Complex64::new(-a, 0.0), a, 64)
    }
    fn step_numbers(&self, h: f64) -> String {
        format!(
            "CFL number |c|h/Δx = {:.4}",
            self.c[0].abs() * h / self.grid.dx()
        )
    }
}

/// Viscous Burgers `u_t + (u²/2)_x = ν u_xx`: Rusanov flux plus the second-order Laplacian.
/// Parameters: `[ν]`. `max_speed` bounds |u| (by the maximum principle, max |u0|) for the
/// stability limit.
#[derive(Clone, Debug)]
pub struct Burgers {
    /// The grid.
    pub grid: Grid1d,
    /// Fields in the batch.
    pub batch: usize,
    /// Bound on |u| used by the CFL limit.
    pub max_speed: f64,
    nu: [f64; 1],
}

impl Burgers {
    /// Burgers with viscosity `nu ≥ 0`; `max_speed` bounds |u| over the solve.
    pub fn new(grid: Grid1d, batch: usize, nu: f64, max_speed: f64) -> Result<Self> {
        check_batch(batch)?;
        check_param("nu", nu, true)?;
        check_param("max_speed", max_speed, true)?;
        Ok(Burgers {
            grid,
            batch,
            max_speed,
            nu: [nu],
        })
    }
}

impl VectorField for Burgers {
    type Scalar = f64;
    fn dim(&self) -> usize {
        self.batch * self.grid.n()
    }
    fn params(&self) -> &[f64] {
        &self.nu
    }
    fn params_mut(&mut self) -> &mut [f64] {
        &mut self.nu
    }
    fn eval(&self, _t: f64, y: &[f64], out: &mut [f64]) {
        out.fill(0.0);
        ops::divergence(&self.grid, &Rusanov, -1.0, y, out);
        ops::laplacian(&self.grid, self.nu[0], y, out);
    }
    fn vjp(&self, t: f64, y: &[f64], cot: &[f64], s: f64, yb: &mut [f64], pb: &mut [f64]) {
        revode_core::field::vjp_through_cache(self, t, y, cot, s, yb, pb);
    }
    /// The cache keeps ∇²y (the derivative with respect to ν).
    fn cache_len(&self) -> usize {
        self.dim()
    }
    fn eval_cached(&self, _t: f64, y: &[f64], out: &mut [f64], cache: &mut [f64]) {
        cache.fill(0.0);
        ops::laplacian(&self.grid, 1.0, y, cache);
        out.fill(0.0);
        ops::divergence(&self.grid, &Rusanov, -1.0, y, out);
        out.iter_mut()
            .zip(cache.iter())
            .for_each(|(o, &l)| *o += self.nu[0] * l);
    }
    fn vjp_cached(
        &self,
        _t: f64,
        y: &[f64],
        cache: &[f64],
        cot: &[f64],
        s: f64,
        yb: &mut [f64],
        pb: &mut [f64],
    ) {
        ops::divergence_vjp(&self.grid, &Rusanov, -s, y, cot, yb);
        ops::laplacian_vjp(&self.grid.homogeneous(), s * self.nu[0], cot, yb);
        pb[0] += s * dot(cot, cache);
    }
}

impl Pde for Burgers {
    fn check_params(&self) -> Result<()> {
        check_param("nu", self.nu[0], true)?;
        check_param("max_speed", self.max_speed, true)
    }
    fn spectrum(&self) -> Vec<Complex64> {
        let dx = self.grid.dx();
        // Gershgorin: diagonal −(a/Δx + 2ν/Δx²), radius a/Δx + 2ν/Δx².
        let r = self.max_speed / dx + 2.0 * self.nu[0] / (dx * dx);
        Spectrum::disc(Complex64::new(-r, 0.0), r, 64)
    }
    fn step_numbers(&self, h: f64) -> String {
        let dx = self.grid.dx();
        format!(
            "CFL number max|u|h/Δx = {:.4}, diffusion number νh/Δx² = {:.4}",
            self.max_speed * h / dx,
            self.nu[0] * h / (dx * dx)
        )
    }
}

/// Fisher–KPP `u_t = ν u_xx + ρ u(1 − u)`. Parameters: `[ν, ρ]`.
#[derive(Clone, Debug)]
pub struct FisherKpp {
    /// The grid.
    pub grid: Grid1d,
    /// Fields in the batch.
    pub batch: usize,
    p: [f64; 2],
}

impl FisherKpp {
    /// Fisher–KPP with diffusivity `nu` and rate `rho` (both ≥ 0).
    pub fn new(grid: Grid1d, batch: usize, nu: f64, rho: f64) -> Result<Self> {
        check_batch(batch)?;
        check_param("nu", nu, true)?;
        check_param("rho", rho, true)?;
        Ok(FisherKpp {
            grid,
            batch,
            p: [nu, rho],
        })
    }
}

impl VectorField for FisherKpp {
    type Scalar = f64;
    fn dim(&self) -> usize {
        self.batch * self.grid.n()
    }
    fn params(&self) -> &[f64] {
        &self.p
    }
    fn params_mut(&mut self) -> &mut [f64] {
        &mut self.p
    }
    fn eval(&self, _t: f64, y: &[f64], out: &mut [f64]) {
        let rho = self.p[1];
        out.iter_mut()
            .zip(y)
            .for_each(|(o, &u)| *o = rho * u * (1.0 - u));
        ops::laplacian(&self.grid, self.p[0], y, out);
    }
    fn vjp(&self, t: f64, y: &[f64], cot: &[f64], s: f64, yb: &mut [f64], pb: &mut [f64]) {
        revode_core::field::vjp_through_cache(self, t, y, cot, s, yb, pb);
    }
    /// The cache keeps ∇²y (the derivative with respect to ν).
    fn cache_len(&self) -> usize {
        self.dim()
    }
    fn eval_cached(&self, _t: f64, y: &[f64], out: &mut [f64], cache: &mut [f64]) {
        let [nu, rho] = self.p;
        cache.fill(0.0);
        ops::laplacian(&self.grid, 1.0, y, cache);
        for ((o, &u), &l) in out.iter_mut().zip(y).zip(cache.iter()) {
            *o = rho * u * (1.0 - u) + nu * l;
        }
    }
    fn vjp_cached(
        &self,
        _t: f64,
        y: &[f64],
        cache: &[f64],
        cot: &[f64],
        s: f64,
        yb: &mut [f64],
        pb: &mut [f64],
    ) {
        let [nu, rho] = self.p;
        ops::laplacian_vjp(&self.grid.homogeneous(), s * nu, cot, yb);
        let mut dr = 0.0;
        for ((b, &u), &c) in yb.iter_mut().zip(y).zip(cot) {
            *b += s * c * rho * (1.0 - 2.0 * u);
            dr += c * u * (1.0 - u);
        }
        pb[1] += s * dr;
        pb[0] += s * dot(cot, cache);
    }
}

impl Pde for FisherKpp {
    fn check_params(&self) -> Result<()> {
        check_param("nu", self.p[0], true)?;
        check_param("rho", self.p[1], true)
    }
    fn spectrum(&self) -> Vec<Complex64> {
        let dx = self.grid.dx();
        let [nu, rho] = self.p;
        // Symmetric: ν∇² has eigenvalues in [−4ν/Δx², 0]; the reaction adds ρ(1 − 2u) ∈ [−ρ, ρ]
        // for u ∈ [0, 1].
        Spectrum::real_interval(-4.0 * nu / (dx * dx) - rho, rho, 64)
    }
    fn step_numbers(&self, h: f64) -> String {
        let dx = self.grid.dx();
        format!("diffusion number νh/Δx² = {:.4}", self.p[0] * h / (dx * dx))
    }
}

/// Gray–Scott reaction–diffusion on a 2-D grid, state `batch × 2 × (ny·nx)` (u then v):
/// `u_t = D_u∇²u − uv² + F(1 − u)`, `v_t = D_v∇²v + uv² − (F + k)v`.
/// Parameters: `[D_u, D_v, F, k]`.
#[derive(Clone, Debug)]
pub struct GrayScott {
    /// The grid.
    pub grid: Grid2d,
    /// Fields in the batch.
    pub batch: usize,
    p: [f64; 4],
}

impl GrayScott {
    /// Gray–Scott with diffusivities `du`, `dv`, feed `f` and kill `k` (all ≥ 0).
    pub fn new(grid: Grid2d, batch: usize, du: f64, dv: f64, f: f64, k: f64) -> Result<Self> {
        check_batch(batch)?;
        for (n, v) in [("du", du), ("dv", dv), ("f", f), ("k", k)] {
            check_param(n, v, true)?;
        }
        Ok(GrayScott {
            grid,
            batch,
            p: [du, dv, f, k],
        })
    }
}

impl VectorField for GrayScott {
    type Scalar = f64;
    fn dim(&self) -> usize {
        self.batch * 2 * self.grid.len()
    }
    fn params(&self) -> &[f64] {
        &self.p
    }
    fn params_mut(&mut self) -> &mut [f64] {
        &mut self.p
    }
    fn eval(&self, _t: f64, y: &[f64], out: &mut [f64]) {
        let m = self.grid.len();
        let [du, dv, f, k] = self.p;
        for (ys, os) in y.chunks_exact(2 * m).zip(out.chunks_exact_mut(2 * m)) {
            let (u, v) = ys.split_at(m);
            let (ou, ov) = os.split_at_mut(m);
            for i in 0..m {
                let r = u[i] * v[i] * v[i];
                ou[i] = -r + f * (1.0 - u[i]);
                ov[i] = r - (f + k) * v[i];
            }
            ops::laplacian_2d(&self.grid, du, u, ou);
            ops::laplacian_2d(&self.grid, dv, v, ov);
        }
    }
    fn vjp(&self, _t: f64, y: &[f64], cot: &[f64], s: f64, yb: &mut [f64], pb: &mut [f64]) {
        let m = self.grid.len();
        let [du, dv, f, k] = self.p;
        let g = self.grid.homogeneous();
        let mut lap = vec![0.0; m];
        for ((ys, cs), bs) in y
            .chunks_exact(2 * m)
            .zip(cot.chunks_exact(2 * m))
            .zip(yb.chunks_exact_mut(2 * m))
        {
            let (u, v) = ys.split_at(m);
            let (cu, cv) = cs.split_at(m);
            let (bu, bv) = bs.split_at_mut(m);
            for i in 0..m {
                let (a, b) = (cu[i], cv[i]);
                bu[i] += s * ((b - a) * v[i] * v[i] - f * a);
                bv[i] += s * ((b - a) * 2.0 * u[i] * v[i] - (f + k) * b);
                pb[2] += s * (a * (1.0 - u[i]) - b * v[i]);
                pb[3] -= s * b * v[i];
            }
            ops::laplacian_2d_vjp(&g, s * du, cu, bu);
            ops::laplacian_2d_vjp(&g, s * dv, cv, bv);
            lap.fill(0.0);
            ops::laplacian_2d(&self.grid, 1.0, u, &mut lap);
            pb[0] += s * dot(cu, &lap);
            lap.fill(0.0);
            ops::laplacian_2d(&self.grid, 1.0, v, &mut lap);
            pb[1] += s * dot(cv, &lap);
        }
    }
}

impl Pde for GrayScott {
    fn check_params(&self) -> Result<()> {
        for (n, v) in ["du", "dv", "f", "k"].into_iter().zip(self.p) {
            check_param(n, v, true)?;
        }
        Ok(())
    }
    fn spectrum(&self) -> Vec<Complex64> {
        let (dx, dy) = (self.grid.x().dx(), self.grid.y().dx());
        let [du, dv, f, k] = self.p;
        let lap = 4.0 * du.max(dv) * (1.0 / (dx * dx) + 1.0 / (dy * dy));
        // Reaction Jacobian for u, v ∈ [0, 1]: entries bounded by v² + F, 2uv, v², 2uv + F + k;
        // a Gershgorin disc around the diffusion segment.
        let r = 1.0 + 2.0 + f + k;
        let mut s = Spectrum::real_interval(-lap - r, r, 64);
        s.extend(Spectrum::disc(
            Complex64::new(-lap / 2.0, 0.0),
            lap / 2.0 + r,
            64,
        ));
        s
    }
    fn step_numbers(&self, h: f64) -> String {
        let dx = self.grid.x().dx();
        format!(
            "diffusion number max(D)h/Δx² = {:.4}",
            self.p[0].max(self.p[1]) * h / (dx * dx)
        )
    }
}
