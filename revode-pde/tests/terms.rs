//! PDE terms through the core's schemes and gradients: reversible = direct, finite
//! differences, stability-limit errors, Crank–Nicolson references, automatic checkpointing.

use revode_core::prelude::*;
use revode_pde::*;
use std::f64::consts::PI;

fn rel(a: &[f64], b: &[f64]) -> f64 {
    let s = b.iter().fold(0.0f64, |m, v| m.max(v.abs())).max(1e-300);
    a.iter()
        .zip(b)
        .fold(0.0f64, |m, (x, y)| m.max((x - y).abs()))
        / s
}

fn loss(ys: &[Vec<f64>], cots: &mut [Vec<f64>]) -> f64 {
    let mut l = 0.0;
    for (k, (y, c)) in ys.iter().zip(cots.iter_mut()).enumerate().skip(1) {
        for (i, (&v, c)) in y.iter().zip(c.iter_mut()).enumerate() {
            let w = 1.0 + 0.05 * ((i + k) % 7) as f64;
            l += w * v * v;
            *c = 2.0 * w * v;
        }
    }
    l
}

fn bumps(g: &Grid1d, batch: usize) -> Vec<f64> {
    let xs = g.points();
    (0..batch)
        .flat_map(|b| {
            xs.iter()
                .map(move |&x| {
                    0.5 + 0.3 * (2.0 * PI * x + b as f64).sin() * (1.0 - 0.5 * (x - 0.5).abs())
                })
                .collect::<Vec<_>>()
        })
        .collect()
}

/// Reversible = direct to round-off, direct = finite differences on the parameters.
fn check<F: Pde + Clone>(field: F, y0: &[f64], what: &str) {
    let tableau = Tableau::heun();
    let opts = step_options(&field, &tableau, Some(0.999), None).unwrap();
    let steps = 30.0;
    let h = match opts.step {
        StepControl::Fixed { h } => h,
        _ => unreachable!(),
    };
    let times = [0.0, 10.0 * h, steps * h];
    let scheme = |f: F| Reversible::new(Rk::new(PdeTerm::new(f), tableau.clone()), 0.999).unwrap();
    let s = scheme(field.clone());
    let y0 = y0.to_vec();
    let g = |m: GradientMethod| gradient(&s, &y0, &times, &opts, &m.into(), loss).unwrap();
    let direct = g(GradientMethod::Direct);
    let rev = g(GradientMethod::Reversible);
    let (ey, ep) = (rel(&rev.y0, &direct.y0), rel(&rev.params, &direct.params));
    assert!(ey <= 1e-9 && ep <= 1e-9, "{what}: y0 {ey:e}, θ {ep:e}");
    let hstep = 1e-6;
    let p0 = field.params().to_vec();
    for (i, &p) in p0.iter().enumerate() {
        let value = |d: f64| {
            let mut f = field.clone();
            f.params_mut()[i] += d;
            let sol = solve(&scheme(f), &y0, &times, &opts).unwrap();
            let mut c: Vec<Vec<f64>> = sol.ys.iter().map(|y| vec![0.0; y.len()]).collect();
            loss(&sol.ys, &mut c)
        };
        let d = hstep * p.abs().max(1e-3);
        let fd = (value(d) - value(-d)) / (2.0 * d);
        let an = direct.params[i];
        assert!(
            (fd - an).abs() <= 1e-6 * (1.0 + an.abs()),
            "{what} θ[{i}]: FD {fd} vs {an}"
        );
    }
}

#[test]
fn gradients_of_every_pde_term() {
    let periodic = Grid1d::new(24, 0.0, 1.0, Boundary::Periodic).unwrap();
    let dirichlet = Grid1d::new(
        20,
        0.0,
        1.0,
        Boundary::Dirichlet {
            left: 0.2,
            right: 0.7,
        },
    )
    .unwrap();
    let neumann = Grid1d::new(20, 0.0, 1.0, Boundary::Neumann).unwrap();
    check(
        Heat::new(dirichlet, 2, 0.05).unwrap(),
        &bumps(&dirichlet, 2),
        "heat dirichlet",
    );
    check(
        Heat::new(neumann, 2, 0.05).unwrap(),
        &bumps(&neumann, 2),
        "heat neumann",
    );
    check(
        Advection::new(periodic, 2, 0.8).unwrap(),
        &bumps(&periodic, 2),
        "advection",
    );
    check(
        Burgers::new(periodic, 2, 0.02, 1.0).unwrap(),
        &bumps(&periodic, 2),
        "burgers",
    );
    check(
        FisherKpp::new(neumann, 2, 0.01, 2.0).unwrap(),
        &bumps(&neumann, 2),
        "fisher-kpp",
    );
    let x = Grid1d::new(6, 0.0, 1.0, Boundary::Periodic).unwrap();
    let g2 = Grid2d::new(x, x);
    let gs = GrayScott::new(g2, 1, 0.02, 0.01, 0.04, 0.06).unwrap();
    let y0: Vec<f64> = (0..72)
        .map(|i| 0.3 + 0.2 * (i as f64 * 0.7).sin())
        .collect();
    check(gs, &y0, "gray-scott");
    use revode_pde::surrogate::{BurgersClosure, FisherSurrogate, PointMlp};
    for through_origin in [false, true] {
        let f = FisherSurrogate {
            grid: neumann,
            batch: 2,
            nu: 0.01,
            reaction_bound: 4.0,
            through_origin,
            reaction: PointMlp::new(1, 5, 2).unwrap(),
        };
        check(f, &bumps(&neumann, 2), "fisher surrogate");
    }
    let closure = BurgersClosure {
        grid: periodic,
        batch: 2,
        nu: 0.02,
        max_speed: 1.0,
        closure: PointMlp::new(2, 4, 5).unwrap(),
    };
    check(closure.clone(), &bumps(&periodic, 2), "burgers closure");
    // The closure is a flux: mass is conserved exactly on a periodic grid.
    let u = bumps(&periodic, 2);
    let mut out = vec![0.0; u.len()];
    closure.eval(0.0, &u, &mut out);
    let total: f64 = out[..24].iter().sum();
    let scale: f64 = out[..24].iter().map(|v| v.abs()).sum();
    assert!(total.abs() <= 1e-13 * scale, "closure mass {total:e}");
}

#[test]
fn a_step_beyond_the_explicit_limit_is_an_error() {
    let g = Grid1d::new(50, 0.0, 1.0, Boundary::Periodic).unwrap();
    let heat = Heat::new(g, 1, 0.1).unwrap();
    let dx = g.dx();
    // Euler's limit for diffusion is νh/Δx² ≤ ½.
    let limit = max_step(&heat, &Tableau::euler(), None).unwrap();
    assert!(
        (limit * 0.1 / (dx * dx) - 0.5).abs() < 1e-6,
        "{}",
        limit * 0.1 / (dx * dx)
    );
    // RK4 reaches 2.785/4 ≈ 0.696.
    let rk4 = max_step(&heat, &Tableau::rk4(), None).unwrap();
    assert!((rk4 * 0.1 / (dx * dx) - 0.6963).abs() < 1e-3);
    let e = step_options(&heat, &Tableau::euler(), None, Some(1.2 * limit)).unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.contains("stability limit") && msg.contains("diffusion number"),
        "{msg}"
    );
    assert!(step_options(&heat, &Tableau::euler(), None, Some(0.9 * limit)).is_ok());
    // Upwind advection with Euler: CFL ≤ 1.
    let adv = Advection::new(g, 1, 2.0).unwrap();
    let cfl = max_step(&adv, &Tableau::euler(), None).unwrap() * 2.0 / dx;
    assert!((cfl - 1.0).abs() < 1e-6, "{cfl}");
    let e = step_options(&adv, &Tableau::euler(), None, Some(1.1 * dx / 2.0)).unwrap_err();
    assert!(e.to_string().contains("CFL"), "{e}");
    // The reversible coupling has its own (smaller) limit.
    let coupled = max_step(&heat, &Tableau::rk4(), Some(0.999)).unwrap();
    assert!(coupled < rk4);
}

#[test]
fn crank_nicolson_converges_to_the_exact_heat_solution() {
    // u = e^{−νπ²t} sin(πx) with zero Dirichlet values: second order in h and Δx together.
    let nu = 0.1;
    let mut errs = Vec::new();
    for n in [15, 31, 63] {
        let g = Grid1d::new(
            n,
            0.0,
            1.0,
            Boundary::Dirichlet {
                left: 0.0,
                right: 0.0,
            },
        )
        .unwrap();
        let h = 0.4 / (n + 1) as f64;
        let cn = CrankNicolson::new(g, nu, h).unwrap();
        let u0: Vec<f64> = g.points().iter().map(|&x| (PI * x).sin()).collect();
        let steps = (0.4 / h).round() as usize;
        let out = cn.solve(&u0, &[0.0, steps as f64 * h]).unwrap();
        let t = steps as f64 * h;
        let exact: Vec<f64> = g
            .points()
            .iter()
            .map(|&x| (-nu * PI * PI * t).exp() * (PI * x).sin())
            .collect();
        errs.push(rel(&out[1], &exact));
    }
    let p1 = (errs[0] / errs[1]).log2();
    let p2 = (errs[1] / errs[2]).log2();
    assert!(
        (p1 - 2.0).abs() < 0.2 && (p2 - 2.0).abs() < 0.2,
        "orders {p1} {p2} ({errs:?})"
    );
    // Crank–Nicolson agrees with a fine explicit solve (Neumann, batch of 2).
    let g = Grid1d::new(40, 0.0, 1.0, Boundary::Neumann).unwrap();
    let heat = Heat::new(g, 2, nu).unwrap();
    let u0 = bumps(&g, 2);
    let cn = CrankNicolson::new(g, nu, 1e-3).unwrap();
    let reference = cn.solve(&u0, &[0.0, 0.2]).unwrap();
    let scheme = Plain::new(Rk::new(PdeTerm::new(heat.clone()), Tableau::rk4()));
    let opts = step_options(&heat, &Tableau::rk4(), None, Some(1e-4)).unwrap();
    let fine = solve(&scheme, &u0, &[0.0, 0.2], &opts).unwrap();
    assert!(
        rel(&fine.ys[1], &reference[1]) < 1e-6,
        "{}",
        rel(&fine.ys[1], &reference[1])
    );
    assert!(CrankNicolson::new(g, nu, -1.0).is_err());
    assert!(cn.solve(&u0, &[0.0, 0.00015]).is_err());
}

#[test]
fn automatic_checkpointing_keeps_diffusive_reconstruction_within_tolerance() {
    // Backwards, the coupling amplifies y − z by about λ^{-1/2} per step on damped modes: at
    // λ = 0.9 plain reconstruction over 600 steps drifts far beyond 1e-10; the automatic
    // interval brings it back and reports its k.
    let g = Grid1d::new(64, 0.0, 1.0, Boundary::Periodic).unwrap();
    let heat = Heat::new(g, 2, 0.05).unwrap();
    let tableau = Tableau::rk4();
    let opts = step_options(&heat, &tableau, Some(0.9), None).unwrap();
    let h = match opts.step {
        StepControl::Fixed { h } => h,
        _ => unreachable!(),
    };
    let n = 600;
    let times = [0.0, n as f64 * h];
    let s = Reversible::new(Rk::new(PdeTerm::new(heat), tableau), 0.9).unwrap();
    let y0 = bumps(&g, 2);
    let plain = gradient(
        &s,
        &y0,
        &times,
        &opts,
        &GradientMethod::Reversible.into(),
        loss,
    );
    let drifted = match plain {
        Ok(g) => g.stats.reconstruction_error.unwrap(),
        Err(_) => f64::INFINITY,
    };
    assert!(drifted > 1e-10, "plain reconstruction drift {drifted:e}");
    let tol = 1e-10;
    let auto = gradient(
        &s,
        &y0,
        &times,
        &opts,
        &GradientMethod::CheckpointedReversibleAuto { tolerance: tol }.into(),
        loss,
    )
    .unwrap();
    let direct = gradient(&s, &y0, &times, &opts, &GradientMethod::Direct.into(), loss).unwrap();
    let k = auto.stats.checkpoint_interval.unwrap();
    assert!(auto.stats.reconstruction_error.unwrap() <= tol);
    assert!(k >= 2 && k < n, "k = {k}");
    assert!(
        rel(&auto.params, &direct.params) <= 1e-8,
        "{:e}",
        rel(&auto.params, &direct.params)
    );
    assert!(auto.stats.peak_stored_states <= 1 + n / k);
    eprintln!(
        "plain drift {drifted:e}; auto k = {k} after {} passes",
        auto.stats.attempts
    );
}

#[test]
fn an_overflowed_reconstruction_is_never_reported_as_exact() {
    // Heat at λ = 0.5 over 10 000 steps: the backward coupling overflows. The drift must read as
    // NaN (not 0), and the automatic interval must then checkpoint.
    let g = Grid1d::new(64, 0.0, 1.0, Boundary::Periodic).unwrap();
    let heat = Heat::new(g, 2, 0.05).unwrap();
    let opts = step_options(&heat, &Tableau::rk4(), Some(0.5), None).unwrap();
    let h = match opts.step {
        StepControl::Fixed { h } => h,
        _ => unreachable!(),
    };
    let times = [0.0, 10_000.0 * h];
    let s = Reversible::new(Rk::new(PdeTerm::new(heat), Tableau::rk4()), 0.5).unwrap();
    let y0 = bumps(&g, 2);
    if let Ok(r) = gradient(
        &s,
        &y0,
        &times,
        &opts,
        &GradientMethod::Reversible.into(),
        loss,
    ) {
        let d = r.stats.reconstruction_error.unwrap();
        assert!(d.is_nan() || d > 1e-8, "drift {d}");
    }
    let auto = GradientMethod::CheckpointedReversibleAuto { tolerance: 1e-10 };
    let r = gradient(&s, &y0, &times, &opts, &auto.into(), loss).unwrap();
    assert!(r.stats.reconstruction_error.unwrap() <= 1e-10);
    assert!(r.stats.checkpoint_interval.unwrap() < 10_000);
}
