//! Weights regrouped eight rows at a time, so that one SIMD register holds
//! a piece of every row of the group: the products then need no horizontal
//! sums (lane `r` of an accumulator is row `r`), the scales of eight rows
//! load as one vector, and each activation block is read once per eight
//! rows. llama.cpp's repacked `Q4_0_8x8` layout follows the same idea.
//!
//! For each group of eight rows and each 32-element block, in order:
//! - the eight rows' f16 scales `d` (16 bytes);
//! - Q4_1 only: their f16 minimums `m` (16 bytes);
//! - Q5_0 only: their fifth bits (32 bytes), row `r`'s four bytes at
//!   `4·r`, byte `p` holding the fifth bits of piece `p`: elements
//!   `4p .. 4p + 4` in bits 0–3, `16 + 4p ..` in bits 4–7;
//! - the quants in four-element pieces: piece `p` of row `r` at byte
//!   `32·p + 4·r`. Q8_0 has eight pieces (elements `4p .. 4p + 4`, 256
//!   bytes); Q4_0, Q4_1 and Q5_0 four, whose bytes hold elements `4p .. 4p + 4`
//!   in their low nibbles and `16 + 4p ..` in their high ones (as GGML
//!   packs them: 128 bytes).
//!
//! Float weights (F32, F16, BF16) are regrouped column by column: the eight
//! rows' values of column `k` side by side, so that one broadcast activation
//! feeds the eight rows' multiply-adds.
//!
//! So a group takes as many bytes as its eight rows did: only their order
//! changes.

use super::activations::Q8Block;
use super::blocks;
use super::huge_pages::HugeBytes;
use super::{GgmlType, WeightBytes};

/// Rows regrouped together.
pub const GROUP: usize = 8;

/// How far ahead of the block being multiplied the kernels prefetch weights.
#[cfg(target_arch = "x86_64")]
const PREFETCH_BYTES: usize = 2048;

/// A `rows × cols` matrix regrouped for the AVX2 kernels.
#[derive(Clone, Debug)]
pub struct Interleaved {
    ty: GgmlType,
    /// Blocks per row (columns, for float weights).
    blocks: usize,
    bytes: HugeBytes,
}

/// One activation row as the regrouped kernels take it.
#[derive(Clone, Copy)]
pub enum Row<'a> {
    /// 8-bit blocks (quantized weights).
    Q8(&'a [Q8Block]),
    /// Plain values (float weights).
    F32(&'a [f32]),
}

/// Whether weights of type `ty` can be regrouped.
pub fn can_interleave(ty: GgmlType) -> bool {
    is_float(ty)
        || matches!(
            ty,
            GgmlType::Q4_0 | GgmlType::Q4_1 | GgmlType::Q5_0 | GgmlType::Q8_0
        )
}

fn is_float(ty: GgmlType) -> bool {
    matches!(ty, GgmlType::F32 | GgmlType::F16 | GgmlType::BF16)
}

/// Where a quantized block's quants start in GGML's layout, and how many
/// four-byte pieces they make.
fn quant_layout(ty: GgmlType) -> (usize, usize) {
    match ty {
        GgmlType::Q4_1 => (blocks::q4_1::QS, 4),
        GgmlType::Q5_0 => (blocks::q5_0::QS, 4),
        GgmlType::Q4_0 => (blocks::q4_0::QS, 4),
        _ => (blocks::q8_0::QS, 8),
    }
}

/// Where the quants start in a group's block of quantized type `ty`.
const fn packed_quants_at(ty: GgmlType) -> usize {
    match ty {
        GgmlType::Q4_1 => 32,
        GgmlType::Q5_0 => 48,
        _ => 16,
    }
}

/// Bytes of one group's block of type `ty`.
pub const fn group_block_bytes(ty: GgmlType) -> usize {
    match ty {
        GgmlType::Q4_1 => 32 + 128,
        GgmlType::Q5_0 => 48 + 128,
        GgmlType::Q4_0 => 16 + 128,
        GgmlType::F32 => 4 * GROUP,
        GgmlType::F16 | GgmlType::BF16 => 2 * GROUP,
        _ => 16 + 256,
    }
}

impl Interleaved {
    /// `rows` rows of `cols` elements of `ty` (back to back in `src`, each
    /// `row_bytes` long) regrouped; `None` for a type that is not regrouped
    /// or rows that do not fill whole groups (or when no memory could be
    /// mapped for the copy: see `huge_pages`). The source bytes are released
    /// (`WeightBytes::release`) as they are copied, so that a mapped file's
    /// pages and the copy are not in memory together.
    pub fn new(
        ty: GgmlType,
        rows: usize,
        cols: usize,
        row_bytes: usize,
        src: &WeightBytes,
    ) -> Option<Self> {
        if !can_interleave(ty)
            || !rows.is_multiple_of(GROUP)
            || !cols.is_multiple_of(ty.block_len())
        {
            return None;
        }
        let blocks = cols / ty.block_len();
        let block_bytes = ty.block_bytes();
        let (quant_at, pieces) = quant_layout(ty);
        let len = rows / GROUP * blocks * group_block_bytes(ty);
        let bytes = HugeBytes::filled(len, |out| {
            let mut at = 0;
            let mut put = |piece: &[u8]| {
                out[at..at + piece.len()].copy_from_slice(piece);
                at += piece.len();
            };
            let group_bytes = GROUP * row_bytes;
            // Groups copied between releases: about a megabyte of the source.
            let batch = ((1 << 20) / group_bytes).max(1);
            let release = |groups: std::ops::Range<usize>| {
                let done = groups.start * group_bytes..groups.end * group_bytes;
                src.slice(done).expect("inside the source").release();
            };
            for group in 0..rows / GROUP {
                if group % batch == 0 && group > 0 {
                    release(group - batch..group);
                }
                for b in 0..blocks {
                    let block = |r: usize| {
                        let start = (group * GROUP + r) * row_bytes + b * block_bytes;
                        &src.bytes()[start..start + block_bytes]
                    };
                    if is_float(ty) {
                        for r in 0..GROUP {
                            put(block(r));
                        }
                        continue;
                    }
                    for r in 0..GROUP {
                        put(&block(r)[..2]);
                    }
                    if ty == GgmlType::Q4_1 {
                        for r in 0..GROUP {
                            put(&block(r)[2..4]);
                        }
                    }
                    if ty == GgmlType::Q5_0 {
                        for r in 0..GROUP {
                            let at = blocks::q5_0::QH;
                            let qh = u32::from_le_bytes(
                                block(r)[at..at + 4].try_into().expect("4 bytes"),
                            );
                            put(&std::array::from_fn::<u8, 4, _>(|p| {
                                ((qh >> (4 * p)) & 0xf | ((qh >> (16 + 4 * p)) & 0xf) << 4) as u8
                            }));
                        }
                    }
                    for p in 0..pieces {
                        for r in 0..GROUP {
                            put(&block(r)[quant_at + 4 * p..][..4]);
                        }
                    }
                }
            }
            let groups = rows / GROUP;
            release((groups - 1) / batch * batch..groups);
            debug_assert_eq!(at, len, "every byte written once");
        })?;
        Some(Self { ty, blocks, bytes })
    }

    /// Row `r`'s bytes as GGML stores them (the inverse of the regrouping),
    /// into `out` (one row's bytes): so that a row can be read, as an
    /// embedding lookup reads one, without the source's pages.
    pub fn original_row(&self, r: usize, out: &mut [u8]) {
        let ty = self.ty;
        let block_bytes = ty.block_bytes();
        assert_eq!(out.len(), self.blocks * block_bytes, "one row's bytes");
        let (g, rr) = (r / GROUP, r % GROUP);
        let group = self.groups(g..g + 1);
        let gb = group_block_bytes(ty);
        for (b, block) in out.chunks_exact_mut(block_bytes).enumerate() {
            let p = &group[b * gb..(b + 1) * gb];
            if is_float(ty) {
                block.copy_from_slice(&p[rr * block_bytes..(rr + 1) * block_bytes]);
                continue;
            }
            block[..2].copy_from_slice(&p[2 * rr..2 * rr + 2]);
            if ty == GgmlType::Q4_1 {
                block[2..4].copy_from_slice(&p[16 + 2 * rr..16 + 2 * rr + 2]);
            }
            if ty == GgmlType::Q5_0 {
                let fifth = &p[16 + 4 * rr..16 + 4 * rr + 4];
                let qh = fifth.iter().enumerate().fold(0u32, |qh, (k, &byte)| {
                    let byte = byte as u32;
                    qh | (byte & 0xf) << (4 * k) | (byte >> 4) << (16 + 4 * k)
                });
                let at = blocks::q5_0::QH;
                block[at..at + 4].copy_from_slice(&qh.to_le_bytes());
            }
            let (quant_at, pieces) = quant_layout(ty);
            let packed_at = packed_quants_at(ty);
            for piece in 0..pieces {
                let from = packed_at + 32 * piece + 4 * rr;
                block[quant_at + 4 * piece..][..4].copy_from_slice(&p[from..from + 4]);
            }
        }
    }

    /// The weight type.
    pub fn ty(&self) -> GgmlType {
        self.ty
    }

    /// Blocks per row.
    pub fn blocks(&self) -> usize {
        self.blocks
    }

    /// The bytes of groups `groups` (a range of group indices).
    pub fn groups(&self, groups: std::ops::Range<usize>) -> &[u8] {
        let per_group = self.blocks * group_block_bytes(self.ty);
        &self.bytes.bytes()[groups.start * per_group..groups.end * per_group]
    }
}

/// `out[t][8g + r] = row (8g + r) · x[t]` for the groups of eight rows in
/// `w` (whole groups of `blocks` blocks, as [`Interleaved::groups`] gives
/// them) and `T` activation rows, in the form `ty` takes.
///
/// # Safety
/// The CPU must support AVX2, FMA and F16C. (Sizes are checked here.)
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma,f16c")]
pub unsafe fn dot_groups<const T: usize>(
    ty: GgmlType,
    w: &[u8],
    blocks: usize,
    x: [Row<'_>; T],
    out: [&mut [f32]; T],
) {
    use super::avx2::{BF16, F16, F32};
    let q8 = || {
        x.map(|row| match row {
            Row::Q8(blocks) => blocks,
            Row::F32(_) => unreachable!("quantized weights take 8-bit blocks"),
        })
    };
    let f32 = || {
        x.map(|row| match row {
            Row::F32(values) => values,
            Row::Q8(_) => unreachable!("float weights take plain values"),
        })
    };
    match (ty, T) {
        (GgmlType::Q4_0, _) => dot_groups_of::<T, 0>(w, blocks, q8(), out),
        (GgmlType::Q4_1, _) => dot_groups_of::<T, 1>(w, blocks, q8(), out),
        (GgmlType::Q5_0, _) => dot_groups_of::<T, 5>(w, blocks, q8(), out),
        (GgmlType::Q8_0, _) => dot_groups_of::<T, 8>(w, blocks, q8(), out),
        (GgmlType::F32, _) => dot_float_groups::<T, F32>(w, blocks, f32(), out),
        (GgmlType::F16, _) => dot_float_groups::<T, F16>(w, blocks, f32(), out),
        (GgmlType::BF16, _) => dot_float_groups::<T, BF16>(w, blocks, f32(), out),
        _ => unreachable!("only regrouped types come here"),
    }
}

/// [`dot_groups`] for float weights of kind `KIND` (as `avx2::load8`
/// takes it) and `cols` columns: two groups at a time, so that each
/// broadcast activation feeds sixteen rows. Every (group, activation row)
/// sum runs over the columns in order, whatever the number of rows, so a
/// prompt's products equal one token's bit for bit.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma,f16c")]
fn dot_float_groups<const T: usize, const KIND: u8>(
    w: &[u8],
    cols: usize,
    x: [&[f32]; T],
    out: [&mut [f32]; T],
) {
    let column_bytes = if KIND == super::avx2::F32 { 32 } else { 16 };
    let groups = w.len() / (cols * column_bytes).max(1);
    assert!(cols > 0 && w.len() == groups * cols * column_bytes);
    assert!(x.iter().all(|x| x.len() == cols));
    assert!(out.iter().all(|o| o.len() == groups * GROUP));
    let mut out = out;
    let mut g = 0;
    while g < groups {
        if g + 1 < groups {
            float_panels::<T, 2, KIND>(w, g, cols, column_bytes, &x, &mut out);
            g += 2;
        } else {
            float_panels::<T, 1, KIND>(w, g, cols, column_bytes, &x, &mut out);
            g += 1;
        }
    }
}

/// Groups `g .. g + P` of [`dot_float_groups`], into their outputs.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma,f16c")]
fn float_panels<const T: usize, const P: usize, const KIND: u8>(
    w: &[u8],
    g: usize,
    cols: usize,
    column_bytes: usize,
    x: &[&[f32]; T],
    out: &mut [&mut [f32]; T],
) {
    use std::arch::x86_64::*;
    let panel = cols * column_bytes;
    assert!(w.len() >= (g + P) * panel && x.iter().all(|x| x.len() == cols));
    let mut acc = [[_mm256_setzero_ps(); P]; T];
    // SAFETY: groups g .. g + P lie inside `w` (asserted), each `cols`
    // columns of `column_bytes`; column k < cols of every activation row exists.
    unsafe {
        let bases: [*const u8; P] = std::array::from_fn(|j| w.as_ptr().add((g + j) * panel));
        for k in 0..cols {
            let weights: [__m256; P] = std::array::from_fn(|j| {
                let at = bases[j].add(k * column_bytes);
                _mm_prefetch::<_MM_HINT_T0>(at.wrapping_add(PREFETCH_BYTES).cast());
                super::avx2::load8::<KIND>(at)
            });
            for (acc, x) in acc.iter_mut().zip(x) {
                let xk = _mm256_broadcast_ss(x.get_unchecked(k));
                for (a, &wj) in acc.iter_mut().zip(&weights) {
                    *a = _mm256_fmadd_ps(wj, xk, *a);
                }
            }
        }
    }
    for (o, acc) in out.iter_mut().zip(acc) {
        for (j, sum) in acc.into_iter().enumerate() {
            assert!(o.len() >= (g + j + 1) * GROUP);
            // SAFETY: `o` holds group g + j's eight values (asserted).
            unsafe { _mm256_storeu_ps(o.as_mut_ptr().add((g + j) * GROUP), sum) };
        }
    }
}

/// [`dot_groups`] where there is no AVX2 (never called: nothing is regrouped there).
///
/// # Safety
/// None needed; it only panics.
#[cfg(not(target_arch = "x86_64"))]
pub unsafe fn dot_groups<const T: usize>(
    _: GgmlType,
    _: &[u8],
    _: usize,
    _: [Row<'_>; T],
    _: [&mut [f32]; T],
) {
    unreachable!("weights are regrouped only where AVX2 runs")
}

/// [`dot_groups`] for one kind: 0 (Q4_0), 1 (Q4_1), 5 (Q5_0) or 8 (Q8_0).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma,f16c")]
fn dot_groups_of<const T: usize, const KIND: u8>(
    w: &[u8],
    blocks: usize,
    x: [&[Q8Block]; T],
    out: [&mut [f32]; T],
) {
    use std::arch::x86_64::*;
    let ty = match KIND {
        0 => GgmlType::Q4_0,
        1 => GgmlType::Q4_1,
        5 => GgmlType::Q5_0,
        _ => GgmlType::Q8_0,
    };
    let gb = group_block_bytes(ty);
    let groups = w.len() / (blocks * gb).max(1);
    assert!(blocks > 0 && w.len() == groups * blocks * gb);
    assert!(x.iter().all(|x| x.len() == blocks));
    assert!(out.iter().all(|o| o.len() == groups * GROUP));
    let low4 = _mm256_set1_epi8(0x0f);
    let ones = _mm256_set1_epi16(1);
    // Four activations (one piece) in every 32-bit lane.
    let piece = |xb: &Q8Block, at: usize| {
        // SAFETY: `at + 4 <= QK`: the four bytes lie inside the block's quants.
        _mm256_set1_epi32(unsafe { xb.qs.as_ptr().add(at).cast::<i32>().read_unaligned() })
    };
    let mut out = out;
    for g in 0..groups {
        let mut acc = [_mm256_setzero_ps(); T];
        for b in 0..blocks {
            // SAFETY: this group's block b is `gb` bytes inside `w` (asserted
            // above); every load below stays inside it.
            unsafe {
                let p = w.as_ptr().add((g * blocks + b) * gb);
                // Ask for the weights a few blocks ahead (a hint: never faults).
                for line in (0..gb).step_by(64) {
                    _mm_prefetch::<_MM_HINT_T0>(p.wrapping_add(PREFETCH_BYTES + line).cast());
                }
                let d = _mm256_cvtph_ps(_mm_loadu_si128(p.cast()));
                let quants = p.add(packed_quants_at(ty));
                let mut sums = [_mm256_setzero_si256(); T];
                if KIND == 8 {
                    for k in 0..8 {
                        let q = _mm256_loadu_si256(quants.add(32 * k).cast());
                        let magnitude = _mm256_sign_epi8(q, q);
                        for (sum, xb) in sums.iter_mut().zip(x.iter().map(|x| &x[b])) {
                            let signed = _mm256_sign_epi8(piece(xb, 4 * k), q);
                            let pairs = _mm256_maddubs_epi16(magnitude, signed);
                            *sum = _mm256_add_epi32(*sum, _mm256_madd_epi16(pairs, ones));
                        }
                    }
                } else if KIND == 5 {
                    // Fifth bits: byte p of each row's four, spread to its four
                    // elements' bytes and set as 16 where present.
                    let fifth = _mm256_loadu_si256(p.add(16).cast());
                    let low_bits = _mm256_set1_epi32(0x0804_0201);
                    let high_bits = _mm256_set1_epi32(0x8040_2010u32 as i32);
                    let sixteen = _mm256_set1_epi8(0x10);
                    for k in 0..4 {
                        // Row r's byte k (at 4r + k in its 128-bit half) in all four of its bytes.
                        let at = |r: i32| (4 * r + k as i32) * 0x0101_0101;
                        let pick = _mm256_setr_epi32(
                            at(0),
                            at(1),
                            at(2),
                            at(3),
                            at(0),
                            at(1),
                            at(2),
                            at(3),
                        );
                        let spread = _mm256_shuffle_epi8(fifth, pick);
                        let q = _mm256_loadu_si256(quants.add(32 * k).cast());
                        let set = |bits| {
                            let on = _mm256_cmpeq_epi8(_mm256_and_si256(spread, bits), bits);
                            _mm256_and_si256(on, sixteen)
                        };
                        let low = _mm256_or_si256(_mm256_and_si256(q, low4), set(low_bits));
                        let high = _mm256_or_si256(
                            _mm256_and_si256(_mm256_srli_epi16::<4>(q), low4),
                            set(high_bits),
                        );
                        // |Σ| ≤ 2·2·31·127 < 2^15 before widening.
                        for (sum, xb) in sums.iter_mut().zip(x.iter().map(|x| &x[b])) {
                            let a = _mm256_maddubs_epi16(low, piece(xb, 4 * k));
                            let c = _mm256_maddubs_epi16(high, piece(xb, 16 + 4 * k));
                            let pairs = _mm256_add_epi16(a, c);
                            *sum = _mm256_add_epi32(*sum, _mm256_madd_epi16(pairs, ones));
                        }
                    }
                } else {
                    // 16-bit sums of eight products of pairs: |Σ| ≤ 8·2·15·127 < 2^15.
                    for k in 0..4 {
                        let q = _mm256_loadu_si256(quants.add(32 * k).cast());
                        let low = _mm256_and_si256(q, low4);
                        let high = _mm256_and_si256(_mm256_srli_epi16::<4>(q), low4);
                        for (sum, xb) in sums.iter_mut().zip(x.iter().map(|x| &x[b])) {
                            let a = _mm256_maddubs_epi16(low, piece(xb, 4 * k));
                            let c = _mm256_maddubs_epi16(high, piece(xb, 16 + 4 * k));
                            *sum = _mm256_add_epi16(*sum, _mm256_add_epi16(a, c));
                        }
                    }
                    for sum in sums.iter_mut() {
                        *sum = _mm256_madd_epi16(*sum, ones);
                    }
                }
                let m = if KIND == 1 {
                    _mm256_cvtph_ps(_mm_loadu_si128(p.add(16).cast()))
                } else {
                    d
                };
                for ((acc, sum), xb) in acc.iter_mut().zip(sums).zip(x.iter().map(|x| &x[b])) {
                    let scale = _mm256_mul_ps(d, _mm256_set1_ps(xb.d));
                    *acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sum), scale, *acc);
                    // The offset: + m·s (Q4_1), − 8·d·s (Q4_0), − 16·d·s (Q5_0).
                    match KIND {
                        1 => *acc = _mm256_fmadd_ps(m, _mm256_set1_ps(xb.s), *acc),
                        0 => *acc = _mm256_fmadd_ps(m, _mm256_set1_ps(-8.0 * xb.s), *acc),
                        5 => *acc = _mm256_fmadd_ps(m, _mm256_set1_ps(-16.0 * xb.s), *acc),
                        _ => {}
                    }
                }
            }
        }
        for (o, acc) in out.iter_mut().zip(acc) {
            // SAFETY: `o` holds `groups · 8` values (asserted above).
            unsafe { _mm256_storeu_ps(o.as_mut_ptr().add(g * GROUP), acc) };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::quant::quantize;

    #[test]
    fn every_row_reads_back_as_ggml_stored_it() {
        for ty in [
            GgmlType::Q4_0,
            GgmlType::Q4_1,
            GgmlType::Q5_0,
            GgmlType::Q8_0,
            GgmlType::F32,
            GgmlType::F16,
            GgmlType::BF16,
        ] {
            let (rows, cols) = (24, 96);
            let src: Vec<u8> = (0..rows)
                .flat_map(|r| {
                    let x: Vec<f32> = (0..cols)
                        .map(|c| ((r * 31 + c * 17) % 29) as f32 * 0.37 - 5.0)
                        .collect();
                    quantize(ty, &x).unwrap()
                })
                .collect();
            let row_bytes = src.len() / rows;
            let packed =
                Interleaved::new(ty, rows, cols, row_bytes, &WeightBytes::new(src.clone()))
                    .unwrap();
            let mut row = vec![0u8; row_bytes];
            for r in 0..rows {
                packed.original_row(r, &mut row);
                assert_eq!(row, src[r * row_bytes..][..row_bytes], "{ty}: row {r}");
            }
        }
    }

    #[test]
    fn regrouping_moves_every_byte_once_to_its_documented_place() {
        for ty in [
            GgmlType::Q4_0,
            GgmlType::Q4_1,
            GgmlType::Q5_0,
            GgmlType::Q8_0,
        ] {
            let (rows, cols) = (16, 64);
            let src: Vec<u8> = (0..rows)
                .flat_map(|r| {
                    let x: Vec<f32> = (0..cols)
                        .map(|c| ((r * 7 + c * 3) % 23) as f32 - 11.0)
                        .collect();
                    quantize(ty, &x).unwrap()
                })
                .collect();
            let row_bytes = src.len() / rows;
            let packed =
                Interleaved::new(ty, rows, cols, row_bytes, &WeightBytes::new(src.clone()))
                    .unwrap();
            assert_eq!(packed.bytes.bytes().len(), src.len(), "{ty}: the same size");
            // Row 11 (group 1, r = 3), block 1.
            let block = &src[11 * row_bytes + ty.block_bytes()..][..ty.block_bytes()];
            let group = &packed.groups(1..2)[group_block_bytes(ty)..];
            assert_eq!(&group[6..8], &block[..2], "{ty}: d");
            let quants_at = match ty {
                GgmlType::Q4_1 => 32,
                GgmlType::Q5_0 => 48,
                _ => 16,
            };
            let block_quants =
                &block[ty.block_bytes() - if ty == GgmlType::Q8_0 { 32 } else { 16 }..];
            assert_eq!(
                &group[quants_at + 32 + 12..][..4],
                &block_quants[4..8],
                "{ty}: piece 1"
            );
            if ty == GgmlType::Q4_1 {
                assert_eq!(&group[16 + 6..16 + 8], &block[2..4], "m");
            }
            if ty == GgmlType::Q5_0 {
                // Piece 2's fifth bits: elements 8..12 low, 24..28 high.
                let qh = u32::from_le_bytes(block[2..6].try_into().unwrap());
                let want = ((qh >> 8) & 0xf) | ((qh >> 24) & 0xf) << 4;
                assert_eq!(group[16 + 12 + 2] as u32, want, "fifth bits");
            }
        }
        let zeros = |n: usize| WeightBytes::new(vec![0u8; n]);
        assert!(Interleaved::new(GgmlType::Q4_1, 12, 32, 20, &zeros(240)).is_none());
        assert!(Interleaved::new(GgmlType::Q4K, 8, 256, 144, &zeros(1152)).is_none());
    }
}
