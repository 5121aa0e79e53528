//! ndarray states: an `Array2` (batch × dim) or `Array1` state runs through every scheme and
//! gradient method and gives the same numbers as the `Vec` state with the same entries.

use ndarray::{Array1, Array2};
use revode_core::mlp::MlpSpec;
use revode_core::prelude::*;

const DIM: usize = 3;
const ROWS: usize = 4;

fn field<S: Real>() -> Mlp<S> {
    Mlp::from_spec(MlpSpec::new(DIM, 8), ROWS)
        .unwrap()
        .init_uniform(2)
}

fn y0() -> Vec<f64> {
    (0..ROWS * DIM).map(|i| (i as f64 * 0.41).sin()).collect()
}

/// L = Σ_k Σ_i y_ki² through the state's f64 view (works for every state type).
fn loss<V: State>(ys: &[V], cots: &mut [V]) -> f64 {
    let mut l = 0.0;
    for (y, c) in ys.iter().zip(cots.iter_mut()) {
        let v = y.to_f64_vec();
        l += v.iter().map(|x| x * x).sum::<f64>();
        c.set_from_f64(&v.iter().map(|x| 2.0 * x).collect::<Vec<_>>());
    }
    l
}

fn methods() -> Vec<GradientMethod> {
    vec![
        GradientMethod::Reversible,
        GradientMethod::Direct,
        GradientMethod::Checkpointed { snapshots: Some(3) },
        GradientMethod::CheckpointedReversible { every: 4 },
        GradientMethod::Backsolve,
    ]
}

const TIMES: [f64; 3] = [0.0, 0.4, 1.0];

#[test]
fn array2_gradients_equal_vec_gradients_for_every_method() {
    let vec_scheme =
        Reversible::new(Rk::new(OdeTerm::new(field()), Tableau::tsit5()), 0.9).unwrap();
    let arr_scheme = Reversible::new(
        Rk::new(
            OdeTerm::<_, Array2<f64>>::with_state(field()),
            Tableau::tsit5(),
        ),
        0.9,
    )
    .unwrap();
    let y_arr = Array2::from_shape_vec((ROWS, DIM), y0()).unwrap();
    for opts in [
        SolveOptions::fixed(0.05),
        SolveOptions::adaptive(Adaptive::new(1e-6, 1e-8)),
    ] {
        for m in methods() {
            let gv = gradient(&vec_scheme, &y0(), &TIMES, &opts, &m.clone().into(), loss).unwrap();
            let ga = gradient(&arr_scheme, &y_arr, &TIMES, &opts, &m.clone().into(), loss).unwrap();
            // The same operations in the same order on the same entries: equal to round-off
            // (in practice bit for bit).
            let scale = gv.params.iter().fold(0.0f64, |a, v| a.max(v.abs()));
            let diff = gv
                .params
                .iter()
                .zip(&ga.params)
                .fold(0.0f64, |a, (x, y)| a.max((x - y).abs()));
            assert!(diff <= 1e-14 * scale, "{}: {diff:e}", m.label());
            assert!((gv.loss - ga.loss).abs() <= 1e-14 * gv.loss);
            assert_eq!(ga.y0.shape(), &[ROWS, DIM]);
            let dy = ga.y0.to_f64_vec();
            assert!(gv
                .y0
                .iter()
                .zip(&dy)
                .all(|(a, b)| (a - b).abs() <= 1e-14 * scale));
        }
    }
}

#[test]
fn array1_f32_solves_like_vec_f32() {
    let plain_v = Plain::new(Rk::new(OdeTerm::new(field::<f32>()), Tableau::tsit5()));
    let plain_a = Plain::new(Rk::new(
        OdeTerm::<_, Array1<f32>>::with_state(field::<f32>()),
        Tableau::tsit5(),
    ));
    let y: Vec<f32> = y0().iter().map(|&v| v as f32).collect();
    let opts = SolveOptions::fixed(0.1);
    let sv = solve(&plain_v, &y, &TIMES, &opts).unwrap();
    let sa = solve(&plain_a, &Array1::from(y.clone()), &TIMES, &opts).unwrap();
    for (a, b) in sv.ys.iter().zip(&sa.ys) {
        assert_eq!(a.as_slice(), b.as_slice().unwrap());
    }
}

#[test]
fn a_transposed_array_is_a_typed_error_not_a_wrong_answer() {
    let s = Plain::new(Rk::new(
        OdeTerm::<_, Array2<f64>>::with_state(field()),
        Tableau::rk4(),
    ));
    // (dim × rows) transposed into (rows × dim): column-major memory, so the field would see
    // the entries in the wrong order; it is refused.
    let y = Array2::from_shape_vec((DIM, ROWS), y0())
        .unwrap()
        .reversed_axes();
    let e = solve(&s, &y, &TIMES, &SolveOptions::fixed(0.1)).unwrap_err();
    assert!(matches!(e, Error::Config { .. }), "{e:?}");
    let fixed = y.as_standard_layout().into_owned();
    assert!(solve(&s, &fixed, &TIMES, &SolveOptions::fixed(0.1)).is_ok());
}
