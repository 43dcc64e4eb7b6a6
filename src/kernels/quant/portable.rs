//! The portable kernel path: each weight row's dot product with prepared
//! activations in plain Rust, integer sums per block as the SIMD paths do.
//! It runs on any CPU and is the reference the SIMD paths are tested against.

use super::activations::{Activations, Q8Block, Q8KBlock};
use super::blocks::{self, f16_at, k4_scales_mins};
use super::GgmlType;

/// `out[i] = row i · x` for the rows stored back to back in `w`, each
/// `row_bytes` long. `x` must have been prepared for `ty`.
pub fn dot_rows(ty: GgmlType, w: &[u8], row_bytes: usize, x: &Activations<'_>, out: &mut [f32]) {
    for (o, row) in out.iter_mut().zip(w.chunks_exact(row_bytes)) {
        *o = dot(ty, row, x);
    }
}

fn dot(ty: GgmlType, row: &[u8], x: &Activations<'_>) -> f32 {
    let bb = ty.block_bytes();
    match (ty, x) {
        (GgmlType::F32, Activations::F32(x)) => row
            .chunks_exact(4)
            .zip(*x)
            .map(|(b, &x)| f32::from_le_bytes([b[0], b[1], b[2], b[3]]) * x)
            .sum(),
        (GgmlType::F16, Activations::F32(x)) => row
            .chunks_exact(2)
            .zip(*x)
            .map(|(b, &x)| f16_at(b, 0) * x)
            .sum(),
        (GgmlType::BF16, Activations::F32(x)) => row
            .chunks_exact(2)
            .zip(*x)
            .map(|(b, &x)| f32::from_bits((u16::from_le_bytes([b[0], b[1]]) as u32) << 16) * x)
            .sum(),
        (_, Activations::Q8(x)) => row
            .chunks_exact(bb)
            .zip(x)
            .map(|(b, x)| block32(ty, b, x))
            .sum(),
        (_, Activations::Q8K(x)) => row
            .chunks_exact(bb)
            .zip(x)
            .map(|(b, x)| block256(ty, b, x))
            .sum(),
        _ => unreachable!("activations are prepared for the weight type"),
    }
}

/// Σ u·x over a block, for unsigned weight quants: the 16 nibble bytes `qs`
/// (low nibbles elements 0..16, high 16..32) and a fifth bit per element
/// from `qh` (bit `j` for element `j`; 0 for 4-bit types).
fn unsigned_dot(x: &Q8Block, qs: &[u8], qh: u32) -> i32 {
    let (x_lo, x_hi) = x.qs.split_at(16);
    let mut sum = 0i32;
    for (j, ((&q, &a), &b)) in qs[..16].iter().zip(x_lo).zip(x_hi).enumerate() {
        let lo = (q & 0x0f) | ((((qh >> j) & 1) << 4) as u8);
        let hi = (q >> 4) | ((((qh >> (j + 16)) & 1) << 4) as u8);
        sum += lo as i32 * a as i32 + hi as i32 * b as i32;
    }
    sum
}

/// One 32-element block of Q4_0, Q4_1, Q5_0 or Q8_0 weights times `x`.
fn block32(ty: GgmlType, b: &[u8], x: &Q8Block) -> f32 {
    let d = f16_at(b, 0);
    match ty {
        GgmlType::Q8_0 => {
            let qs = &b[blocks::q8_0::QS..];
            let sum: i32 = (0..32).map(|j| qs[j] as i8 as i32 * x.qs[j] as i32).sum();
            d * x.d * sum as f32
        }
        GgmlType::Q4_0 => {
            let sum = unsigned_dot(x, &b[blocks::q4_0::QS..], 0);
            d * x.d * sum as f32 - 8.0 * d * x.s
        }
        GgmlType::Q4_1 => {
            let sum = unsigned_dot(x, &b[blocks::q4_1::QS..], 0);
            d * x.d * sum as f32 + f16_at(b, 2) * x.s
        }
        GgmlType::Q5_0 => {
            let at = blocks::q5_0::QH;
            let qh = u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]);
            let sum = unsigned_dot(x, &b[blocks::q5_0::QS..], qh);
            d * x.d * sum as f32 - 16.0 * d * x.s
        }
        _ => unreachable!("only the 32-element formats take Q8 blocks"),
    }
}

/// One 256-element super-block of Q4_K, Q5_K or Q6_K weights times `x`.
fn block256(ty: GgmlType, b: &[u8], x: &Q8KBlock) -> f32 {
    match ty {
        GgmlType::Q4K | GgmlType::Q5K => {
            let (scales, mins) =
                k4_scales_mins(&b[blocks::q4_k::SCALES..blocks::q4_k::SCALES + 12]);
            let fifth = ty == GgmlType::Q5K;
            let qs = if fifth {
                &b[blocks::q5_k::QS..]
            } else {
                &b[blocks::q4_k::QS..]
            };
            let qh = &b[blocks::q5_k::QH..blocks::q5_k::QS];
            let (mut sum, mut min_sum) = (0i32, 0i32);
            for j in 0..8 {
                let (pair, half) = (j / 2, j % 2);
                let mut s = 0i32;
                for l in 0..32 {
                    let mut q = (qs[32 * pair + l] >> (4 * half)) & 0x0f;
                    if fifth {
                        q |= ((qh[l] >> j) & 1) << 4;
                    }
                    s += q as i32 * x.qs[32 * j + l] as i32;
                }
                sum += scales[j] as i32 * s;
                min_sum += mins[j] as i32 * (x.bsums[2 * j] as i32 + x.bsums[2 * j + 1] as i32);
            }
            let (d, dmin) = (f16_at(b, 0), f16_at(b, blocks::q4_k::DMIN));
            x.d * (d * sum as f32 - dmin * min_sum as f32)
        }
        GgmlType::Q6K => {
            let mut sum = 0i32;
            for n in 0..2 {
                let ql = &b[blocks::q6_k::QL + 64 * n..];
                let qh = &b[blocks::q6_k::QH + 32 * n..];
                for k in 0..4 {
                    for h in 0..2 {
                        let mut s = 0i32;
                        for l in 16 * h..16 * h + 16 {
                            let low = (ql[l + 32 * (k % 2)] >> (4 * (k / 2))) & 0x0f;
                            let q = low | (((qh[l] >> (2 * k)) & 3) << 4);
                            s += (q as i32 - 32) * x.qs[128 * n + 32 * k + l] as i32;
                        }
                        let scale = b[blocks::q6_k::SCALES + 8 * n + 2 * k + h] as i8;
                        sum += scale as i32 * s;
                    }
                }
            }
            f16_at(b, blocks::q6_k::D) * x.d * sum as f32
        }
        _ => unreachable!("only the K-quants take Q8K blocks"),
    }
}
