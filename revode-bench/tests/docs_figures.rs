//! Figures quoted in README.md and docs/src are read from the committed results, never copied
//! by hand: each quoted number is followed by a marker
//!
//! ```text
//! 0.45 ms<!-- figure: docs/results/complexity/complexity.json rows[method=direct,n=1000]/median_s ×1000 -->
//! ```
//!
//! naming the results file, a path into its JSON (object keys, array indices, or an array
//! filtered by `key=value` or `key~substring` conditions), and an optional scale. The test fails when the number before
//! a marker, at the precision it is quoted, differs from its source, or when a marker's source
//! is missing.

use serde_json::Value;
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Follows `path` (segments split by '/'; `name[k=v,…]` picks the one element of array `name`
/// whose fields match) through `v`.
fn select<'a>(mut v: &'a Value, path: &str) -> Result<&'a Value, String> {
    for seg in path.split('/').filter(|s| !s.is_empty()) {
        let (key, filter) = match seg.split_once('[') {
            Some((k, f)) => (k, Some(f.trim_end_matches(']'))),
            None => (seg, None),
        };
        if !key.is_empty() {
            v = match (v, key.parse::<usize>()) {
                (Value::Array(a), Ok(i)) => a.get(i),
                _ => v.get(key),
            }
            .ok_or_else(|| format!("no '{key}'"))?;
        }
        if let Some(f) = filter {
            // `k=v`: field k equals v; `k~v`: field k contains v.
            let conds: Vec<(&str, bool, &str)> = f
                .split(',')
                .filter_map(|c| {
                    c.split_once('=')
                        .map(|(k, w)| (k, true, w))
                        .or_else(|| c.split_once('~').map(|(k, w)| (k, false, w)))
                })
                .collect();
            let arr = v
                .as_array()
                .ok_or_else(|| format!("'{key}' is not an array"))?;
            let hits: Vec<&Value> = arr
                .iter()
                .filter(|e| {
                    conds.iter().all(|(k, exact, want)| {
                        let field = match k.parse::<usize>() {
                            Ok(i) => e.get(i),
                            Err(_) => e.get(*k),
                        };
                        field.is_some_and(|x| {
                            let text = match x {
                                Value::String(s) => s.clone(),
                                other => other.to_string(),
                            };
                            if *exact {
                                text == *want
                            } else {
                                text.contains(want)
                            }
                        })
                    })
                })
                .collect();
            match hits.as_slice() {
                [one] => v = one,
                _ => return Err(format!("{} elements match [{f}]", hits.len())),
            }
        }
    }
    Ok(v)
}

/// The last number in `text` and its count of decimals (`1.00` → (1.0, 2); `2.8e-3` → exact;
/// `-6.7` → −6.7).
fn last_number(text: &str) -> Option<(f64, Option<usize>)> {
    let bytes: Vec<char> = text.chars().collect();
    let mut end = bytes.len();
    // Skip a unit or symbol directly before the marker (e.g. " ms", "×", " %", " KiB").
    while end > 0 && !bytes[end - 1].is_ascii_digit() {
        end -= 1;
        if text.len() - end > 12 {
            return None;
        }
    }
    let mut start = end;
    while start > 0 && (bytes[start - 1].is_ascii_digit() || ".e-".contains(bytes[start - 1])) {
        start -= 1;
    }
    let s: String = bytes[start..end].iter().collect();
    // A leading minus is a sign after a space, bar or parenthesis ("| -6.7", not "2^-3").
    let negative = s.starts_with('-') && (start == 0 || " |(".contains(bytes[start - 1]));
    let s = s.trim_start_matches(['e', '-']);
    let value: f64 = s.parse::<f64>().ok()? * if negative { -1.0 } else { 1.0 };
    let decimals = if s.contains('e') {
        None
    } else {
        Some(s.split_once('.').map_or(0, |(_, d)| d.len()))
    };
    Some((value, decimals))
}

struct Marker {
    file: String,
    line: usize,
    quoted: f64,
    decimals: Option<usize>,
    source: String,
    path: String,
    scale: f64,
}

fn markers(file: &Path) -> Vec<Marker> {
    let text = std::fs::read_to_string(file).unwrap_or_default();
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let mut rest = line;
        let mut before = String::new();
        while let Some(at) = rest.find("<!-- figure:") {
            before.push_str(&rest[..at]);
            let Some(close) = rest[at..].find("-->") else {
                break;
            };
            let spec = rest[at + "<!-- figure:".len()..at + close].trim();
            rest = &rest[at + close + 3..];
            let mut parts = spec.split_whitespace();
            let source = parts.next().unwrap_or_default().to_string();
            let path = parts.next().unwrap_or_default().to_string();
            let scale = parts
                .next()
                .and_then(|s| s.trim_start_matches('×').parse().ok())
                .unwrap_or(1.0);
            let (quoted, decimals) = last_number(&before).unwrap_or((f64::NAN, None));
            out.push(Marker {
                file: file.display().to_string(),
                line: i + 1,
                quoted,
                decimals,
                source,
                path,
                scale,
            });
        }
    }
    out
}

#[test]
fn quoted_figures_match_their_results() {
    let root = root();
    let mut files = vec![root.join("README.md")];
    for e in std::fs::read_dir(root.join("docs/src")).unwrap().flatten() {
        if e.path().extension().is_some_and(|x| x == "md") {
            files.push(e.path());
        }
    }
    let mut checked = 0;
    let mut bad = Vec::new();
    for f in &files {
        for m in markers(f) {
            let at = format!("{}:{}", m.file, m.line);
            let json: Value = match std::fs::read_to_string(root.join(&m.source))
                .map_err(|e| e.to_string())
                .and_then(|t| serde_json::from_str(&t).map_err(|e| e.to_string()))
            {
                Ok(v) => v,
                Err(e) => {
                    bad.push(format!("{at}: {}: {e}", m.source));
                    continue;
                }
            };
            let value = match select(&json, &m.path).map(|v| v.as_f64()) {
                Ok(Some(v)) => v * m.scale,
                Ok(None) => {
                    bad.push(format!("{at}: {} {} is not a number", m.source, m.path));
                    continue;
                }
                Err(e) => {
                    bad.push(format!("{at}: {} {}: {e}", m.source, m.path));
                    continue;
                }
            };
            let ok = match m.decimals {
                Some(d) => (m.quoted - value).abs() <= 0.5 * 10f64.powi(-(d as i32)) * (1.0 + 1e-9),
                None => (m.quoted - value).abs() <= 0.05 * value.abs(),
            };
            if !ok {
                bad.push(format!(
                    "{at}: quotes {} but {} {} gives {value}",
                    m.quoted, m.source, m.path
                ));
            }
            checked += 1;
        }
    }
    assert!(
        bad.is_empty(),
        "stale or broken figures:\n{}",
        bad.join("\n")
    );
    assert!(
        checked >= 4,
        "only {checked} marked figures: the check checks nothing"
    );
    eprintln!("{checked} quoted figures match their results");
}

#[test]
fn the_checker_catches_a_wrong_figure() {
    let json: Value = serde_json::json!({ "rows": [
        { "method": "direct", "n": 1000, "median_s": 0.00044788 },
        { "method": "reversible", "n": 1000, "median_s": 0.000969 },
    ]});
    let v = select(&json, "rows[method=reversible,n=1000]/median_s").unwrap();
    assert_eq!(v.as_f64(), Some(0.000969));
    assert!(
        select(&json, "rows[n=1000]/median_s").is_err(),
        "ambiguous filter"
    );
    let v = select(&json, "rows[method~rev]/median_s").unwrap();
    assert_eq!(v.as_f64(), Some(0.000969));
    assert_eq!(last_number("takes 1.00 ms"), Some((1.0, Some(2))));
    assert_eq!(last_number("| 0.97×"), Some((0.97, Some(2))));
    assert_eq!(last_number("drift 5.9e9"), Some((5.9e9, None)));
    assert_eq!(last_number("| -6.7"), Some((-6.7, Some(1))));
    assert_eq!(last_number("h = 2^-3"), Some((3.0, Some(0))));
    // 1.00 ms quoted against 0.969 ms: 0.031 > 0.005, a stale figure.
    assert!((1.00f64 - 0.969).abs() > 0.5 * 10f64.powi(-2));
}
