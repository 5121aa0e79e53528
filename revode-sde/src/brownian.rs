//! A Brownian path regenerated from one seed: any query, any order, bitwise the same answer.
//!
//! The path lives on a binary tree over `[t0, t1]` (a "virtual Brownian tree"). `W(t0) = 0`,
//! `W(t1) = √T·Z_root`, and the value at the midpoint of a node with endpoint values `(W_l, W_r)`
//! and width `Δ` is the exact Brownian-bridge draw `½(W_l + W_r) + ½√Δ·Z_node`. Every `Z` is
//! keyed by the node's position in the tree through a counter-based generator (ChaCha8 with the
//! node's heap index as its stream), so a value depends only on the seed and the node — never
//! on which queries came before, the cache or the thread. Normals come from Box–Muller on a
//! fixed two words each (rand_distr's samplers consume a variable number of words, which would
//! tie a node's draw to its neighbours').
//!
//! `levels` sets the resolution: the law is exact at every dyadic time `t0 + kT/2^levels`;
//! inside a finest interval the path is linear (its error is below `√(T/2^levels)`). Queries
//! reuse the descent of the previous query (one cached root-to-leaf stack), so sequential
//! sweeps in either direction cost O(1) node draws per query and memory stays
//! `O(levels × batch × channels)` whatever the number of queries.
//!
//! Optionally ([`BrownianPath::with_space_time_levy_area`]) every node also carries its
//! space-time Lévy area `H_{s,t} = (1/h)∫_s^t (W_r − W_s − (r−s)/h·W_{s,t}) dr`, `h = t − s`
//! (law `N(0, h/12)`, independent of `W_{s,t}`). A node splits at its midpoint by the exact
//! conditional law given `(W, H)` (derived from the bridge's covariance; METHOD.md §6's notation):
//! `W_{s,m} = ½W + 3⁄2·H + Z`, `H_{s,m} = ¼H − ½Z + X`, `H_{m,t} = ¼H − ½Z − X` with
//! `Z ~ N(0, h/16)`, `X ~ N(0, h/48)`. Inside a finest interval the path is its conditional
//! mean given the interval's `(W, H)`, `W_s + σW + 6σ(1−σ)H`; the Lévy area of any interval
//! comes from the running integral `∫_{t0}^t W`. The increments of such a path are Brownian
//! but differ from those of the plain path with the same seed.

use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use revode_core::{scalar::Real, Error, Result};
use std::sync::Mutex;

/// Finest supported resolution (levels of the tree).
pub const MAX_LEVELS: u32 = 48;

/// Default resolution: `T/2^30`, far below any step a solver takes.
pub const DEFAULT_LEVELS: u32 = 30;

/// A seeded Brownian path of shape `batch × channels` on `[t0, t1]`.
#[derive(Debug)]
pub struct BrownianPath {
    t0: f64,
    t1: f64,
    batch: usize,
    channels: usize,
    levels: u32,
    seed: u64,
    end: Vec<f64>,
    /// Lévy area of the whole interval (empty without Lévy area).
    end_area: Vec<f64>,
    cache: Mutex<Descent>,
}

/// Streams of the Lévy-area draws `X` (the bit keeps them apart from the nodes' `Z` streams;
/// node heap indices stay below `2^49`).
const AREA_STREAM: u64 = 1 << 62;

/// The cached root-to-leaf descent of the latest query.
#[derive(Debug, Clone)]
struct Descent {
    /// Per level: node index, left and right endpoint values.
    index: Vec<u64>,
    left: Vec<Vec<f64>>,
    right: Vec<Vec<f64>>,
    /// Per level, with Lévy area (else empty): the node's Lévy area and `∫_{t0}^{t_left} W`.
    area: Vec<Vec<f64>>,
    prefix: Vec<Vec<f64>>,
    /// Levels of the stack that are valid.
    depth: usize,
    /// Query scratch.
    tmp: Vec<f64>,
    tmp2: Vec<f64>,
    /// Tree nodes drawn so far (cost counter).
    draws: u64,
    /// The two most recent answers `(t, W(t))`: a step's end is the next step's start, and the
    /// reversible schemes query each step forwards and backwards.
    recent: [(f64, Vec<f64>); 2],
    /// `∫_{t0}^t W` of the recent answers (with Lévy area).
    recent_integral: [Vec<f64>; 2],
    /// Which entry of `recent` to overwrite next.
    next: usize,
    /// Scratch for the `X` draws and the running integral (with Lévy area).
    draws_x: Vec<f64>,
    split: Vec<f64>,
    integral: Vec<f64>,
    integral2: Vec<f64>,
}

impl Clone for BrownianPath {
    fn clone(&self) -> Self {
        let cache = self
            .cache
            .lock()
            .map(|c| c.clone())
            .unwrap_or_else(|e| e.into_inner().clone());
        BrownianPath {
            end: self.end.clone(),
            end_area: self.end_area.clone(),
            cache: Mutex::new(cache),
            ..*self
        }
    }
}

impl BrownianPath {
    /// A path on `[t0, t1]` for `batch` samples × `channels` noise channels, at the default
    /// resolution. Errors: [`Error::InvalidInterval`] unless `t0 < t1`, both finite;
    /// [`Error::Config`] (key "Brownian path interval") when `t1 − t0` overflows or exceeds
    /// about 3e203 (beyond it the running integral behind the Lévy area, of order `T^{3/2}`,
    /// is not representable); [`Error::Config`] for an empty shape or levels outside
    /// `1..=MAX_LEVELS`.
    pub fn new(t0: f64, t1: f64, batch: usize, channels: usize, seed: u64) -> Result<Self> {
        Self::with_levels(t0, t1, batch, channels, seed, DEFAULT_LEVELS)
    }

    /// [`BrownianPath::new`] with an explicit resolution: exact law on the dyadic grid of
    /// `2^levels` intervals, linear inside them.
    pub fn with_levels(
        t0: f64,
        t1: f64,
        batch: usize,
        channels: usize,
        seed: u64,
        levels: u32,
    ) -> Result<Self> {
        if !(t0.is_finite() && t1.is_finite() && t0 < t1) {
            return Err(Error::InvalidInterval { t0, t1 });
        }
        check_scale(t0, t1)?;
        if batch == 0 || channels == 0 {
            return Err(Error::config(
                "brownian shape",
                format!("batch ({batch}) and channels ({channels}) must be positive"),
            ));
        }
        if levels == 0 || levels > MAX_LEVELS {
            return Err(Error::config(
                "brownian levels",
                format!("{levels} must lie in 1..={MAX_LEVELS}"),
            ));
        }
        let n = batch * channels;
        let mut end = vec![0.0; n];
        normals(seed, 0, &mut end);
        let sd = (t1 - t0).sqrt();
        end.iter_mut().for_each(|v| *v *= sd);
        let levels_us = levels as usize;
        let cache = Descent {
            index: vec![0; levels_us],
            left: vec![vec![0.0; n]; levels_us],
            right: vec![vec![0.0; n]; levels_us],
            area: Vec::new(),
            prefix: Vec::new(),
            depth: 0,
            tmp: vec![0.0; n],
            tmp2: vec![0.0; n],
            draws: 0,
            recent: [(f64::NAN, vec![0.0; n]), (f64::NAN, vec![0.0; n])],
            recent_integral: [Vec::new(), Vec::new()],
            next: 0,
            draws_x: Vec::new(),
            split: Vec::new(),
            integral: Vec::new(),
            integral2: Vec::new(),
        };
        Ok(BrownianPath {
            t0,
            t1,
            batch,
            channels,
            levels,
            seed,
            end,
            end_area: Vec::new(),
            cache: Mutex::new(cache),
        })
    }

    /// The same domain, shape, seed and resolution with space-time Lévy area on every node
    /// (see the module docs): a different, equally Brownian path, answering
    /// [`BrownianPath::levy_area`] as well as increments.
    pub fn with_space_time_levy_area(self) -> Self {
        let n = self.len();
        let levels = self.levels as usize;
        let mut end_area = vec![0.0; n];
        normals(self.seed, AREA_STREAM, &mut end_area);
        let sd = ((self.t1 - self.t0) / 12.0).sqrt();
        end_area.iter_mut().for_each(|v| *v *= sd);
        let mut c = self.cache.into_inner().unwrap_or_else(|e| e.into_inner());
        c.area = vec![vec![0.0; n]; levels];
        c.prefix = vec![vec![0.0; n]; levels];
        c.recent = [(f64::NAN, vec![0.0; n]), (f64::NAN, vec![0.0; n])];
        c.recent_integral = [vec![0.0; n], vec![0.0; n]];
        c.depth = 0;
        c.draws_x = vec![0.0; n];
        c.split = vec![0.0; n];
        c.integral = vec![0.0; n];
        c.integral2 = vec![0.0; n];
        BrownianPath {
            end_area,
            cache: Mutex::new(c),
            ..self
        }
    }

    /// Whether the path carries space-time Lévy area.
    pub fn has_levy_area(&self) -> bool {
        !self.end_area.is_empty()
    }

    /// The interval the path is defined on.
    pub fn domain(&self) -> (f64, f64) {
        (self.t0, self.t1)
    }
    /// Samples in the batch.
    pub fn batch(&self) -> usize {
        self.batch
    }
    /// Noise channels per sample.
    pub fn channels(&self) -> usize {
        self.channels
    }
    /// Values per query: `batch × channels`, sample-major.
    pub fn len(&self) -> usize {
        self.batch * self.channels
    }
    /// Always false (shapes are positive).
    pub fn is_empty(&self) -> bool {
        false
    }
    /// The seed.
    pub fn seed(&self) -> u64 {
        self.seed
    }
    /// The resolution (levels of the tree).
    pub fn levels(&self) -> u32 {
        self.levels
    }

    /// Tree nodes drawn so far (each draws `batch × channels` normals): the cost of the
    /// queries, independent of timing noise.
    pub fn node_draws(&self) -> u64 {
        self.lock().draws
    }

    fn check(&self, t: f64, out: usize) -> Result<()> {
        if !(t >= self.t0 && t <= self.t1) {
            return Err(Error::OutsideDomain {
                what: "the Brownian path".into(),
                t,
                start: self.t0,
                end: self.t1,
            });
        }
        if out != self.len() {
            return Err(Error::ShapeMismatch {
                what: "Brownian query buffer (batch × channels)".into(),
                expected: self.len(),
                found: out,
            });
        }
        Ok(())
    }

    /// `out ← W(t)`.
    pub fn evaluate<S: Real>(&self, t: f64, out: &mut [S]) -> Result<()> {
        self.check(t, out.len())?;
        let mut c = self.lock();
        let mut w = std::mem::take(&mut c.tmp);
        self.value(&mut c, t, &mut w);
        out.iter_mut().zip(&w).for_each(|(o, &v)| *o = S::of(v));
        c.tmp = w;
        Ok(())
    }

    /// `out ← W(t_b) − W(t_a)` for any order of `t_a`, `t_b`; swapping them negates the answer
    /// exactly.
    pub fn increment<S: Real>(&self, t_a: f64, t_b: f64, out: &mut [S]) -> Result<()> {
        self.check(t_a, out.len())?;
        self.check(t_b, out.len())?;
        self.increment_unchecked(t_a, t_b, out);
        Ok(())
    }

    /// `w ← W(t_b) − W(t_a)` and `h ←` the space-time Lévy area of the interval between them,
    /// `H = (1/h)∫_s^t (W_r − W_s − (r−s)/h·W_{s,t}) dr` with `s = min, t = max`; `H` is the same
    /// for either order (it is invariant under time reversal) and `W` changes sign exactly.
    /// An error for a path built without Lévy area, or for `t_a = t_b` (no interval).
    pub fn levy_area<S: Real>(&self, t_a: f64, t_b: f64, w: &mut [S], h: &mut [S]) -> Result<()> {
        if !self.has_levy_area() {
            return Err(Error::Unsupported(
                "space-time Lévy area of a Brownian path built without it \
                 (use BrownianPath::with_space_time_levy_area)"
                    .into(),
            ));
        }
        self.check(t_a, w.len())?;
        self.check(t_b, h.len())?;
        if t_a == t_b {
            return Err(Error::config(
                "Lévy area interval",
                format!("t_a = t_b = {t_a}: the Lévy area needs an interval of positive length"),
            ));
        }
        let (s, t) = if t_a < t_b { (t_a, t_b) } else { (t_b, t_a) };
        let mut c = self.lock();
        let mut ws = std::mem::take(&mut c.tmp);
        let mut wt = std::mem::take(&mut c.tmp2);
        let mut is = std::mem::take(&mut c.integral);
        let mut it = std::mem::take(&mut c.integral2);
        self.value_with_integral(&mut c, s, &mut ws, Some(&mut is));
        self.value_with_integral(&mut c, t, &mut wt, Some(&mut it));
        let len = t - s;
        for i in 0..w.len() {
            let inc = wt[i] - ws[i];
            w[i] = S::of(if t_a < t_b { inc } else { ws[i] - wt[i] });
            h[i] = S::of((it[i] - is[i] - len * ws[i]) / len - 0.5 * inc);
        }
        c.tmp = ws;
        c.tmp2 = wt;
        c.integral = is;
        c.integral2 = it;
        Ok(())
    }

    /// [`BrownianPath::increment`] for times and a buffer already validated (the solver's hot
    /// path: the integration loop checks the domain once).
    pub(crate) fn increment_unchecked<S: Real>(&self, t_a: f64, t_b: f64, out: &mut [S]) {
        let mut c = self.lock();
        let mut lo = std::mem::take(&mut c.tmp);
        let mut hi = std::mem::take(&mut c.tmp2);
        // Query the earlier time first so a sweep in either direction reuses the stack.
        let (first, second) = if t_a <= t_b { (t_a, t_b) } else { (t_b, t_a) };
        self.value(&mut c, first, &mut lo);
        self.value(&mut c, second, &mut hi);
        let (wa, wb) = if t_a <= t_b { (&lo, &hi) } else { (&hi, &lo) };
        for ((o, &b), &a) in out.iter_mut().zip(wb).zip(wa) {
            *o = S::of(b - a);
        }
        c.tmp = lo;
        c.tmp2 = hi;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Descent> {
        // A panic while holding the lock can only leave a stale stack; values are recomputed
        // from the tree, so the poisoned guard is safe to reuse.
        self.cache.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// `out ← W(t)`: a recent answer, or a descent of the tree.
    fn value(&self, c: &mut Descent, t: f64, out: &mut [f64]) {
        self.value_with_integral(c, t, out, None);
    }

    /// `out ← W(t)` and, with Lévy area, `integral ← ∫_{t0}^t W` when asked for.
    fn value_with_integral(
        &self,
        c: &mut Descent,
        t: f64,
        out: &mut [f64],
        integral: Option<&mut [f64]>,
    ) {
        let levy = self.has_levy_area();
        if let Some(k) = c.recent.iter().position(|(s, _)| *s == t) {
            out.copy_from_slice(&c.recent[k].1);
            if let Some(i) = integral {
                i.copy_from_slice(&c.recent_integral[k]);
            }
            return;
        }
        let mut int = std::mem::take(&mut c.recent_integral[c.next]);
        self.descend(c, t, out, &mut int);
        let slot = c.next;
        c.recent[slot].0 = t;
        c.recent[slot].1.copy_from_slice(out);
        if let (true, Some(i)) = (levy, integral) {
            i.copy_from_slice(&int);
        }
        c.recent_integral[slot] = int;
        c.next = 1 - slot;
    }

    /// `out ← W(t)` (and, with Lévy area, `int ← ∫_{t0}^t W`) using and updating the cached
    /// descent.
    fn descend(&self, c: &mut Descent, t: f64, out: &mut [f64], int: &mut [f64]) {
        let levy = self.has_levy_area();
        let big_t = self.t1 - self.t0;
        if t == self.t0 {
            out.iter_mut().for_each(|v| *v = 0.0);
            int.iter_mut().for_each(|v| *v = 0.0);
            return;
        }
        if t == self.t1 {
            out.copy_from_slice(&self.end);
            for ((i, &w), &h) in int.iter_mut().zip(&self.end).zip(&self.end_area) {
                *i = big_t * (0.5 * w + h);
            }
            return;
        }
        let node_times = |level: usize, index: u64| {
            let width = big_t / (1u64 << level) as f64;
            let tl = self.t0 + index as f64 * width;
            let tr = if index + 1 == 1u64 << level {
                self.t1
            } else {
                self.t0 + (index + 1) as f64 * width
            };
            (tl, tr, width)
        };
        // Deepest cached level whose node still contains t.
        let mut level = c.depth;
        while level > 0 {
            let (tl, tr, _) = node_times(level - 1, c.index[level - 1]);
            if t >= tl && t <= tr {
                break;
            }
            level -= 1;
        }
        if level == 0 {
            c.index[0] = 0;
            c.left[0].iter_mut().for_each(|v| *v = 0.0);
            c.right[0].copy_from_slice(&self.end);
            if levy {
                c.area[0].copy_from_slice(&self.end_area);
                c.prefix[0].iter_mut().for_each(|v| *v = 0.0);
            }
            level = 1;
        }
        // ∫ W over a piece of length `len` with end values `(a, b)` and Lévy area `h`.
        let piece = |len: f64, a: f64, b: f64, h: f64| len * (0.5 * (a + b) + h);
        // Descend from `level − 1` to the leaf, drawing each midpoint.
        let levels = self.levels as usize;
        let mut l = level - 1;
        loop {
            let (tl, tr, width) = node_times(l, c.index[l]);
            if t == tl || t == tr {
                out.copy_from_slice(if t == tl { &c.left[l] } else { &c.right[l] });
                if levy {
                    for (i, v) in int.iter_mut().enumerate() {
                        *v = c.prefix[l][i];
                        if t == tr {
                            *v += piece(width, c.left[l][i], c.right[l][i], c.area[l][i]);
                        }
                    }
                }
                c.depth = l + 1;
                return;
            }
            let tm = self.t0 + (2 * c.index[l] + 1) as f64 * (width * 0.5);
            let heap = (1u64 << l) + c.index[l];
            // Midpoint value into `out` (exact bridge draw, given the node's Lévy area if any).
            normals(self.seed, heap, out);
            c.draws += 1;
            let half = 0.5 * width;
            if levy {
                // Z ~ N(0, Δ/16) into `out`'s draw, X ~ N(0, Δ/48); the halves' areas are
                // ¼H − ½Z ± X: `draws_x` keeps X, `split` keeps ¼H − ½Z.
                normals(self.seed, AREA_STREAM | heap, &mut c.draws_x);
                let q = 0.25 * width.sqrt();
                let qx = q / 3f64.sqrt();
                for (i, o) in out.iter_mut().enumerate() {
                    let z = q * *o;
                    let h = c.area[l][i];
                    *o = 0.5 * (c.left[l][i] + c.right[l][i]) + 1.5 * h + z;
                    c.draws_x[i] *= qx;
                    c.split[i] = 0.25 * h - 0.5 * z;
                }
            } else {
                let sd = 0.5 * width.sqrt();
                for ((o, &a), &b) in out.iter_mut().zip(&c.left[l]).zip(&c.right[l]) {
                    *o = 0.5 * (a + b) + sd * *o;
                }
            }
            // The Lévy area of the left (+X) or right (−X) half.
            let area_of = |c: &Descent, i: usize, right: bool| {
                let x = c.draws_x[i];
                c.split[i] + if right { -x } else { x }
            };
            if t == tm {
                if levy {
                    for (i, v) in int.iter_mut().enumerate() {
                        let left_area = area_of(c, i, false);
                        *v = c.prefix[l][i] + piece(half, c.left[l][i], out[i], left_area);
                    }
                }
                c.depth = l + 1;
                return;
            }
            if l + 1 == levels {
                // Finest level: inside the half that holds t, the conditional mean given the
                // half's end values (and Lévy area): linear (+ 6σ(1−σ)H).
                let right = t > tm;
                let (a, len) = if right { (tm, tr - tm) } else { (tl, tm - tl) };
                let sg = (t - a) / len;
                for (i, o) in out.iter_mut().enumerate() {
                    let (wa, wb) = if right {
                        (*o, c.right[l][i])
                    } else {
                        (c.left[l][i], *o)
                    };
                    if levy {
                        let h = area_of(c, i, right);
                        let mut start = c.prefix[l][i];
                        if right {
                            start += piece(half, c.left[l][i], wa, area_of(c, i, false));
                        }
                        int[i] = start
                            + len
                                * (sg * wa
                                    + 0.5 * sg * sg * (wb - wa)
                                    + h * sg * sg * (3.0 - 2.0 * sg));
                        *o = wa + sg * (wb - wa) + 6.0 * h * sg * (1.0 - sg);
                    } else {
                        *o = wa + sg * (wb - wa);
                    }
                }
                c.depth = l + 1;
                return;
            }
            let right = t >= tm;
            c.index[l + 1] = 2 * c.index[l] + right as u64;
            if levy {
                for (i, &mid) in out.iter().enumerate() {
                    let left_area = area_of(c, i, false);
                    let start = if right {
                        c.prefix[l][i] + piece(half, c.left[l][i], mid, left_area)
                    } else {
                        c.prefix[l][i]
                    };
                    c.prefix[l + 1][i] = start;
                    c.area[l + 1][i] = area_of(c, i, right);
                }
            }
            let (lo, hi) = c.left.split_at_mut(l + 1);
            let (rlo, rhi) = c.right.split_at_mut(l + 1);
            if right {
                hi[0].copy_from_slice(out);
                rhi[0].copy_from_slice(&rlo[l]);
            } else {
                hi[0].copy_from_slice(&lo[l]);
                rhi[0].copy_from_slice(out);
            }
            l += 1;
        }
    }
}

/// Head-room of the scale check: bounds the normals (|Z| < 9 from 53-bit uniforms), the sum of
/// the bridge terms over the levels and the Lévy-area terms with a wide margin.
const SCALE_MARGIN: f64 = 1024.0;

/// Refuses an interval whose length `T = t1 − t0` overflows, or on which the tree's largest
/// quantities would: values of order `√T` and, with Lévy area, the running integral `∫W` of
/// order `T^{3/2}` (so `T` must stay below about 3e203; `[−1e308, 1e308]` has `T = ∞`).
/// Checked at construction, so every increment and Lévy area of a built path is finite.
fn check_scale(t0: f64, t1: f64) -> Result<()> {
    let big_t = t1 - t0;
    if !(big_t.is_finite() && (SCALE_MARGIN * big_t * big_t.sqrt()).is_finite()) {
        return Err(Error::config(
            "Brownian path interval",
            format!(
                "[{t0:e}, {t1:e}] has length t1 − t0 = {big_t:e}: the path's values (of order \
                 √T) and its running integral (of order T^{{3/2}}) must stay finite, so T must \
                 be at most about 3e203"
            ),
        ));
    }
    Ok(())
}

/// Standard normals keyed by `(seed, node)`: ChaCha8 on stream `node`, one word per normal
/// through the inverse normal CDF, so the i-th value is a function of `(seed, node, i)` alone.
fn normals(seed: u64, node: u64, out: &mut [f64]) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(node);
    for o in out.iter_mut() {
        let u = ((rng.next_u64() >> 11) as f64 + 0.5) / (1u64 << 53) as f64;
        *o = inverse_normal_cdf(u);
    }
}

fn poly(c: &[f64; 8], x: f64) -> f64 {
    c.iter().rev().fold(0.0, |acc, &a| acc * x + a)
}

/// The standard normal quantile, Wichura's algorithm AS 241 (PPND16; Applied Statistics 37,
/// 1988): relative accuracy about 1e-16 on (0, 1). The coefficients are kept as published.
#[allow(clippy::excessive_precision)]
pub(crate) fn inverse_normal_cdf(p: f64) -> f64 {
    const A: [f64; 8] = [
        3.387_132_872_796_366_6,
        133.141_667_891_784_38,
        1_971.590_950_306_551_4,
        13_731.693_765_509_461,
        45_921.953_931_549_87,
        67_265.770_927_008_7,
        33_430.575_583_588_13,
        2_509.080_928_730_122_7,
    ];
    const B: [f64; 8] = [
        1.0,
        42.313_330_701_600_91,
        687.187_007_492_057_9,
        5_394.196_021_424_751,
        21_213.794_301_586_597,
        39_307.895_800_092_71,
        28_729.085_735_721_943,
        5_226.495_278_852_546,
    ];
    const C: [f64; 8] = [
        1.423_437_110_749_683_6,
        4.630_337_846_156_545,
        5.769_497_221_460_691,
        3.647_848_324_763_204_5,
        1.270_458_252_452_368_4,
        0.241_780_725_177_450_6,
        0.022_723_844_989_269_184,
        7.745_450_142_783_414e-4,
    ];
    const D: [f64; 8] = [
        1.0,
        2.053_191_626_637_758_8,
        1.676_384_830_183_803_8,
        0.689_767_334_985_1,
        0.148_103_976_427_480_07,
        0.015_198_666_563_616_457,
        5.475_938_084_995_345e-4,
        1.050_750_071_644_416_8e-9,
    ];
    const E: [f64; 8] = [
        6.657_904_643_501_103_5,
        5.463_784_911_164_114,
        1.784_826_539_917_291_3,
        0.296_560_571_828_504_9,
        0.026_532_189_526_576_124,
        0.001_242_660_947_388_078_4,
        2.711_555_568_743_487_6e-5,
        2.010_334_399_292_288_1e-7,
    ];
    const F: [f64; 8] = [
        1.0,
        0.599_832_206_555_887_9,
        0.136_929_880_922_735_8,
        0.014_875_361_290_850_615,
        7.868_691_311_456_133e-4,
        1.846_318_317_510_054_8e-5,
        1.421_511_758_316_446e-7,
        2.044_263_103_389_939_8e-15,
    ];
    let q = p - 0.5;
    if q.abs() <= 0.425 {
        let r = 0.180625 - q * q;
        return q * poly(&A, r) / poly(&B, r);
    }
    let r = if q < 0.0 { p } else { 1.0 - p };
    let r = (-r.ln()).sqrt();
    let x = if r <= 5.0 {
        let r = r - 1.6;
        poly(&C, r) / poly(&D, r)
    } else {
        let r = r - 5.0;
        poly(&E, r) / poly(&F, r)
    };
    if q < 0.0 {
        -x
    } else {
        x
    }
}

#[cfg(test)]
mod tests {
    use super::inverse_normal_cdf;
    use crate::stats::normal_cdf;

    #[test]
    fn quantile_inverts_the_cdf() {
        for i in 1..2000 {
            let p = i as f64 / 2000.0;
            let x = inverse_normal_cdf(p);
            assert!((normal_cdf(x) - p).abs() <= 1e-15, "p = {p}");
        }
        for &p in &[1e-300, 1e-100, 1e-20, 1e-10, 1e-5, 0.02, 0.98, 1.0 - 1e-10] {
            let x = inverse_normal_cdf(p);
            let back = normal_cdf(x);
            assert!(
                ((back - p) / p.min(1.0 - p)).abs() <= 1e-12,
                "p = {p}: {back}"
            );
        }
        assert_eq!(inverse_normal_cdf(0.5), 0.0);
        assert_eq!(inverse_normal_cdf(0.3), -inverse_normal_cdf(0.7));
    }
}
