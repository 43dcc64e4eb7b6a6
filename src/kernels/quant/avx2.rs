//! The AVX2 kernel path (x86-64 with AVX2, FMA and F16C): dot products of
//! weight rows with prepared activations, four rows at a time so that each
//! activation load serves four rows and the four sums overlap.
//!
//! Quantized weights multiply 8-bit activations with integer multiply-adds:
//! unsigned 4/5/6-bit quants (`maddubs`) times signed activations, pairs
//! summed to 32 bits (`madd`), converted to f32 once per block and scaled by
//! the product of the two blocks' scales. Offsets (`q − 8`, `q − 16`,
//! `q − 32`) and minimums are applied once per block through the
//! activations' precomputed sums instead of per element.

use super::activations::{Activations, Q8Block, Q8KBlock};
use super::blocks::{self, k4_scales_mins, QK, QK_K};
use super::GgmlType;
use std::arch::x86_64::*;

/// `out[i] = row i · x` for the rows stored back to back in `w`, each
/// `row_bytes` long.
///
/// # Safety
/// The CPU must support AVX2, FMA and F16C. (Sizes are checked here.)
#[target_feature(enable = "avx2,fma,f16c")]
pub unsafe fn dot_rows(
    ty: GgmlType,
    w: &[u8],
    row_bytes: usize,
    x: &Activations<'_>,
    out: &mut [f32],
) {
    assert!(
        w.len() >= out.len() * row_bytes,
        "weights shorter than the rows"
    );
    // Dispatches to a kernel taking R rows from a pointer, four rows at a time.
    macro_rules! by_groups {
        ($kernel:ident $(::<$($k:tt),*>)?, $x:expr) => {{
            let mut i = 0;
            while i + 4 <= out.len() {
                let r: [f32; 4] = $kernel::<4 $($(, $k)*)?>(&w[i * row_bytes..], row_bytes, $x);
                out[i..i + 4].copy_from_slice(&r);
                i += 4;
            }
            while i < out.len() {
                out[i] = $kernel::<1 $($(, $k)*)?>(&w[i * row_bytes..], row_bytes, $x)[0];
                i += 1;
            }
        }};
    }
    match (ty, x) {
        (GgmlType::F32, Activations::F32(x)) => by_groups!(float_rows::<F32>, x),
        (GgmlType::F16, Activations::F32(x)) => by_groups!(float_rows::<F16>, x),
        (GgmlType::BF16, Activations::F32(x)) => by_groups!(float_rows::<BF16>, x),
        (GgmlType::Q4_0, Activations::Q8(x)) => by_groups!(q32_rows::<Q4_0>, x),
        (GgmlType::Q4_1, Activations::Q8(x)) => by_groups!(q32_rows::<Q4_1>, x),
        (GgmlType::Q5_0, Activations::Q8(x)) => by_groups!(q32_rows::<Q5_0>, x),
        (GgmlType::Q8_0, Activations::Q8(x)) => by_groups!(q32_rows::<Q8_0>, x),
        (GgmlType::Q4K, Activations::Q8K(x)) => by_groups!(q4k_rows::<false>, x),
        (GgmlType::Q5K, Activations::Q8K(x)) => by_groups!(q4k_rows::<true>, x),
        (GgmlType::Q6K, Activations::Q8K(x)) => by_groups!(q6k_rows, x),
        _ => unreachable!("activations are prepared for the weight type"),
    }
}

// Weight kinds, as const generic parameters (each kernel is compiled once per kind).
pub(super) const F32: u8 = 0;
pub(super) const F16: u8 = 1;
pub(super) const BF16: u8 = 2;
const Q4_0: u8 = 3;
const Q4_1: u8 = 4;
const Q5_0: u8 = 5;
const Q8_0: u8 = 6;

/// The sum of the eight lanes.
#[target_feature(enable = "avx2,fma,f16c")]
#[inline]
fn hsum(v: __m256) -> f32 {
    let s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps::<1>(v));
    let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    _mm_cvtss_f32(_mm_add_ss(s, _mm_movehdup_ps(s)))
}

/// Σ of adjacent pairs of `u·x` products, in eight 32-bit lanes: unsigned
/// bytes `u` (at most 63) times signed bytes `x`.
#[target_feature(enable = "avx2,fma,f16c")]
#[inline]
fn dot_u8_i8(u: __m256i, x: __m256i) -> __m256i {
    _mm256_madd_epi16(_mm256_maddubs_epi16(u, x), _mm256_set1_epi16(1))
}

/// Eight weights of kind `KIND` at `p`, widened to f32.
///
/// # Safety
/// `p` must point to eight readable weights.
#[target_feature(enable = "avx2,fma,f16c")]
#[inline]
pub(super) unsafe fn load8<const KIND: u8>(p: *const u8) -> __m256 {
    // SAFETY: the caller vouches for the 32 (f32) or 16 (f16, bf16) bytes.
    unsafe {
        match KIND {
            F32 => _mm256_loadu_ps(p.cast()),
            F16 => _mm256_cvtph_ps(_mm_loadu_si128(p.cast())),
            _ => _mm256_castsi256_ps(_mm256_slli_epi32::<16>(_mm256_cvtepu16_epi32(
                _mm_loadu_si128(p.cast()),
            ))),
        }
    }
}

/// Bytes per weight of a float kind.
const fn float_bytes(kind: u8) -> usize {
    if kind == F32 {
        4
    } else {
        2
    }
}

/// Rows `0..R` of float weights (`stride` bytes apart in `w`) dotted with `x`.
#[target_feature(enable = "avx2,fma,f16c")]
fn float_rows<const R: usize, const KIND: u8>(w: &[u8], stride: usize, x: &[f32]) -> [f32; R] {
    let eb = float_bytes(KIND);
    assert!(w.len() >= (R - 1) * stride + x.len() * eb);
    let main = x.len() / 16 * 16;
    let mut acc = [[_mm256_setzero_ps(); 2]; R];
    let mut i = 0;
    while i < main {
        // SAFETY: elements i..i + 16 of x and of each row are in bounds (asserted above).
        unsafe {
            let x0 = _mm256_loadu_ps(x.as_ptr().add(i));
            let x1 = _mm256_loadu_ps(x.as_ptr().add(i + 8));
            for (r, acc) in acc.iter_mut().enumerate() {
                let p = w.as_ptr().add(r * stride + i * eb);
                acc[0] = _mm256_fmadd_ps(load8::<KIND>(p), x0, acc[0]);
                acc[1] = _mm256_fmadd_ps(load8::<KIND>(p.add(8 * eb)), x1, acc[1]);
            }
        }
        i += 16;
    }
    let mut out = [0f32; R];
    for (r, (o, acc)) in out.iter_mut().zip(&acc).enumerate() {
        let row = &w[r * stride..r * stride + x.len() * eb];
        let tail: f32 = row[main * eb..]
            .chunks_exact(eb)
            .zip(&x[main..])
            .map(|(b, &x)| float_at::<KIND>(b) * x)
            .sum();
        *o = hsum(_mm256_add_ps(acc[0], acc[1])) + tail;
    }
    out
}

/// One float weight of kind `KIND` from its little-endian bytes.
fn float_at<const KIND: u8>(b: &[u8]) -> f32 {
    match KIND {
        F32 => f32::from_le_bytes([b[0], b[1], b[2], b[3]]),
        F16 => blocks::f16_at(b, 0),
        _ => f32::from_bits((u16::from_le_bytes([b[0], b[1]]) as u32) << 16),
    }
}

/// Bytes per block of a 32-element kind.
const fn block_bytes(kind: u8) -> usize {
    match kind {
        Q4_0 => 18,
        Q4_1 => 20,
        Q5_0 => 22,
        _ => 34,
    }
}

/// The factor of a kind's per-block offset term `Σ d_w · s_x`: `q − 8`
/// (Q4_0), `q − 16` (Q5_0), `+ m` (Q4_1, where the term is `Σ m_w · s_x`).
const fn offset_factor(kind: u8) -> f32 {
    match kind {
        Q4_0 => -8.0,
        Q5_0 => -16.0,
        Q4_1 => 1.0,
        _ => 0.0,
    }
}

/// The block's 32 fifth bits (bit `j` of the little-endian `qh` for
/// element `j`) as bytes of 0x10 or 0.
#[target_feature(enable = "avx2,fma,f16c")]
#[inline]
fn fifth_bits(qh: u32) -> __m256i {
    // Byte j takes byte j/8 of qh, then keeps bit j%8.
    let spread = _mm256_shuffle_epi8(
        _mm256_set1_epi32(qh as i32),
        _mm256_set_epi64x(
            0x0303_0303_0303_0303,
            0x0202_0202_0202_0202,
            0x0101_0101_0101_0101,
            0,
        ),
    );
    let bit = _mm256_set1_epi64x(0x8040_2010_0804_0201u64 as i64);
    let set = _mm256_cmpeq_epi8(_mm256_and_si256(spread, bit), bit);
    _mm256_and_si256(set, _mm256_set1_epi8(0x10))
}

/// Rows `0..R` of 32-element-block weights of kind `KIND` (Q4_0, Q4_1,
/// Q5_0, Q8_0; `stride` bytes apart in `w`) dotted with `x`.
#[target_feature(enable = "avx2,fma,f16c")]
fn q32_rows<const R: usize, const KIND: u8>(w: &[u8], stride: usize, x: &[Q8Block]) -> [f32; R] {
    let bb = block_bytes(KIND);
    assert!(w.len() >= (R - 1) * stride + x.len() * bb);
    const { assert!(R <= 4, "the rows' scales share one register") };
    let low4 = _mm256_set1_epi8(0x0f);
    let mut acc = [_mm256_setzero_ps(); R];
    // Row r's offset term in lane r.
    let mut offsets = _mm_setzero_ps();
    for (b, xb) in x.iter().enumerate() {
        // SAFETY: block b of each of the R rows is in bounds (asserted above);
        // `xb` is a whole activation block.
        unsafe {
            let xq = _mm256_loadu_si256(xb.qs.as_ptr().cast());
            // The R rows' f16 scales (and Q4_1's minimums) gathered in
            // general registers, then widened together: d_r in lanes r and r + 4.
            let (mut d16, mut m16) = (0u64, 0u64);
            for r in 0..R {
                let p = w.as_ptr().add(r * stride + b * bb);
                if KIND == Q4_1 {
                    let dm = u32::from_le(p.cast::<u32>().read_unaligned()) as u64;
                    d16 |= (dm & 0xffff) << (16 * r);
                    m16 |= (dm >> 16) << (16 * r);
                } else {
                    d16 |= (u16::from_le(p.cast::<u16>().read_unaligned()) as u64) << (16 * r);
                }
            }
            let d = _mm256_cvtph_ps(_mm_set1_epi64x(d16 as i64));
            let scales = _mm256_mul_ps(d, _mm256_set1_ps(xb.d));
            let offset_scale = if KIND == Q4_1 {
                _mm_cvtph_ps(_mm_cvtsi64_si128(m16 as i64))
            } else {
                _mm256_castps256_ps128(d)
            };
            if KIND != Q8_0 {
                offsets = _mm_fmadd_ps(offset_scale, _mm_set1_ps(xb.s), offsets);
            }
            for (r, acc) in acc.iter_mut().enumerate() {
                let p = w.as_ptr().add(r * stride + b * bb);
                let sum = match KIND {
                    Q8_0 => {
                        let q = _mm256_loadu_si256(p.add(blocks::q8_0::QS).cast());
                        _mm256_madd_epi16(
                            _mm256_maddubs_epi16(_mm256_sign_epi8(q, q), _mm256_sign_epi8(xq, q)),
                            _mm256_set1_epi16(1),
                        )
                    }
                    _ => {
                        let qs_at = match KIND {
                            Q4_0 => blocks::q4_0::QS,
                            Q4_1 => blocks::q4_1::QS,
                            _ => blocks::q5_0::QS,
                        };
                        let q = _mm_loadu_si128(p.add(qs_at).cast());
                        let mut u =
                            _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16::<4>(q), q), low4);
                        if KIND == Q5_0 {
                            let qh = p.add(blocks::q5_0::QH).cast::<u32>().read_unaligned();
                            u = _mm256_or_si256(u, fifth_bits(u32::from_le(qh)));
                        }
                        dot_u8_i8(u, xq)
                    }
                };
                *acc = _mm256_fmadd_ps(lane(scales, r), _mm256_cvtepi32_ps(sum), *acc);
            }
        }
    }
    let mut offset = [0f32; 4];
    // SAFETY: `offset` holds four floats.
    unsafe { _mm_storeu_ps(offset.as_mut_ptr(), offsets) };
    std::array::from_fn(|r| hsum(acc[r]) + offset_factor(KIND) * offset[r])
}

/// Lane `r` (0..4) of each half of `v`, in every lane.
#[target_feature(enable = "avx2,fma,f16c")]
#[inline]
fn lane(v: __m256, r: usize) -> __m256 {
    match r {
        0 => _mm256_permute_ps::<0x00>(v),
        1 => _mm256_permute_ps::<0x55>(v),
        2 => _mm256_permute_ps::<0xaa>(v),
        _ => _mm256_permute_ps::<0xff>(v),
    }
}

/// Rows `0..R` of Q4_K (or, with `FIFTH`, Q5_K) weights dotted with `x`.
#[target_feature(enable = "avx2,fma,f16c")]
fn q4k_rows<const R: usize, const FIFTH: bool>(
    w: &[u8],
    stride: usize,
    x: &[Q8KBlock],
) -> [f32; R] {
    let bb = if FIFTH { 176 } else { 144 };
    let qs_at = if FIFTH {
        blocks::q5_k::QS
    } else {
        blocks::q4_k::QS
    };
    assert!(w.len() >= (R - 1) * stride + x.len() * bb);
    let low4 = _mm256_set1_epi8(0x0f);
    let one = _mm256_set1_epi8(1);
    let mut acc = [_mm256_setzero_ps(); R];
    let mut mins_total = [0f32; R];
    for (b, xb) in x.iter().enumerate() {
        let pair_sums: [i32; 8] =
            std::array::from_fn(|j| xb.bsums[2 * j] as i32 + xb.bsums[2 * j + 1] as i32);
        for r in 0..R {
            let block = &w[r * stride + b * bb..][..bb];
            let (scales, mins) =
                k4_scales_mins(&block[blocks::q4_k::SCALES..blocks::q4_k::SCALES + 12]);
            let min_sum: i32 = (0..8).map(|j| mins[j] as i32 * pair_sums[j]).sum();
            let d = blocks::f16_at(block, 0) * xb.d;
            let dmin = blocks::f16_at(block, blocks::q4_k::DMIN) * xb.d;
            mins_total[r] += dmin * min_sum as f32;
            let mut sum = _mm256_setzero_si256();
            // SAFETY: the block's 128 quant bytes (and 32 fifth-bit bytes) lie
            // inside `block`; the activations' 256 quants inside `xb`.
            unsafe {
                let mut qh = if FIFTH {
                    _mm256_loadu_si256(block.as_ptr().add(blocks::q5_k::QH).cast())
                } else {
                    _mm256_setzero_si256()
                };
                for pair in 0..4 {
                    let q = _mm256_loadu_si256(block.as_ptr().add(qs_at + 32 * pair).cast());
                    let mut lo = _mm256_and_si256(q, low4);
                    let mut hi = _mm256_and_si256(_mm256_srli_epi16::<4>(q), low4);
                    if FIFTH {
                        lo = _mm256_or_si256(lo, _mm256_slli_epi16::<4>(_mm256_and_si256(qh, one)));
                        let h = _mm256_and_si256(_mm256_srli_epi16::<1>(qh), one);
                        hi = _mm256_or_si256(hi, _mm256_slli_epi16::<4>(h));
                        qh = _mm256_srli_epi16::<2>(qh);
                    }
                    let x0 = _mm256_loadu_si256(xb.qs.as_ptr().add(64 * pair).cast());
                    let x1 = _mm256_loadu_si256(xb.qs.as_ptr().add(64 * pair + 32).cast());
                    let s0 = _mm256_madd_epi16(
                        _mm256_maddubs_epi16(lo, x0),
                        _mm256_set1_epi16(scales[2 * pair] as i16),
                    );
                    let s1 = _mm256_madd_epi16(
                        _mm256_maddubs_epi16(hi, x1),
                        _mm256_set1_epi16(scales[2 * pair + 1] as i16),
                    );
                    sum = _mm256_add_epi32(sum, _mm256_add_epi32(s0, s1));
                }
            }
            acc[r] = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sum), acc[r]);
        }
    }
    std::array::from_fn(|r| hsum(acc[r]) - mins_total[r])
}

/// Rows `0..R` of Q6_K weights dotted with `x`.
#[target_feature(enable = "avx2,fma,f16c")]
fn q6k_rows<const R: usize>(w: &[u8], stride: usize, x: &[Q8KBlock]) -> [f32; R] {
    let bb = GgmlType::Q6K.block_bytes();
    assert!(w.len() >= (R - 1) * stride + x.len() * bb);
    let low4 = _mm256_set1_epi8(0x0f);
    let low2 = _mm256_set1_epi8(3);
    let mut acc = [_mm256_setzero_ps(); R];
    for (b, xb) in x.iter().enumerate() {
        for (r, acc) in acc.iter_mut().enumerate() {
            let block = &w[r * stride + b * bb..][..bb];
            let sc = &block[blocks::q6_k::SCALES..blocks::q6_k::SCALES + 16];
            // The offset −32 of every quant, through the activations' sums of 16.
            let offset: i32 = (0..16)
                .map(|i| sc[i] as i8 as i32 * xb.bsums[i] as i32)
                .sum();
            let mut sum = _mm256_setzero_si256();
            // SAFETY: the reads stay inside `block` (ql: 128 bytes at 0, qh: 64
            // at 128, scales: 16 at 192) and inside `xb.qs`.
            unsafe {
                let scales = _mm_loadu_si128(sc.as_ptr().cast());
                for n in 0..2 {
                    let ql = block.as_ptr().add(blocks::q6_k::QL + 64 * n);
                    let a = _mm256_loadu_si256(ql.cast());
                    let c = _mm256_loadu_si256(ql.add(32).cast());
                    let h =
                        _mm256_loadu_si256(block.as_ptr().add(blocks::q6_k::QH + 32 * n).cast());
                    let groups = [
                        (_mm256_and_si256(a, low4), _mm256_and_si256(h, low2)),
                        (
                            _mm256_and_si256(c, low4),
                            _mm256_and_si256(_mm256_srli_epi16::<2>(h), low2),
                        ),
                        (
                            _mm256_and_si256(_mm256_srli_epi16::<4>(a), low4),
                            _mm256_and_si256(_mm256_srli_epi16::<4>(h), low2),
                        ),
                        (
                            _mm256_and_si256(_mm256_srli_epi16::<4>(c), low4),
                            _mm256_and_si256(_mm256_srli_epi16::<6>(h), low2),
                        ),
                    ];
                    for (k, (low, high)) in groups.into_iter().enumerate() {
                        let q = _mm256_or_si256(low, _mm256_slli_epi16::<4>(high));
                        let xq = _mm256_loadu_si256(xb.qs.as_ptr().add(128 * n + 32 * k).cast());
                        // Scales 8n+2k for the first 16 products, 8n+2k+1 for the rest.
                        let g = (8 * n + 2 * k) as i64;
                        let pick = _mm_set_epi64x(
                            (g + 1) * 0x0101_0101_0101_0101,
                            g * 0x0101_0101_0101_0101,
                        );
                        let scale = _mm256_cvtepi8_epi16(_mm_shuffle_epi8(scales, pick));
                        let products = _mm256_maddubs_epi16(q, xq);
                        sum = _mm256_add_epi32(sum, _mm256_madd_epi16(products, scale));
                    }
                }
            }
            let sum = _mm256_sub_epi32(sum, _mm256_setr_epi32(32 * offset, 0, 0, 0, 0, 0, 0, 0));
            let d = blocks::f16_at(block, blocks::q6_k::D) * xb.d;
            *acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sum), *acc);
        }
    }
    std::array::from_fn(|r| hsum(acc[r]))
}

const _: () = assert!(QK == 32 && QK_K == 256);
