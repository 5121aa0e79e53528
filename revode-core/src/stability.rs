//! Linear stability of the reversible coupling (METHOD.md §5), and advice on λ and h.
//!
//! On y' = αy with `x = hα` and base stability function R, one coupled step is the matrix
//! `[[λ, R(x) − λ], [λ(1 − R(−x)), 1 + (1 − R(−x))(R(x) − λ)]]` with determinant λ and trace
//! `Γ(x) = 1 + R(x) + λR(−x) − R(x)R(−x)`; its eigenvalues solve `μ² − Γμ + λ = 0`.

use crate::{Error, Result, Tableau};
use num_complex::Complex64;
use serde::{Deserialize, Serialize};

/// The trace Γ(x, λ) of the coupled step on the test equation.
pub fn gamma(tableau: &Tableau, x: Complex64, lambda: f64) -> Complex64 {
    let (rp, rm) = (
        tableau.stability_function(x),
        tableau.stability_function(-x),
    );
    1.0 + rp + lambda * rm - rp * rm
}

/// Spectral radius of the coupled step from `R(x)`, `R(−x)` and λ.
pub fn coupled_spectral_radius(r_plus: Complex64, r_minus: Complex64, lambda: f64) -> f64 {
    let g = 1.0 + r_plus + lambda * r_minus - r_plus * r_minus;
    let d = (g * g - 4.0 * lambda).sqrt();
    ((g + d) * 0.5).norm().max(((g - d) * 0.5).norm())
}

/// Spectral radius of the reversible coupling of `tableau` at `x = hα`.
pub fn spectral_radius(tableau: &Tableau, x: Complex64, lambda: f64) -> f64 {
    coupled_spectral_radius(
        tableau.stability_function(x),
        tableau.stability_function(-x),
        lambda,
    )
}

/// True when both eigenvalues of the coupled step have modulus below 1.
pub fn is_stable(tableau: &Tableau, x: Complex64, lambda: f64) -> bool {
    spectral_radius(tableau, x, lambda) < 1.0
}

/// METHOD.md §5's closed-form criterion: |Γ| < 1 + λ for real Γ, otherwise
/// `(Re Γ)²/(1+λ)² + (Im Γ)²/(1−λ)² < 1`. Agrees with [`is_stable`] for λ ∈ (0, 1).
pub fn is_stable_closed_form(tableau: &Tableau, x: Complex64, lambda: f64) -> bool {
    let g = gamma(tableau, x, lambda);
    if g.im == 0.0 {
        g.re.abs() < 1.0 + lambda
    } else {
        (g.re / (1.0 + lambda)).powi(2) + (g.im / (1.0 - lambda)).powi(2) < 1.0
    }
}

/// The stability region of a reversible method sampled on a grid of the complex x-plane.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct StabilityRegion {
    /// Name of the base method.
    pub method: String,
    /// The coupling parameter.
    pub lambda: f64,
    /// Real parts of the grid (columns).
    pub re: Vec<f64>,
    /// Imaginary parts of the grid (rows).
    pub im: Vec<f64>,
    /// Spectral radius at `(re[j], im[i])`, row-major by `i`.
    pub radius: Vec<Vec<f64>>,
}

impl StabilityRegion {
    /// Fraction of sampled points that are stable.
    pub fn stable_fraction(&self) -> f64 {
        let total = self.re.len() * self.im.len();
        let stable = self.radius.iter().flatten().filter(|&&r| r < 1.0).count();
        stable as f64 / total.max(1) as f64
    }
}

/// Samples the region on `[re_min, re_max] × [im_min, im_max]` with `n × n` points.
pub fn region(
    tableau: &Tableau,
    lambda: f64,
    re_range: (f64, f64),
    im_range: (f64, f64),
    n: usize,
) -> Result<StabilityRegion> {
    check_lambda(lambda)?;
    if !(2..=4096).contains(&n) {
        return Err(Error::config(
            "n",
            format!("grid size {n} must be in 2..=4096"),
        ));
    }
    for (name, (lo, hi)) in [("re_range", re_range), ("im_range", im_range)] {
        if !(lo.is_finite() && hi.is_finite() && lo < hi) {
            return Err(Error::config(
                name,
                format!("[{lo}, {hi}] is not a finite, non-empty range"),
            ));
        }
    }
    let lin = |(lo, hi): (f64, f64)| -> Vec<f64> {
        (0..n)
            .map(|k| lo + (hi - lo) * k as f64 / (n - 1) as f64)
            .collect()
    };
    let (re, im) = (lin(re_range), lin(im_range));
    let radius = im
        .iter()
        .map(|&y| {
            re.iter()
                .map(|&x| spectral_radius(tableau, Complex64::new(x, y), lambda))
                .collect()
        })
        .collect();
    Ok(StabilityRegion {
        method: tableau.name().to_string(),
        lambda,
        re,
        im,
        radius,
    })
}

fn check_lambda(lambda: f64) -> Result<()> {
    if lambda > 0.0 && lambda <= 1.0 {
        Ok(())
    } else {
        Err(Error::InvalidCoupling { lambda })
    }
}

/// Eigenvalues of a dense row-major `n × n` matrix (e.g. a Jacobian), computed with faer.
pub fn eigenvalues(matrix: &[f64], n: usize) -> Result<Vec<Complex64>> {
    if matrix.len() != n * n {
        return Err(Error::ShapeMismatch {
            what: "matrix".into(),
            expected: n * n,
            found: matrix.len(),
        });
    }
    crate::error::check_finite("matrix", matrix)?;
    if n == 0 {
        return Ok(Vec::new());
    }
    let m = faer::Mat::<f64>::from_fn(n, n, |i, j| matrix[i * n + j]);
    m.eigenvalues()
        .map(|v| v.into_iter().map(|c| Complex64::new(c.re, c.im)).collect())
        .map_err(|e| Error::Unsupported(format!("eigenvalue computation failed: {e:?}")))
}

/// Ritz values of a linear operator on ℝⁿ from `m` Arnoldi steps: approximations of its outer
/// eigenvalues (largest magnitude, extreme real parts), the ones that decide explicit stability.
///
/// `op(v, out)` sets `out = A v` (any A with the wanted spectrum: a Jacobian or its transpose,
/// applied through a VJP). Modified Gram–Schmidt with one reorthogonalisation builds the
/// Hessenberg matrix `H_m = Q_mᵀ A Q_m`, whose eigenvalues (faer) are returned. A Krylov space
/// that becomes invariant stops early, and its Ritz values are then exact eigenvalues. The start
/// vector is fixed (pseudo-random), so the result is deterministic. With `m ≥ n` the values are
/// the eigenvalues of A up to rounding.
pub fn ritz_values(
    n: usize,
    m: usize,
    op: &mut dyn FnMut(&[f64], &mut [f64]),
) -> Result<Vec<Complex64>> {
    let m = m.min(n);
    if m == 0 {
        return Ok(Vec::new());
    }
    let norm = |v: &[f64]| v.iter().map(|x| x * x).sum::<f64>().sqrt();
    let mut q0: Vec<f64> = (0..n)
        .map(|i| ((i as f64 + 1.0) * 0.618_033_988_749_895).fract() - 0.5)
        .collect();
    let s = norm(&q0);
    q0.iter_mut().for_each(|x| *x /= s);
    let mut basis = vec![q0];
    let mut h = vec![0.0; m * m];
    let mut w = vec![0.0; n];
    let mut k = m;
    for j in 0..m {
        op(&basis[j], &mut w);
        crate::error::check_finite("linearised operator output", &w)?;
        for _pass in 0..2 {
            for (i, q) in basis.iter().enumerate() {
                let c: f64 = q.iter().zip(&w).map(|(a, b)| a * b).sum();
                h[i * m + j] += c;
                w.iter_mut().zip(q).for_each(|(x, qi)| *x -= c * qi);
            }
        }
        if j + 1 == m {
            break;
        }
        let beta = norm(&w);
        let scale = (0..=j).map(|i| h[i * m + j].abs()).fold(beta, f64::max);
        if beta <= 1e-12 * scale.max(f64::MIN_POSITIVE) {
            k = j + 1; // invariant subspace: the Ritz values are eigenvalues
            break;
        }
        h[(j + 1) * m + j] = beta;
        basis.push(w.iter().map(|x| x / beta).collect());
    }
    let hk: Vec<f64> = (0..k * k).map(|idx| h[(idx / k) * m + idx % k]).collect();
    eigenvalues(&hk, k)
}

/// Whether a mode is acceptable: the coupled step does not amplify it faster than the exact
/// flow (and decaying modes decay): radius ≤ max(1, |eˣ|).
fn acceptable(tableau: &Tableau, x: Complex64, lambda: f64) -> bool {
    let bound = 1f64.max(x.re.exp());
    spectral_radius(tableau, x, lambda) <= bound * (1.0 + 1e-12)
}

/// Advice for choosing h and λ from (an estimate of) the Jacobian spectrum.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Advice {
    /// Largest h such that every h' ∈ (0, h] keeps every eigenvalue's mode acceptable at this λ
    /// (`None` when even tiny steps are not, e.g. purely imaginary eigenvalues).
    pub max_stable_h: Option<f64>,
    /// Intervals of λ ∈ (0, 1] for which the given h is acceptable.
    pub stable_lambda: Vec<(f64, f64)>,
}

/// Samples of the spectrum: convenient constructors for bounds.
pub struct Spectrum;

impl Spectrum {
    /// `n` points spread over the real interval `[lo, hi]` (e.g. a dissipative bound `[−L, 0)`).
    pub fn real_interval(lo: f64, hi: f64, n: usize) -> Vec<Complex64> {
        let n = n.max(2);
        (0..n)
            .map(|k| Complex64::new(lo + (hi - lo) * k as f64 / (n - 1) as f64, 0.0))
            .collect()
    }
    /// `n` points on the boundary of the disc of radius `r` centred at `c` (a Gershgorin bound).
    pub fn disc(c: Complex64, r: f64, n: usize) -> Vec<Complex64> {
        let n = n.max(4);
        (0..n)
            .map(|k| c + Complex64::from_polar(r, std::f64::consts::TAU * k as f64 / n as f64))
            .collect()
    }
}

/// Largest h for which every h' ∈ (0, h] is acceptable for all eigenvalues in `spectrum`
/// (searched up to `h_cap` on a geometric grid, then refined by bisection).
pub fn max_stable_step(
    tableau: &Tableau,
    lambda: f64,
    spectrum: &[Complex64],
    h_cap: f64,
) -> Result<Option<f64>> {
    check_lambda(lambda)?;
    scan_step(h_cap, |h| {
        spectrum.iter().all(|&a| acceptable(tableau, a * h, lambda))
    })
}

/// [`max_stable_step`] for the plain base method: `|R(hα)| ≤ max(1, |e^{hα}|)` for every
/// eigenvalue α in `spectrum`.
pub fn max_stable_step_plain(
    tableau: &Tableau,
    spectrum: &[Complex64],
    h_cap: f64,
) -> Result<Option<f64>> {
    scan_step(h_cap, |h| {
        spectrum.iter().all(|&a| {
            let x = a * h;
            tableau.stability_function(x).norm() <= 1f64.max(x.re.exp()) * (1.0 + 1e-12)
        })
    })
}

/// Largest h ≤ `h_cap` with `ok(h')` for all h' ∈ (0, h]: a geometric scan from `h_cap·1e-12`
/// (128 points per decade), refined by bisection.
fn scan_step(h_cap: f64, ok: impl Fn(f64) -> bool) -> Result<Option<f64>> {
    if !(h_cap > 0.0 && h_cap.is_finite()) {
        return Err(Error::InvalidStepSize {
            h: h_cap,
            reason: "the search cap must be positive and finite".into(),
        });
    }
    let (lo, steps) = (h_cap * 1e-12, 12 * 128);
    let ratio = (h_cap / lo).powf(1.0 / steps as f64);
    if !ok(lo) {
        return Ok(None);
    }
    let mut good = lo;
    for k in 1..=steps {
        let h = lo * ratio.powi(k);
        if ok(h) {
            good = h;
        } else {
            let mut bad = h;
            for _ in 0..60 {
                let mid = 0.5 * (good + bad);
                if ok(mid) {
                    good = mid;
                } else {
                    bad = mid;
                }
            }
            return Ok(Some(good));
        }
    }
    Ok(Some(good))
}

/// The intervals of λ ∈ (0, 1] (sampled at `samples` points, ends refined by bisection) for
/// which step `h` is acceptable for every eigenvalue in `spectrum`.
pub fn stable_lambda_range(
    tableau: &Tableau,
    h: f64,
    spectrum: &[Complex64],
    samples: usize,
) -> Result<Vec<(f64, f64)>> {
    if !(h > 0.0 && h.is_finite()) {
        return Err(Error::InvalidStepSize {
            h,
            reason: "must be positive and finite".into(),
        });
    }
    let samples = samples.clamp(8, 100_000);
    let ok = |l: f64| spectrum.iter().all(|&a| acceptable(tableau, a * h, l));
    let grid: Vec<f64> = (1..=samples).map(|k| k as f64 / samples as f64).collect();
    let refine = |mut good: f64, mut bad: f64| {
        for _ in 0..50 {
            let mid = 0.5 * (good + bad);
            if ok(mid) {
                good = mid;
            } else {
                bad = mid;
            }
        }
        good
    };
    let mut out = Vec::new();
    let mut start: Option<f64> = None;
    let mut prev = 0.0;
    for &l in &grid {
        match (ok(l), start) {
            (true, None) => {
                start = Some(if prev == 0.0 {
                    f64::MIN_POSITIVE
                } else {
                    refine(l, prev)
                })
            }
            (false, Some(s)) => {
                out.push((s, refine(prev, l)));
                start = None;
            }
            _ => {}
        }
        prev = l;
    }
    if let Some(s) = start {
        out.push((s, 1.0));
    }
    Ok(out)
}

/// Full advice for `tableau` at `(h, λ)` given spectrum samples.
pub fn advise(tableau: &Tableau, h: f64, lambda: f64, spectrum: &[Complex64]) -> Result<Advice> {
    Ok(Advice {
        max_stable_h: max_stable_step(tableau, lambda, spectrum, 1e3 * h.max(1e-300))?,
        stable_lambda: stable_lambda_range(tableau, h, spectrum, 1000)?,
    })
}

/// Per-step growth of round-off when the coupling runs backwards: the spectral radius of the
/// inverse step, `max |μ| / λ` (the eigenvalues multiply to λ), maximised over `xs = hα`.
///
/// Forward stability (`max |μ| < 1`) forces this above 1 whenever λ < 1: reconstruction drift
/// then grows geometrically, which is what the checkpointed-reversible method caps.
pub fn backward_amplification(tableau: &Tableau, lambda: f64, xs: &[Complex64]) -> f64 {
    xs.iter()
        .map(|&x| spectral_radius(tableau, x, lambda) / lambda)
        .fold(1.0, f64::max)
}

/// The longest checkpoint interval k with `amplification^k · unit_roundoff ≤ tolerance`
/// (at least 1; `usize::MAX` when round-off does not grow).
pub fn checkpoint_interval(amplification: f64, tolerance: f64, unit_roundoff: f64) -> usize {
    if amplification.is_nan() || amplification <= 1.0 || !amplification.is_finite() {
        return usize::MAX;
    }
    let k = (tolerance / unit_roundoff).ln() / amplification.ln();
    if k.is_finite() && k >= 1.0 {
        k.floor().min(usize::MAX as f64) as usize
    } else {
        1
    }
}
