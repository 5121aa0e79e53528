//! Criterion micro-benchmarks of the hot paths: one reversible step, one Algorithm-1 backward
//! step (reconstruction + pullback), one RK pullback, and the activation.
//!
//! `cargo bench -p revode-bench --bench hot_paths`

use criterion::{criterion_group, criterion_main, Criterion};
use revode_core::activation;
use revode_core::mlp::MlpSpec;
use revode_core::prelude::*;
use std::hint::black_box;

fn scheme(dim: usize, hidden: usize, batch: usize) -> Reversible<Rk<OdeTerm<Mlp<f64>>>> {
    let field = Mlp::from_spec(MlpSpec::new(dim, hidden), batch)
        .expect("valid spec")
        .init_uniform(0);
    Reversible::new(Rk::new(OdeTerm::new(field), Tableau::midpoint()), 0.999).expect("valid λ")
}

fn steps(c: &mut Criterion) {
    for (name, dim, hidden, batch) in [("mlp 1-10-1", 1, 10, 1), ("mlp 32-64-32 ×32", 32, 64, 32)]
    {
        let s = scheme(dim, hidden, batch);
        let y0: Vec<f64> = (0..dim * batch).map(|i| (i as f64 * 0.3).sin()).collect();
        let mut scratch = s.new_scratch(&y0);
        let mut stats = Stats::default();
        let mut carry = s.init(Start { t0: 0.0, y0: &y0 }, &mut scratch, &mut stats);
        c.bench_function(&format!("reversible step, {name}"), |b| {
            b.iter(|| {
                s.step(
                    0.0,
                    0.01,
                    black_box(&mut carry),
                    None,
                    None,
                    &mut scratch,
                    &mut stats,
                )
            })
        });
        let mut bar0 = carry.zeros_like();
        bar0.y.iter_mut().for_each(|v| *v = 1.0);
        let mut bar = bar0.clone();
        let mut p_bar = s.map().new_param_grad();
        c.bench_function(
            &format!("forward step + backward step (reconstruct + pullback), {name}"),
            |b| {
                b.iter(|| {
                    // Forward again so the carry stays on the trajectory; reset the cotangent so
                    // repeated pullbacks do not drift into overflow or denormals.
                    s.step(0.0, 0.01, &mut carry, None, None, &mut scratch, &mut stats);
                    bar.copy_from(&bar0);
                    s.reconstruct_pullback(
                        0.0,
                        0.01,
                        black_box(&mut carry),
                        &mut bar,
                        &mut p_bar,
                        &mut scratch,
                        &mut stats,
                    )
                })
            },
        );
        let map = s.map();
        let mut tape = map.new_tape(&y0);
        let mut ms = map.new_scratch(&y0);
        let mut out = y0.zeros_like();
        map.increment(
            0.0,
            0.01,
            &y0,
            &mut out,
            None,
            Some(&mut tape),
            &mut ms,
            &mut stats,
        );
        let mut y_bar = y0.zeros_like();
        c.bench_function(&format!("RK pullback (midpoint), {name}"), |b| {
            b.iter(|| {
                map.pullback(
                    &tape,
                    black_box(&out),
                    1.0,
                    &mut y_bar,
                    &mut p_bar,
                    &mut ms,
                    &mut stats,
                )
            })
        });
    }
    let xs: Vec<f64> = (0..1024).map(|i| (i as f64 - 512.0) / 128.0).collect();
    c.bench_function("tanh ×1024 (revode)", |b| {
        b.iter(|| {
            xs.iter()
                .map(|&x| activation::tanh(black_box(x)))
                .sum::<f64>()
        })
    });
    c.bench_function("tanh ×1024 (libm)", |b| {
        b.iter(|| xs.iter().map(|&x| black_box(x).tanh()).sum::<f64>())
    });
}

criterion_group!(benches, steps);
criterion_main!(benches);
