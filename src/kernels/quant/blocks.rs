//! The byte layouts of GGML's quantized blocks: where each field of a block
//! sits, and the small decoders (little-endian halves, the packed 6-bit
//! scales of Q4_K and Q5_K) that every kernel path shares.

/// Elements in a block of the 32-element formats (Q4_0, Q4_1, Q5_0, Q8_0).
pub const QK: usize = 32;

/// Elements in a super-block of the K-quants.
pub const QK_K: usize = 256;

/// Byte offsets inside a Q4_1 block: `d`, `m`, then the 16 nibble bytes.
pub mod q4_1 {
    /// The packed nibbles.
    pub const QS: usize = 4;
}

/// Byte offsets inside a Q4_0 block: `d`, then the 16 nibble bytes.
pub mod q4_0 {
    /// The packed nibbles.
    pub const QS: usize = 2;
}

/// Byte offsets inside a Q5_0 block: `d`, the 32 fifth bits, the nibbles.
pub mod q5_0 {
    /// The 32 fifth bits, bit `j` for element `j`.
    pub const QH: usize = 2;
    /// The packed nibbles.
    pub const QS: usize = 6;
}

/// Byte offsets inside a Q8_0 block: `d`, then 32 signed bytes.
pub mod q8_0 {
    /// The signed quants.
    pub const QS: usize = 2;
}

/// Byte offsets inside a Q4_K (and, up to `QH`, a Q5_K) super-block.
pub mod q4_k {
    /// The f16 scale of the minimums.
    pub const DMIN: usize = 2;
    /// The twelve bytes of packed 6-bit scales and minimums.
    pub const SCALES: usize = 4;
    /// The nibbles of a Q4_K block.
    pub const QS: usize = 16;
}

/// Byte offsets inside a Q5_K super-block (`d`, `dmin` and the scales as in Q4_K).
pub mod q5_k {
    /// The fifth bits: bit `2j` of byte `l` for element `64j + l`, bit `2j + 1` for `64j + 32 + l`.
    pub const QH: usize = 16;
    /// The low nibbles.
    pub const QS: usize = 48;
}

/// Byte offsets inside a Q6_K super-block.
pub mod q6_k {
    /// The low four bits (128 bytes).
    pub const QL: usize = 0;
    /// The high two bits (64 bytes).
    pub const QH: usize = 128;
    /// Sixteen signed 8-bit scales, one per 16 elements.
    pub const SCALES: usize = 192;
    /// The f16 super-block scale.
    pub const D: usize = 208;
}

/// The little-endian f16 at byte `at` of `bytes`, widened (exactly) to f32.
#[inline(always)]
pub fn f16_at(bytes: &[u8], at: usize) -> f32 {
    half::f16::from_bits(u16::from_le_bytes([bytes[at], bytes[at + 1]])).to_f32()
}

/// The eight 6-bit scales and eight 6-bit minimums packed into the twelve
/// `scales` bytes of a Q4_K or Q5_K super-block (sub-block `j` of 32
/// elements has scale `scales[j]` and minimum `mins[j]`).
#[inline(always)]
pub fn k4_scales_mins(packed: &[u8]) -> ([u8; 8], [u8; 8]) {
    let q = packed;
    let mut scales = [0u8; 8];
    let mut mins = [0u8; 8];
    for j in 0..4 {
        scales[j] = q[j] & 63;
        mins[j] = q[j + 4] & 63;
    }
    for j in 4..8 {
        scales[j] = (q[j + 4] & 0x0f) | ((q[j - 4] >> 6) << 4);
        mins[j] = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
    }
    (scales, mins)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packed_scales_unpack_as_six_bit_fields() {
        // Scales 1..=8 and minimums 11..=18, packed by hand as llama.cpp packs them.
        let sc: Vec<u8> = (1..=8).collect();
        let mn: Vec<u8> = (11..=18).collect();
        let mut q = [0u8; 12];
        for j in 0..4 {
            q[j] = sc[j] | ((sc[j + 4] >> 4) << 6);
            q[j + 4] = mn[j] | ((mn[j + 4] >> 4) << 6);
            q[j + 8] = (sc[j + 4] & 0x0f) | ((mn[j + 4] & 0x0f) << 4);
        }
        let (s, m) = k4_scales_mins(&q);
        assert_eq!(s.to_vec(), sc);
        assert_eq!(m.to_vec(), mn);
        // The high bits of the last four come from the top bits of the first eight bytes.
        let mut q = [0u8; 12];
        q[0] = 0b1100_0000;
        q[4] = 0b0100_0000;
        q[8] = 0x21;
        let (s, m) = k4_scales_mins(&q);
        assert_eq!((s[4], m[4]), (0x31, 0x12));
        assert_eq!(f16_at(&[0x00, 0x3c], 0), 1.0);
    }
}
