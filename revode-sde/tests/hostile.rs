//! Hostile input to the SDE crate ("no silent wrong answers"): every case is a typed error of
//! the right variant, or a correct result — never an unchecked `Ok`.

mod common;
use common::*;
use revode_core::prelude::*;
use revode_sde::*;

fn interval_error(r: Result<BrownianPath>) -> String {
    match r {
        Err(Error::Config { key, message }) => {
            assert_eq!(key, "Brownian path interval");
            message
        }
        other => panic!("expected Error::Config, got {other:?}"),
    }
}

#[test]
fn brownian_paths_on_intervals_too_long_to_represent_are_refused_at_construction() {
    // t1 − t0 = ∞: every increment would be ±∞ (previously returned as Ok).
    let m = interval_error(BrownianPath::new(-1e308, 1e308, 1, 1, 0));
    assert!(m.contains("[-1e308, 1e308]") && m.contains("inf"), "{m}");
    // Finite length, but the running integral behind the Lévy area (~T^{3/2}) overflows.
    let m = interval_error(BrownianPath::new(0.0, f64::MAX, 1, 1, 0));
    assert!(m.contains("1.7976931348623157e308"), "{m}");
    interval_error(BrownianPath::with_levels(-1e300, 1e300, 2, 2, 5, 12));
    // Still refused as before: empty, reversed, non-finite ends.
    for (a, b) in [(1.0, 1.0), (1.0, 0.0), (f64::NEG_INFINITY, 0.0)] {
        assert!(matches!(
            BrownianPath::new(a, b, 1, 1, 0),
            Err(Error::InvalidInterval { .. })
        ));
    }
}

#[test]
fn the_longest_accepted_intervals_give_finite_increments_and_levy_areas() {
    for (t0, t1) in [(0.0, 1e200), (-1e200, 1e200), (1e203, 3e203)] {
        let p = BrownianPath::new(t0, t1, 2, 3, 7)
            .unwrap()
            .with_space_time_levy_area();
        let (mut w, mut h) = (vec![0.0f64; 6], vec![0.0f64; 6]);
        let span = t1 - t0;
        for (a, b) in [
            (t0, t1),
            (t0, t0 + 0.3 * span),
            (t0 + 0.7 * span, t0 + 0.3 * span),
        ] {
            p.levy_area(a, b, &mut w, &mut h).unwrap();
            assert!(
                w.iter().chain(&h).all(|v| v.is_finite()),
                "[{t0:e}, {t1:e}] on ({a:e}, {b:e}): {w:?} {h:?}"
            );
            // |W| is a few √(b − a) at most.
            let sd = (b - a).abs().sqrt();
            assert!(w.iter().all(|v| v.abs() < 12.0 * sd), "{w:?} vs {sd:e}");
        }
    }
}

#[test]
fn solves_outside_the_brownian_path_name_the_brownian_path() {
    let path = BrownianPath::new(0.0, 1.0, 2, 1, 3).unwrap();
    let mut out = vec![0.0; 2];
    let e = path.increment(0.0, 1.5, &mut out).unwrap_err();
    assert_eq!(
        e.to_string(),
        "time 1.5 is outside the domain [0, 1] of the Brownian path"
    );
    let term = SdeTerm::new(
        Drift {
            n: 2,
            p: [-0.5, 0.1, 0.0],
        },
        Diagonal(DiagField {
            n: 2,
            p: [0.3, 0.1],
        }),
        path,
        Calculus::Stratonovich,
    )
    .unwrap();
    let expected = Error::OutsideDomain {
        what: "the Brownian path".into(),
        t: 1.5,
        start: 0.0,
        end: 1.0,
    };
    let y0 = vec![0.2, 0.4];
    let opts = SolveOptions::fixed(0.1);
    let heun = Plain::new(step_map(term.clone(), SdeSolver::Heun).unwrap());
    assert_eq!(solve(&heun, &y0, &[0.0, 1.5], &opts).unwrap_err(), expected);
    let rh = reversible_heun(term).unwrap();
    let e = solve(&rh, &y0, &[0.0, 1.5], &opts).unwrap_err();
    assert_eq!(e, expected);
    assert!(e.to_string().ends_with("of the Brownian path"), "{e}");
}
