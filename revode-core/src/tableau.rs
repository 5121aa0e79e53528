//! Explicit Runge–Kutta Butcher tableaux, built-in and user-supplied (validated).

use crate::{Error, Result};
use serde::{Deserialize, Serialize};

/// An explicit Runge–Kutta method: `c`, strictly lower-triangular `a`, weights `b`, and optional
/// embedded error weights `e = b − b̂`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Tableau {
    name: String,
    c: Vec<f64>,
    a: Vec<Vec<f64>>,
    b: Vec<f64>,
    e: Option<Vec<f64>>,
    order: u32,
    embedded_order: Option<u32>,
}

/// Absolute tolerance for the order conditions of coefficients given to ~16 digits.
const CONDITION_TOL: f64 = 1e-10;

impl Tableau {
    /// Builds and validates a user tableau.
    ///
    /// `a` is the full s × s matrix (it must be strictly lower-triangular), `b` the weights,
    /// `c` the nodes (they must equal the row sums of `a`), `order` the claimed order (checked
    /// against the order conditions up to order 5), and `b_hat` optional embedded weights whose
    /// order is checked the same way.
    pub fn new(
        name: &str,
        a: Vec<Vec<f64>>,
        b: Vec<f64>,
        c: Vec<f64>,
        order: u32,
        b_hat: Option<(Vec<f64>, u32)>,
    ) -> Result<Self> {
        let bad = |reason: String| Error::InvalidTableau {
            name: name.to_string(),
            reason,
        };
        let s = b.len();
        if s == 0 {
            return Err(bad("no stages".into()));
        }
        if a.len() != s || c.len() != s {
            return Err(bad(format!(
                "a has {} rows and c has {} entries, expected {s} (the length of b)",
                a.len(),
                c.len()
            )));
        }
        for (i, row) in a.iter().enumerate() {
            if row.len() != s {
                return Err(bad(format!(
                    "row {i} of a has {} entries, expected {s}",
                    row.len()
                )));
            }
            if let Some(j) = row.iter().position(|v| !v.is_finite()) {
                return Err(bad(format!("a[{i}][{j}] is not finite")));
            }
            if let Some(j) = (i..s).find(|&j| row[j] != 0.0) {
                return Err(bad(format!(
                    "a[{i}][{j}] = {} is on or above the diagonal: the method must be explicit",
                    row[j]
                )));
            }
            let sum: f64 = row.iter().sum();
            if (sum - c[i]).abs() > CONDITION_TOL * (1.0 + c[i].abs()) {
                return Err(bad(format!(
                    "c[{i}] = {} differs from the row sum {sum}",
                    c[i]
                )));
            }
        }
        if let Some(i) = b.iter().chain(&c).position(|v| !v.is_finite()) {
            return Err(bad(format!("b or c has a non-finite entry at {i}")));
        }
        if !(1..=5).contains(&order) {
            return Err(bad(format!("claimed order {order} is outside 1..=5")));
        }
        let found = satisfied_order(&a, &b, &c);
        if found < order {
            return Err(bad(format!(
                "claims order {order} but satisfies the order conditions only up to {found}"
            )));
        }
        let (e, embedded_order) = match b_hat {
            None => (None, None),
            Some((bh, p)) => {
                if bh.len() != s {
                    return Err(bad(format!("b_hat has {} entries, expected {s}", bh.len())));
                }
                let found = satisfied_order(&a, &bh, &c);
                if p == 0 || found < p {
                    return Err(bad(format!(
                        "embedded method claims order {p} but satisfies the conditions up to {found}"
                    )));
                }
                (
                    Some(b.iter().zip(&bh).map(|(b, h)| b - h).collect()),
                    Some(p),
                )
            }
        };
        Ok(Tableau {
            name: name.to_string(),
            c,
            a,
            b,
            e,
            order,
            embedded_order,
        })
    }

    fn builtin(
        name: &str,
        a: Vec<Vec<f64>>,
        b: Vec<f64>,
        order: u32,
        b_hat: Option<(Vec<f64>, u32)>,
    ) -> Self {
        let c = a.iter().map(|r| r.iter().sum()).collect();
        match Tableau::new(name, a, b, c, order, b_hat) {
            Ok(t) => t,
            // Built-in coefficients are tested; failing here is a bug in this file.
            Err(e) => unreachable!("built-in tableau rejected: {e}"),
        }
    }

    /// Forward Euler, order 1.
    pub fn euler() -> Self {
        Self::builtin("euler", vec![vec![0.0]], vec![1.0], 1, None)
    }
    /// Explicit midpoint, order 2.
    pub fn midpoint() -> Self {
        Self::builtin(
            "midpoint",
            vec![vec![0.0, 0.0], vec![0.5, 0.0]],
            vec![0.0, 1.0],
            2,
            None,
        )
    }
    /// Heun's method, order 2, with embedded Euler.
    pub fn heun() -> Self {
        Self::builtin(
            "heun",
            vec![vec![0.0, 0.0], vec![1.0, 0.0]],
            vec![0.5, 0.5],
            2,
            Some((vec![1.0, 0.0], 1)),
        )
    }
    /// Ralston's second-order method (c₂ = 2/3, b = ¼, ¾: the minimum-error-bound two-stage
    /// method; Diffrax's `Ralston`), with embedded Euler for adaptive steps.
    pub fn ralston2() -> Self {
        Self::builtin(
            "ralston2",
            vec![vec![0.0, 0.0], vec![2.0 / 3.0, 0.0]],
            vec![0.25, 0.75],
            2,
            Some((vec![1.0, 0.0], 1)),
        )
    }
    /// Ralston's third-order method (c = 0, ½, ¾; b = 2/9, 1/3, 4/9).
    pub fn ralston3() -> Self {
        Self::builtin(
            "ralston3",
            vec![vec![0.0; 3], vec![0.5, 0.0, 0.0], vec![0.0, 0.75, 0.0]],
            vec![2.0 / 9.0, 1.0 / 3.0, 4.0 / 9.0],
            3,
            None,
        )
    }
    /// The classical fourth-order Runge–Kutta method.
    pub fn rk4() -> Self {
        Self::builtin(
            "rk4",
            vec![
                vec![0.0; 4],
                vec![0.5, 0.0, 0.0, 0.0],
                vec![0.0, 0.5, 0.0, 0.0],
                vec![0.0, 0.0, 1.0, 0.0],
            ],
            vec![1.0 / 6.0, 1.0 / 3.0, 1.0 / 3.0, 1.0 / 6.0],
            4,
            None,
        )
    }
    /// Bogacki–Shampine 3(2): order 3 with an embedded order-2 error estimate (FSAL not used).
    pub fn bosh3() -> Self {
        Self::builtin(
            "bosh3",
            vec![
                vec![0.0; 4],
                vec![0.5, 0.0, 0.0, 0.0],
                vec![0.0, 0.75, 0.0, 0.0],
                vec![2.0 / 9.0, 1.0 / 3.0, 4.0 / 9.0, 0.0],
            ],
            vec![2.0 / 9.0, 1.0 / 3.0, 4.0 / 9.0, 0.0],
            3,
            Some((vec![7.0 / 24.0, 0.25, 1.0 / 3.0, 0.125], 2)),
        )
    }
    /// Dormand–Prince 5(4) (FSAL not used).
    pub fn dopri5() -> Self {
        let b = vec![
            35.0 / 384.0,
            0.0,
            500.0 / 1113.0,
            125.0 / 192.0,
            -2187.0 / 6784.0,
            11.0 / 84.0,
            0.0,
        ];
        let b_hat = vec![
            5179.0 / 57600.0,
            0.0,
            7571.0 / 16695.0,
            393.0 / 640.0,
            -92097.0 / 339200.0,
            187.0 / 2100.0,
            1.0 / 40.0,
        ];
        let mut last = b.clone();
        last[6] = 0.0;
        Self::builtin(
            "dopri5",
            vec![
                vec![0.0; 7],
                vec![0.2, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0],
                vec![3.0 / 40.0, 9.0 / 40.0, 0.0, 0.0, 0.0, 0.0, 0.0],
                vec![44.0 / 45.0, -56.0 / 15.0, 32.0 / 9.0, 0.0, 0.0, 0.0, 0.0],
                vec![
                    19372.0 / 6561.0,
                    -25360.0 / 2187.0,
                    64448.0 / 6561.0,
                    -212.0 / 729.0,
                    0.0,
                    0.0,
                    0.0,
                ],
                vec![
                    9017.0 / 3168.0,
                    -355.0 / 33.0,
                    46732.0 / 5247.0,
                    49.0 / 176.0,
                    -5103.0 / 18656.0,
                    0.0,
                    0.0,
                ],
                last,
            ],
            b,
            5,
            Some((b_hat, 4)),
        )
    }
    /// Tsitouras 5(4) (Tsitouras 2011; FSAL not used).
    pub fn tsit5() -> Self {
        let b = vec![
            0.09646076681806523,
            0.01,
            0.4798896504144996,
            1.379008574103742,
            -3.290069515436081,
            2.324710524099774,
            0.0,
        ];
        // Error weights e = b − b̂ (Tsitouras 2011, Table 1).
        let e = [
            -0.001_780_011_052_225_777,
            -0.0008164344596567469,
            0.007880878010261995,
            -0.1447110071732629,
            0.5823571654525552,
            -0.45808210592918697,
            1.0 / 66.0,
        ];
        let b_hat = b.iter().zip(e).map(|(b, e)| b - e).collect();
        let mut last = b.clone();
        last[6] = 0.0;
        Self::builtin(
            "tsit5",
            vec![
                vec![0.0; 7],
                vec![0.161, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0],
                vec![
                    -0.008480655492356989,
                    0.335480655492357,
                    0.0,
                    0.0,
                    0.0,
                    0.0,
                    0.0,
                ],
                vec![
                    2.8971530571054935,
                    -6.359448489975075,
                    4.3622954328695815,
                    0.0,
                    0.0,
                    0.0,
                    0.0,
                ],
                vec![
                    5.325864828439257,
                    -11.748883564062828,
                    7.4955393428898365,
                    -0.09249506636175525,
                    0.0,
                    0.0,
                    0.0,
                ],
                vec![
                    5.86145544294642,
                    -12.92096931784711,
                    8.159367898576159,
                    -0.071584973281401,
                    -0.028269050394068383,
                    0.0,
                    0.0,
                ],
                last,
            ],
            b,
            5,
            Some((b_hat, 4)),
        )
    }

    /// Every built-in tableau.
    pub fn all_builtin() -> Vec<Tableau> {
        vec![
            Self::euler(),
            Self::midpoint(),
            Self::heun(),
            Self::ralston2(),
            Self::ralston3(),
            Self::rk4(),
            Self::bosh3(),
            Self::dopri5(),
            Self::tsit5(),
        ]
    }

    /// Looks a built-in tableau up by name (case-insensitive).
    pub fn by_name(name: &str) -> Result<Self> {
        Self::all_builtin()
            .into_iter()
            .find(|t| t.name.eq_ignore_ascii_case(name))
            .ok_or_else(|| {
                Error::config(
                    "method",
                    format!(
                        "unknown method '{name}'; expected one of euler, midpoint, heun, ralston2, ralston3, rk4, bosh3, dopri5, tsit5"
                    ),
                )
            })
    }

    /// The method's name.
    pub fn name(&self) -> &str {
        &self.name
    }
    /// Number of stages s.
    pub fn stages(&self) -> usize {
        self.b.len()
    }
    /// Nodes c.
    pub fn c(&self) -> &[f64] {
        &self.c
    }
    /// The s × s coefficient matrix a.
    pub fn a(&self) -> &[Vec<f64>] {
        &self.a
    }
    /// Weights b.
    pub fn b(&self) -> &[f64] {
        &self.b
    }
    /// Embedded error weights `e = b − b̂`, when the method has an error estimate.
    pub fn error_weights(&self) -> Option<&[f64]> {
        self.e.as_deref()
    }
    /// Order of the method.
    pub fn order(&self) -> u32 {
        self.order
    }
    /// Order of the embedded method, when there is one.
    pub fn embedded_order(&self) -> Option<u32> {
        self.embedded_order
    }
    /// Number of leading stages the solution needs (trailing stages with b = 0 only serve the
    /// error estimate).
    pub fn solution_stages(&self) -> usize {
        self.b.iter().rposition(|&b| b != 0.0).map_or(0, |i| i + 1)
    }

    /// Stability function R(x) for y' = αy, x = hα: the step maps y to R(x)·y.
    pub fn stability_function(&self, x: num_complex::Complex64) -> num_complex::Complex64 {
        let s = self.stages();
        let mut stage = vec![num_complex::Complex64::new(0.0, 0.0); s];
        let mut out = num_complex::Complex64::new(1.0, 0.0);
        for i in 0..s {
            let mut y = num_complex::Complex64::new(1.0, 0.0);
            for (a, k) in self.a[i].iter().zip(&stage[..i]) {
                y += a * k;
            }
            stage[i] = x * y;
            out += self.b[i] * stage[i];
        }
        out
    }
}

/// The convergence order observed in data: the least-squares slope p of log(err) against
/// log(h), for errors err ≈ C·hᵖ. For grid sizes n (h ∝ 1/n) pass h = 1/n. Errors: lengths
/// differ, fewer than two points, a step or error that is not finite and positive, or steps
/// that are all equal.
pub fn observed_order(hs: &[f64], errs: &[f64]) -> Result<f64> {
    if hs.len() != errs.len() {
        return Err(Error::ShapeMismatch {
            what: "observed_order: errors for the steps".into(),
            expected: hs.len(),
            found: errs.len(),
        });
    }
    if hs.len() < 2 {
        return Err(Error::config(
            "observed_order",
            format!("needs at least two (h, error) points, got {}", hs.len()),
        ));
    }
    for (what, v) in [("step", hs), ("error", errs)] {
        if let Some(i) = v.iter().position(|x| !(x.is_finite() && *x > 0.0)) {
            return Err(Error::config(
                "observed_order",
                format!("{what} {i} is {}, not finite and positive", v[i]),
            ));
        }
    }
    let n = hs.len() as f64;
    let xs: Vec<f64> = hs.iter().map(|h| h.ln()).collect();
    let ys: Vec<f64> = errs.iter().map(|e| e.ln()).collect();
    let (mx, my) = (xs.iter().sum::<f64>() / n, ys.iter().sum::<f64>() / n);
    let sxx: f64 = xs.iter().map(|x| (x - mx).powi(2)).sum();
    if sxx == 0.0 {
        return Err(Error::config("observed_order", "every step is the same"));
    }
    let sxy: f64 = xs.iter().zip(&ys).map(|(x, y)| (x - mx) * (y - my)).sum();
    Ok(sxy / sxx)
}

/// The largest p ≤ 5 such that the weights `b` satisfy every order condition up to order p
/// (Butcher trees; assumes the row-sum condition c = a·1).
pub fn satisfied_order(a: &[Vec<f64>], b: &[f64], c: &[f64]) -> u32 {
    let s = b.len();
    let mv = |v: &[f64]| -> Vec<f64> {
        (0..s)
            .map(|i| (0..s).map(|j| a[i][j] * v[j]).sum())
            .collect()
    };
    let pw = |k: i32| -> Vec<f64> { c.iter().map(|x| x.powi(k)).collect() };
    let mul = |u: &[f64], v: &[f64]| -> Vec<f64> { u.iter().zip(v).map(|(x, y)| x * y).collect() };
    let bsum = |v: &[f64]| -> f64 { b.iter().zip(v).map(|(x, y)| x * y).sum() };
    let ones = vec![1.0; s];
    let ac = mv(c);
    let ac2 = mv(&pw(2));
    let aac = mv(&ac);
    let conditions: [Vec<(f64, f64)>; 5] = [
        vec![(bsum(&ones), 1.0)],
        vec![(bsum(c), 0.5)],
        vec![(bsum(&pw(2)), 1.0 / 3.0), (bsum(&ac), 1.0 / 6.0)],
        vec![
            (bsum(&pw(3)), 0.25),
            (bsum(&mul(c, &ac)), 0.125),
            (bsum(&ac2), 1.0 / 12.0),
            (bsum(&aac), 1.0 / 24.0),
        ],
        vec![
            (bsum(&pw(4)), 0.2),
            (bsum(&mul(&pw(2), &ac)), 0.1),
            (bsum(&mul(&ac, &ac)), 0.05),
            (bsum(&mul(c, &ac2)), 1.0 / 15.0),
            (bsum(&mul(c, &aac)), 1.0 / 30.0),
            (bsum(&mv(&pw(3))), 0.05),
            (bsum(&mv(&mul(c, &ac))), 1.0 / 40.0),
            (bsum(&mv(&ac2)), 1.0 / 60.0),
            (bsum(&mv(&aac)), 1.0 / 120.0),
        ],
    ];
    let mut order = 0;
    for level in conditions.iter() {
        if level
            .iter()
            .all(|(got, want)| (got - want).abs() <= CONDITION_TOL)
        {
            order += 1;
        } else {
            break;
        }
    }
    order
}
