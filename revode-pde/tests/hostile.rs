//! Hostile input to the PDE crate ("no silent wrong answers"): every case is a typed error of
//! the right variant, or a correct result — never an unchecked `Ok`.

use revode_core::prelude::*;
use revode_pde::*;
use std::f64::consts::PI;

fn max_abs(y: &[f64]) -> f64 {
    y.iter().fold(0.0f64, |m, v| m.max(v.abs()))
}

fn config_key(r: Result<impl std::fmt::Debug>) -> String {
    match r {
        Err(Error::Config { key, .. }) => key,
        other => panic!("expected Error::Config, got {other:?}"),
    }
}

#[test]
fn grids_are_built_only_through_their_validating_constructor() {
    let g = Grid1d::new(8, -1.0, 3.0, Boundary::Neumann).unwrap();
    assert_eq!(
        (g.n(), g.lo(), g.hi(), g.boundary(), g.dx()),
        (8, -1.0, 3.0, Boundary::Neumann, 0.5)
    );
    assert_eq!(
        config_key(Grid1d::new(2, 0.0, 1.0, Boundary::Periodic)),
        "grid"
    );
    for (lo, hi) in [
        (0.0, 0.0),
        (1.0, 0.0),
        (f64::NAN, 1.0),
        (0.0, f64::INFINITY),
    ] {
        assert!(
            matches!(
                Grid1d::new(8, lo, hi, Boundary::Periodic),
                Err(Error::InvalidInterval { .. })
            ),
            "[{lo}, {hi}]"
        );
    }
    // hi − lo overflows (Δx = ∞), or Δx² underflows (1/Δx² = ∞): no usable spacing.
    assert_eq!(
        config_key(Grid1d::new(8, -1e308, 1e308, Boundary::Periodic)),
        "grid"
    );
    assert_eq!(
        config_key(Grid1d::new(1000, 0.0, 1e-300, Boundary::Neumann)),
        "grid"
    );
    let nan = Boundary::Dirichlet {
        left: f64::NAN,
        right: 0.0,
    };
    assert_eq!(config_key(Grid1d::new(8, 0.0, 1.0, nan)), "boundary");
    // Deserialisation goes through the constructor: the dx = 0 grid that a struct literal
    // could build (and that gave a "stable" step of 900 000) is refused.
    let bad = r#"{"n":8,"lo":1.0,"hi":1.0,"boundary":"Periodic"}"#;
    assert!(serde_json::from_str::<Grid1d>(bad).is_err());
    let good = serde_json::to_string(&g).unwrap();
    assert_eq!(serde_json::from_str::<Grid1d>(&good).unwrap(), g);
    let g2 = Grid2d::new(g, Grid1d::new(5, 0.0, 1.0, Boundary::Periodic).unwrap());
    assert_eq!((g2.x().n(), g2.y().n(), g2.len()), (8, 5, 40));
}

/// Heat on 256 periodic cells, ν = 1, one sine mode plus a grid-scale perturbation.
fn heat_256() -> (Heat, Vec<f64>) {
    let g = Grid1d::new(256, 0.0, 1.0, Boundary::Periodic).unwrap();
    let u0 = g
        .points()
        .iter()
        .enumerate()
        .map(|(i, &x)| (2.0 * PI * x).sin() + 1e-3 * if i % 2 == 0 { 1.0 } else { -1.0 })
        .collect();
    (Heat::new(g, 1, 1.0).unwrap(), u0)
}

#[test]
fn a_fixed_step_beyond_the_stability_limit_is_refused_by_the_solve() {
    let (heat, u0) = heat_256();
    let rk4 = Tableau::rk4();
    let limit = max_step(&heat, &rk4, None).unwrap();
    let t_end = 200.0 * limit;
    let plain = Plain::new(Rk::new(PdeTerm::new(heat.clone()), rk4.clone()));
    for factor in [1.2, 3.0] {
        let opts = SolveOptions::fixed(factor * limit);
        let r = solve(&plain, &u0, &[0.0, t_end], &opts);
        match r {
            Err(Error::InvalidStepSize { h, reason }) => {
                assert_eq!(h, factor * limit);
                assert!(reason.contains("stability limit"), "{reason}");
            }
            other => panic!("{factor} × the limit: expected InvalidStepSize, got {other:?}"),
        }
        let g = gradient(
            &plain,
            &u0,
            &[0.0, t_end],
            &opts,
            &GradientMethod::Direct.into(),
            |ys, c| {
                c[1].copy_from_slice(&ys[1]);
                0.0
            },
        );
        assert!(matches!(g, Err(Error::InvalidStepSize { .. })), "{g:?}");
    }
    // Within the limit: the heat equation only decays (max |u| ≤ max |u0|).
    let ok = solve(
        &plain,
        &u0,
        &[0.0, t_end],
        &SolveOptions::fixed(0.9 * limit),
    )
    .unwrap();
    assert!(max_abs(&ok.ys[1]) <= max_abs(&u0), "{}", max_abs(&ok.ys[1]));
    // The same term in a plain OdeTerm solves past the limit (the silent wrong answer).
    let unchecked = Plain::new(Rk::new(OdeTerm::new(heat.clone()), rk4.clone()));
    let bad = solve(
        &unchecked,
        &u0,
        &[0.0, t_end],
        &SolveOptions::fixed(1.2 * limit),
    )
    .unwrap();
    assert!(max_abs(&bad.ys[1]) > 10.0 * max_abs(&u0));
    // The reversible coupling has its own, smaller limit, and it is the one checked.
    let lambda = 0.5;
    let coupled = max_step(&heat, &rk4, Some(lambda)).unwrap();
    assert!(coupled < limit);
    let rev = Reversible::new(Rk::new(PdeTerm::new(heat), rk4), lambda).unwrap();
    let r = solve(
        &rev,
        &u0,
        &[0.0, t_end],
        &SolveOptions::fixed(1.2 * coupled),
    );
    assert!(matches!(r, Err(Error::InvalidStepSize { .. })), "{r:?}");
    let ok = solve(
        &rev,
        &u0,
        &[0.0, t_end],
        &SolveOptions::fixed(0.9 * coupled),
    )
    .unwrap();
    assert!(max_abs(&ok.ys[1]) <= max_abs(&u0));
}

#[test]
fn pde_term_gives_the_plain_terms_numbers_within_the_limit() {
    let (heat, u0) = heat_256();
    let opts = step_options(&heat, &Tableau::heun(), Some(0.5), None).unwrap();
    let times = [0.0, 0.001, 0.002];
    let a = Reversible::new(Rk::new(PdeTerm::new(heat.clone()), Tableau::heun()), 0.5).unwrap();
    let b = Reversible::new(Rk::new(OdeTerm::new(heat), Tableau::heun()), 0.5).unwrap();
    let (ya, yb) = (
        solve(&a, &u0, &times, &opts).unwrap(),
        solve(&b, &u0, &times, &opts).unwrap(),
    );
    assert_eq!(ya.ys, yb.ys);
}

#[test]
fn invalid_physical_parameters_set_after_construction_are_refused() {
    let (heat, u0) = heat_256();
    let opts = step_options(&heat, &Tableau::rk4(), None, None).unwrap();
    let times = [0.0, 0.001];
    for bad in [-1.0, f64::NAN, f64::INFINITY] {
        let mut term = PdeTerm::new(heat.clone());
        term.pde_mut().params_mut()[0] = bad;
        // The limit is not computed for a backward heat equation: the parameter is named.
        assert_eq!(
            config_key(max_step(term.pde(), &Tableau::rk4(), None)),
            "nu"
        );
        let s = Plain::new(Rk::new(term, Tableau::rk4()));
        assert_eq!(config_key(solve(&s, &u0, &times, &opts)), "nu", "ν = {bad}");
        let g = gradient(
            &s,
            &u0,
            &times,
            &opts,
            &GradientMethod::Direct.into(),
            |_, _| 0.0,
        );
        assert_eq!(config_key(g), "nu");
    }
    let g = Grid1d::new(16, 0.0, 1.0, Boundary::Neumann).unwrap();
    let y = vec![0.5; 16];
    let o = SolveOptions::fixed(1e-5);
    let mut f = FisherKpp::new(g, 1, 0.01, 2.0).unwrap();
    f.params_mut()[1] = -2.0;
    let s = Plain::new(Rk::new(PdeTerm::new(f), Tableau::rk4()));
    assert_eq!(config_key(solve(&s, &y, &[0.0, 1e-4], &o)), "rho");
    let mut b = Burgers::new(g, 1, 0.01, 1.0).unwrap();
    b.max_speed = -1.0;
    let s = Plain::new(Rk::new(PdeTerm::new(b), Tableau::rk4()));
    assert_eq!(config_key(solve(&s, &y, &[0.0, 1e-4], &o)), "max_speed");
    let x = Grid1d::new(4, 0.0, 1.0, Boundary::Periodic).unwrap();
    let mut gs = GrayScott::new(Grid2d::new(x, x), 1, 0.02, 0.01, 0.04, 0.06).unwrap();
    gs.params_mut()[1] = -0.01;
    let s = Plain::new(Rk::new(PdeTerm::new(gs), Tableau::rk4()));
    assert_eq!(
        config_key(solve(&s, &vec![0.5; 32], &[0.0, 1e-4], &o)),
        "dv"
    );
    // Advection's speed may have either sign, but must be finite.
    let mut a = Advection::new(g, 1, 1.0).unwrap();
    a.params_mut()[0] = -1.0;
    let s = Plain::new(Rk::new(PdeTerm::new(a.clone()), Tableau::rk4()));
    let moved = solve(&s, &y, &[0.0, 1e-4], &o).unwrap();
    assert!(moved.ys[1].iter().all(|&v| (v - 0.5).abs() <= 1e-12));
    a.params_mut()[0] = f64::NAN;
    let s = Plain::new(Rk::new(PdeTerm::new(a), Tableau::rk4()));
    assert_eq!(config_key(solve(&s, &y, &[0.0, 1e-4], &o)), "c");
}
