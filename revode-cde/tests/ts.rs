//! The `.ts` reader on the real JapaneseVowels files and on malformed input.

use proptest::prelude::*;
use revode_cde::ts::parse_ts;
use revode_cde::*;
use revode_core::Error;
use std::path::Path as FsPath;

fn data(name: &str) -> std::path::PathBuf {
    FsPath::new(env!("CARGO_MANIFEST_DIR"))
        .join("../data/uea")
        .join(name)
}

#[test]
fn japanese_vowels() {
    // Lengths measured independently of the reader (counting ',' in the first dimension).
    for (file, n, shortest, longest) in [
        ("JapaneseVowels_TRAIN.ts", 270, 7, 26),
        ("JapaneseVowels_TEST.ts", 370, 7, 29),
    ] {
        let d = read_ts(&data(file)).unwrap();
        assert_eq!(d.name, "JapaneseVowels");
        assert_eq!(
            (
                d.dimensions,
                d.series.len(),
                d.labels.len(),
                d.class_names.len()
            ),
            (12, n, n, 9)
        );
        let lens: Vec<usize> = d.series.iter().map(|c| c[0].len()).collect();
        assert_eq!(
            (*lens.iter().min().unwrap(), d.max_len()),
            (shortest, longest)
        );
        assert!(d
            .series
            .iter()
            .all(|c| c.len() == 12 && c.iter().all(|v| v.iter().all(|x| x.is_finite()))));
        assert!((0..9).all(|k| d.labels.contains(&k)));
    }
}

const GOOD: &str = "# c\n@problemName Toy\n@timeStamps false\n@missing true\n@univariate false\n@dimensions 2\n@equalLength false\n@classLabel true a b\n@data\n1,2,3:4,5,?:a\n0.5,NaN:1,2:b\n";

#[test]
fn small_file_and_missing_values() {
    let d = parse_ts(GOOD, "toy.ts").unwrap();
    assert_eq!(d.labels, vec![0, 1]);
    assert!(d.series[0][1][2].is_nan() && d.series[1][0][1].is_nan());
    assert_eq!(d.series[0][0], vec![1.0, 2.0, 3.0]);
}

#[test]
fn malformed_files_name_line_and_column() {
    let cases = [
        (GOOD.replace("1,2,3:4", "1,x,3:4"), 10, 3),
        (GOOD.replace(":a\n0.5", ":c\n0.5"), 10, 13),
        (GOOD.replace("@dimensions 2", "@dimensions two"), 6, 13),
        (GOOD.replace("0.5,NaN:1,2:b", "0.5,NaN:b"), 11, 1),
        (GOOD.replace("@data\n", ""), 9, 1),
        (
            GOOD.replace("@timeStamps false", "@timeStamps maybe"),
            3,
            13,
        ),
        (GOOD.replace("@problemName", "@problem"), 2, 1),
    ];
    for (text, line, column) in cases {
        match parse_ts(&text, "toy.ts") {
            Err(Error::Parse {
                line: l,
                column: c,
                file,
                ..
            }) => {
                assert_eq!((l, c, file.as_str()), (line, column, "toy.ts"), "{text}")
            }
            other => panic!("expected a parse error for\n{text}\ngot {other:?}"),
        }
    }
    assert!(matches!(
        read_ts(FsPath::new("/nonexistent/x.ts")),
        Err(Error::Io { .. })
    ));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    /// Random edits of a valid file: an error with a line number inside the file, or a dataset;
    /// never a panic.
    #[test]
    fn random_edits_never_panic(pos in 0usize..200, byte in prop::sample::select(vec![b':', b',', b'?', b'\n', b'@', b'#', b'x', b'1', b' ', b'-', b'.', b'e'])) {
        let mut bytes = GOOD.as_bytes().to_vec();
        let at = pos % (bytes.len() + 1);
        bytes.insert(at, byte);
        if let Ok(text) = String::from_utf8(bytes) {
            match parse_ts(&text, "fuzz.ts") {
                Ok(d) => prop_assert!(!d.series.is_empty()),
                Err(Error::Parse { line, .. }) => prop_assert!(line >= 1 && line <= text.lines().count().max(1)),
                Err(e) => prop_assert!(false, "unexpected error kind {e:?}"),
            }
        }
    }
}
