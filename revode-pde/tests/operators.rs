//! Operators: convergence orders on manufactured solutions, conservation, pullbacks = finite
//! differences.

use revode_pde::ops::{self, Central, Rusanov, Upwind};
use revode_pde::{Boundary, Grid1d, Grid2d};
use std::f64::consts::PI;

/// Order p in err ~ Δx^p ~ n^{-p}.
fn slope(ns: &[usize], errs: &[f64]) -> f64 {
    let hs: Vec<f64> = ns.iter().map(|&n| 1.0 / n as f64).collect();
    revode_core::tableau::observed_order(&hs, errs).unwrap()
}

fn max_err(a: &[f64], b: &[f64]) -> f64 {
    a.iter()
        .zip(b)
        .fold(0.0f64, |m, (x, y)| m.max((x - y).abs()))
}

const NS: [usize; 5] = [16, 32, 64, 128, 256];

/// Max-norm error of `apply` on `u` against `exact` on grids of NS points; fitted order.
fn order(
    boundary: Boundary,
    u: impl Fn(f64) -> f64,
    exact: impl Fn(f64) -> f64,
    apply: impl Fn(&Grid1d, &[f64], &mut [f64]),
) -> f64 {
    let errs: Vec<f64> = NS
        .iter()
        .map(|&n| {
            let g = Grid1d::new(n, 0.0, 1.0, boundary).unwrap();
            let xs = g.points();
            let v: Vec<f64> = xs.iter().map(|&x| u(x)).collect();
            let mut out = vec![0.0; n];
            apply(&g, &v, &mut out);
            let want: Vec<f64> = xs.iter().map(|&x| exact(x)).collect();
            max_err(&out, &want)
        })
        .collect();
    slope(&NS, &errs)
}

#[test]
fn laplacian_is_second_order_for_every_boundary() {
    let lap = |g: &Grid1d, u: &[f64], o: &mut [f64]| ops::laplacian(g, 1.0, u, o);
    let p = order(
        Boundary::Periodic,
        |x| (2.0 * PI * x).sin(),
        |x| -4.0 * PI * PI * (2.0 * PI * x).sin(),
        lap,
    );
    assert!((p - 2.0).abs() <= 0.2, "periodic {p}");
    let d = Boundary::Dirichlet {
        left: 1.0,
        right: 1f64.exp(),
    };
    let p = order(d, |x| x.exp(), |x| x.exp(), lap);
    assert!((p - 2.0).abs() <= 0.2, "dirichlet {p}");
    let p = order(
        Boundary::Neumann,
        |x| (PI * x).cos(),
        |x| -PI * PI * (PI * x).cos(),
        lap,
    );
    assert!((p - 2.0).abs() <= 0.2, "neumann {p}");
}

#[test]
fn first_derivatives_have_their_orders() {
    let u = |x: f64| (2.0 * PI * x).sin();
    let du = |x: f64| 2.0 * PI * (2.0 * PI * x).cos();
    let central = |g: &Grid1d, v: &[f64], o: &mut [f64]| ops::divergence(g, &Central, 1.0, v, o);
    let p = order(Boundary::Periodic, u, du, central);
    assert!((p - 2.0).abs() <= 0.2, "central {p}");
    // −div(c·u_upwind) = −c u_x: first order.
    let up =
        |g: &Grid1d, v: &[f64], o: &mut [f64]| ops::divergence(g, &Upwind { c: 1.5 }, -1.0, v, o);
    let p = order(Boundary::Periodic, u, |x| -1.5 * du(x), up);
    assert!((p - 1.0).abs() <= 0.2, "upwind {p}");
    let down =
        |g: &Grid1d, v: &[f64], o: &mut [f64]| ops::divergence(g, &Upwind { c: -0.5 }, -1.0, v, o);
    let p = order(Boundary::Periodic, u, |x| 0.5 * du(x), down);
    assert!((p - 1.0).abs() <= 0.2, "upwind (c < 0) {p}");
    // Rusanov: −(u²/2)_x = −u u_x, first order.
    let rus = |g: &Grid1d, v: &[f64], o: &mut [f64]| ops::divergence(g, &Rusanov, -1.0, v, o);
    let p = order(
        Boundary::Periodic,
        |x| 1.0 + 0.5 * u(x),
        |x| -(1.0 + 0.5 * u(x)) * 0.5 * du(x),
        rus,
    );
    assert!((p - 1.0).abs() <= 0.2, "rusanov {p}");
}

#[test]
fn two_dimensional_laplacian_is_second_order() {
    let errs: Vec<f64> = NS[..4]
        .iter()
        .map(|&n| {
            let x = Grid1d::new(n, 0.0, 1.0, Boundary::Periodic).unwrap();
            let y = Grid1d::new(n, 0.0, 1.0, Boundary::Neumann).unwrap();
            let g = Grid2d::new(x, y);
            let (xs, ys) = (x.points(), y.points());
            let f = |a: f64, b: f64| (2.0 * PI * a).sin() * (PI * b).cos();
            let u: Vec<f64> = ys
                .iter()
                .flat_map(|&b| xs.iter().map(move |&a| f(a, b)))
                .collect();
            let want: Vec<f64> = ys
                .iter()
                .flat_map(|&b| xs.iter().map(move |&a| -5.0 * PI * PI * f(a, b)))
                .collect();
            let mut out = vec![0.0; u.len()];
            ops::laplacian_2d(&g, 1.0, &u, &mut out);
            max_err(&out, &want)
        })
        .collect();
    let p = slope(&NS[..4], &errs);
    assert!((p - 2.0).abs() <= 0.2, "2-D {p}");
}

#[test]
fn periodic_fluxes_conserve_mass_to_round_off() {
    let g = Grid1d::new(200, 0.0, 1.0, Boundary::Periodic).unwrap();
    let u: Vec<f64> = g
        .points()
        .iter()
        .map(|&x| 1.0 + (6.0 * x).sin() + 0.3 * (17.0 * x).cos())
        .collect();
    for (name, out) in [
        ("upwind", {
            let mut o = vec![0.0; 200];
            ops::divergence(&g, &Upwind { c: 0.7 }, -1.0, &u, &mut o);
            o
        }),
        ("rusanov", {
            let mut o = vec![0.0; 200];
            ops::divergence(&g, &Rusanov, -1.0, &u, &mut o);
            o
        }),
        ("laplacian", {
            let mut o = vec![0.0; 200];
            ops::laplacian(&g, 1.0, &u, &mut o);
            o
        }),
    ] {
        let total: f64 = out.iter().sum();
        let scale: f64 = out.iter().map(|v| v.abs()).sum();
        assert!(
            total.abs() <= 1e-13 * scale,
            "{name}: Σ du/dt = {total:e} (scale {scale:e})"
        );
    }
}

/// Checks `vjp` against central differences of `apply` for a random cotangent.
fn check_vjp(
    what: &str,
    g: &Grid1d,
    u: &[f64],
    apply: impl Fn(&[f64], &mut [f64]),
    vjp: impl Fn(&[f64], &[f64], &mut [f64]),
) {
    let n = u.len();
    let cot: Vec<f64> = (0..n).map(|i| ((i * 37 % 11) as f64 - 5.0) / 5.0).collect();
    let mut an = vec![0.0; n];
    vjp(u, &cot, &mut an);
    let h = 1e-6;
    for j in 0..n {
        let (mut up, mut dn) = (u.to_vec(), u.to_vec());
        up[j] += h;
        dn[j] -= h;
        let (mut a, mut b) = (vec![0.0; n], vec![0.0; n]);
        apply(&up, &mut a);
        apply(&dn, &mut b);
        let fd: f64 = a
            .iter()
            .zip(&b)
            .zip(&cot)
            .map(|((x, y), c)| c * (x - y) / (2.0 * h))
            .sum();
        let tol = 1e-6 * (1.0 + fd.abs()) * (1.0 / g.dx()).powi(2).max(1.0) * 1e-2;
        assert!(
            (fd - an[j]).abs() <= tol.max(1e-6),
            "{what} [{j}]: FD {fd} vs {}",
            an[j]
        );
    }
}

#[test]
fn pullbacks_match_finite_differences() {
    for boundary in [
        Boundary::Periodic,
        Boundary::Neumann,
        Boundary::Dirichlet {
            left: 0.3,
            right: -0.2,
        },
    ] {
        let g = Grid1d::new(12, 0.0, 1.0, boundary).unwrap();
        let u: Vec<f64> = g.points().iter().map(|&x| 0.4 + (5.0 * x).sin()).collect();
        let b = format!("{boundary:?}");
        check_vjp(
            &format!("laplacian {b}"),
            &g,
            &u,
            |v, o| ops::laplacian(&g, 0.7, v, o),
            |_, c, ub| ops::laplacian_vjp(&g, 0.7, c, ub),
        );
        for (name, c) in [("upwind+", 1.3), ("upwind−", -0.8)] {
            check_vjp(
                &format!("{name} {b}"),
                &g,
                &u,
                |v, o| ops::divergence(&g, &Upwind { c }, -1.0, v, o),
                |v, cot, ub| ops::divergence_vjp(&g, &Upwind { c }, -1.0, v, cot, ub),
            );
        }
        check_vjp(
            &format!("rusanov {b}"),
            &g,
            &u,
            |v, o| ops::divergence(&g, &Rusanov, -1.0, v, o),
            |v, cot, ub| ops::divergence_vjp(&g, &Rusanov, -1.0, v, cot, ub),
        );
        check_vjp(
            &format!("central {b}"),
            &g,
            &u,
            |v, o| ops::divergence(&g, &Central, 1.0, v, o),
            |v, cot, ub| ops::divergence_vjp(&g, &Central, 1.0, v, cot, ub),
        );
    }
    let x = Grid1d::new(5, 0.0, 1.0, Boundary::Periodic).unwrap();
    let y = Grid1d::new(
        4,
        0.0,
        1.0,
        Boundary::Dirichlet {
            left: 0.1,
            right: 0.2,
        },
    )
    .unwrap();
    let g2 = Grid2d::new(x, y);
    let u: Vec<f64> = (0..20).map(|i| (i as f64 * 0.37).sin()).collect();
    check_vjp(
        "laplacian 2-D",
        &x,
        &u,
        |v, o| ops::laplacian_2d(&g2, 0.5, v, o),
        |_, c, ub| ops::laplacian_2d_vjp(&g2, 0.5, c, ub),
    );
}

#[test]
fn bad_grids_are_typed_errors() {
    assert!(Grid1d::new(2, 0.0, 1.0, Boundary::Periodic).is_err());
    assert!(Grid1d::new(10, 1.0, 1.0, Boundary::Periodic).is_err());
    assert!(Grid1d::new(
        10,
        0.0,
        1.0,
        Boundary::Dirichlet {
            left: f64::NAN,
            right: 0.0
        }
    )
    .is_err());
}
