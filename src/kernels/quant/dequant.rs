//! Dequantization: one row of any supported GGML type expanded to f32, with
//! the same arithmetic (and so the same bits) as llama.cpp's
//! `dequantize_row_*` compiled without fused multiply-adds.

use super::blocks::{self, f16_at, k4_scales_mins, QK, QK_K};
use super::GgmlType;
use crate::{Error, Result};

/// Whether `dequantize_row` (and so `QMatrix`) handles type `ty`.
pub fn supported(ty: GgmlType) -> bool {
    use GgmlType::*;
    matches!(
        ty,
        F32 | F16 | BF16 | Q8_0 | Q4_0 | Q4_1 | Q5_0 | Q4K | Q5K | Q6K
    )
}

/// Expands the row stored in `src` (a whole number of `ty` blocks) into
/// `out`; `src` must hold exactly `out.len()` elements.
pub fn dequantize_row(ty: GgmlType, src: &[u8], out: &mut [f32]) -> Result<()> {
    if !supported(ty) {
        return Err(Error::Invalid(format!(
            "dequantizing {ty} tensors is not supported"
        )));
    }
    let expected = ty.row_bytes(out.len() as u64);
    if expected != Some(src.len() as u64) {
        return Err(Error::Invalid(format!(
            "a {ty} row of {} elements takes {} bytes, not {}",
            out.len(),
            expected.map_or("a whole number of blocks and".to_string(), |b| b
                .to_string()),
            src.len()
        )));
    }
    dequantize_blocks(ty, src, out);
    Ok(())
}

/// `dequantize_row` without the checks: `ty` must be `supported` and `src`
/// exactly `out.len()` elements of it.
pub(super) fn dequantize_blocks(ty: GgmlType, src: &[u8], out: &mut [f32]) {
    let blocks = src.chunks_exact(ty.block_bytes());
    match ty {
        GgmlType::F32 => {
            for (o, b) in out.iter_mut().zip(blocks) {
                *o = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
            }
        }
        GgmlType::F16 => {
            for (o, b) in out.iter_mut().zip(blocks) {
                *o = f16_at(b, 0);
            }
        }
        GgmlType::BF16 => {
            for (o, b) in out.iter_mut().zip(blocks) {
                *o = f32::from_bits((u16::from_le_bytes([b[0], b[1]]) as u32) << 16);
            }
        }
        GgmlType::Q4_0 => blocks
            .zip(out.chunks_exact_mut(QK))
            .for_each(|(b, o)| q4_0(b, o)),
        GgmlType::Q4_1 => blocks
            .zip(out.chunks_exact_mut(QK))
            .for_each(|(b, o)| q4_1(b, o)),
        GgmlType::Q5_0 => blocks
            .zip(out.chunks_exact_mut(QK))
            .for_each(|(b, o)| q5_0(b, o)),
        GgmlType::Q8_0 => blocks
            .zip(out.chunks_exact_mut(QK))
            .for_each(|(b, o)| q8_0(b, o)),
        GgmlType::Q4K => blocks
            .zip(out.chunks_exact_mut(QK_K))
            .for_each(|(b, o)| q4_k(b, o, false)),
        GgmlType::Q5K => blocks
            .zip(out.chunks_exact_mut(QK_K))
            .for_each(|(b, o)| q4_k(b, o, true)),
        GgmlType::Q6K => blocks
            .zip(out.chunks_exact_mut(QK_K))
            .for_each(|(b, o)| q6_k(b, o)),
        _ => unreachable!("checked by `supported`"),
    }
}

/// `d · (q − 8)`, low nibbles first.
fn q4_0(b: &[u8], out: &mut [f32]) {
    let d = f16_at(b, 0);
    let qs = &b[blocks::q4_0::QS..];
    for j in 0..QK / 2 {
        out[j] = ((qs[j] & 0x0f) as i32 - 8) as f32 * d;
        out[j + QK / 2] = ((qs[j] >> 4) as i32 - 8) as f32 * d;
    }
}

/// `d · q + m`, low nibbles first.
fn q4_1(b: &[u8], out: &mut [f32]) {
    let (d, m) = (f16_at(b, 0), f16_at(b, 2));
    let qs = &b[blocks::q4_1::QS..];
    for j in 0..QK / 2 {
        out[j] = (qs[j] & 0x0f) as f32 * d + m;
        out[j + QK / 2] = (qs[j] >> 4) as f32 * d + m;
    }
}

/// `d · (q − 16)` with the fifth bit of element `j` in bit `j` of `qh`.
fn q5_0(b: &[u8], out: &mut [f32]) {
    let d = f16_at(b, 0);
    let at = blocks::q5_0::QH;
    let qh = u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]);
    let qs = &b[blocks::q5_0::QS..];
    for j in 0..QK / 2 {
        let lo = (qs[j] & 0x0f) | (((qh >> j) << 4) & 0x10) as u8;
        let hi = (qs[j] >> 4) | ((qh >> (j + 12)) & 0x10) as u8;
        out[j] = (lo as i32 - 16) as f32 * d;
        out[j + QK / 2] = (hi as i32 - 16) as f32 * d;
    }
}

/// `d · q`.
fn q8_0(b: &[u8], out: &mut [f32]) {
    let d = f16_at(b, 0);
    for (o, &q) in out.iter_mut().zip(&b[blocks::q8_0::QS..]) {
        *o = (q as i8) as f32 * d;
    }
}

/// Q4_K, or with `fifth_bit` Q5_K: `d·scale_j · q − dmin·min_j` per
/// 32-element sub-block `j`.
fn q4_k(b: &[u8], out: &mut [f32], fifth_bit: bool) {
    let (d, dmin) = (f16_at(b, 0), f16_at(b, blocks::q4_k::DMIN));
    let (scales, mins) = k4_scales_mins(&b[blocks::q4_k::SCALES..blocks::q4_k::SCALES + 12]);
    let (qs, qh) = if fifth_bit {
        (
            &b[blocks::q5_k::QS..],
            &b[blocks::q5_k::QH..blocks::q5_k::QS],
        )
    } else {
        (&b[blocks::q4_k::QS..], &b[..0])
    };
    for (pair, out) in out.chunks_exact_mut(64).enumerate() {
        let q = &qs[32 * pair..32 * pair + 32];
        for half in 0..2 {
            let j = 2 * pair + half;
            let (dj, mj) = (d * scales[j] as f32, dmin * mins[j] as f32);
            for l in 0..32 {
                let mut v = (q[l] >> (4 * half)) & 0x0f;
                if fifth_bit && qh[l] & (1 << j) != 0 {
                    v += 16;
                }
                out[32 * half + l] = dj * v as f32 - mj;
            }
        }
    }
}

/// Q6_K: `d · scale · (q − 32)`, 6-bit `q` from a nibble of `ql` and two
/// bits of `qh`, a signed scale per 16 elements.
fn q6_k(b: &[u8], out: &mut [f32]) {
    let d = f16_at(b, blocks::q6_k::D);
    for (n, out) in out.chunks_exact_mut(128).enumerate() {
        let ql = &b[blocks::q6_k::QL + 64 * n..];
        let qh = &b[blocks::q6_k::QH + 32 * n..];
        let sc = &b[blocks::q6_k::SCALES + 8 * n..];
        for l in 0..32 {
            let is = l / 16;
            let q = [
                (ql[l] & 0x0f) | ((qh[l] & 3) << 4),
                (ql[l + 32] & 0x0f) | (((qh[l] >> 2) & 3) << 4),
                (ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4),
                (ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4),
            ];
            for (k, &q) in q.iter().enumerate() {
                let scale = sc[is + 2 * k] as i8;
                out[l + 32 * k] = d * scale as f32 * (q as i32 - 32) as f32;
            }
        }
    }
}
