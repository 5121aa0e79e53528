//! Gradient exactness: every method against the full tape, and the tape against finite
//! differences.

mod common;
use common::*;
use revode_core::prelude::*;
use revode_core::{gradient::gradient_observed, mlp};

const TIMES: [f64; 4] = [0.0, 0.3, 1.1, 2.0];

type Grad = Gradient<Vec<f64>, Vec<f64>>;

fn grads<S: Scheme<Map = Rk<OdeTerm<Mlp<f64>>>>>(
    scheme: &S,
    opts: &SolveOptions,
    method: GradientMethod,
) -> Gradient<Vec<f64>, Vec<f64>> {
    gradient(scheme, &y0_3(), &TIMES, opts, &method.into(), loss).unwrap()
}

fn reversible(t: Tableau, lambda: f64) -> Reversible<Rk<OdeTerm<Mlp<f64>>>> {
    Reversible::new(Rk::new(OdeTerm::new(mlp(7)), t), lambda).unwrap()
}

fn check_all_methods(scheme: &Reversible<Rk<OdeTerm<Mlp<f64>>>>, opts: &SolveOptions, what: &str) {
    let direct = grads(scheme, opts, GradientMethod::Direct);
    let rev = grads(scheme, opts, GradientMethod::Reversible);
    // Algorithm 1 against the tape of the same scheme: round-off only.
    assert!(
        rel(&rev.y0, &direct.y0) <= 1e-10,
        "{what}: dL/dy0 {:e}",
        rel(&rev.y0, &direct.y0)
    );
    assert!(
        rel(&rev.params, &direct.params) <= 1e-10,
        "{what}: dL/dθ {:e}",
        rel(&rev.params, &direct.params)
    );
    assert_eq!(rev.loss, direct.loss, "{what}: same forward pass");
    assert!(rev.stats.reconstruction_error.unwrap() < 1e-12, "{what}");
    // Checkpointed and checkpointed-reversible replay the same operations: ≤ 1e-12.
    for method in [
        GradientMethod::Checkpointed { snapshots: Some(1) },
        GradientMethod::Checkpointed { snapshots: Some(2) },
        GradientMethod::Checkpointed { snapshots: Some(3) },
        GradientMethod::Checkpointed { snapshots: Some(5) },
        GradientMethod::Checkpointed { snapshots: None },
        GradientMethod::CheckpointedReversible { every: 1 },
        GradientMethod::CheckpointedReversible { every: 4 },
        GradientMethod::CheckpointedReversible { every: 7 },
    ] {
        let g = grads(scheme, opts, method.clone());
        assert!(
            rel(&g.y0, &direct.y0) <= 1e-12,
            "{what} {method:?}: {:e}",
            rel(&g.y0, &direct.y0)
        );
        assert!(
            rel(&g.params, &direct.params) <= 1e-12,
            "{what} {method:?}: {:e}",
            rel(&g.params, &direct.params)
        );
        if let GradientMethod::Checkpointed { snapshots: Some(c) } = method {
            assert!(
                g.stats.peak_stored_states <= c,
                "{what}: {} > {c}",
                g.stats.peak_stored_states
            );
        }
    }
}

#[test]
fn reversible_equals_direct_fixed_steps_every_tableau() {
    for t in Tableau::all_builtin() {
        // Round-off in the reconstruction grows like λ^{-N}: with N = 40, λ = 0.9 costs ×67.
        for lambda in [0.999, 0.9] {
            let name = format!("{} λ={lambda}", t.name());
            let scheme = reversible(t.clone(), lambda);
            check_all_methods(&scheme, &SolveOptions::fixed(0.05), &name);
        }
    }
}

#[test]
fn reversible_equals_direct_adaptive_steps() {
    for t in Tableau::all_builtin()
        .into_iter()
        .filter(|t| t.error_weights().is_some())
    {
        let scheme = reversible(t.clone(), 0.999);
        let opts = SolveOptions::adaptive(Adaptive::new(1e-6, 1e-6).with_h0(0.01));
        let g = grads(&scheme, &opts, GradientMethod::Direct);
        assert!(g.steps > 4, "{}: {} steps", t.name(), g.steps);
        check_all_methods(&scheme, &opts, &format!("adaptive {}", t.name()));
    }
}

#[test]
fn plain_scheme_checkpointing_equals_direct() {
    for t in Tableau::all_builtin() {
        let scheme = Plain::new(Rk::new(OdeTerm::new(mlp(3)), t.clone()));
        let opts = SolveOptions::fixed(0.04);
        let direct = grads(&scheme, &opts, GradientMethod::Direct);
        for c in [1, 2, 4, 9] {
            let g = grads(
                &scheme,
                &opts,
                GradientMethod::Checkpointed { snapshots: Some(c) },
            );
            assert!(
                rel(&g.params, &direct.params) <= 1e-12,
                "{} c={c}",
                t.name()
            );
            assert!(rel(&g.y0, &direct.y0) <= 1e-12, "{} c={c}", t.name());
        }
        let err = gradient(
            &scheme,
            &y0_3(),
            &TIMES,
            &opts,
            &GradientMethod::Reversible.into(),
            loss,
        )
        .unwrap_err();
        assert!(matches!(err, Error::Unsupported(_)), "{err}");
    }
}

fn loss_only<S: Scheme<Map = Rk<OdeTerm<Mlp<f64>>>>>(scheme: &S, y0: &[f64], h: f64) -> f64 {
    let sol = solve(scheme, &y0.to_vec(), &TIMES, &SolveOptions::fixed(h)).unwrap();
    let mut cots: Vec<Vec<f64>> = sol.ys.iter().map(|y| vec![0.0; y.len()]).collect();
    loss(&sol.ys, &mut cots)
}

/// Central differences of the loss in every parameter and initial-state entry.
fn finite_differences(t: Tableau, lambda: Option<f64>, h: f64) -> (Vec<f64>, Vec<f64>, Grad) {
    let eps = 1e-6;
    let build = |field: Mlp<f64>| Rk::new(OdeTerm::new(field), t.clone());
    let eval = |field: Mlp<f64>, y0: &[f64]| match lambda {
        Some(l) => loss_only(&Reversible::new(build(field), l).unwrap(), y0, h),
        None => loss_only(&Plain::new(build(field)), y0, h),
    };
    let base = mlp(11);
    let y0 = y0_3();
    let mut dp = Vec::new();
    for i in 0..base.params().len() {
        let (mut a, mut b) = (base.clone(), base.clone());
        a.params_mut()[i] += eps;
        b.params_mut()[i] -= eps;
        dp.push((eval(a, &y0) - eval(b, &y0)) / (2.0 * eps));
    }
    let mut dy = Vec::new();
    for i in 0..y0.len() {
        let (mut a, mut b) = (y0.clone(), y0.clone());
        a[i] += eps;
        b[i] -= eps;
        dy.push((eval(base.clone(), &a) - eval(base.clone(), &b)) / (2.0 * eps));
    }
    let g = match lambda {
        Some(l) => grads(
            &Reversible::new(build(base), l).unwrap(),
            &SolveOptions::fixed(h),
            GradientMethod::Direct,
        ),
        None => grads(
            &Plain::new(build(base)),
            &SolveOptions::fixed(h),
            GradientMethod::Direct,
        ),
    };
    (dp, dy, g)
}

#[test]
fn direct_matches_central_differences() {
    for (t, lambda) in [
        (Tableau::midpoint(), Some(0.999)),
        (Tableau::rk4(), Some(0.8)),
        (Tableau::tsit5(), None),
        (Tableau::ralston3(), None),
    ] {
        let (dp, dy, g) = finite_differences(t.clone(), lambda, 0.1);
        // Central differences with ε = 1e-6: truncation ε²·L‴ ~ 1e-12, round-off ε_mach/ε ~ 1e-10.
        assert!(
            rel(&g.params, &dp) <= 1e-6,
            "{} params {:e}",
            t.name(),
            rel(&g.params, &dp)
        );
        assert!(
            rel(&g.y0, &dy) <= 1e-6,
            "{} y0 {:e}",
            t.name(),
            rel(&g.y0, &dy)
        );
    }
}

#[test]
fn backsolve_error_shrinks_with_h() {
    let scheme = Plain::new(Rk::new(OdeTerm::new(mlp(5)), Tableau::midpoint()));
    let mut errs = Vec::new();
    let hs = [0.2, 0.1, 0.05, 0.025, 0.0125];
    for &h in &hs {
        let opts = SolveOptions::fixed(h);
        let direct = grads(&scheme, &opts, GradientMethod::Direct);
        let back = grads(&scheme, &opts, GradientMethod::Backsolve);
        errs.push(rel(&back.params, &direct.params));
    }
    for w in errs.windows(2) {
        assert!(w[1] < w[0], "backsolve error must shrink with h: {errs:?}");
    }
    // Both are O(h²)-accurate approximations of the exact gradient for midpoint.
    let p = revode_core::tableau::observed_order(&hs, &errs).unwrap();
    assert!(p > 1.5, "fitted order {p} of backsolve error, {errs:?}");
    assert!(
        errs[0] > 1e-6,
        "backsolve is not exact at large h: {errs:?}"
    );
}

#[test]
fn f32_reversible_matches_direct() {
    let field: Mlp<f32> = Mlp::new(3, 16, true).unwrap().init_uniform(7);
    let scheme = Reversible::new(Rk::new(OdeTerm::new(field), Tableau::rk4()), 0.999).unwrap();
    let y0: Vec<f32> = vec![0.7, -0.4, 1.1];
    let lossf = |ys: &[Vec<f32>], cots: &mut [Vec<f32>]| {
        let mut l = 0.0;
        for (y, g) in ys.iter().zip(cots.iter_mut()) {
            for (v, g) in y.iter().zip(g.iter_mut()) {
                l += (v * v) as f64;
                *g = 2.0 * v;
            }
        }
        l
    };
    let opts = SolveOptions::fixed(0.05);
    let d = gradient(
        &scheme,
        &y0,
        &TIMES,
        &opts,
        &GradientMethod::Direct.into(),
        lossf,
    )
    .unwrap();
    let r = gradient(
        &scheme,
        &y0,
        &TIMES,
        &opts,
        &GradientMethod::Reversible.into(),
        lossf,
    )
    .unwrap();
    let to64 = |v: &[f32]| v.iter().map(|&x| x as f64).collect::<Vec<_>>();
    assert!(rel(&to64(&r.params), &to64(&d.params)) <= 1e-4);
    assert!(rel(&to64(&r.y0), &to64(&d.y0)) <= 1e-4);
}

#[test]
fn statistics_count_what_was_done() {
    let t = Tableau::rk4();
    let scheme = reversible(t, 0.999);
    let opts = SolveOptions::fixed(0.1); // 20 steps over [0, 2]
    let rev = grads(&scheme, &opts, GradientMethod::Reversible);
    assert_eq!(rev.steps, 20);
    // Forward: 2 base steps × 4 stages; backward: the same again, plus 2 × 4 pullbacks.
    assert_eq!(rev.stats.evaluations, 20 * 8 * 2);
    assert_eq!(rev.stats.pullbacks, 20 * 8);
    assert_eq!(rev.stats.peak_stored_states, 1);
    let direct = grads(&scheme, &opts, GradientMethod::Direct);
    assert_eq!(direct.stats.evaluations, 20 * 8);
    assert_eq!(direct.stats.pullbacks, 20 * 8);
    assert_eq!(direct.stats.peak_stored_states, 20);
    let every = grads(
        &scheme,
        &opts,
        GradientMethod::CheckpointedReversible { every: 5 },
    );
    assert_eq!(every.stats.peak_stored_states, 1 + 3);
}

#[test]
fn native_mlp_variants_are_exact() {
    // Every activation, depth 1–3, a batch of 3 rows, time input: direct = central differences
    // and reversible = direct.
    for (act, depth) in [
        (mlp::Activation::Tanh, 2),
        (mlp::Activation::Softplus, 1),
        (mlp::Activation::Relu, 3),
        (mlp::Activation::LipSwish, 2),
    ] {
        let spec = mlp::MlpSpec {
            dim: 2,
            hidden: 8,
            depth,
            activation: act,
            time: true,
            time_first: false,
            outputs: None,
        };
        let field: Mlp<f64> = Mlp::from_spec(spec.clone(), 3).unwrap().init_uniform(4);
        let y0 = vec![0.3, -0.5, 0.9, 0.1, -0.2, 0.4];
        let times = [0.0, 0.4, 1.0];
        let opts = SolveOptions::fixed(0.1);
        let l = |ys: &[Vec<f64>], c: &mut [Vec<f64>]| loss(ys, c);
        let eval = |f: Mlp<f64>, y: &[f64]| {
            let s = Reversible::new(Rk::new(OdeTerm::new(f), Tableau::rk4()), 0.999).unwrap();
            let sol = solve(&s, &y.to_vec(), &times, &opts).unwrap();
            let mut c: Vec<Vec<f64>> = sol.ys.iter().map(|y| vec![0.0; y.len()]).collect();
            loss(&sol.ys, &mut c)
        };
        let scheme =
            Reversible::new(Rk::new(OdeTerm::new(field.clone()), Tableau::rk4()), 0.999).unwrap();
        let d = gradient(
            &scheme,
            &y0,
            &times,
            &opts,
            &GradientMethod::Direct.into(),
            l,
        )
        .unwrap();
        let r = gradient(
            &scheme,
            &y0,
            &times,
            &opts,
            &GradientMethod::Reversible.into(),
            l,
        )
        .unwrap();
        assert!(rel(&r.params, &d.params) <= 1e-10, "{act:?}");
        assert!(rel(&r.y0, &d.y0) <= 1e-10, "{act:?}");
        let eps = 1e-6;
        let fd: Vec<f64> = (0..spec.num_params())
            .map(|i| {
                let mut p = field.params().to_vec();
                p[i] += eps;
                let a = eval(field.clone().with_params(&p).unwrap(), &y0);
                p[i] -= 2.0 * eps;
                let b = eval(field.clone().with_params(&p).unwrap(), &y0);
                (a - b) / (2.0 * eps)
            })
            .collect();
        // ReLU's kink: no central difference straddles it at these points with ε = 1e-6
        // unless a pre-activation lies within 1e-6 of 0; the tolerance is the FD noise floor.
        assert!(
            rel(&d.params, &fd) <= 1e-6,
            "{act:?}: {:e}",
            rel(&d.params, &fd)
        );
    }
}

#[test]
fn losses_on_every_accepted_step() {
    // A loss on the whole adaptive trajectory, linearly interpolated onto fixed data times (the
    // double-pendulum protocol): every exact method agrees with the tape.
    let data_t: Vec<f64> = (0..=40).map(|k| k as f64 * 0.05).collect();
    let loss_interp = |ts: &[f64], ys: &[Vec<f64>], cots: &mut [Vec<f64>]| {
        let mut l = 0.0;
        for &s in &data_t {
            let k = ts.partition_point(|&t| t <= s).clamp(1, ts.len() - 1);
            let w = (s - ts[k - 1]) / (ts[k] - ts[k - 1]);
            for i in 0..ys[0].len() {
                let v = (1.0 - w) * ys[k - 1][i] + w * ys[k][i];
                let r = v - (s * (i as f64 + 1.0)).sin();
                l += r * r;
                cots[k - 1][i] += 2.0 * r * (1.0 - w);
                cots[k][i] += 2.0 * r * w;
            }
        }
        l
    };
    let scheme = reversible(Tableau::bosh3(), 0.999);
    let opts = SolveOptions::adaptive(Adaptive::new(1e-6, 1e-6).with_h0(0.01));
    let run = |m: GradientMethod| {
        let o = GradientOptions {
            observe_steps: true,
            ..m.into()
        };
        gradient_observed(&scheme, &y0_3(), &[0.0, 2.0], &opts, &o, loss_interp).unwrap()
    };
    let d = run(GradientMethod::Direct);
    assert!(
        d.outputs.len() == d.steps + 1 && d.steps > 10,
        "{} outputs, {} steps",
        d.outputs.len(),
        d.steps
    );
    for m in [
        GradientMethod::Reversible,
        GradientMethod::Checkpointed { snapshots: Some(4) },
        GradientMethod::CheckpointedReversible { every: 5 },
    ] {
        let g = run(m.clone());
        let tol = if m == GradientMethod::Reversible {
            1e-10
        } else {
            1e-12
        };
        assert!(
            rel(&g.params, &d.params) <= tol,
            "{m:?}: {:e}",
            rel(&g.params, &d.params)
        );
        assert!(rel(&g.y0, &d.y0) <= tol, "{m:?}");
    }
}
