//! The time-series data set: constructors (arrays, CSV long and wide, .ts), standardisation,
//! stratified split, point dropping, minibatches, conversion to paths, and typed errors.

use ndarray::{array, Array2, Array3};
use revode_cde::{Path, PathOptions, TimeSeries};
use revode_core::Error;

/// 6 series × 4 times × 2 channels, labels 0,1,0,1,0,1 on a shared grid.
fn small() -> TimeSeries {
    let values = Array3::from_shape_fn((6, 4, 2), |(i, t, c)| (i * 8 + t * 2 + c) as f64 * 0.5);
    let times = Array2::from_shape_vec((1, 4), vec![0.0, 0.5, 1.0, 2.0]).unwrap();
    TimeSeries::new(
        values,
        times,
        Some(vec![0, 1, 0, 1, 0, 1]),
        vec!["a".into(), "b".into()],
    )
    .unwrap()
}

#[test]
fn bad_inputs_are_typed_errors() {
    let v = Array3::<f64>::zeros((2, 3, 1));
    let grid = Array2::from_shape_vec((1, 3), vec![0.0, 1.0, 2.0]).unwrap();
    let names = vec!["x".to_string()];
    // Empty data set.
    assert!(matches!(
        TimeSeries::new(Array3::zeros((0, 3, 1)), grid.clone(), None, vec![]),
        Err(Error::Empty { .. })
    ));
    // Mismatched lengths: times, labels.
    let short = Array2::from_shape_vec((1, 2), vec![0.0, 1.0]).unwrap();
    assert!(matches!(
        TimeSeries::new(v.clone(), short, None, vec![]),
        Err(Error::ShapeMismatch { .. })
    ));
    assert!(matches!(
        TimeSeries::new(v.clone(), grid.clone(), Some(vec![0]), names.clone()),
        Err(Error::ShapeMismatch { .. })
    ));
    assert!(TimeSeries::new(v.clone(), grid.clone(), Some(vec![0, 3]), names.clone()).is_err());
    // Non-finite and non-increasing times.
    let nan_t = Array2::from_shape_vec((1, 3), vec![0.0, f64::NAN, 2.0]).unwrap();
    assert!(matches!(
        TimeSeries::new(v.clone(), nan_t, None, vec![]),
        Err(Error::NonFinite { index: 1, .. })
    ));
    let back = Array2::from_shape_vec((1, 3), vec![0.0, 2.0, 1.0]).unwrap();
    assert!(TimeSeries::new(v.clone(), back, None, vec![]).is_err());
    // Labels missing: asking for them is an error, a split treats the series as one class;
    // a CSV row without one is an error.
    let unlabelled = TimeSeries::new(v.clone(), grid.clone(), None, vec![]).unwrap();
    assert!(unlabelled.labels().is_err());
    let (a, b) = unlabelled.stratified_split(0.5, 0).unwrap();
    assert_eq!((a.len(), b.len()), (1, 1));
    assert_ne!(a, b);
    let csv = "series,time,x,label\ns1,0,1.0,a\ns2,0,2.0,\n";
    assert!(TimeSeries::from_csv_long(csv.as_bytes()).is_err());
    // An all-NaN channel cannot be standardised.
    let mut nan_ch = Array3::from_elem((2, 3, 2), 1.0);
    nan_ch.slice_mut(ndarray::s![.., .., 1]).fill(f64::NAN);
    let d = TimeSeries::new(nan_ch, grid, None, vec![]).unwrap();
    let e = d.fit_standardiser(&[0, 1]).unwrap_err();
    assert!(e.to_string().contains("channel 1"), "{e}");
}

#[test]
fn csv_long_and_wide_equal_the_arrays() {
    let long = "series,time,x,y,label\n\
                s1,0.0,1,2,up\ns1,0.5,3,,up\ns2,0.0,5,6,down\ns2,0.5,7,8,down\n";
    let d = TimeSeries::from_csv_long(long.as_bytes()).unwrap();
    assert_eq!(d.values.dim(), (2, 2, 2));
    assert_eq!(d.values[[1, 1, 1]], 8.0);
    assert!(d.values[[0, 1, 1]].is_nan());
    assert_eq!(d.labels, Some(vec![0, 1]));
    assert_eq!(d.class_names, vec!["up".to_string(), "down".into()]);
    let wide = "label,x@0.5,x@0.0,y@0.0,y@0.5\nup,3,1,2,\ndown,7,5,6,8\n";
    let w = TimeSeries::from_csv_wide(wide.as_bytes()).unwrap();
    assert_eq!(w.times.row(0).to_vec(), vec![0.0, 0.5]);
    for (a, b) in d.values.iter().zip(w.values.iter()) {
        assert!(a == b || (a.is_nan() && b.is_nan()));
    }
    assert!(TimeSeries::from_csv_wide("x@zero\n1\n".as_bytes()).is_err());
    assert!(TimeSeries::from_csv_long("a,b\n".as_bytes()).is_err());
}

#[test]
fn standardise_split_drop_and_minibatches() {
    let mut d = small();
    let (train, val) = d.stratified_split(1.0 / 3.0, 7).unwrap();
    assert_eq!((train.len(), val.len()), (4, 2));
    let labels = d.labels().unwrap().to_vec();
    assert_eq!(val.iter().filter(|&&i| labels[i] == 0).count(), 1);
    assert_eq!(
        d.stratified_split(1.0 / 3.0, 7).unwrap(),
        (train.clone(), val.clone())
    );
    let st = d.fit_standardiser(&train).unwrap();
    d.standardise(&st).unwrap();
    for ch in 0..2 {
        let v: Vec<f64> = train
            .iter()
            .flat_map(|&i| d.values.slice(ndarray::s![i, .., ch]).to_vec())
            .collect();
        let m = v.iter().sum::<f64>() / v.len() as f64;
        let sd = (v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / v.len() as f64).sqrt();
        assert!(m.abs() < 1e-12 && (sd - 1.0).abs() < 1e-12);
    }
    let mut big = TimeSeries::new(
        Array3::from_elem((50, 40, 1), 1.0),
        Array2::from_shape_fn((1, 40), |(_, t)| t as f64),
        None,
        vec![],
    )
    .unwrap();
    big.drop_points(0.3, 1).unwrap();
    let dropped = big.values.iter().filter(|v| v.is_nan()).count() as f64 / (50.0 * 39.0);
    // Binomial(1950, 0.3): sd ≈ 0.0104, so ±0.05 is about 5 sd.
    assert!((dropped - 0.3).abs() < 0.05, "{dropped}");
    assert!(big
        .values
        .slice(ndarray::s![.., 0, 0])
        .iter()
        .all(|v| *v == 1.0));
    // Padding and unobserved times draw nothing: a series padded with NaN after time 3 keeps
    // its first observation and drops only among times 1–3; the others' draws are unchanged.
    let mut padded = big.clone();
    padded
        .values
        .slice_mut(ndarray::s![0, 4.., ..])
        .fill(f64::NAN);
    let mut plain = big.clone();
    plain.drop_points(0.3, 5).unwrap();
    padded.drop_points(0.3, 5).unwrap();
    assert_eq!(padded.values[[0, 0, 0]], 1.0);
    assert!(padded
        .values
        .slice(ndarray::s![0, 4.., ..])
        .iter()
        .all(|v| v.is_nan()));
    let nan_rows = |d: &TimeSeries, i: usize| -> Vec<bool> {
        (0..40).map(|t| d.values[[i, t, 0]].is_nan()).collect()
    };
    // Series 0's first three draws are the same; it then uses 3 draws instead of 39, so
    // series 1 sees the stream shifted.
    assert_eq!(nan_rows(&padded, 0)[..4], nan_rows(&plain, 0)[..4]);
    assert_ne!(nan_rows(&padded, 1), nan_rows(&plain, 1));
    assert!(big.clone().drop_points(1.0, 0).is_err());
    // The random split ignores labels: a seeded partition of every series.
    let (rt, rv) = d.random_split(0.5, 3).unwrap();
    assert_eq!(rt.len() + rv.len(), d.len());
    let mut both: Vec<usize> = rt.iter().chain(&rv).copied().collect();
    both.sort_unstable();
    assert_eq!(both, (0..d.len()).collect::<Vec<_>>());
    assert_eq!(d.random_split(0.5, 3).unwrap(), (rt, rv));
    assert!(d.random_split(1.0, 3).is_err());
    let rows: Vec<usize> = (0..10).collect();
    let b0 = big.minibatches(&rows, 4, 3, 0).unwrap();
    let mut all: Vec<usize> = b0.concat();
    all.sort_unstable();
    assert_eq!(all, rows);
    assert_eq!(b0.iter().map(Vec::len).collect::<Vec<_>>(), vec![4, 4, 2]);
    assert_ne!(b0, big.minibatches(&rows, 4, 3, 1).unwrap());
}

#[test]
fn paths_from_series_with_their_own_times_and_row_selection() {
    // Two series observed at different times: the path data use the union grid.
    let values = Array3::from_shape_vec((2, 2, 1), vec![1.0, 2.0, 10.0, 20.0]).unwrap();
    let times = array![[0.0, 1.0], [0.5, 1.0]];
    let d = TimeSeries::new(values, times, None, vec![]).unwrap();
    let pd = d.to_path_data(&[0, 1]).unwrap();
    assert_eq!(pd.times, vec![0.0, 0.5, 1.0]);
    assert_eq!(pd.values[0], 1.0);
    assert!(pd.values[1].is_nan() && pd.values[3].is_nan());
    assert_eq!((pd.values[4], pd.values[5]), (10.0, 20.0));
    // Selecting rows of a path equals building the path of those rows.
    let s = small();
    let po = PathOptions::default();
    let full = Path::new(&s.to_path_data(&[0, 1, 2, 3, 4, 5]).unwrap(), &po).unwrap();
    let rows = [4, 1];
    let picked = full.select(&rows).unwrap();
    let direct = Path::new(&s.to_path_data(&rows).unwrap(), &po).unwrap();
    for t in [0.0, 0.3, 0.75, 1.4, 2.0] {
        let (mut a, mut b) = (vec![0.0; 4], vec![0.0; 4]);
        picked.evaluate(t, &mut a).unwrap();
        direct.evaluate(t, &mut b).unwrap();
        assert_eq!(a, b);
    }
    assert!(full.select(&[6]).is_err());
}

#[test]
fn train_and_test_files_share_one_grid() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/uea");
    let (train, test) = TimeSeries::read_ts_pair(
        &dir.join("JapaneseVowels_TRAIN.ts"),
        &dir.join("JapaneseVowels_TEST.ts"),
    )
    .unwrap();
    // Alone, each file's grid is k / (K − 1) with its own K (26 and 29): one index, two times.
    let alone = TimeSeries::read_ts(&dir.join("JapaneseVowels_TRAIN.ts")).unwrap();
    assert_eq!((alone.time_len(), test.time_len()), (26, 29));
    assert_eq!(train.time_len(), 29);
    assert_eq!(train.times.row(0), test.times.row(0));
    assert_eq!(train.times[[0, 28]], 1.0);
    // The padding is missing values; the observed ones are unchanged.
    assert!(train.values[[0, 28, 0]].is_nan());
    assert_eq!(
        train
            .values
            .slice(ndarray::s![.., ..26, ..])
            .iter()
            .filter(|v| v.is_finite())
            .count(),
        alone.values.iter().filter(|v| v.is_finite()).count()
    );
    let ts = revode_cde::read_ts(&dir.join("JapaneseVowels_TRAIN.ts")).unwrap();
    assert!(matches!(
        TimeSeries::from_ts_padded(&ts, 25),
        Err(Error::Config { .. })
    ));
    assert!(matches!(
        TimeSeries::read_ts_pair(
            &dir.join("JapaneseVowels_TRAIN.ts"),
            &dir.join("BasicMotions_TEST.ts")
        ),
        Err(Error::Config { .. })
    ));
}
