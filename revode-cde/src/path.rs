//! Controlled paths X(t) interpolated from batched, irregular, partly missing data.
//!
//! Every series in a batch shares one grid of observation times (variable lengths are padded with
//! NaN, which forward fill turns into "no change"). Each channel of each series becomes a
//! piecewise cubic on the grid, stored as coefficients per interval, so evaluation, derivative
//! and increment are exact polynomial evaluations.

use revode_core::{Error, Result};
use serde::{Deserialize, Serialize};

/// How the path between knots is drawn.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Interpolation {
    /// Piecewise linear: exact for lines.
    Linear,
    /// Causal step path: holds the last observation and jumps to the next one at its time
    /// (right-continuous); a time channel, if added, still moves linearly. Increments over a step
    /// that crosses a knot include the jump, so it suits increment-based CDE steps and online use.
    Rectilinear,
    /// Cubic Hermite with backward-difference slopes at the knots (the default): C¹, uses no data
    /// beyond the interval's right knot; exact for lines.
    HermiteCubic,
    /// Natural cubic spline (C², zero curvature at the ends; non-causal: a tridiagonal solve over
    /// the whole series); exact for lines.
    NaturalCubic,
}

/// What to do with a channel that has no observation at all.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum AllMissing {
    /// Report an error naming the series and the channel.
    Error,
    /// Use zeros.
    Zeros,
}

/// Options of [`Path::new`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PathOptions {
    /// Interpolation scheme.
    pub interpolation: Interpolation,
    /// Channels with no observation.
    pub all_missing: AllMissing,
    /// Prepend time as channel 0.
    pub time_channel: bool,
    /// Append, per input channel, the cumulative number of observations so far divided by the
    /// number of observation times (an intensity in [0, 1]).
    pub count_channels: bool,
}

impl Default for PathOptions {
    fn default() -> Self {
        PathOptions {
            interpolation: Interpolation::HermiteCubic,
            all_missing: AllMissing::Error,
            time_channel: false,
            count_channels: false,
        }
    }
}

/// Raw data: `batch` series × `times.len()` observation times × `channels`, row-major; NaN marks a
/// missing value.
#[derive(Clone, Debug, PartialEq)]
pub struct PathData {
    /// Shared observation times, strictly increasing.
    pub times: Vec<f64>,
    /// Number of series.
    pub batch: usize,
    /// Channels per observation.
    pub channels: usize,
    /// `batch × times × channels` values.
    pub values: Vec<f64>,
}

/// A batch of interpolated paths with `channels()` output channels.
#[derive(Clone, Debug)]
pub struct Path {
    interpolation: Interpolation,
    times: Vec<f64>,
    batch: usize,
    channels: usize,
    /// `batch × channels × intervals` cubic coefficients (a, b, c, d) in s = t − t_k.
    coeffs: Vec<[f64; 4]>,
    /// Value at the last knot (the step path's right end), `batch × channels`.
    last: Vec<f64>,
    /// Data channels and the path channel of the first one (after the time channel).
    data_channels: usize,
    data_offset: usize,
}

/// Fills one channel in place: leading NaN take the first observation, interior NaN are
/// interpolated linearly in time, trailing NaN keep the last observation. Returns false when
/// the channel has no observation.
fn fill(times: &[f64], v: &mut [f64]) -> bool {
    let obs: Vec<usize> = (0..v.len()).filter(|&k| v[k].is_finite()).collect();
    let (Some(&first), Some(&last)) = (obs.first(), obs.last()) else {
        return false;
    };
    for k in 0..first {
        v[k] = v[first];
    }
    for k in last + 1..v.len() {
        v[k] = v[last];
    }
    for w in obs.windows(2) {
        let (i, j) = (w[0], w[1]);
        for k in i + 1..j {
            let s = (times[k] - times[i]) / (times[j] - times[i]);
            v[k] = v[i] + s * (v[j] - v[i]);
        }
    }
    true
}

/// Cubic coefficients of one filled channel.
fn coefficients(interp: Interpolation, t: &[f64], v: &[f64], time_like: bool) -> Vec<[f64; 4]> {
    let n = t.len() - 1;
    let h: Vec<f64> = t.windows(2).map(|w| w[1] - w[0]).collect();
    let slope: Vec<f64> = (0..n).map(|k| (v[k + 1] - v[k]) / h[k]).collect();
    let hermite = |m0: f64, m1: f64, k: usize| {
        let (d, hk) = (slope[k], h[k]);
        [
            v[k],
            m0,
            (3.0 * d - 2.0 * m0 - m1) / hk,
            (m0 + m1 - 2.0 * d) / (hk * hk),
        ]
    };
    match interp {
        Interpolation::Linear => (0..n).map(|k| [v[k], slope[k], 0.0, 0.0]).collect(),
        Interpolation::Rectilinear if time_like => {
            (0..n).map(|k| [v[k], slope[k], 0.0, 0.0]).collect()
        }
        Interpolation::Rectilinear => (0..n).map(|k| [v[k], 0.0, 0.0, 0.0]).collect(),
        Interpolation::HermiteCubic => (0..n)
            .map(|k| {
                // Slope at t_k: the backward difference (the first interval's own slope at k = 0);
                // at t_{k+1}: this interval's slope. Lines are reproduced exactly.
                let m0 = if k == 0 { slope[0] } else { slope[k - 1] };
                hermite(m0, slope[k], k)
            })
            .collect(),
        Interpolation::NaturalCubic => {
            // Second derivatives M with M_0 = M_n = 0: tridiagonal system (Thomas algorithm).
            let mut m = vec![0.0; n + 1];
            if n >= 2 {
                let size = n - 1;
                let (mut diag, mut rhs) = (vec![0.0; size], vec![0.0; size]);
                let off: Vec<f64> = (0..size).map(|i| h[i + 1]).collect();
                for i in 0..size {
                    diag[i] = 2.0 * (h[i] + h[i + 1]);
                    rhs[i] = 6.0 * (slope[i + 1] - slope[i]);
                }
                for i in 1..size {
                    let w = off[i - 1] / diag[i - 1];
                    diag[i] -= w * off[i - 1];
                    rhs[i] -= w * rhs[i - 1];
                }
                for i in (0..size).rev() {
                    let upper = if i + 1 < size { off[i] * m[i + 2] } else { 0.0 };
                    m[i + 1] = (rhs[i] - upper) / diag[i];
                }
            }
            (0..n)
                .map(|k| {
                    let b = slope[k] - h[k] * (2.0 * m[k] + m[k + 1]) / 6.0;
                    [v[k], b, m[k] / 2.0, (m[k + 1] - m[k]) / (6.0 * h[k])]
                })
                .collect()
        }
    }
}

impl Path {
    /// Interpolates `data` (see [`PathOptions`] for the channels added and missing values).
    pub fn new(data: &PathData, opts: &PathOptions) -> Result<Path> {
        let k = data.times.len();
        if k < 2 {
            return Err(Error::Empty {
                what: "path observation times (need at least two)".into(),
            });
        }
        revode_core::solve::validate_times(&data.times)?;
        if data.batch == 0 || data.channels == 0 {
            return Err(Error::Empty {
                what: "path batch or channels".into(),
            });
        }
        let expected = data.batch * k * data.channels;
        if data.values.len() != expected {
            return Err(Error::ShapeMismatch {
                what: "path values (batch × times × channels)".into(),
                expected,
                found: data.values.len(),
            });
        }
        if let Some(i) = data.values.iter().position(|v| v.is_infinite()) {
            return Err(Error::NonFinite {
                what: "path values (±∞; NaN marks missing)".into(),
                index: i,
            });
        }
        let c_in = data.channels;
        let out_ch = c_in + opts.time_channel as usize + if opts.count_channels { c_in } else { 0 };
        let n = k - 1;
        let mut coeffs = Vec::with_capacity(data.batch * out_ch * n);
        let mut last = Vec::with_capacity(data.batch * out_ch);
        let mut column = vec![0.0; k];
        for s in 0..data.batch {
            let mut push = |col: &[f64], time_like: bool| {
                coeffs.extend(coefficients(
                    opts.interpolation,
                    &data.times,
                    col,
                    time_like,
                ));
                last.push(col[k - 1]);
            };
            if opts.time_channel {
                push(&data.times, true);
            }
            let mut counts: Vec<Vec<f64>> = Vec::new();
            for c in 0..c_in {
                for (i, slot) in column.iter_mut().enumerate() {
                    *slot = data.values[(s * k + i) * c_in + c];
                }
                if opts.count_channels {
                    let mut seen = 0.0;
                    let scale = 1.0 / k as f64;
                    counts.push(
                        column
                            .iter()
                            .map(|v| {
                                if v.is_finite() {
                                    seen += scale;
                                }
                                seen
                            })
                            .collect(),
                    );
                }
                if !fill(&data.times, &mut column) {
                    match opts.all_missing {
                        AllMissing::Zeros => column.iter_mut().for_each(|v| *v = 0.0),
                        AllMissing::Error => {
                            return Err(Error::config(
                                "path data",
                                format!("series {s}, channel {c} has no observation (use AllMissing::Zeros to accept zeros)"),
                            ))
                        }
                    }
                }
                push(&column, false);
            }
            for col in &counts {
                push(col, false);
            }
        }
        Ok(Path {
            interpolation: opts.interpolation,
            times: data.times.clone(),
            batch: data.batch,
            channels: out_ch,
            coeffs,
            last,
            data_channels: c_in,
            data_offset: opts.time_channel as usize,
        })
    }

    /// Series in the batch.
    pub fn batch(&self) -> usize {
        self.batch
    }
    /// Output channels (time and count channels included).
    pub fn channels(&self) -> usize {
        self.channels
    }
    /// The knots (observation times): adaptive steps should stop on them.
    pub fn knots(&self) -> &[f64] {
        &self.times
    }
    /// The interval [t_0, t_K] on which the path is defined.
    pub fn domain(&self) -> (f64, f64) {
        (self.times[0], self.times[self.times.len() - 1])
    }
    /// The interpolation scheme.
    pub fn interpolation(&self) -> Interpolation {
        self.interpolation
    }

    fn locate(&self, t: f64) -> Result<usize> {
        let (a, b) = self.domain();
        if !(t >= a && t <= b) {
            return Err(Error::OutsideDomain {
                what: "the CDE path".into(),
                t,
                start: a,
                end: b,
            });
        }
        Ok(self
            .times
            .partition_point(|&s| s <= t)
            .clamp(1, self.times.len() - 1)
            - 1)
    }

    fn intervals(&self) -> usize {
        self.times.len() - 1
    }

    /// The series `rows` (in that order) as a path of their own, without re-interpolating:
    /// their coefficients are copied (a minibatch of a path built once).
    pub fn select(&self, rows: &[usize]) -> Result<Path> {
        if let Some(&bad) = rows.iter().find(|&&r| r >= self.batch) {
            return Err(Error::config(
                "path rows",
                format!("series {bad} of a batch of {}", self.batch),
            ));
        }
        if rows.is_empty() {
            return Err(Error::Empty {
                what: "path rows".into(),
            });
        }
        let per = self.channels * self.intervals();
        let mut coeffs = Vec::with_capacity(rows.len() * per);
        let mut last = Vec::with_capacity(rows.len() * self.channels);
        for &r in rows {
            coeffs.extend_from_slice(&self.coeffs[r * per..(r + 1) * per]);
            last.extend_from_slice(&self.last[r * self.channels..(r + 1) * self.channels]);
        }
        Ok(Path {
            batch: rows.len(),
            coeffs,
            last,
            times: self.times.clone(),
            ..*self
        })
    }

    /// X(t) for every series and channel (`batch × channels`, row-major).
    pub fn evaluate(&self, t: f64, out: &mut [f64]) -> Result<()> {
        self.check_out(out)?;
        let k = self.locate(t)?;
        for (i, o) in out.iter_mut().enumerate() {
            *o = self.value(i, k, t);
        }
        Ok(())
    }

    /// dX/dt at t (`batch × channels`); the step path's jumps are not included (use increments).
    pub fn derivative(&self, t: f64, out: &mut [f64]) -> Result<()> {
        self.check_out(out)?;
        let k = self.locate(t)?;
        let s = t - self.times[k];
        for (i, o) in out.iter_mut().enumerate() {
            let [_, b, c, d] = self.coeffs[i * self.intervals() + k];
            *o = b + s * (2.0 * c + 3.0 * s * d);
        }
        Ok(())
    }

    /// X(t_b) − X(t_a) for any order of t_a, t_b (reversed order gives exactly the negative).
    pub fn increment(&self, t_a: f64, t_b: f64, out: &mut [f64]) -> Result<()> {
        self.check_out(out)?;
        let (ka, kb) = (self.locate(t_a)?, self.locate(t_b)?);
        for (i, o) in out.iter_mut().enumerate() {
            *o = self.value(i, kb, t_b) - self.value(i, ka, t_a);
        }
        Ok(())
    }

    /// Number of data values the path was built from (`batch × times × data channels`): the
    /// length of the buffer [`Path::increment_data_vjp`] accumulates into.
    pub fn data_len(&self) -> usize {
        self.batch * self.times.len() * self.data_channels
    }

    /// Pullback of [`Path::increment`] with respect to the data: `data_bar += (∂ΔX/∂v)ᵀ cot`,
    /// with `cot` shaped `batch × channels` and `data_bar` shaped like [`PathData::values`].
    ///
    /// The derivative is taken with respect to the knot values after missing values were
    /// filled (for complete data, the data themselves); the time and count channels carry no
    /// data gradient. Linear, rectilinear and backward-Hermite paths are local in their knots;
    /// the natural cubic spline is global and not supported (an error).
    pub fn increment_data_vjp(
        &self,
        t_a: f64,
        t_b: f64,
        cot: &[f64],
        data_bar: &mut [f64],
    ) -> Result<()> {
        self.value_data_vjp(t_b, 1.0, cot, data_bar)?;
        self.value_data_vjp(t_a, -1.0, cot, data_bar)
    }

    /// Pullback of [`Path::evaluate`] with respect to the data: `data_bar += (∂X(t)/∂v)ᵀ cot`
    /// (e.g. an initial-condition encoder reading `X(t₀)`); as [`Path::increment_data_vjp`].
    pub fn evaluate_data_vjp(&self, t: f64, cot: &[f64], data_bar: &mut [f64]) -> Result<()> {
        self.value_data_vjp(t, 1.0, cot, data_bar)
    }

    /// `data_bar += sign · (∂X(t)/∂v)ᵀ cot`.
    fn value_data_vjp(&self, t: f64, sign: f64, cot: &[f64], data_bar: &mut [f64]) -> Result<()> {
        self.check_out(cot)?;
        if data_bar.len() != self.data_len() {
            return Err(Error::ShapeMismatch {
                what: "path data cotangent (batch × times × channels)".into(),
                expected: self.data_len(),
                found: data_bar.len(),
            });
        }
        if self.interpolation == Interpolation::NaturalCubic {
            return Err(Error::Unsupported(
                "data gradients of natural cubic splines (global in the knots); use Hermite".into(),
            ));
        }
        let weights = self.knot_weights(self.locate(t)?, t);
        let (k, c_in) = (self.times.len(), self.data_channels);
        for s in 0..self.batch {
            for c in 0..c_in {
                let g = sign * cot[s * self.channels + self.data_offset + c];
                if g == 0.0 {
                    continue;
                }
                for &(j, w) in weights.iter().flatten() {
                    data_bar[(s * k + j) * c_in + c] += g * w;
                }
            }
        }
        Ok(())
    }

    /// The weights of X(t) (t in interval k) on the knot values of a data channel: X(t) is
    /// linear in them and, for the local schemes, depends on at most three knots.
    fn knot_weights(&self, k: usize, t: f64) -> [Option<(usize, f64)>; 3] {
        let n = self.times.len() - 1;
        if t == self.times[n] {
            return [Some((n, 1.0)), None, None];
        }
        let h = self.times[k + 1] - self.times[k];
        let s = t - self.times[k];
        match self.interpolation {
            Interpolation::Rectilinear => [Some((k, 1.0)), None, None],
            Interpolation::HermiteCubic if k > 0 => {
                // X = v_k + s·m0 + (d − m0)·ψ with d = (v_{k+1} − v_k)/h,
                // m0 = (v_k − v_{k−1})/h_{k−1}, ψ = 2s²/h − s³/h².
                let hp = self.times[k] - self.times[k - 1];
                let psi = 2.0 * s * s / h - s * s * s / (h * h);
                let back = (s - psi) / hp;
                [
                    Some((k - 1, -back)),
                    Some((k, 1.0 - psi / h + back)),
                    Some((k + 1, psi / h)),
                ]
            }
            // Linear, and Hermite on the first interval (where it is the line).
            _ => [Some((k, 1.0 - s / h)), Some((k + 1, s / h)), None],
        }
    }

    /// Channel `i` (series-major) at t in interval k.
    #[inline]
    fn value(&self, i: usize, k: usize, t: f64) -> f64 {
        if t == self.times[self.times.len() - 1] {
            return self.last[i];
        }
        let s = t - self.times[k];
        let [a, b, c, d] = self.coeffs[i * self.intervals() + k];
        a + s * (b + s * (c + s * d))
    }

    fn check_out(&self, out: &[f64]) -> Result<()> {
        let expected = self.batch * self.channels;
        if out.len() != expected {
            return Err(Error::ShapeMismatch {
                what: "path output buffer".into(),
                expected,
                found: out.len(),
            });
        }
        Ok(())
    }
}
