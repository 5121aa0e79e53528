//! The step-size controller against step sequences computed here by hand (plain f64, the
//! rules written out, no call into the controller): Diffrax's `PIDController` defaults, PID
//! coefficients, the max norm, and the PI preset bit for bit as it was before it had fields.

#![allow(clippy::needless_range_loop)]

mod common;
use common::*;
use revode_core::prelude::*;
use revode_core::{controller::ErrorNorm, controller::ErrorOrder, controller::StepAttempt};

/// One attempted step: (t, h, ε, accepted).
type Att = (f64, f64, f64, bool);

/// |a − b| ≤ 1e-14 · max(|a|, |b|, tiny).
fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-14 * a.abs().max(b.abs()).max(1e-300)
}

fn assert_same(got: &[StepAttempt], want: &[Att], what: &str) {
    assert!(
        got.len() >= want.len(),
        "{what}: {} attempts, expected at least {}",
        got.len(),
        want.len()
    );
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            close(g.t, w.0) && close(g.h, w.1) && close(g.error, w.2) && g.accepted == w.3,
            "{what}: attempt {i}: got {g:?}, expected {w:?}"
        );
    }
}

/// Heun on y' = −y over one step of size h from y: (y₁, e) with e = Σ (b − b̂)_i k_i.
fn heun_decay(y: f64, h: f64) -> (f64, f64) {
    let k1 = -y * h;
    let k2 = -(y + k1) * h;
    (y + (0.5 * k1 + 0.5 * k2), -0.5 * k1 + 0.5 * k2)
}

#[test]
fn diffrax_preset_first_steps_by_hand() {
    // Diffrax: PIDController(rtol=1e-4, atol=1e-6) with Heun, y' = −y, y0 = 1, dt0 = 0.5.
    // Pure integral, error order = Heun's order 2, safety 0.9, accept iff ε < 1, factor in
    // [1, 10] after an accepted step and [0.2, 0.9] after a rejected one,
    // ε = |e| / (atol + rtol·max(|y_n|, |y_{n+1}|)) (the RMS of one entry).
    let (rtol, atol) = (1e-4, 1e-6);
    let eps = |y0: f64, y1: f64, e: f64| e.abs() / (atol + rtol * y0.abs().max(y1.abs()));
    let mut want: Vec<Att> = Vec::new();

    // Attempt 1: h = 0.5 from t = 0. k1 = −0.5, k2 = −0.25, e = 0.125, ε = 0.125/1.01e-4.
    let (y1, e) = heun_decay(1.0, 0.5);
    let e1 = eps(1.0, y1, e);
    assert!((e1 - 0.125 / 1.01e-4).abs() < 1e-9 * e1);
    want.push((0.0, 0.5, e1, false));
    // Rejected: 0.9·ε^{−1/2} = 0.026 is clipped up to 0.2.
    let h2 = 0.5 * (0.9 * e1.powf(-0.5)).clamp(0.2, 0.9);
    assert_eq!(h2, 0.1);

    // Attempt 2: h = 0.1, e = h²/2 = 0.005, ε ≈ 49.5: rejected, factor 0.128 → 0.2.
    let (y1, e) = heun_decay(1.0, h2);
    let e2 = eps(1.0, y1, e);
    want.push((0.0, h2, e2, false));
    let f = 0.9 * e2.powf(-0.5);
    assert!(f < 0.2);
    let h3 = h2 * f.clamp(0.2, 0.9);

    // Attempt 3: h = 0.02, ε ≈ 1.98: rejected, factor 0.64 inside the bounds.
    let (y1, e) = heun_decay(1.0, h3);
    let e3 = eps(1.0, y1, e);
    want.push((0.0, h3, e3, false));
    let f = 0.9 * e3.powf(-0.5);
    assert!(e3 > 1.0 && f > 0.2 && f < 0.9);
    let h4 = h3 * f;

    // Attempt 4: ε ≈ 0.81 < 1: accepted; the factor 0.9·ε^{−1/2} ≈ 1 is clipped to [1, 10].
    let (y4, e) = heun_decay(1.0, h4);
    let e4 = eps(1.0, y4, e);
    assert!(e4 < 0.99);
    want.push((0.0, h4, e4, true));
    let t5 = 0.0 + h4;
    let h5 = (t5 - 0.0) * (0.9 * e4.powf(-0.5)).clamp(1.0, 10.0);

    // Attempts 5–8: accepted from y4 on, each with the same rule.
    let (mut t, mut y, mut h) = (t5, y4, h5);
    for _ in 0..4 {
        let t_b = t + h;
        let h_used = t_b - t;
        let (y_next, e) = heun_decay(y, h_used);
        let en = eps(y, y_next, e);
        assert!(en < 0.99, "{en}");
        want.push((t, h_used, en, true));
        h = h_used * (0.9 * en.powf(-0.5)).clamp(1.0, 10.0);
        t = t_b;
        y = y_next;
    }

    let scheme = Plain::new(Rk::new(OdeTerm::new(Scalar1 { k: -1.0 }), Tableau::heun()));
    let opts =
        SolveOptions::adaptive(Adaptive::diffrax(rtol, atol).with_h0(0.5)).with_recorded_attempts();
    let sol = solve(&scheme, &vec![1.0], &[0.0, 3.0], &opts).unwrap();
    assert_same(&sol.attempts, &want, "diffrax heun");
    assert_eq!(sol.stats.rejected_steps, 3);
    assert_eq!(
        sol.attempts.len() as u64,
        sol.stats.accepted_steps + sol.stats.rejected_steps
    );
}

/// An explicit RK tableau (a, b, b̂) written out for the reference loops.
struct Tab {
    a: Vec<Vec<f64>>,
    b: Vec<f64>,
    bh: Vec<f64>,
}

fn bosh3() -> Tab {
    Tab {
        a: vec![
            vec![],
            vec![0.5],
            vec![0.0, 0.75],
            vec![2.0 / 9.0, 1.0 / 3.0, 4.0 / 9.0],
        ],
        b: vec![2.0 / 9.0, 1.0 / 3.0, 4.0 / 9.0, 0.0],
        bh: vec![7.0 / 24.0, 0.25, 1.0 / 3.0, 0.125],
    }
}

const A: [f64; 4] = [-0.5, -2.0, 2.0, -0.5];

/// One RK step of y' = A·y: (y₁, e) with e = Σ (b − b̂)_i k_i, k_i = h·A·Y_i.
fn rk_step(tab: &Tab, y: &[f64], h: f64) -> (Vec<f64>, Vec<f64>) {
    let mut ks: Vec<Vec<f64>> = Vec::new();
    for row in &tab.a {
        let mut s = y.to_vec();
        for (j, &a) in row.iter().enumerate() {
            if a != 0.0 {
                for m in 0..2 {
                    s[m] += a * ks[j][m];
                }
            }
        }
        let f = [A[0] * s[0] + A[1] * s[1], A[2] * s[0] + A[3] * s[1]];
        ks.push(vec![f[0] * h, f[1] * h]);
    }
    let sum = |w: &[f64]| {
        let mut out = vec![0.0; 2];
        for (&w, k) in w.iter().zip(&ks) {
            if w != 0.0 {
                for m in 0..2 {
                    out[m] += w * k[m];
                }
            }
        }
        out
    };
    let inc = sum(&tab.b);
    let e: Vec<f64> = tab.b.iter().zip(&tab.bh).map(|(b, bh)| b - bh).collect();
    let y1 = vec![y[0] + inc[0], y[1] + inc[1]];
    (y1, sum(&e))
}

/// The controller's rules, written out independently of revode's implementation.
struct Rule {
    pid: (f64, f64, f64),
    k: f64,
    accept: (f64, f64),
    reject: (f64, f64),
    strict: bool,
    max_norm: bool,
    rtol: f64,
    atol: f64,
}

impl Rule {
    fn diffrax(rtol: f64, atol: f64, k: f64) -> Rule {
        Rule {
            pid: (0.0, 1.0, 0.0),
            k,
            accept: (1.0, 10.0),
            reject: (0.2, 0.9),
            strict: true,
            max_norm: false,
            rtol,
            atol,
        }
    }
    fn norm(&self, y0: &[f64], y1: &[f64], e: &[f64]) -> f64 {
        let r: Vec<f64> = (0..e.len())
            .map(|i| e[i] / (self.atol + self.rtol * y0[i].abs().max(y1[i].abs())))
            .collect();
        if self.max_norm {
            r.iter().fold(0.0f64, |m, v| m.max(v.abs()))
        } else {
            (r.iter().map(|v| v * v).sum::<f64>() / r.len() as f64).sqrt()
        }
    }
    /// Diffrax's adapt_step_size: factor = safety·ε^{−β₁}·ε₁^{−β₂}·ε₂^{−β₃}, β from (p, i, d)/k;
    /// the histories move only on acceptance. Runs [t0, t1] from y0 with dt0 = h0.
    fn run(&self, tab: &Tab, y0: &[f64], t0: f64, t1: f64, h0: f64) -> (Vec<Att>, Vec<f64>) {
        let (p, i, d) = self.pid;
        let (b1, b2, b3) = ((i + p + d) / self.k, -(p + 2.0 * d) / self.k, d / self.k);
        let (mut e1, mut e2) = (1.0f64, 1.0f64);
        let (mut t, mut y, mut h) = (t0, y0.to_vec(), h0);
        let (mut out, mut ts) = (Vec::new(), vec![t0]);
        while t < t1 {
            let t_b = if t + h >= t1 - 1e-9 * h { t1 } else { t + h };
            let h_used = t_b - t;
            let (y_next, e) = rk_step(tab, &y, h_used);
            let eps = self.norm(&y, &y_next, &e);
            let ok = if self.strict { eps < 1.0 } else { eps <= 1.0 };
            out.push((t, h_used, eps, ok));
            let raw = 0.9 * eps.powf(-b1) * e1.powf(-b2) * e2.powf(-b3);
            if ok {
                h = h_used * raw.clamp(self.accept.0, self.accept.1);
                e2 = e1;
                e1 = eps;
                t = t_b;
                y = y_next;
                ts.push(t);
            } else {
                h = h_used * raw.clamp(self.reject.0, self.reject.1);
            }
            assert!(out.len() < 10_000);
        }
        (out, ts)
    }
}

fn bosh3_solve(ctl: Adaptive, t1: f64) -> Solution<Vec<f64>> {
    let scheme = Plain::new(Rk::new(OdeTerm::new(Linear2 { a: A }), Tableau::bosh3()));
    let opts = SolveOptions::adaptive(ctl).with_recorded_attempts();
    solve(&scheme, &vec![1.0, 0.5], &[0.0, t1], &opts).unwrap()
}

fn check_run(sol: &Solution<Vec<f64>>, want: &[Att], ts: &[f64], what: &str) {
    assert_eq!(sol.attempts.len(), want.len(), "{what}: number of attempts");
    assert_same(&sol.attempts, want, what);
    assert_eq!(sol.step_times.len(), ts.len(), "{what}");
    for (a, b) in sol.step_times.iter().zip(ts) {
        assert!(close(*a, *b), "{what}: step time {a} vs {b}");
    }
    let rejected = want.iter().filter(|a| !a.3).count() as u64;
    assert_eq!(sol.stats.rejected_steps, rejected, "{what}");
}

#[test]
fn diffrax_preset_whole_run_bosh3() {
    // Bosh3 (order 3) on a damped rotation, to t = 2 with the final step clipped to t1.
    let rule = Rule::diffrax(1e-6, 1e-8, 3.0);
    let (want, ts) = rule.run(&bosh3(), &[1.0, 0.5], 0.0, 2.0, 0.3);
    let rejected = want.iter().filter(|a| !a.3).count();
    assert!(
        rejected >= 2 && want.len() > 20,
        "{rejected} of {}",
        want.len()
    );
    let sol = bosh3_solve(Adaptive::diffrax(1e-6, 1e-8).with_h0(0.3), 2.0);
    check_run(&sol, &want, &ts, "diffrax bosh3");
}

#[test]
fn pid_coefficients_and_max_norm_follow_the_formula() {
    for (pid, max_norm) in [
        ((0.4, 0.3, 0.0), false),
        ((0.2, 0.5, 0.1), false),
        ((0.0, 1.0, 0.0), true),
        ((0.3, 0.4, 0.05), true),
    ] {
        let rule = Rule {
            pid,
            max_norm,
            ..Rule::diffrax(1e-5, 1e-7, 3.0)
        };
        let (want, ts) = rule.run(&bosh3(), &[1.0, 0.5], 0.0, 3.0, 0.05);
        let mut ctl = Adaptive::diffrax(1e-5, 1e-7)
            .with_h0(0.05)
            .with_pid(pid.0, pid.1, pid.2);
        if max_norm {
            ctl.norm = ErrorNorm::Max;
        }
        check_run(
            &bosh3_solve(ctl, 3.0),
            &want,
            &ts,
            &format!("{pid:?} {max_norm}"),
        );
    }
}

#[test]
fn pi_preset_is_the_previous_controller_bit_for_bit() {
    // The controller before it had fields, written out: exponents 0.7/k and 0.4/k with
    // k = embedded order + 1, ε floored at 1e-10 on acceptance, accept iff ε ≤ 1, factor in
    // [0.2, 10]; after a rejection 0.9·ε^{−1/k} in [0.2, 1]; after a step shortened to an
    // observation time the next step is at least the step before shortening.
    let times = [0.0, 0.7, 1.3, 2.0];
    for (rtol, atol) in [(1e-6, 1e-8), (1e-3, 1e-6)] {
        let k = 3.0;
        let (beta1, beta2) = (0.7 / k, 0.4 / k);
        let mut prev_err = 1.0f64;
        let mut h = 0.01 * (times[1] - times[0]);
        let mut y = vec![1.0, 0.5];
        let (mut ts, mut rejected) = (vec![0.0], 0u64);
        for w in times.windows(2) {
            let (mut t, t_end) = (w[0], w[1]);
            while t < t_end {
                let clipped = t + h >= t_end - 1e-9 * h;
                let t_b = if clipped { t_end } else { t + h };
                let h_used = t_b - t;
                let (y_next, e) = rk_step(&bosh3(), &y, h_used);
                let r = |i: usize| e[i] / (atol + rtol * y[i].abs().max(y_next[i].abs()));
                let eps = ((r(0) * r(0) + r(1) * r(1)) / 2.0).sqrt();
                if eps <= 1.0 {
                    let eps = eps.max(1e-10);
                    let factor = (0.9 * eps.powf(-beta1) * prev_err.powf(beta2)).clamp(0.2, 10.0);
                    prev_err = eps;
                    ts.push(t_b);
                    t = t_b;
                    y = y_next;
                    let proposal = h_used * factor;
                    h = if clipped { proposal.max(h) } else { proposal };
                } else {
                    rejected += 1;
                    h = h_used * (0.9 * eps.powf(-1.0 / k)).clamp(0.2, 1.0);
                }
            }
        }
        let scheme = Plain::new(Rk::new(OdeTerm::new(Linear2 { a: A }), Tableau::bosh3()));
        for ctl in [Adaptive::new(rtol, atol), Adaptive::pi(rtol, atol)] {
            let sol = solve(
                &scheme,
                &vec![1.0, 0.5],
                &times,
                &SolveOptions::adaptive(ctl),
            )
            .unwrap();
            assert_eq!(sol.step_times, ts, "rtol {rtol}");
            assert_eq!(sol.stats.rejected_steps, rejected, "rtol {rtol}");
            assert_eq!(sol.ys[3], y, "rtol {rtol}");
            assert!(sol.attempts.is_empty());
        }
    }
}

#[test]
fn integral_preset_is_pi_without_history() {
    let i = Adaptive::integral(1e-6, 1e-8);
    assert_eq!((i.pcoeff, i.icoeff, i.dcoeff), (0.0, 1.0, 0.0));
    assert_eq!(
        Adaptive {
            pcoeff: 0.4,
            icoeff: 0.3,
            ..i.clone()
        },
        Adaptive::new(1e-6, 1e-8)
    );
    // With p = d = 0 the PID rule after a rejection is 0.9·ε^{−1/k}, PI's rejection rule, so
    // the reference rule with PI's bounds and non-strict acceptance reproduces the preset
    // (no observation time before t1, and no ε reaches PI's floor of 1e-10).
    let rule = Rule {
        accept: (0.2, 10.0),
        reject: (0.2, 1.0),
        strict: false,
        ..Rule::diffrax(1e-6, 1e-8, 3.0)
    };
    let (want, ts) = rule.run(&bosh3(), &[1.0, 0.5], 0.0, 2.0, 0.01);
    assert!(want.iter().all(|a| a.2 > 1e-10));
    check_run(&bosh3_solve(i.with_h0(0.01), 2.0), &want, &ts, "integral");
}

#[test]
fn every_field_is_validated_with_a_typed_error() {
    let scheme = Plain::new(Rk::new(OdeTerm::new(Linear2 { a: A }), Tableau::bosh3()));
    let run = |a: Adaptive| {
        solve(
            &scheme,
            &vec![1.0, 0.5],
            &[0.0, 1.0],
            &SolveOptions::adaptive(a),
        )
    };
    let base = Adaptive::diffrax(1e-6, 1e-8);
    let cases: Vec<(&str, Adaptive)> = vec![
        (
            "rtol/atol",
            Adaptive {
                rtol: -1.0,
                ..base.clone()
            },
        ),
        (
            "rtol/atol",
            Adaptive {
                rtol: 0.0,
                atol: 0.0,
                ..base.clone()
            },
        ),
        (
            "rtol/atol",
            Adaptive {
                atol: f64::NAN,
                ..base.clone()
            },
        ),
        (
            "h_min/h_max",
            Adaptive {
                h_min: -1.0,
                ..base.clone()
            },
        ),
        (
            "h_min/h_max",
            Adaptive {
                h_min: 1.0,
                h_max: 0.5,
                ..base.clone()
            },
        ),
        (
            "h_min/h_max",
            Adaptive {
                h_max: f64::NAN,
                ..base.clone()
            },
        ),
        ("pcoeff/icoeff/dcoeff", base.clone().with_pid(0.0, 0.0, 0.0)),
        (
            "pcoeff/icoeff/dcoeff",
            base.clone().with_pid(f64::INFINITY, 1.0, 0.0),
        ),
        (
            "pcoeff/icoeff/dcoeff",
            base.clone().with_pid(0.0, 1.0, f64::NAN),
        ),
        (
            "safety",
            Adaptive {
                safety: 0.0,
                ..base.clone()
            },
        ),
        (
            "safety",
            Adaptive {
                safety: 1.5,
                ..base.clone()
            },
        ),
        (
            "factor_min/factor_max",
            Adaptive {
                factor_min: 0.0,
                ..base.clone()
            },
        ),
        (
            "factor_min/factor_max",
            Adaptive {
                factor_min: 1.5,
                ..base.clone()
            },
        ),
        (
            "factor_min/factor_max",
            Adaptive {
                factor_max: 0.5,
                ..base.clone()
            },
        ),
        (
            "factor_min/factor_max",
            Adaptive {
                factor_max: f64::INFINITY,
                ..base.clone()
            },
        ),
        (
            "reject_factor_min/reject_factor_max",
            Adaptive {
                reject_factor_min: 0.0,
                ..base.clone()
            },
        ),
        (
            "reject_factor_min/reject_factor_max",
            Adaptive {
                reject_factor_max: 1.5,
                ..base.clone()
            },
        ),
        (
            "reject_factor_min/reject_factor_max",
            Adaptive {
                reject_factor_min: 0.95,
                ..base.clone()
            },
        ),
        (
            "reject_factor_min/reject_factor_max",
            Adaptive {
                reject_factor_max: f64::NAN,
                ..base.clone()
            },
        ),
        (
            "error_floor",
            Adaptive {
                error_floor: -1e-3,
                ..base.clone()
            },
        ),
        (
            "error_floor",
            Adaptive {
                error_floor: 1.0,
                ..base.clone()
            },
        ),
        (
            "error_order",
            Adaptive {
                error_order: ErrorOrder::Value(0.0),
                ..base.clone()
            },
        ),
        (
            "error_order",
            Adaptive {
                error_order: ErrorOrder::Value(f64::NAN),
                ..base.clone()
            },
        ),
    ];
    for (key, a) in cases {
        match run(a.clone()) {
            Err(Error::Config { key: k, .. }) => assert_eq!(k, key, "{a:?}"),
            other => panic!("{key}: expected a config error, got {other:?}"),
        }
    }
    for h0 in [0.0, -1.0, f64::NAN, f64::INFINITY] {
        let r = run(base.clone().with_h0(h0));
        assert!(matches!(r, Err(Error::InvalidStepSize { .. })), "{r:?}");
    }
    // Every preset is valid and the error orders resolve as documented.
    for a in [
        Adaptive::new(1e-6, 1e-8),
        Adaptive::integral(1e-6, 1e-8),
        base.clone(),
    ] {
        a.validate().unwrap();
        assert!(run(a).is_ok());
    }
    assert_eq!(Adaptive::new(1e-6, 1e-8).exponent_order(3, Some(2)), 3.0);
    assert_eq!(base.exponent_order(3, Some(1)), 3.0);
    let v = Adaptive {
        error_order: ErrorOrder::Value(2.5),
        ..base
    };
    assert_eq!(v.exponent_order(5, Some(4)), 2.5);
}
