//! A reader for the UEA/sktime `.ts` time-series classification format.
//!
//! Header lines start with `#` (comments) or `@` (`@problemName`, `@timeStamps`, `@missing`,
//! `@univariate`, `@dimensions`, `@equalLength`, `@seriesLength`, `@classLabel`, `@data`). After
//! `@data`, one case per line: dimensions separated by `:`, values within a dimension by `,`,
//! the class label last. `?` and `NaN` are missing values. Every malformed input is an
//! [`Error::Parse`] with its line and column.
//!
//! A leading UTF-8 byte-order mark is skipped, and lines may end in `\n`, `\r\n` or a bare `\r`
//! (files saved on Windows or classic Mac OS). Without `@dimensions`, the first case fixes the
//! number of dimensions and every other case must have it.

use revode_core::{Error, Result};

/// A parsed `.ts` file.
#[derive(Clone, Debug, PartialEq)]
pub struct TsDataset {
    /// `@problemName`.
    pub name: String,
    /// Number of dimensions (channels) per case.
    pub dimensions: usize,
    /// Declared class labels, in header order.
    pub class_names: Vec<String>,
    /// Per case: one vector of values per dimension (NaN for missing), possibly of different lengths across cases.
    pub series: Vec<Vec<Vec<f64>>>,
    /// Per case: the index of its label in `class_names`.
    pub labels: Vec<usize>,
}

impl TsDataset {
    /// Longest series length.
    pub fn max_len(&self) -> usize {
        self.series
            .iter()
            .flat_map(|c| c.iter().map(|d| d.len()))
            .max()
            .unwrap_or(0)
    }
}

fn err(file: &str, line: usize, column: usize, message: impl Into<String>) -> Error {
    Error::Parse {
        file: file.to_string(),
        line,
        column,
        message: message.into(),
    }
}

/// The lines of `text`, ended by `\n`, `\r\n` or a bare `\r` (like [`str::lines`], which only
/// knows the first two: a final terminator does not start another line).
fn split_lines(text: &str) -> Vec<&str> {
    let bytes = text.as_bytes();
    let (mut out, mut start, mut i) = (Vec::new(), 0, 0);
    while i < bytes.len() {
        match bytes[i] {
            b'\n' => {
                out.push(&text[start..i]);
                start = i + 1;
            }
            b'\r' => {
                out.push(&text[start..i]);
                if bytes.get(i + 1) == Some(&b'\n') {
                    i += 1;
                }
                start = i + 1;
            }
            _ => {}
        }
        i += 1;
    }
    if start < bytes.len() {
        out.push(&text[start..]);
    }
    out
}

/// Parses `.ts` text; `file` names it in errors. A leading byte-order mark is skipped; lines
/// may end in `\n`, `\r\n` or `\r`.
pub fn parse_ts(text: &str, file: &str) -> Result<TsDataset> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let lines = split_lines(text);
    let mut name = String::new();
    let mut dimensions: Option<usize> = None;
    let mut class_names: Option<Vec<String>> = None;
    let mut equal_length: Option<bool> = None;
    let mut series_length: Option<usize> = None;
    let mut in_data = false;
    let mut series = Vec::new();
    let mut labels = Vec::new();
    // Without @dimensions: the first case's count of dimensions and its line.
    let mut first_case: Option<(usize, usize)> = None;
    for (i, raw) in lines.iter().copied().enumerate() {
        let ln = i + 1;
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if !in_data {
            if !line.starts_with('@') {
                return Err(err(
                    file,
                    ln,
                    1,
                    "expected a header line starting with '@' or '#' before @data",
                ));
            }
            let mut parts = line.split_whitespace();
            let key = parts.next().unwrap_or("").to_ascii_lowercase();
            let rest: Vec<&str> = parts.collect();
            let value_col = raw
                .find(rest.first().copied().unwrap_or(""))
                .map_or(1, |p| p + 1);
            let flag = |v: Option<&&str>| -> Result<bool> {
                match v.map(|s| s.to_ascii_lowercase()) {
                    Some(s) if s == "true" => Ok(true),
                    Some(s) if s == "false" => Ok(false),
                    _ => Err(err(
                        file,
                        ln,
                        value_col,
                        format!("{key} needs true or false"),
                    )),
                }
            };
            match key.as_str() {
                "@problemname" => name = rest.join(" "),
                "@timestamps" => {
                    if flag(rest.first())? {
                        return Err(err(
                            file,
                            ln,
                            value_col,
                            "time-stamped .ts files are not supported",
                        ));
                    }
                }
                "@missing" | "@univariate" => {
                    flag(rest.first())?;
                }
                "@dimensions" => {
                    let d = rest
                        .first()
                        .and_then(|s| s.parse::<usize>().ok())
                        .filter(|&d| d > 0);
                    dimensions = Some(d.ok_or_else(|| {
                        err(file, ln, value_col, "@dimensions needs a positive integer")
                    })?);
                }
                "@equallength" => equal_length = Some(flag(rest.first())?),
                "@serieslength" => {
                    let n = rest.first().and_then(|s| s.parse::<usize>().ok());
                    series_length = Some(n.ok_or_else(|| {
                        err(file, ln, value_col, "@seriesLength needs an integer")
                    })?);
                }
                "@classlabel" => {
                    if !flag(rest.first())? {
                        return Err(err(
                            file,
                            ln,
                            value_col,
                            "only labelled (classification) files are supported",
                        ));
                    }
                    if rest.len() < 2 {
                        return Err(err(
                            file,
                            ln,
                            value_col,
                            "@classLabel true needs the class names",
                        ));
                    }
                    class_names = Some(rest[1..].iter().map(|s| s.to_string()).collect());
                }
                "@data" => {
                    if class_names.is_none() {
                        return Err(err(file, ln, 1, "@data before @classLabel"));
                    }
                    in_data = true;
                }
                other => return Err(err(file, ln, 1, format!("unknown header '{other}'"))),
            }
            continue;
        }
        // A case: d dimensions and the label, separated by ':'.
        let classes = class_names
            .as_ref()
            .ok_or_else(|| err(file, ln, 1, "missing @classLabel"))?;
        let fields: Vec<&str> = raw.split(':').collect();
        let found = fields.len().saturating_sub(1);
        let (dims, from) = match (dimensions, first_case) {
            (Some(d), _) => (d, "@dimensions".to_string()),
            (None, Some((d, l))) => (d, format!("the first case (line {l}; no @dimensions)")),
            (None, None) => {
                if found == 0 {
                    return Err(err(
                        file,
                        ln,
                        1,
                        "a case needs a dimension before its label",
                    ));
                }
                first_case = Some((found, ln));
                (found, String::new())
            }
        };
        if fields.len() != dims + 1 {
            return Err(err(
                file,
                ln,
                1,
                format!(
                    "{} fields: {found} dimensions and a label, but {from} has {dims} dimensions",
                    fields.len()
                ),
            ));
        }
        let mut col = 1;
        let mut case = Vec::with_capacity(dims);
        for field in &fields[..dims] {
            let mut values = Vec::new();
            let mut c = col;
            for tok in field.split(',') {
                let t = tok.trim();
                let v = if t == "?" || t.eq_ignore_ascii_case("nan") {
                    f64::NAN
                } else {
                    match t.parse::<f64>() {
                        Ok(v) if v.is_finite() => v,
                        _ => return Err(err(file, ln, c, format!("'{t}' is not a number or '?'"))),
                    }
                };
                values.push(v);
                c += tok.len() + 1;
            }
            if let (Some(true), Some(n)) = (equal_length, series_length) {
                if values.len() != n {
                    return Err(err(
                        file,
                        ln,
                        col,
                        format!("{} values, @seriesLength is {n}", values.len()),
                    ));
                }
            }
            col += field.len() + 1;
            case.push(values);
        }
        let label = fields[dims].trim();
        let index = classes.iter().position(|c| c == label).ok_or_else(|| {
            err(
                file,
                ln,
                col,
                format!("label '{label}' is not among the declared classes"),
            )
        })?;
        if let Some(first) = case.first().map(|v| v.len()) {
            if case.iter().any(|v| v.len() != first) {
                return Err(err(
                    file,
                    ln,
                    1,
                    "dimensions of one case have different lengths",
                ));
            }
        }
        series.push(case);
        labels.push(index);
    }
    if !in_data {
        return Err(err(file, lines.len().max(1), 1, "no @data section"));
    }
    if series.is_empty() {
        return Err(err(file, lines.len().max(1), 1, "no cases after @data"));
    }
    Ok(TsDataset {
        name,
        dimensions: dimensions.unwrap_or(series[0].len()),
        class_names: class_names.unwrap_or_default(),
        series,
        labels,
    })
}

/// Reads and parses a `.ts` file.
pub fn read_ts(path: &std::path::Path) -> Result<TsDataset> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::Io {
        path: path.display().to_string(),
        message: e.to_string(),
    })?;
    parse_ts(&text, &path.display().to_string())
}
