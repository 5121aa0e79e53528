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

/// Linear interpolation of (ts, vs) at `t` (clamped at the ends); `ts` increasing.
pub fn interp(ts: &[f64], vs: &[f64], t: f64) -> f64 {
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
