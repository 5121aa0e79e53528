//! Readers for the project's data files, with errors that name the line and column.

use revode_core::{Error, Result};
use std::path::{Path, PathBuf};

/// The repository's `data/` directory (compiled in, so the binary works from any directory).
pub fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("data")
}

/// Whitespace-separated numeric rows; lines starting with `%` or `#` are comments.
pub fn read_table(path: &Path) -> Result<Vec<Vec<f64>>> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::Io {
        path: path.display().to_string(),
        message: e.to_string(),
    })?;
    let mut rows = Vec::new();
    for (ln, line) in text.lines().enumerate() {
        let trimmed = line.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('%') || trimmed.starts_with('#') {
            continue;
        }
        let mut row = Vec::new();
        let mut col = 0;
        for field in line.split_whitespace() {
            let start = line[col..].find(field).map_or(col, |p| col + p);
            col = start + field.len();
            let v: f64 = field.parse().map_err(|_| Error::Parse {
                file: path.display().to_string(),
                line: ln + 1,
                column: start + 1,
                message: format!("'{field}' is not a number"),
            })?;
            row.push(v);
        }
        if let Some(first) = rows.first().map(|r: &Vec<f64>| r.len()) {
            if row.len() != first {
                return Err(Error::Parse {
                    file: path.display().to_string(),
                    line: ln + 1,
                    column: 1,
                    message: format!("{} columns, expected {first}", row.len()),
                });
            }
        }
        rows.push(row);
    }
    Ok(rows)
}

/// Linear interpolation of (ts, vs) at `t` (clamped at the ends); `ts` increasing, at least
/// two points (`resample` checks).
fn interp(ts: &[f64], vs: &[f64], t: f64) -> f64 {
    let k = ts.partition_point(|&s| s <= t).clamp(1, ts.len() - 1);
    let w = ((t - ts[k - 1]) / (ts[k] - ts[k - 1])).clamp(0.0, 1.0);
    (1.0 - w) * vs[k - 1] + w * vs[k]
}

/// Channels `cols` of the rows with `trial`, time in column 1 shifted to start at 0, linearly
/// interpolated onto `n` points of [0, t1] and divided by `scale`: one state vector per point.
pub fn resample(
    rows: &[Vec<f64>],
    trial: f64,
    cols: &[usize],
    t1: f64,
    n: usize,
    scale: f64,
) -> Result<Vec<Vec<f64>>> {
    if n < 2 || !(t1 > 0.0 && scale != 0.0 && scale.is_finite()) {
        return Err(Error::config(
            "resample",
            format!("needs n ≥ 2, t1 > 0 and a finite non-zero scale, got {n}, {t1}, {scale}"),
        ));
    }
    let width = rows.first().map_or(0, Vec::len);
    if let Some(c) = cols.iter().copied().chain([1]).find(|&c| c >= width) {
        return Err(Error::config(
            "resample",
            format!("column {c} is outside the table's {width} columns"),
        ));
    }
    let sel: Vec<&Vec<f64>> = rows.iter().filter(|r| r[0] == trial).collect();
    if sel.len() < 2 {
        return Err(Error::config(
            "trial",
            format!("trial {trial} has {} rows", sel.len()),
        ));
    }
    let t0 = sel[0][1];
    let ts: Vec<f64> = sel.iter().map(|r| r[1] - t0).collect();
    if ts.windows(2).any(|w| w[1] <= w[0]) {
        return Err(Error::config("data", "times are not increasing"));
    }
    if ts[ts.len() - 1] < t1 {
        return Err(Error::config(
            "t1",
            format!("data end at {} < {t1}", ts[ts.len() - 1]),
        ));
    }
    let chans: Vec<Vec<f64>> = cols
        .iter()
        .map(|&c| sel.iter().map(|r| r[c]).collect())
        .collect();
    Ok((0..n)
        .map(|k| {
            let t = t1 * k as f64 / (n - 1) as f64;
            chans.iter().map(|ch| interp(&ts, ch, t) / scale).collect()
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(name: &str, text: &str) -> Result<Vec<Vec<f64>>> {
        let path = std::env::temp_dir().join(format!("revode-data-{}-{name}", std::process::id()));
        std::fs::write(&path, text).unwrap();
        let rows = read_table(&path);
        std::fs::remove_file(&path).unwrap();
        rows
    }

    #[test]
    fn tables_parse_and_name_bad_fields() {
        let rows = table("ok", "% header\n0 0 1\n\n# note\n0 1 3\n0 2 7\n").unwrap();
        assert_eq!(
            rows,
            vec![vec![0., 0., 1.], vec![0., 1., 3.], vec![0., 2., 7.]]
        );
        assert!(matches!(
            table("nan", "0 0 1\n0 x 2\n"),
            Err(Error::Parse {
                line: 2,
                column: 3,
                ..
            })
        ));
        assert!(matches!(
            table("ragged", "0 0 1\n0 1\n"),
            Err(Error::Parse { line: 2, .. })
        ));
    }

    #[test]
    fn resampling_interpolates_and_refuses_bad_requests() {
        let rows = vec![
            vec![0., 10., 1.],
            vec![0., 11., 3.],
            vec![0., 12., 7.],
            vec![1., 10., 9.],
        ];
        // Trial 0 on [0, 2] at 5 points, halved: 1, 3, 7 at t = 0, 1, 2 linearly between.
        let r = resample(&rows, 0.0, &[2], 2.0, 5, 2.0).unwrap();
        let got: Vec<f64> = r.iter().map(|v| v[0]).collect();
        assert_eq!(got, vec![0.5, 1.0, 1.5, 2.5, 3.5]);
        for (trial, cols, t1, n) in [
            (1.0, vec![2], 2.0, 5), // one row
            (0.0, vec![3], 2.0, 5), // no such column
            (0.0, vec![2], 3.0, 5), // data end before t1
            (0.0, vec![2], 2.0, 1), // one point
        ] {
            assert!(matches!(
                resample(&rows, trial, &cols, t1, n, 1.0),
                Err(Error::Config { .. })
            ));
        }
    }
}
