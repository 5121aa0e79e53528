//! Criterion micro-benchmarks of the family hot paths: Brownian queries (sequential and
//! random), CDE path evaluation and increments, and PDE stencils with their pullbacks.
//!
//! `cargo bench -p revode-bench --bench family_paths`

use criterion::{criterion_group, criterion_main, Criterion};
use revode_cde::{Interpolation, Path, PathData, PathOptions};
use revode_pde::ops::{self, Rusanov};
use revode_pde::{Boundary, Grid1d};
use revode_sde::BrownianPath;
use std::hint::black_box;

fn brownian(c: &mut Criterion) {
    let path = BrownianPath::new(0.0, 1.0, 32, 4, 1).expect("valid path");
    let mut out = vec![0.0; path.len()];
    let h = 1.0 / 4096.0;
    let mut i = 0usize;
    c.bench_function("brownian increment, sequential step (32 × 4)", |b| {
        b.iter(|| {
            let k = (i % 4096) as f64;
            i += 1;
            path.increment(k * h, (k + 1.0) * h, black_box(&mut out))
                .expect("in domain");
        })
    });
    let mut rng = revode_core::random::SplitMix64::new(2);
    c.bench_function("brownian increment, random times (32 × 4)", |b| {
        b.iter(|| {
            let (s, t) = (rng.uniform(), rng.uniform());
            path.increment(s, t, black_box(&mut out))
                .expect("in domain");
        })
    });
}

fn paths(c: &mut Criterion) {
    let times: Vec<f64> = (0..100).map(|k| k as f64 * 0.01).collect();
    let values: Vec<f64> = (0..64 * 100 * 3).map(|i| (i as f64 * 0.37).sin()).collect();
    let data = PathData {
        times,
        batch: 64,
        channels: 3,
        values,
    };
    for interp in [
        Interpolation::Linear,
        Interpolation::HermiteCubic,
        Interpolation::NaturalCubic,
    ] {
        let p = Path::new(
            &data,
            &PathOptions {
                interpolation: interp,
                ..Default::default()
            },
        )
        .expect("valid data");
        let mut out = vec![0.0; p.batch() * p.channels()];
        c.bench_function(&format!("path increment {interp:?} (64 × 3)"), |b| {
            b.iter(|| {
                p.increment(black_box(0.123), black_box(0.456), &mut out)
                    .expect("in domain")
            })
        });
    }
}

fn stencils(c: &mut Criterion) {
    for n in [256, 4096] {
        let g = Grid1d::new(n, 0.0, 1.0, Boundary::Periodic).expect("valid grid");
        let u: Vec<f64> = (0..16 * n).map(|i| (i as f64 * 0.01).sin()).collect();
        let mut out = vec![0.0; u.len()];
        c.bench_function(&format!("laplacian {n} × 16"), |b| {
            b.iter(|| ops::laplacian(&g, 1.0, black_box(&u), &mut out))
        });
        c.bench_function(&format!("rusanov flux {n} × 16"), |b| {
            b.iter(|| ops::divergence(&g, &Rusanov, -1.0, black_box(&u), &mut out))
        });
        c.bench_function(&format!("rusanov pullback {n} × 16"), |b| {
            b.iter(|| ops::divergence_vjp(&g, &Rusanov, -1.0, black_box(&u), &u, &mut out))
        });
    }
}

criterion_group!(benches, brownian, paths, stencils);
criterion_main!(benches);
