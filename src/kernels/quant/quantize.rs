//! Quantization of weights: f32 rows into GGML blocks, rounding exactly as
//! llama.cpp's reference `quantize_row_*_ref` does (so that a file written
//! with these equals llama-quantize's), and the f16/bf16 conversions
//! (round to nearest even, as ggml's).

use super::blocks::{self, QK};
use super::GgmlType;
use crate::{Error, Result};
use half::{bf16, f16};

/// Whether `quantize_row` can write type `ty`.
pub fn can_quantize(ty: GgmlType) -> bool {
    use GgmlType::*;
    matches!(ty, F32 | F16 | BF16 | Q8_0 | Q4_0 | Q4_1 | Q5_0)
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
            "quantizing to {ty} is not supported (supported: f32, f16, bf16, q8_0, q4_0, q4_1, q5_0)"
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
