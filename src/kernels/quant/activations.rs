//! Activations in the form each weight type's dot product wants: plain f32
//! for float weights, and 8-bit blocks for quantized weights, so that the
//! inner loops multiply small integers (as llama.cpp does with Q8_0/Q8_1
//! and Q8_K). Quantizing an activation costs one pass over a vector; the
//! products then read a quarter of the bytes and use integer multiply-adds.

use super::blocks::{QK, QK_K};
use super::GgmlType;

/// 32 activations as `d · qs`, with `s = d · Σqs` for the weight formats
/// that carry an offset (`q − 8`, `q − 16`) or a minimum.
#[derive(Clone, Copy, Debug)]
#[repr(C)]
pub struct Q8Block {
    /// The quants, `round(x / d)` in −127..=127.
    pub qs: [i8; QK],
    /// The scale, `max|x| / 127`.
    pub d: f32,
    /// `d · Σ qs`.
    pub s: f32,
}

/// 256 activations as `d · qs`, with the sum of each 16 quants (for the
/// K-quants' minimums and offsets).
#[derive(Clone, Copy, Debug)]
#[repr(C)]
pub struct Q8KBlock {
    /// The quants, `round(x / d)` in −127..=127.
    pub qs: [i8; QK_K],
    /// The scale, `max|x| / 127`.
    pub d: f32,
    /// `Σ qs[16i..16i + 16]` for each `i`.
    pub bsums: [i16; QK_K / 16],
}

/// One activation vector, in the form that weights of some type multiply.
pub enum Activations<'a> {
    /// As given (float weights).
    F32(&'a [f32]),
    /// In 32-element 8-bit blocks (Q4_0, Q4_1, Q5_0, Q8_0 weights).
    Q8(Vec<Q8Block>),
    /// In 256-element 8-bit blocks (K-quant weights).
    Q8K(Vec<Q8KBlock>),
}

impl<'a> Activations<'a> {
    /// `x` prepared for a product with `ty` weights; `x.len()` must be a
    /// whole number of `ty`'s blocks (the caller checks).
    pub fn new(ty: GgmlType, x: &'a [f32]) -> Self {
        match ty.block_len() {
            1 => Self::F32(x),
            QK => Self::Q8(x.chunks_exact(QK).map(q8_block).collect()),
            _ => Self::Q8K(x.chunks_exact(QK_K).map(q8k_block).collect()),
        }
    }
}

/// The scale `max|x| / 127` of `x` and its inverse (0 for an all-zero block).
fn scale(x: &[f32]) -> (f32, f32) {
    let amax = x.iter().fold(0f32, |a, v| a.max(v.abs()));
    let d = amax / 127.0;
    (d, if d != 0.0 { 1.0 / d } else { 0.0 })
}

fn q8_block(x: &[f32]) -> Q8Block {
    let (d, id) = scale(x);
    let mut qs = [0i8; QK];
    for (q, &v) in qs.iter_mut().zip(x) {
        // |v · id| ≤ 127, so the conversion never saturates.
        *q = (v * id).round() as i32 as i8;
    }
    let sum: i32 = qs.iter().map(|&q| q as i32).sum();
    Q8Block {
        qs,
        d,
        s: d * sum as f32,
    }
}

fn q8k_block(x: &[f32]) -> Q8KBlock {
    let (d, id) = scale(x);
    let mut qs = [0i8; QK_K];
    for (q, &v) in qs.iter_mut().zip(x) {
        *q = (v * id).round() as i8;
    }
    let mut bsums = [0i16; QK_K / 16];
    for (s, q) in bsums.iter_mut().zip(qs.chunks_exact(16)) {
        *s = q.iter().map(|&q| q as i16).sum();
    }
    Q8KBlock { qs, d, bsums }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_hold_rounded_quants_and_their_sums() {
        let x: Vec<f32> = (0..256).map(|i| (i as f32 - 100.0) * 0.37).collect();
        let Activations::Q8(b) = Activations::new(GgmlType::Q4_1, &x) else {
            panic!("q4_1 takes 32-element blocks")
        };
        assert_eq!(b.len(), 8);
        for (blk, x) in b.iter().zip(x.chunks(32)) {
            let amax = x.iter().fold(0f32, |a, v| a.max(v.abs()));
            assert_eq!(blk.d, amax / 127.0);
            let sum: i32 = blk.qs.iter().map(|&q| q as i32).sum();
            assert_eq!(blk.s, blk.d * sum as f32);
            for (&q, &v) in blk.qs.iter().zip(x) {
                assert!((q as f32 * blk.d - v).abs() <= blk.d / 2.0 * 1.0001);
            }
        }
        let Activations::Q8K(k) = Activations::new(GgmlType::Q6K, &x) else {
            panic!("q6_K takes 256-element blocks")
        };
        assert_eq!(k[0].qs[255], 127);
        let s: i16 = k[0].qs[16..32].iter().map(|&q| q as i16).sum();
        assert_eq!(k[0].bsums[1], s);
        let zeros = [0f32; 32];
        let Activations::Q8(z) = Activations::new(GgmlType::Q8_0, &zeros) else {
            panic!()
        };
        assert_eq!((z[0].d, z[0].s, z[0].qs), (0.0, 0.0, [0; 32]));
    }
}
