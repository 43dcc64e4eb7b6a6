//! Scalar math the kernels share, written so that loops over slices vectorise:
//! a polynomial `exp` for f32, GELU (tanh approximation) and its derivative
//! through the logistic form `0.5·(1 + tanh z) = 1 / (1 + e^(−2z))`, and a
//! sum with several accumulators.

use super::{bf16_gemv, Float};
use rayon::prelude::*;
use std::borrow::Cow;

const SQRT_2_OVER_PI: f64 = 0.797_884_560_802_865_4;
const CUBIC: f64 = 0.044_715;

/// e^x for f32 without branches, so that loops over it vectorise. With
/// `x = n·ln 2 + r` and `|r| ≤ ln 2 / 2`, e^r comes from its degree-7 Taylor
/// polynomial (relative error below 3e-7) and 2^n from exponent bits; n is
/// rounded with the 1.5·2²³ trick because a saturating float-to-int
/// conversion keeps the compiler from vectorising. Below the normal range
/// the result is 0; NaN stays NaN.
#[inline(always)]
pub fn exp_f32(x: f32) -> f32 {
    const LOG2_E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_145_75;
    const LN2_LO: f32 = 1.428_606_8e-6;
    const ROUND: f32 = 12_582_912.0; // 1.5 · 2^23
    let clamped = x.clamp(-87.3, 88.3);
    let shifted = clamped * LOG2_E + ROUND;
    let n = shifted - ROUND;
    let r = clamped - n * LN2_HI - n * LN2_LO;
    let p = 1.0
        + r * (1.0
            + r * (0.5
                + r * (1.0 / 6.0
                    + r * (1.0 / 24.0
                        + r * (1.0 / 120.0 + r * (1.0 / 720.0 + r * (1.0 / 5040.0)))))));
    // The low bits of `shifted` hold n; add the exponent bias and shift into place.
    let scale = f32::from_bits(
        shifted
            .to_bits()
            .wrapping_sub(ROUND.to_bits())
            .wrapping_add(127)
            << 23,
    );
    if x.is_nan() {
        x
    } else if x < -87.3 {
        0.0
    } else {
        p * scale
    }
}

/// GELU with the tanh approximation: `u · σ(2z)`, `z = sqrt(2/π)(u + 0.044715u³)`.
#[inline(always)]
pub fn gelu<T: Float>(u: T) -> T {
    let (a, k) = (
        T::from_f64(2.0 * SQRT_2_OVER_PI),
        T::from_f64(2.0 * SQRT_2_OVER_PI * CUBIC),
    );
    u / (T::one() + (-(a * u + k * u * u * u)).exp())
}

/// d gelu / du at `u`: `s + 2u·s(1−s)·z'(u)` with `s = σ(2z)`.
#[inline(always)]
pub fn gelu_grad<T: Float>(u: T) -> T {
    let (a, k) = (
        T::from_f64(2.0 * SQRT_2_OVER_PI),
        T::from_f64(2.0 * SQRT_2_OVER_PI * CUBIC),
    );
    let s = T::one() / (T::one() + (-(a * u + k * u * u * u)).exp());
    let dz2 = a + T::from_f64(3.0) * k * u * u;
    s + u * s * (T::one() - s) * dz2
}

/// Sum of `xs` with eight running accumulators, so that it vectorises.
#[inline]
pub fn sum<T: Float>(xs: &[T]) -> T {
    let mut acc = [T::zero(); 8];
    let chunks = xs.chunks_exact(8);
    let rest = chunks.remainder();
    for c in chunks {
        for i in 0..8 {
            acc[i] += c[i];
        }
    }
    acc.iter().copied().sum::<T>() + rest.iter().copied().sum::<T>()
}

/// A stored weight element that the kernels read as the activations' float
/// type `T`: `T` itself, or bf16 (the upper half of an f32), widened exactly.
///
/// Generation's matrix-vector products go through `dot_ordered` and
/// `accumulate_rows`, over vectors in the order `kernel_order` gives; a
/// weight type with a faster kernel of its own (bf16 on AVX-512) overrides
/// all four together.
pub trait Weight<T: Float>: Copy + Send + Sync {
    /// The value as `T`.
    fn widen(self) -> T;
    /// A whole slice as `T`: borrowed when it already is.
    fn widen_all(w: &[Self]) -> Cow<'_, [T]>;

    /// `x` in the order `dot_ordered` and `accumulate_rows` read vectors of
    /// its length: as it is, unless overridden.
    fn kernel_order(x: &[T]) -> Cow<'_, [T]> {
        Cow::Borrowed(x)
    }
    /// Adds `v`, in kernel order, into `y` in natural order.
    fn add_from_kernel_order(v: &[T], y: &mut [T]) {
        add_into(v, y);
    }
    /// Σ w·x for `x` in kernel order.
    fn dot_ordered(w: &[Self], x: &[T]) -> T {
        dot(w, x)
    }
    /// `acc += Σ_q xs[q]·ws[q]` over rows `ws` as long as `acc`, which is
    /// in kernel order.
    fn accumulate_rows(acc: &mut [T], ws: &[&[Self]], xs: &[T]) {
        accumulate_widened_rows(acc, ws, xs);
    }
}

/// `acc += Σ_q xs[q]·ws[q]` over rows `ws` as long as `acc`, four rows at a
/// time, so that each sum is loaded and stored once per four rows.
pub fn accumulate_widened_rows<T: Float, W: Weight<T>>(acc: &mut [T], ws: &[&[W]], xs: &[T]) {
    let n = acc.len();
    for (rows, x) in ws.chunks(4).zip(xs.chunks(4)) {
        if let [w0, w1, w2, w3] = rows {
            let (w0, w1, w2, w3) = (&w0[..n], &w1[..n], &w2[..n], &w3[..n]);
            for j in 0..n {
                acc[j] += x[0] * w0[j].widen()
                    + x[1] * w1[j].widen()
                    + x[2] * w2[j].widen()
                    + x[3] * w3[j].widen();
            }
        } else {
            for (w, &xq) in rows.iter().zip(x) {
                acc.iter_mut()
                    .zip(&w[..n])
                    .for_each(|(a, &v)| *a += xq * v.widen());
            }
        }
    }
}

impl<T: Float> Weight<T> for T {
    #[inline(always)]
    fn widen(self) -> T {
        self
    }
    fn widen_all(w: &[T]) -> Cow<'_, [T]> {
        Cow::Borrowed(w)
    }
}

impl Weight<f32> for half::bf16 {
    #[inline(always)]
    fn widen(self) -> f32 {
        f32::from_bits(u32::from(self.to_bits()) << 16)
    }
    fn widen_all(w: &[Self]) -> Cow<'_, [f32]> {
        Cow::Owned(w.par_iter().map(|v| v.widen()).collect())
    }
    fn kernel_order(x: &[f32]) -> Cow<'_, [f32]> {
        if bf16_gemv::available(x.len()) {
            Cow::Owned(bf16_gemv::split_pairs(x))
        } else {
            Cow::Borrowed(x)
        }
    }
    fn add_from_kernel_order(v: &[f32], y: &mut [f32]) {
        if bf16_gemv::available(v.len()) {
            bf16_gemv::add_interleaved(v, y);
        } else {
            add_into(v, y);
        }
    }
    fn dot_ordered(w: &[Self], x: &[f32]) -> f32 {
        if bf16_gemv::available(x.len()) {
            bf16_gemv::dot(w, x)
        } else {
            dot(w, x)
        }
    }
    fn accumulate_rows(acc: &mut [f32], ws: &[&[Self]], xs: &[f32]) {
        if bf16_gemv::available(acc.len()) {
            bf16_gemv::accumulate_rows(acc, ws, xs);
        } else {
            accumulate_widened_rows(acc, ws, xs);
        }
    }
}

/// `y += v`, element by element.
pub fn add_into<T: Float>(v: &[T], y: &mut [T]) {
    y.iter_mut().zip(v).for_each(|(y, &v)| *y += v);
}

/// Dot product of `a` (read as `T`) and `b` with eight running accumulators.
#[inline]
pub fn dot<T: Float, W: Weight<T>>(a: &[W], b: &[T]) -> T {
    let mut acc = [T::zero(); 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let rest: T = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .map(|(&x, &y)| x.widen() * y)
        .sum();
    for (x, y) in ca.zip(cb) {
        for i in 0..8 {
            acc[i] += x[i].widen() * y[i];
        }
    }
    acc.iter().copied().sum::<T>() + rest
}

/// Whether dropout keeps element `index` of the mask drawn with `seed`: a
/// counter-based hash (SplitMix64's finaliser), so a backward pass
/// regenerates the mask instead of storing it.
#[inline]
pub fn keep(seed: u64, index: u64, threshold: u64) -> bool {
    let mut z = seed ^ index.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    (z ^ (z >> 31)) >= threshold
}

/// For dropout probability `p`: the factor a kept element gets (1/(1-p)),
/// and the hash threshold below which an element is dropped.
pub fn dropout_params<T: Float>(p: f64) -> (T, u64) {
    (T::from_f64(1.0 / (1.0 - p)), (p * u64::MAX as f64) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fast_exp_is_within_two_ulp_of_std() {
        let mut worst = 0.0f64;
        for i in -87_000..88_000 {
            let x = i as f32 / 1000.0;
            let (fast, exact) = (exp_f32(x) as f64, (x as f64).exp());
            worst = worst.max((fast - exact).abs() / exact);
        }
        assert!(worst < 3e-7, "worst relative error {worst:e}");
        assert_eq!(exp_f32(-100.0), 0.0);
        assert_eq!(exp_f32(f32::NEG_INFINITY), 0.0);
        assert!(exp_f32(100.0).is_finite());
        assert!(exp_f32(f32::NAN).is_nan());
    }

    #[test]
    fn gelu_and_its_derivative_match_the_tanh_form() {
        for i in -800..800 {
            let u = i as f64 / 100.0;
            let z = SQRT_2_OVER_PI * (u + CUBIC * u * u * u);
            let reference = 0.5 * u * (1.0 + z.tanh());
            assert!((gelu(u) - reference).abs() < 1e-12, "gelu({u})");
            let h = 1e-6;
            let numeric = (gelu(u + h) - gelu(u - h)) / (2.0 * h);
            assert!((gelu_grad(u) - numeric).abs() < 1e-8, "gelu'({u})");
        }
    }
}
