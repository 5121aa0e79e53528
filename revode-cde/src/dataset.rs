//! Time-series data sets for classification and generation, held in ndarray: values as an
//! `Array3` (series × time × channels, NaN = missing), per-series observation times as an
//! `Array2` (series × time), optional labels and class names.
//!
//! Built from arrays ([`TimeSeries::new`]), a UEA `.ts` file ([`TimeSeries::from_ts`]) or CSV in
//! long or wide format ([`TimeSeries::from_csv_long`], [`TimeSeries::from_csv_wide`]). It fits
//! channel standardisation on a training split and applies it to others, splits stratified by
//! class with a seed, drops observations with a seed, iterates minibatches with a seed, and
//! converts any subset of its series to [`PathData`] (on the union of their observation times).

use crate::ts::TsDataset;
use crate::PathData;
use ndarray::{s, Array2, Array3, Axis};
use revode_core::random::SplitMix64;
use revode_core::{Error, Result};

/// A time-series data set ([module docs](self)).
#[derive(Clone, Debug, PartialEq)]
pub struct TimeSeries {
    /// Series × time × channels; NaN marks a missing value (and pads shorter series).
    pub values: Array3<f64>,
    /// Series × time observation times, finite and strictly increasing along each row.
    pub times: Array2<f64>,
    /// The class of each series, when the data are labelled.
    pub labels: Option<Vec<usize>>,
    /// Class names (index = label).
    pub class_names: Vec<String>,
}

/// Per-channel mean and standard deviation, fitted on one split and applied to others.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Standardiser {
    /// Channel means.
    pub mean: Vec<f64>,
    /// Channel standard deviations (population; at least 1e-12).
    pub std: Vec<f64>,
}

fn invalid(message: impl Into<String>) -> Error {
    Error::config("time-series data set", message)
}

/// The trimmed header cells of a CSV file.
fn csv_header<R: std::io::Read>(r: &mut csv::Reader<R>) -> Result<Vec<String>> {
    Ok(r.headers()
        .map_err(|e| invalid(format!("CSV header: {e}")))?
        .iter()
        .map(|h| h.trim().to_string())
        .collect())
}

/// A seeded Fisher–Yates permutation of `0..n`.
fn permutation(n: usize, rng: &mut SplitMix64) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..n).collect();
    for i in (1..n).rev() {
        let j = ((rng.uniform() * (i + 1) as f64) as usize).min(i);
        idx.swap(i, j);
    }
    idx
}

/// Splits each group by one seeded shuffle stream: round(`fraction` × its size) of it, in
/// shuffled order, go to validation. Both parts are returned sorted.
fn split_groups(groups: Vec<Vec<usize>>, fraction: f64, seed: u64) -> (Vec<usize>, Vec<usize>) {
    let mut rng = SplitMix64::new(seed);
    let (mut train, mut val) = (Vec::new(), Vec::new());
    for members in groups {
        let perm = permutation(members.len(), &mut rng);
        let nv = (fraction * members.len() as f64).round() as usize;
        for (pos, &p) in perm.iter().enumerate() {
            if pos < nv { &mut val } else { &mut train }.push(members[p]);
        }
    }
    train.sort_unstable();
    val.sort_unstable();
    (train, val)
}

impl TimeSeries {
    /// Checks and wraps arrays. `times` is series × time, or 1 × time for one grid shared by
    /// every series. Errors: empty data, mismatched shapes, non-finite or non-increasing times,
    /// ±∞ values, labels of the wrong count or past the class names.
    pub fn new(
        values: Array3<f64>,
        times: Array2<f64>,
        labels: Option<Vec<usize>>,
        class_names: Vec<String>,
    ) -> Result<Self> {
        let (n, k, c) = values.dim();
        if n == 0 || k == 0 || c == 0 {
            return Err(Error::Empty {
                what: format!("time-series values ({n} series × {k} times × {c} channels)"),
            });
        }
        let found = times.len();
        let times = match times.dim() {
            (1, kk) if kk == k => times.broadcast((n, k)).map(|t| t.to_owned()),
            (nn, kk) if nn == n && kk == k => Some(times),
            _ => None,
        }
        .ok_or_else(|| Error::ShapeMismatch {
            what: format!("observation times for {n} series × {k} times"),
            expected: n * k,
            found,
        })?;
        for (i, row) in times.outer_iter().enumerate() {
            if let Some(j) = row.iter().position(|t| !t.is_finite()) {
                return Err(Error::NonFinite {
                    what: format!("observation times of series {i}"),
                    index: j,
                });
            }
            if let Some(j) = (1..k).find(|&j| row[j] <= row[j - 1]) {
                return Err(invalid(format!(
                    "observation times of series {i} are not strictly increasing at index {j} \
                     ({} then {})",
                    row[j - 1],
                    row[j]
                )));
            }
        }
        if let Some(i) = values.iter().position(|v| v.is_infinite()) {
            return Err(Error::NonFinite {
                what: "time-series values (±∞; NaN marks missing)".into(),
                index: i,
            });
        }
        if let Some(l) = &labels {
            if l.len() != n {
                return Err(Error::ShapeMismatch {
                    what: "labels (one per series)".into(),
                    expected: n,
                    found: l.len(),
                });
            }
            if let Some(&bad) = l.iter().find(|&&x| x >= class_names.len()) {
                return Err(invalid(format!(
                    "label {bad} has no class name ({} classes)",
                    class_names.len()
                )));
            }
        }
        Ok(TimeSeries {
            values,
            times,
            labels,
            class_names,
        })
    }

    /// A `.ts` data set on the grid t_k = k / (K − 1), K the longest series; shorter series
    /// are padded with NaN (a path holds their last value). Two files of one task (train and
    /// test) need one grid: use [`TimeSeries::read_ts_pair`] or [`TimeSeries::from_ts_padded`],
    /// or the same sample index means different times in each.
    pub fn from_ts(d: &TsDataset) -> Result<Self> {
        Self::from_ts_padded(d, d.max_len())
    }

    /// A `.ts` data set on the grid t_k = k / (`len` − 1), `len` ≥ its longest series, padded
    /// with NaN.
    pub fn from_ts_padded(d: &TsDataset, len: usize) -> Result<Self> {
        let (n, c) = (d.series.len(), d.dimensions);
        if len < d.max_len() {
            return Err(invalid(format!(
                "grid of {len} times is shorter than the longest series ({})",
                d.max_len()
            )));
        }
        let k = len;
        let mut values = Array3::from_elem((n, k, c), f64::NAN);
        for (i, case) in d.series.iter().enumerate() {
            for (ch, v) in case.iter().enumerate() {
                for (t, &x) in v.iter().enumerate() {
                    values[[i, t, ch]] = x;
                }
            }
        }
        let grid = Array2::from_shape_fn((1, k), |(_, t)| t as f64 / (k.max(2) - 1) as f64);
        Self::new(values, grid, Some(d.labels.clone()), d.class_names.clone())
    }

    /// Reads a `.ts` file ([`crate::read_ts`]) into a data set ([`TimeSeries::from_ts`]).
    pub fn read_ts(path: &std::path::Path) -> Result<Self> {
        Self::from_ts(&crate::read_ts(path)?)
    }

    /// Reads the training and test `.ts` files of one task onto one grid t_k = k / (K − 1),
    /// K the longest series of either (e.g. JapaneseVowels: 26 in training, 29 in test), so
    /// that a time means the same in both. Their dimensions and class names must agree.
    pub fn read_ts_pair(train: &std::path::Path, test: &std::path::Path) -> Result<(Self, Self)> {
        let (a, b) = (crate::read_ts(train)?, crate::read_ts(test)?);
        if a.dimensions != b.dimensions || a.class_names != b.class_names {
            return Err(invalid(format!(
                "training and test files differ: {} vs {} dimensions, classes {:?} vs {:?}",
                a.dimensions, b.dimensions, a.class_names, b.class_names
            )));
        }
        let len = a.max_len().max(b.max_len());
        Ok((
            Self::from_ts_padded(&a, len)?,
            Self::from_ts_padded(&b, len)?,
        ))
    }

    /// Long CSV: a header `series,time,<channel>…[,label]`, one row per (series, time);
    /// series in order of first appearance, rows of a series in increasing time; an empty cell
    /// or `NaN` is missing. Series may have different times (the grid is per series; shorter
    /// ones are padded by repeating their last time + 1 with NaN values).
    pub fn from_csv_long(reader: impl std::io::Read) -> Result<Self> {
        let mut r = csv::Reader::from_reader(reader);
        let header = csv_header(&mut r)?;
        if header.len() < 3 || header[0] != "series" || header[1] != "time" {
            return Err(invalid(
                "long CSV needs a header 'series,time,<channel>…[,label]'",
            ));
        }
        let has_label = header.last().is_some_and(|h| h == "label");
        let c = header.len() - 2 - usize::from(has_label);
        if c == 0 {
            return Err(invalid("long CSV has no channel column"));
        }
        let mut ids: Vec<String> = Vec::new();
        let mut rows: Vec<Vec<(f64, Vec<f64>)>> = Vec::new();
        let mut label_of: Vec<Option<String>> = Vec::new();
        for (line, rec) in r.records().enumerate() {
            let rec = rec.map_err(|e| invalid(format!("CSV row {}: {e}", line + 2)))?;
            let cell = |j: usize| rec.get(j).unwrap_or("").trim();
            let num = |j: usize| -> Result<f64> {
                let s = cell(j);
                if s.is_empty() || s.eq_ignore_ascii_case("nan") {
                    return Ok(f64::NAN);
                }
                s.parse().map_err(|_| {
                    invalid(format!(
                        "CSV row {}, column '{}': '{s}' is not a number",
                        line + 2,
                        header[j]
                    ))
                })
            };
            let id = cell(0).to_string();
            let i = match ids.iter().position(|x| *x == id) {
                Some(i) => i,
                None => {
                    ids.push(id);
                    rows.push(Vec::new());
                    label_of.push(None);
                    ids.len() - 1
                }
            };
            let t = num(1)?;
            let v = (0..c).map(|j| num(2 + j)).collect::<Result<Vec<f64>>>()?;
            rows[i].push((t, v));
            if has_label {
                label_of[i] = Some(cell(header.len() - 1).to_string());
            }
        }
        let k = rows.iter().map(Vec::len).max().unwrap_or(0);
        let n = rows.len();
        let mut values = Array3::from_elem((n, k, c), f64::NAN);
        let mut times = Array2::zeros((n, k));
        for (i, r) in rows.iter().enumerate() {
            for (j, (t, v)) in r.iter().enumerate() {
                times[[i, j]] = *t;
                for (ch, x) in v.iter().enumerate() {
                    values[[i, j, ch]] = *x;
                }
            }
            let last = r.last().map_or(0.0, |x| x.0);
            for j in r.len()..k {
                times[[i, j]] = last + (j + 1 - r.len()) as f64;
            }
        }
        let (labels, names) = if has_label {
            Self::label_indices(label_of)?
        } else {
            (None, Vec::new())
        };
        Self::new(values, times, labels, names)
    }

    /// Wide CSV: one row per series; header cells `<channel>@<time>` (e.g. `x@0.5`), plus an
    /// optional `label` column; every series shares the times in the header.
    pub fn from_csv_wide(reader: impl std::io::Read) -> Result<Self> {
        let mut r = csv::Reader::from_reader(reader);
        let header = csv_header(&mut r)?;
        let mut channels: Vec<String> = Vec::new();
        let mut times: Vec<f64> = Vec::new();
        let mut cols: Vec<Option<(usize, usize)>> = Vec::new();
        let mut label_col = None;
        for (j, h) in header.iter().enumerate() {
            if h == "label" {
                label_col = Some(j);
                cols.push(None);
                continue;
            }
            let (ch, t) = h.split_once('@').ok_or_else(|| {
                invalid(format!("wide CSV column '{h}' is not '<channel>@<time>'"))
            })?;
            let t: f64 = t.parse().map_err(|_| {
                invalid(format!("wide CSV column '{h}': time '{t}' is not a number"))
            })?;
            let ci = channels.iter().position(|x| x == ch).unwrap_or_else(|| {
                channels.push(ch.to_string());
                channels.len() - 1
            });
            let ti = times.iter().position(|&x| x == t).unwrap_or_else(|| {
                times.push(t);
                times.len() - 1
            });
            cols.push(Some((ti, ci)));
        }
        let mut order: Vec<usize> = (0..times.len()).collect();
        order.sort_by(|&a, &b| times[a].total_cmp(&times[b]));
        let rank: Vec<usize> = {
            let mut r = vec![0; times.len()];
            for (pos, &o) in order.iter().enumerate() {
                r[o] = pos;
            }
            r
        };
        let records: Vec<csv::StringRecord> = r
            .records()
            .collect::<std::result::Result<_, _>>()
            .map_err(|e| invalid(format!("CSV: {e}")))?;
        let (n, k, c) = (records.len(), times.len(), channels.len());
        let mut values = Array3::from_elem((n, k, c), f64::NAN);
        let mut label_of = Vec::new();
        for (i, rec) in records.iter().enumerate() {
            for (j, col) in cols.iter().enumerate() {
                let cell = rec.get(j).unwrap_or("").trim();
                if let Some((ti, ci)) = col {
                    if !(cell.is_empty() || cell.eq_ignore_ascii_case("nan")) {
                        values[[i, rank[*ti], *ci]] = cell.parse().map_err(|_| {
                            invalid(format!(
                                "CSV row {}, column '{}': '{cell}' is not a number",
                                i + 2,
                                header[j]
                            ))
                        })?;
                    }
                }
            }
            label_of.push(label_col.map(|j| rec.get(j).unwrap_or("").trim().to_string()));
        }
        let sorted: Vec<f64> = order.iter().map(|&o| times[o]).collect();
        let grid = Array2::from_shape_vec((1, k), sorted).map_err(|e| invalid(e.to_string()))?;
        let (labels, names) = if label_col.is_some() {
            Self::label_indices(label_of)?
        } else {
            (None, Vec::new())
        };
        Self::new(values, grid, labels, names)
    }

    /// Class names in order of first appearance and each series' index among them.
    fn label_indices(raw: Vec<Option<String>>) -> Result<(Option<Vec<usize>>, Vec<String>)> {
        let mut names: Vec<String> = Vec::new();
        let mut labels = Vec::with_capacity(raw.len());
        for (i, l) in raw.into_iter().enumerate() {
            let l = l
                .filter(|s| !s.is_empty())
                .ok_or_else(|| invalid(format!("series {i} has no label")))?;
            labels.push(names.iter().position(|x| *x == l).unwrap_or_else(|| {
                names.push(l);
                names.len() - 1
            }));
        }
        Ok((Some(labels), names))
    }

    /// Number of series.
    pub fn len(&self) -> usize {
        self.values.dim().0
    }
    /// True when there are no series (never for a constructed data set).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Observation times per series (the padded length).
    pub fn time_len(&self) -> usize {
        self.values.dim().1
    }
    /// Channels.
    pub fn channels(&self) -> usize {
        self.values.dim().2
    }
    /// The labels, or an error saying the data set has none.
    pub fn labels(&self) -> Result<&[usize]> {
        self.labels
            .as_deref()
            .ok_or_else(|| invalid("the data set has no labels"))
    }

    /// The series `rows`, in that order.
    pub fn select(&self, rows: &[usize]) -> Result<Self> {
        if let Some(&bad) = rows.iter().find(|&&r| r >= self.len()) {
            return Err(invalid(format!("series {bad} of {}", self.len())));
        }
        Ok(TimeSeries {
            values: self.values.select(Axis(0), rows),
            times: self.times.select(Axis(0), rows),
            labels: self
                .labels
                .as_ref()
                .map(|l| rows.iter().map(|&r| l[r]).collect()),
            class_names: self.class_names.clone(),
        })
    }

    /// Channel means and deviations over the observed values of the series `rows`. A channel
    /// with no observation there is an error naming it.
    pub fn fit_standardiser(&self, rows: &[usize]) -> Result<Standardiser> {
        let (mut mean, mut std) = (Vec::new(), Vec::new());
        for ch in 0..self.channels() {
            let vals: Vec<f64> = rows
                .iter()
                .flat_map(|&i| self.values.slice(s![i, .., ch]).to_vec())
                .filter(|v| v.is_finite())
                .collect();
            if vals.is_empty() {
                return Err(invalid(format!(
                    "channel {ch} has no observation in the {} series to standardise on",
                    rows.len()
                )));
            }
            let n = vals.len() as f64;
            let m = vals.iter().sum::<f64>() / n;
            let var = vals.iter().map(|v| (v - m).powi(2)).sum::<f64>() / n;
            mean.push(m);
            std.push(var.sqrt().max(1e-12));
        }
        Ok(Standardiser { mean, std })
    }

    /// Applies `st` in place: x ← (x − mean) / std per channel.
    pub fn standardise(&mut self, st: &Standardiser) -> Result<()> {
        if st.mean.len() != self.channels() || st.std.len() != self.channels() {
            return Err(Error::ShapeMismatch {
                what: "standardiser channels".into(),
                expected: self.channels(),
                found: st.mean.len(),
            });
        }
        for mut lane in self.values.lanes_mut(Axis(2)) {
            for (ch, v) in lane.iter_mut().enumerate() {
                *v = (*v - st.mean[ch]) / st.std[ch];
            }
        }
        Ok(())
    }

    /// A split of the series into (train, validation), stratified by class: each class
    /// contributes round(`fraction` × its size) series, chosen by a seeded shuffle. Unlabelled
    /// data are one class (a plain seeded split).
    pub fn stratified_split(&self, fraction: f64, seed: u64) -> Result<(Vec<usize>, Vec<usize>)> {
        if !(0.0..1.0).contains(&fraction) {
            return Err(invalid(format!(
                "validation fraction {fraction} is outside [0, 1)"
            )));
        }
        let one_class = vec![0; self.len()];
        let labels = self.labels.as_deref().unwrap_or(&one_class);
        let classes = (0..self.class_names.len().max(1))
            .map(|class| (0..labels.len()).filter(|&i| labels[i] == class).collect())
            .collect();
        Ok(split_groups(classes, fraction, seed))
    }

    /// A split of the series into (train, validation) ignoring labels: round(`fraction` × n)
    /// series chosen by a seeded shuffle. Class proportions hold only on average; prefer
    /// [`TimeSeries::stratified_split`] for classification.
    pub fn random_split(&self, fraction: f64, seed: u64) -> Result<(Vec<usize>, Vec<usize>)> {
        if !(0.0..1.0).contains(&fraction) {
            return Err(invalid(format!(
                "validation fraction {fraction} is outside [0, 1)"
            )));
        }
        Ok(split_groups(
            vec![(0..self.len()).collect()],
            fraction,
            seed,
        ))
    }

    /// Drops each observation time of each series but its first (all channels at once) with
    /// probability `rate`, seeded: the values become NaN. An observation time is one where
    /// some channel is observed; padding and times a series never observed draw nothing, so
    /// the rate is of the points that exist.
    pub fn drop_points(&mut self, rate: f64, seed: u64) -> Result<()> {
        if !(0.0..1.0).contains(&rate) {
            return Err(invalid(format!("drop rate {rate} is outside [0, 1)")));
        }
        let mut rng = SplitMix64::new(seed ^ 0x2545_F491_4F6C_DD1D);
        for mut series in self.values.outer_iter_mut() {
            let mut observed = series
                .outer_iter_mut()
                .filter(|row| row.iter().any(|v| !v.is_nan()));
            observed.next(); // the first observation is kept
            for mut row in observed {
                if rng.uniform() < rate {
                    row.fill(f64::NAN);
                }
            }
        }
        Ok(())
    }

    /// Minibatches of `rows` for one epoch: a seeded shuffle (by `seed` and `epoch`) cut into
    /// batches of `batch` (the last may be smaller).
    pub fn minibatches(
        &self,
        rows: &[usize],
        batch: usize,
        seed: u64,
        epoch: u64,
    ) -> Result<Vec<Vec<usize>>> {
        if batch == 0 || rows.is_empty() {
            return Err(invalid(
                "minibatches need a batch size ≥ 1 and at least one series",
            ));
        }
        let mut rng = SplitMix64::new(seed ^ epoch.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let perm = permutation(rows.len(), &mut rng);
        Ok(perm
            .chunks(batch)
            .map(|c| c.iter().map(|&p| rows[p]).collect())
            .collect())
    }

    /// The series `rows` as [`PathData`] on the union of their observation times (a series
    /// has NaN at times it does not observe).
    pub fn to_path_data(&self, rows: &[usize]) -> Result<PathData> {
        let sub = self.select(rows)?;
        let mut grid: Vec<f64> = sub.times.iter().copied().collect();
        grid.sort_by(f64::total_cmp);
        grid.dedup();
        let (n, k, c) = sub.values.dim();
        let mut values = vec![f64::NAN; n * grid.len() * c];
        for i in 0..n {
            for j in 0..k {
                let g = grid
                    .binary_search_by(|x| x.total_cmp(&sub.times[[i, j]]))
                    .map_err(|_| invalid("observation time missing from the grid"))?;
                for ch in 0..c {
                    values[(i * grid.len() + g) * c + ch] = sub.values[[i, j, ch]];
                }
            }
        }
        Ok(PathData {
            times: grid,
            batch: n,
            channels: c,
            values,
        })
    }

    /// The series `rows` as an interpolated [`Path`](crate::Path) with their labels (empty
    /// when the data set has none).
    pub fn path(
        &self,
        rows: &[usize],
        opts: &crate::PathOptions,
    ) -> Result<(crate::Path, Vec<usize>)> {
        let path = crate::Path::new(&self.to_path_data(rows)?, opts)?;
        let labels = match &self.labels {
            Some(l) => rows.iter().map(|&r| l[r]).collect(),
            None => Vec::new(),
        };
        Ok((path, labels))
    }
}
