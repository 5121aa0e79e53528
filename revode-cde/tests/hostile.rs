//! Hostile input to the CDE crate ("no silent wrong answers"): every case is a typed error of
//! the right variant, or a correct result — never an unchecked `Ok`.

use revode_cde::ts::parse_ts;
use revode_cde::*;
use revode_core::prelude::*;

const GOOD: &str = "# c\n@problemName Toy\n@timeStamps false\n@missing true\n@univariate false\n@dimensions 2\n@equalLength false\n@classLabel true a b\n@data\n1,2,3:4,5,?:a\n0.5,NaN:1,2:b\n";

/// `(line, column)` of a parse error.
fn parse_error(text: &str) -> (usize, usize, String) {
    match parse_ts(text, "toy.ts") {
        Err(Error::Parse {
            line,
            column,
            message,
            ..
        }) => (line, column, message),
        other => panic!("expected a parse error for\n{text:?}\ngot {other:?}"),
    }
}

/// Same dataset, NaN-aware (missing values are NaN on both sides).
fn same(a: &ts::TsDataset, b: &ts::TsDataset) -> bool {
    let bits = |d: &ts::TsDataset| -> Vec<Vec<Vec<u64>>> {
        d.series
            .iter()
            .map(|c| {
                c.iter()
                    .map(|v| v.iter().map(|x| x.to_bits()).collect())
                    .collect()
            })
            .collect()
    };
    (&a.name, a.dimensions, &a.class_names, &a.labels)
        == (&b.name, b.dimensions, &b.class_names, &b.labels)
        && bits(a) == bits(b)
}

#[test]
fn ts_files_with_a_byte_order_mark_or_any_line_ending_parse_alike() {
    let reference = parse_ts(GOOD, "toy.ts").unwrap();
    for (what, text) in [
        ("BOM", format!("\u{feff}{GOOD}")),
        ("CRLF", GOOD.replace('\n', "\r\n")),
        ("CR", GOOD.replace('\n', "\r")),
        ("BOM + CR", format!("\u{feff}{}", GOOD.replace('\n', "\r"))),
        ("no final newline", GOOD.trim_end().to_string()),
    ] {
        let d = parse_ts(&text, "toy.ts").unwrap_or_else(|e| panic!("{what}: {e}"));
        assert!(same(&d, &reference), "{what}: {d:?}");
    }
    // Line numbers count CR-only and CRLF lines like LF lines.
    let bad = GOOD.replace("1,2,3:4", "1,x,3:4");
    for text in [bad.replace('\n', "\r"), bad.replace('\n', "\r\n")] {
        let (line, column, _) = parse_error(&text);
        assert_eq!((line, column), (10, 3));
    }
}

#[test]
fn cases_with_different_channel_counts_and_no_dimensions_header_are_refused() {
    let undeclared = GOOD.replace("@dimensions 2\n", "");
    // Both cases have two dimensions: accepted, dimensions taken from the data.
    assert_eq!(parse_ts(&undeclared, "toy.ts").unwrap().dimensions, 2);
    // The second case (line 10 once the header line is gone) has three.
    let (line, column, message) =
        parse_error(&undeclared.replace("0.5,NaN:1,2:b", "0.5,NaN:1,2:3:b"));
    assert_eq!((line, column), (10, 1), "{message}");
    assert!(message.contains("line 9"), "{message}");
    // ... or one.
    let (line, column, _) = parse_error(&undeclared.replace("0.5,NaN:1,2:b", "0.5,NaN:b"));
    assert_eq!((line, column), (10, 1));
    // A first case with no dimension at all (only a label) does not set a count of zero.
    let (line, column, _) = parse_error(&undeclared.replace("1,2,3:4,5,?:a", "a"));
    assert_eq!((line, column), (9, 1));
}

fn path() -> Path {
    // 2 series × 6 times × 1 channel (plus the time channel).
    let times: Vec<f64> = (0..6).map(|k| 0.2 * k as f64).collect();
    let values = (0..12).map(|i| (0.7 * i as f64).sin()).collect();
    let data = PathData {
        times,
        batch: 2,
        channels: 1,
        values,
    };
    Path::new(
        &data,
        &PathOptions {
            time_channel: true,
            ..Default::default()
        },
    )
    .unwrap()
}

#[test]
fn a_solve_outside_the_path_names_the_cde_path() {
    let p = path();
    let (a, b) = p.domain();
    let term = CdeTerm::new(CdeMlp::new(3, 2, 8, 1, false, 0).unwrap(), p).unwrap();
    let scheme = Plain::new(Rk::new(term, Tableau::euler()));
    let e = solve(
        &scheme,
        &vec![0.0; 6],
        &[a, b + 1.0],
        &SolveOptions::fixed(0.1),
    )
    .unwrap_err();
    assert_eq!(
        e,
        Error::OutsideDomain {
            what: "the CDE path".into(),
            t: b + 1.0,
            start: a,
            end: b,
        }
    );
    assert_eq!(
        e.to_string(),
        "time 2 is outside the domain [0, 1] of the CDE path"
    );
    // The path's own queries say the same.
    let mut out = vec![0.0; 4];
    let q = path().evaluate(-0.5, &mut out).unwrap_err();
    assert!(q.to_string().ends_with("of the CDE path"), "{q}");
}
