//! Quantization of weights: f32 rows into GGML blocks, rounding exactly as
//! llama.cpp's reference `quantize_row_*_ref` does (so that a file written
//! with these equals llama-quantize's), and the f16/bf16 conversions
//! (round to nearest even, as ggml's).
//!
//! Q4_K is ggml's `quantize_row_q4_K_ref`: per 32-element sub-block a
//! weighted least-squares search for the scale and minimum
//! (`make_qkx2_quants`), then both quantized to 6 bits against the
//! super-block's f16 `d` and `dmin`, then the values requantized against the
//! rounded scales. Every float operation is done in the order ggml's C does
//! it (Rust does not fuse multiply-adds, and ggml's reference quantizers are
//! compiled without `-march`, so neither does llama-quantize).

use super::blocks::{self, QK, QK_K};
use super::GgmlType;
use crate::{Error, Result};
use half::{bf16, f16};

/// Whether `quantize_row` can write type `ty`.
pub fn can_quantize(ty: GgmlType) -> bool {
    use GgmlType::*;
    matches!(ty, F32 | F16 | BF16 | Q8_0 | Q4_0 | Q4_1 | Q5_0 | Q4K)
}

/// `x` as a row of `ty` blocks (`ty.row_bytes(x.len())` bytes).
pub fn quantize(ty: GgmlType, x: &[f32]) -> Result<Vec<u8>> {
    let len = ty
        .row_bytes(x.len() as u64)
        .ok_or_else(|| not_whole_blocks(ty, x.len()))?;
    let mut out = vec![0u8; len as usize];
    quantize_row(ty, x, &mut out)?;
    Ok(out)
}

/// Writes `x` as `ty` blocks into `out`, which must be exactly the row's size.
pub fn quantize_row(ty: GgmlType, x: &[f32], out: &mut [u8]) -> Result<()> {
    if !can_quantize(ty) {
        return Err(Error::Invalid(format!(
            "quantizing to {ty} is not supported (supported: f32, f16, bf16, q8_0, q4_0, q4_1, q5_0, q4_K)"
        )));
    }
    let len = ty
        .row_bytes(x.len() as u64)
        .ok_or_else(|| not_whole_blocks(ty, x.len()))?;
    if len != out.len() as u64 {
        return Err(Error::Invalid(format!(
            "a {ty} row of {} elements takes {len} bytes, not {}",
            x.len(),
            out.len()
        )));
    }
    let blocks = out.chunks_exact_mut(ty.block_bytes());
    match ty {
        GgmlType::F32 => blocks
            .zip(x)
            .for_each(|(b, v)| b.copy_from_slice(&v.to_le_bytes())),
        GgmlType::F16 => blocks
            .zip(x)
            .for_each(|(b, &v)| b.copy_from_slice(&f16::from_f32(v).to_le_bytes())),
        GgmlType::BF16 => blocks
            .zip(x)
            .for_each(|(b, &v)| b.copy_from_slice(&bf16::from_f32(v).to_le_bytes())),
        GgmlType::Q8_0 => blocks.zip(x.chunks_exact(QK)).for_each(|(b, x)| q8_0(x, b)),
        GgmlType::Q4_0 => blocks
            .zip(x.chunks_exact(QK))
            .for_each(|(b, x)| symmetric(x, b, 4)),
        GgmlType::Q5_0 => blocks
            .zip(x.chunks_exact(QK))
            .for_each(|(b, x)| symmetric(x, b, 5)),
        GgmlType::Q4_1 => blocks.zip(x.chunks_exact(QK)).for_each(|(b, x)| q4_1(x, b)),
        GgmlType::Q4K => blocks
            .zip(x.chunks_exact(QK_K))
            .for_each(|(b, x)| q4_k(x, b)),
        _ => unreachable!("checked by `can_quantize`"),
    }
    Ok(())
}

fn not_whole_blocks(ty: GgmlType, len: usize) -> Error {
    Error::Invalid(format!(
        "a {ty} row holds whole blocks of {} elements; {len} is not a multiple",
        ty.block_len()
    ))
}

fn put_f16(b: &mut [u8], at: usize, v: f32) {
    b[at..at + 2].copy_from_slice(&f16::from_f32(v).to_le_bytes());
}

/// Q8_0: `d = max|x| / 127`, `q = round(x / d)`.
fn q8_0(x: &[f32], b: &mut [u8]) {
    let amax = x.iter().fold(0f32, |a, v| a.max(v.abs()));
    let d = amax / 127.0;
    let id = if d != 0.0 { 1.0 / d } else { 0.0 };
    put_f16(b, 0, d);
    for (q, &v) in b[2..].iter_mut().zip(x) {
        *q = (v * id).round() as i8 as u8;
    }
}

/// Q4_0 (`bits` 4) and Q5_0 (`bits` 5): the value of largest magnitude
/// maps to `−2^(bits−1)`, `q = min(2^bits − 1, trunc(x / d + 2^(bits−1) + ½))`.
fn symmetric(x: &[f32], b: &mut [u8], bits: u32) {
    let half_range = (1u32 << (bits - 1)) as f32;
    let top = (1i8 << bits) - 1;
    let (mut amax, mut max) = (0f32, 0f32);
    for &v in x {
        if amax < v.abs() {
            amax = v.abs();
            max = v;
        }
    }
    let d = max / -half_range;
    let id = if d != 0.0 { 1.0 / d } else { 0.0 };
    put_f16(b, 0, d);
    // One constant, as llama.cpp adds it (`x·id + 8.5`, not `x·id + 8 + 0.5`).
    let offset = half_range + 0.5;
    let q = |v: f32| ((v * id + offset) as i8).min(top) as u8;
    let (qh_at, qs_at) = if bits == 5 {
        (blocks::q5_0::QH, blocks::q5_0::QS)
    } else {
        (0, blocks::q4_0::QS)
    };
    let mut qh = 0u32;
    for j in 0..QK / 2 {
        let (lo, hi) = (q(x[j]), q(x[j + QK / 2]));
        b[qs_at + j] = (lo & 0x0f) | ((hi & 0x0f) << 4);
        qh |= ((lo as u32 & 0x10) >> 4) << j;
        qh |= ((hi as u32 & 0x10) >> 4) << (j + QK / 2);
    }
    if bits == 5 {
        b[qh_at..qh_at + 4].copy_from_slice(&qh.to_le_bytes());
    }
}

/// Q4_1: `d = (max − min) / 15`, `m = min`, `q = min(15, trunc((x − min) / d + ½))`.
fn q4_1(x: &[f32], b: &mut [u8]) {
    let (mut min, mut max) = (f32::MAX, -f32::MAX);
    for &v in x {
        min = min.min(v);
        max = max.max(v);
    }
    let d = (max - min) / 15.0;
    let id = if d != 0.0 { 1.0 / d } else { 0.0 };
    put_f16(b, 0, d);
    put_f16(b, 2, min);
    let q = |v: f32| (((v - min) * id + 0.5) as i8).min(15) as u8;
    for j in 0..QK / 2 {
        b[4 + j] = q(x[j]) | (q(x[j + QK / 2]) << 4);
    }
}

/// ggml's `nearest_int`: round to nearest, ties to even, by adding
/// 1.5 · 2^23 and reading the low mantissa bits (exact for |x| < 2^22, which
/// every caller's clamp then bounds; ggml gives the same bits outside).
fn nearest_int(x: f32) -> i32 {
    let v = x + 12_582_912.0;
    (v.to_bits() as i32 & 0x007f_ffff) - 0x0040_0000
}

/// ggml's `make_qkx2_quants` for Q4_K (`nmax` 15, `rmin` −1, `rdelta` 0.1,
/// 20 steps, squared error): the levels `l` of `x` and the scale `s` and
/// minimum `m` (returned as `−m ≥ 0`) minimising Σ w·(s·l + m − x)², trying
/// the plain min/max fit and 21 stretched ones refined by least squares.
fn make_qkx2_quants(x: &[f32], weights: &[f32], levels: &mut [u8]) -> (f32, f32) {
    const NMAX: i32 = 15;
    const RMIN: f32 = -1.0;
    const RDELTA: f32 = 0.1;
    const NSTEP: i32 = 20;
    let n = x.len();
    let (mut min, mut max) = (x[0], x[0]);
    let mut sum_w = weights[0];
    let mut sum_x = sum_w * x[0];
    for i in 1..n {
        if x[i] < min {
            min = x[i];
        }
        if x[i] > max {
            max = x[i];
        }
        let w = weights[i];
        sum_w += w;
        sum_x += w * x[i];
    }
    if min > 0.0 {
        min = 0.0;
    }
    if max == min {
        levels.fill(0);
        return (0.0, -min);
    }
    let mut iscale = NMAX as f32 / (max - min);
    let mut scale = 1.0 / iscale;
    let mut best_error = 0f32;
    for i in 0..n {
        let l = nearest_int(iscale * (x[i] - min)).clamp(0, NMAX);
        levels[i] = l as u8;
        let diff = scale * l as f32 + min - x[i];
        best_error += weights[i] * (diff * diff);
    }
    let mut aux = [0u8; 32];
    for step in 0..=NSTEP {
        iscale = (RMIN + RDELTA * step as f32 + NMAX as f32) / (max - min);
        let (mut sum_l, mut sum_l2, mut sum_xl) = (0f32, 0f32, 0f32);
        for i in 0..n {
            let l = nearest_int(iscale * (x[i] - min)).clamp(0, NMAX);
            aux[i] = l as u8;
            let (w, l) = (weights[i], l as f32);
            sum_l += w * l;
            sum_l2 += w * l * l;
            sum_xl += w * l * x[i];
        }
        let det = sum_w * sum_l2 - sum_l * sum_l;
        if det > 0.0 {
            let mut this_scale = (sum_w * sum_xl - sum_x * sum_l) / det;
            let mut this_min = (sum_l2 * sum_x - sum_l * sum_xl) / det;
            if this_min > 0.0 {
                this_min = 0.0;
                this_scale = sum_xl / sum_l2;
            }
            let mut error = 0f32;
            for i in 0..n {
                let diff = this_scale * aux[i] as f32 + this_min - x[i];
                error += weights[i] * (diff * diff);
            }
            if error < best_error {
                levels[..n].copy_from_slice(&aux[..n]);
                best_error = error;
                scale = this_scale;
                min = this_min;
            }
        }
    }
    (scale, -min)
}

/// Q4_K (`quantize_row_q4_K_ref`): one 256-element super-block.
fn q4_k(x: &[f32], b: &mut [u8]) {
    let mut levels = [0u8; QK_K];
    let mut scales = [0f32; QK_K / QK];
    let mut mins = [0f32; QK_K / QK];
    let (mut max_scale, mut max_min) = (0f32, 0f32);
    let mut weights = [0f32; QK];
    for j in 0..QK_K / QK {
        let x = &x[QK * j..QK * (j + 1)];
        let sum_x2 = x.iter().fold(0f32, |s, &v| s + v * v);
        let av_x = (sum_x2 / QK as f32).sqrt();
        for (w, &v) in weights.iter_mut().zip(x) {
            *w = av_x + v.abs();
        }
        (scales[j], mins[j]) = make_qkx2_quants(x, &weights, &mut levels[QK * j..QK * (j + 1)]);
        if scales[j] > max_scale {
            max_scale = scales[j];
        }
        if mins[j] > max_min {
            max_min = mins[j];
        }
    }
    let inv_scale = if max_scale > 0.0 {
        63.0 / max_scale
    } else {
        0.0
    };
    let inv_min = if max_min > 0.0 { 63.0 / max_min } else { 0.0 };
    let packed = &mut b[blocks::q4_k::SCALES..blocks::q4_k::SCALES + 12];
    packed.fill(0);
    for j in 0..QK_K / QK {
        // ggml stores `nearest_int` in a `uint8_t` before clamping to 63.
        let ls = (nearest_int(inv_scale * scales[j]) as u8).min(63);
        let lm = (nearest_int(inv_min * mins[j]) as u8).min(63);
        if j < 4 {
            packed[j] = ls;
            packed[j + 4] = lm;
        } else {
            packed[j + 4] = (ls & 0x0f) | ((lm & 0x0f) << 4);
            packed[j - 4] |= (ls >> 4) << 6;
            packed[j] |= (lm >> 4) << 6;
        }
    }
    put_f16(b, 0, max_scale / 63.0);
    put_f16(b, blocks::q4_k::DMIN, max_min / 63.0);
    let (d, dmin) = (blocks::f16_at(b, 0), blocks::f16_at(b, blocks::q4_k::DMIN));
    let (sc, m) = blocks::k4_scales_mins(&b[blocks::q4_k::SCALES..blocks::q4_k::SCALES + 12]);
    for j in 0..QK_K / QK {
        let dj = d * sc[j] as f32;
        if dj == 0.0 {
            continue;
        }
        let dm = dmin * m[j] as f32;
        for i in QK * j..QK * (j + 1) {
            levels[i] = nearest_int((x[i] + dm) / dj).clamp(0, 15) as u8;
        }
    }
    let qs = &mut b[blocks::q4_k::QS..];
    for (pair, q) in qs.chunks_exact_mut(32).enumerate() {
        for l in 0..32 {
            q[l] = levels[64 * pair + l] | (levels[64 * pair + l + 32] << 4);
        }
    }
}
