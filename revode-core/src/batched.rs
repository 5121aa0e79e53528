//! Batched MLP kernels for the native CPU path: whole-batch matrix products through `gemm`
//! with the bias and activation fused into one pass per layer.

use crate::mlp_spec::{Activation, MlpSpec};
use crate::Real;
use std::cell::RefCell;

/// Batches at least this large use the matrix-product kernels instead of row-by-row loops.
pub const MIN_BATCH: usize = 16;

thread_local! {
    static SCRATCH: RefCell<Vec<u64>> = const { RefCell::new(Vec::new()) };
}

/// Runs `f` with a thread-local work buffer of `len` scalars (reused across calls: no heap
/// allocation once warm). Contents on entry are unspecified.
fn with_scratch<S: Real, R>(len: usize, f: impl FnOnce(&mut [S]) -> R) -> R {
    SCRATCH.with(|cell| {
        let mut words = cell.borrow_mut();
        let need = (len * std::mem::size_of::<S>()).div_ceil(8);
        if words.len() < need {
            words.resize(need, 0);
        }
        // SAFETY: `Real` is sealed to f32 and f64 (plain data, alignment ≤ 8, every bit pattern
        // valid); the u64 buffer is 8-aligned and holds at least len·size_of::<S>() bytes; the
        // RefCell borrow makes the slice exclusive for the closure's duration.
        let buf = unsafe { std::slice::from_raw_parts_mut(words.as_mut_ptr() as *mut S, len) };
        f(buf)
    })
}

/// `out[j] = Σ_rows m[row·w + j]` for a row-major matrix `m` of width `w`.
fn column_sums<S: Real>(m: &[S], w: usize, out: &mut [S]) {
    out.iter_mut().for_each(|o| *o = S::zero());
    for row in m.chunks_exact(w) {
        for (o, v) in out.iter_mut().zip(row) {
            *o += *v;
        }
    }
}

/// A strided matrix view: element (i, j) at `data[i·rs + j·cs]`.
#[derive(Clone, Copy)]
struct View<'a, S> {
    data: &'a [S],
    rs: usize,
    cs: usize,
}

/// The input of hidden layer `l`: the state rows for l = 0, else the activations of layer
/// l − 1, stored in `prior` at block 2l − 1 (blocks of b × h: z then a per layer).
fn layer_input<'a, S>(
    l: usize,
    y: &'a [S],
    d: usize,
    h: usize,
    block: usize,
    prior: &'a [S],
) -> View<'a, S> {
    if l == 0 {
        View {
            data: y,
            rs: d,
            cs: 1,
        }
    } else {
        View {
            data: &prior[(2 * l - 1) * block..2 * l * block],
            rs: h,
            cs: 1,
        }
    }
}

/// `dst(m × n, row-major with stride d_rs) ← [dst +] lhs(m × k)·rhs(k × n)`.
#[allow(clippy::too_many_arguments)]
fn matmul<S: Real>(
    m: usize,
    n: usize,
    k: usize,
    dst: &mut [S],
    d_rs: usize,
    accumulate: bool,
    lhs: View<S>,
    rhs: View<S>,
) {
    if m == 0 || n == 0 || k == 0 {
        return;
    }
    let last = |v: &View<S>, r: usize, c: usize| (r - 1) * v.rs + (c - 1) * v.cs;
    assert!(
        (m - 1) * d_rs + (n - 1) < dst.len(),
        "matmul: destination too small"
    );
    assert!(
        last(&lhs, m, k) < lhs.data.len() && last(&rhs, k, n) < rhs.data.len(),
        "matmul: operand too small"
    );
    // SAFETY: the asserts above bound every index gemm touches; dst does not alias the operands
    // (it is a distinct &mut slice).
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            1,
            d_rs as isize,
            accumulate,
            lhs.data.as_ptr(),
            lhs.cs as isize,
            lhs.rs as isize,
            rhs.data.as_ptr(),
            rhs.cs as isize,
            rhs.rs as isize,
            S::one(),
            S::one(),
            false,
            false,
            false,
            gemm::Parallelism::None,
        )
    }
}

#[inline(always)]
fn act<S: Real>(a: Activation, z: S) -> S {
    match a {
        Activation::Tanh => z.fast_tanh(),
        other => S::of(other.apply(z.as_f64())),
    }
}

#[inline(always)]
fn act_grad<S: Real>(a: Activation, z: S, y: S) -> S {
    match a {
        Activation::Tanh => S::one() - y * y,
        other => S::of(other.derivative(z.as_f64(), y.as_f64())),
    }
}

/// `z += shift` on every row and `a = tanh(z)`: on x86-64 CPUs with AVX2 and FMA the loop is
/// compiled for them (8 f32 lanes instead of SSE's 4), chosen at run time. Both versions do
/// the same arithmetic in the same order (no contraction into fused multiply-adds), so the
/// results are bitwise the same.
fn bias_tanh<S: Real>(zs: &mut [S], a: &mut [S], shift: &[S]) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
        // SAFETY: the CPU has the features the function is compiled for (checked above).
        return unsafe { bias_tanh_avx2(zs, a, shift) };
    }
    bias_tanh_portable(zs, a, shift)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn bias_tanh_avx2<S: Real>(zs: &mut [S], a: &mut [S], shift: &[S]) {
    bias_tanh_portable(zs, a, shift)
}

#[inline(always)]
fn bias_tanh_portable<S: Real>(zs: &mut [S], a: &mut [S], shift: &[S]) {
    let h = shift.len();
    for (zr, ar) in zs.chunks_exact_mut(h).zip(a.chunks_exact_mut(h)) {
        for ((z, a), s) in zr.iter_mut().zip(ar.iter_mut()).zip(shift) {
            *z += *s;
            *a = z.fast_tanh();
        }
    }
}

/// `dz = da ⊙ (1 − a²)` (tanh's derivative from its value), dispatched like [`bias_tanh`].
fn tanh_pullback<S: Real>(dz: &mut [S], a: &[S], da: &[S]) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
        // SAFETY: the CPU has the features the function is compiled for (checked above).
        return unsafe { tanh_pullback_avx2(dz, a, da) };
    }
    tanh_pullback_portable(dz, a, da)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn tanh_pullback_avx2<S: Real>(dz: &mut [S], a: &[S], da: &[S]) {
    tanh_pullback_portable(dz, a, da)
}

#[inline(always)]
fn tanh_pullback_portable<S: Real>(dz: &mut [S], a: &[S], da: &[S]) {
    for ((g, a), d) in dz.iter_mut().zip(a).zip(da) {
        *g = *d * (S::one() - *a * *a);
    }
}

/// `out ← f(t, y)` for `b` rows; with `cache` (2·depth blocks of b × hidden: z then a per layer)
/// keeps what [`backward`] needs.
#[allow(clippy::too_many_arguments)]
pub fn forward<S: Real>(
    spec: &MlpSpec,
    offsets: &[usize],
    p: &[S],
    b: usize,
    t: f64,
    y: &[S],
    out: &mut [S],
    cache: Option<&mut [S]>,
) {
    let len = 2 * spec.depth * b * spec.hidden;
    match cache {
        Some(c) => forward_into(spec, offsets, p, b, t, y, out, &mut c[..len]),
        None => with_scratch(len, |s| forward_into(spec, offsets, p, b, t, y, out, s)),
    }
}

#[allow(clippy::too_many_arguments)]
fn forward_into<S: Real>(
    spec: &MlpSpec,
    offsets: &[usize],
    p: &[S],
    b: usize,
    t: f64,
    y: &[S],
    out: &mut [S],
    store: &mut [S],
) {
    let (h, d, depth, inputs) = (spec.hidden, spec.dim, spec.depth, spec.inputs());
    let block = b * h;
    let act_kind = spec.activation;
    for (l, &off) in offsets.iter().enumerate().take(depth) {
        let (before, after) = store.split_at_mut(2 * l * block);
        let (zs, rest) = after.split_at_mut(block);
        let a_blk = &mut rest[..block];
        let (width, k) = if l == 0 { (inputs, d) } else { (h, h) };
        // The first layer's state columns start after t when t comes first.
        let sc = if l == 0 { spec.state_column() } else { 0 };
        let input = layer_input(l, y, d, h, block, before);
        // z = input · Wᵀ, with W (h × width) row-major: Wᵀ(i, j) = W[j·width + sc + i].
        let w = View {
            data: &p[off + sc..off + h * width],
            rs: 1,
            cs: width,
        };
        matmul(b, h, k, zs, h, false, input, w);
        let bias = &p[off + h * width..off + h * width + h];
        let mut shift = [S::zero(); crate::mlp_spec::MAX_HIDDEN];
        for j in 0..h {
            shift[j] = bias[j];
            if let (0, Some(tc)) = (l, spec.time_column()) {
                shift[j] += S::of(t) * p[off + j * width + tc];
            }
        }
        // The activation is matched once per layer, not per element, so the tanh loop
        // vectorises.
        let shift = &shift[..h];
        if act_kind == Activation::Tanh {
            bias_tanh(zs, a_blk, shift);
        } else {
            for (zr, ar) in zs.chunks_exact_mut(h).zip(a_blk.chunks_exact_mut(h)) {
                for ((z, a), s) in zr.iter_mut().zip(ar.iter_mut()).zip(shift) {
                    *z += *s;
                    *a = act(act_kind, *z);
                }
            }
        }
    }
    let off = offsets[depth];
    let o = spec.out_dim();
    let a_last = View {
        data: &store[(2 * depth - 1) * block..2 * depth * block],
        rs: h,
        cs: 1,
    };
    matmul(
        b,
        o,
        h,
        out,
        o,
        false,
        a_last,
        View {
            data: &p[off..off + o * h],
            rs: 1,
            cs: h,
        },
    );
    let bias = &p[off + o * h..off + o * h + o];
    for row in out.chunks_exact_mut(o) {
        for (o, bk) in row.iter_mut().zip(bias) {
            *o += *bk;
        }
    }
}

/// Pullback at the cached point: `y_bar += scale·Jᵀcot`, `p_bar += scale·J_θᵀcot`.
#[allow(clippy::too_many_arguments)]
pub fn backward<S: Real>(
    spec: &MlpSpec,
    offsets: &[usize],
    p: &[S],
    b: usize,
    t: f64,
    y: &[S],
    cache: &[S],
    cot: &[S],
    scale: S,
    y_bar: &mut [S],
    p_bar: &mut [S],
) {
    let (h, d, depth, inputs) = (spec.hidden, spec.dim, spec.depth, spec.inputs());
    let o = spec.out_dim();
    let block = b * h;
    let act_kind = spec.activation;
    with_scratch(2 * block + b * o + h.max(o), |scratch: &mut [S]| {
        let (da, rest) = scratch.split_at_mut(block);
        let (dz, rest) = rest.split_at_mut(block);
        let (delta, colsum) = rest.split_at_mut(b * o);
        for (dl, c) in delta.iter_mut().zip(cot) {
            *dl = scale * *c;
        }
        // Output layer: b̄ += Σ_rows δ, W̄ += δᵀ·A, ∂L/∂A = δ·W.
        let off = offsets[depth];
        let a_last = View {
            data: &cache[(2 * depth - 1) * block..2 * depth * block],
            rs: h,
            cs: 1,
        };
        // Bias cotangents: the batch's rows are summed first and added to the running total
        // once per pullback (adding them one by one loses ε·|total| per row in f32).
        column_sums(delta, o, &mut colsum[..o]);
        for (pb, v) in p_bar[off + o * h..off + o * h + o]
            .iter_mut()
            .zip(&colsum[..o])
        {
            *pb += *v;
        }
        let delta_t = View {
            data: &*delta,
            rs: 1,
            cs: o,
        };
        matmul(
            o,
            h,
            b,
            &mut p_bar[off..off + o * h],
            h,
            true,
            delta_t,
            a_last,
        );
        let w_out = View {
            data: &p[off..off + o * h],
            rs: h,
            cs: 1,
        };
        matmul(
            b,
            h,
            o,
            da,
            h,
            false,
            View {
                data: &*delta,
                rs: o,
                cs: 1,
            },
            w_out,
        );
        for l in (0..depth).rev() {
            let zs = &cache[2 * l * block..(2 * l + 1) * block];
            let a_blk = &cache[(2 * l + 1) * block..(2 * l + 2) * block];
            if act_kind == Activation::Tanh {
                tanh_pullback(dz, a_blk, da);
            } else {
                for ((g, (z, a)), dav) in dz.iter_mut().zip(zs.iter().zip(a_blk)).zip(da.iter()) {
                    *g = *dav * act_grad(act_kind, *z, *a);
                }
            }
            let off = offsets[l];
            let (width, k) = if l == 0 { (inputs, d) } else { (h, h) };
            let sc = if l == 0 { spec.state_column() } else { 0 };
            let bias_at = off + h * width;
            column_sums(dz, h, &mut colsum[..h]);
            for (j, v) in colsum[..h].iter().enumerate() {
                p_bar[bias_at + j] += *v;
                if let (0, Some(tc)) = (l, spec.time_column()) {
                    // Every row shares t: Σ_rows t·v = t·Σ_rows v.
                    p_bar[off + j * width + tc] += S::of(t) * *v;
                }
            }
            let dz_t = View {
                data: &*dz,
                rs: 1,
                cs: h,
            };
            let input = layer_input(l, y, d, h, block, cache);
            // W̄ (h × width, first k columns) += dZᵀ · input.
            matmul(
                h,
                k,
                b,
                &mut p_bar[off + sc..off + h * width],
                width,
                true,
                dz_t,
                input,
            );
            let w = View {
                data: &p[off + sc..off + h * width],
                rs: width,
                cs: 1,
            };
            let dz_v = View {
                data: &*dz,
                rs: h,
                cs: 1,
            };
            if l == 0 {
                matmul(b, d, h, y_bar, d, true, dz_v, w);
            } else {
                matmul(b, h, h, da, h, false, dz_v, w);
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The AVX2 build of the fused loops must give the portable build's bits (it is chosen by
    /// the CPU, so a difference would make results depend on the machine).
    #[test]
    fn avx2_and_portable_loops_agree_bitwise() {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            let h = 37;
            let z0: Vec<f32> = (0..5 * h)
                .map(|i| ((i as f32) * 0.731).sin() * 12.0)
                .collect();
            let shift: Vec<f32> = (0..h).map(|i| (i as f32) * 0.1 - 1.7).collect();
            let (mut z1, mut z2) = (z0.clone(), z0.clone());
            let (mut a1, mut a2) = (vec![0.0f32; z0.len()], vec![0.0f32; z0.len()]);
            bias_tanh_portable(&mut z1, &mut a1, &shift);
            // SAFETY: the features were detected above.
            unsafe { bias_tanh_avx2(&mut z2, &mut a2, &shift) };
            let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&z1), bits(&z2));
            assert_eq!(bits(&a1), bits(&a2));
            let (mut g1, mut g2) = (vec![0.0f32; z0.len()], vec![0.0f32; z0.len()]);
            tanh_pullback_portable(&mut g1, &a1, &z0);
            // SAFETY: as above.
            unsafe { tanh_pullback_avx2(&mut g2, &a1, &z0) };
            assert_eq!(bits(&g1), bits(&g2));
            // The values are tanh's, to the fast tanh's accuracy.
            for (a, z) in a1.iter().zip(&z1) {
                assert!((a - z.tanh()).abs() < 3e-7);
            }
        }
    }
}
