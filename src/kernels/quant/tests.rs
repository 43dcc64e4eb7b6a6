//! Tests of the quantized kernels as a whole: hand-computed blocks, the
//! reference quantizers' rounding, and every kernel path's products against
//! an f64 reference and against the portable path.

use super::*;
use half::{bf16, f16};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// The types `QMatrix` multiplies.
const TYPES: [GgmlType; 10] = [
    GgmlType::F32,
    GgmlType::F16,
    GgmlType::BF16,
    GgmlType::Q8_0,
    GgmlType::Q4_0,
    GgmlType::Q4_1,
    GgmlType::Q5_0,
    GgmlType::Q4K,
    GgmlType::Q5K,
    GgmlType::Q6K,
];

fn h(v: f32) -> [u8; 2] {
    f16::from_f32(v).to_le_bytes()
}

fn dequant(ty: GgmlType, bytes: &[u8], len: usize) -> Vec<f32> {
    let mut out = vec![f32::NAN; len];
    dequantize_row(ty, bytes, &mut out).unwrap();
    out
}

#[test]
fn hand_computed_32_element_blocks_dequantize_exactly() {
    // Q4_0: d = 0.5, element j = low nibble j (j < 16) or high nibble j − 16.
    let mut b = h(0.5).to_vec();
    b.extend((0..16u8).map(|j| j | ((15 - j) << 4)));
    let y = dequant(GgmlType::Q4_0, &b, 32);
    assert_eq!(y[0], -4.0);
    assert_eq!(y[9], 0.5);
    assert_eq!(y[16], 3.5);
    assert_eq!(y[31], -4.0);

    // Q4_1: d = 2, m = −1: x = 2q − 1.
    let mut b = [h(2.0), h(-1.0)].concat();
    b.extend((0..16u8).map(|j| j | (3 << 4)));
    let y = dequant(GgmlType::Q4_1, &b, 32);
    assert_eq!(&y[..3], &[-1.0, 1.0, 3.0]);
    assert_eq!(y[15], 29.0);
    assert_eq!(y[20], 5.0);

    // Q5_0: d = 0.25; the fifth bit of element j is bit j of qh.
    let mut b = h(0.25).to_vec();
    b.extend(0x8000_0001u32.to_le_bytes()); // elements 0 and 31 have it
    b.extend([0x21u8; 16]); // low nibble 1, high nibble 2
    let y = dequant(GgmlType::Q5_0, &b, 32);
    assert_eq!(y[0], (17.0 - 16.0) * 0.25);
    assert_eq!(y[1], (1.0 - 16.0) * 0.25);
    assert_eq!(y[16], (2.0 - 16.0) * 0.25);
    assert_eq!(y[31], (18.0 - 16.0) * 0.25);

    // Q8_0: d = 0.125, signed bytes.
    let mut b = h(0.125).to_vec();
    b.extend((0..32).map(|j| (j as i8 - 16) as u8));
    b[2 + 31] = 0x80; // −128
    let y = dequant(GgmlType::Q8_0, &b, 32);
    assert_eq!(y[0], -2.0);
    assert_eq!(y[17], 0.125);
    assert_eq!(y[31], -16.0);

    // Plain floats.
    let y = dequant(GgmlType::F16, &[h(1.5), h(-0.25)].concat(), 2);
    assert_eq!(y, [1.5, -0.25]);
    let b = [
        bf16::from_f32(3.0).to_le_bytes(),
        bf16::from_f32(-0.5).to_le_bytes(),
    ]
    .concat();
    assert_eq!(dequant(GgmlType::BF16, &b, 2), [3.0, -0.5]);
    assert_eq!(dequant(GgmlType::F32, &7.25f32.to_le_bytes(), 1), [7.25]);
}

/// Packs eight 6-bit scales and minimums as Q4_K/Q5_K store them.
fn pack_k4(sc: [u8; 8], mn: [u8; 8]) -> [u8; 12] {
    let mut q = [0u8; 12];
    for j in 0..4 {
        q[j] = sc[j] | ((sc[j + 4] >> 4) << 6);
        q[j + 4] = mn[j] | ((mn[j + 4] >> 4) << 6);
        q[j + 8] = (sc[j + 4] & 0x0f) | ((mn[j + 4] & 0x0f) << 4);
    }
    q
}

#[test]
fn hand_computed_k_quant_blocks_dequantize_exactly() {
    let sc = [1, 2, 3, 4, 5, 6, 7, 63];
    let mn = [0, 1, 2, 3, 4, 5, 6, 40];
    // Q4_K: d = 0.5, dmin = 0.25; byte l of pair p: low nibble l%16, high 15 − l%16.
    let mut b = [h(0.5), h(0.25)].concat();
    b.extend(pack_k4(sc, mn));
    b.extend((0..128).map(|i| ((i % 16) as u8) | ((15 - (i % 16) as u8) << 4)));
    let y = dequant(GgmlType::Q4K, &b, 256);
    // Element 64p + l (l < 32): sub-block 2p, nibble l % 16; 64p + 32 + l: sub-block 2p + 1.
    let want = |e: usize| {
        let (p, l) = (e / 64, e % 64);
        let j = 2 * p + l / 32;
        let q = if l < 32 { l % 16 } else { 15 - (l % 32) % 16 };
        0.5 * sc[j] as f32 * q as f32 - 0.25 * mn[j] as f32
    };
    for e in [0, 5, 31, 32, 40, 63, 64, 100, 200, 255] {
        assert_eq!(y[e], want(e), "q4_K element {e}");
    }
    assert_eq!(y[255], 0.5 * 63.0 * 0.0 - 0.25 * 40.0);

    // Q5_K: the same plus fifth bits: byte l of qh, bit 2p for 64p + l, 2p + 1 for 64p + 32 + l.
    let mut b5 = [h(0.5), h(0.25)].concat();
    b5.extend(pack_k4(sc, mn));
    let mut qh = [0u8; 32];
    qh[3] = 0b0000_0100; // element 64·1 + 3
    qh[7] = 0b1000_0000; // element 64·3 + 32 + 7
    b5.extend(qh);
    b5.extend(&b[16..]);
    let y5 = dequant(GgmlType::Q5K, &b5, 256);
    assert_eq!(y5[67], 0.5 * 3.0 * (3.0 + 16.0) - 0.25 * 2.0);
    assert_eq!(y5[64 * 3 + 32 + 7], 0.5 * 63.0 * (8.0 + 16.0) - 0.25 * 40.0);
    assert_eq!(y5[66], y[66]);

    // Q6_K: x = d · scale · (q − 32), q = ql nibble | two qh bits << 4.
    let mut b6 = vec![0u8; 210];
    b6[0] = 0x3f; // element 0: low 15; element 64: high 3
    b6[32] = 0x21; // element 32: low 1; element 96: high 2
    b6[128] = 0b11_10_01_11; // element 0: 3, 32: 1, 64: 2, 96: 3
    b6[64 + 5] = 0x0a; // element 128 + 5: low 10
    for (i, s) in b6[192..208].iter_mut().enumerate() {
        *s = (i as i8 - 8) as u8;
    }
    b6[208..].copy_from_slice(&h(0.5));
    let y6 = dequant(GgmlType::Q6K, &b6, 256);
    let s = |i: usize| (i as f32) - 8.0;
    assert_eq!(y6[0], 0.5 * s(0) * ((15 + 48) as f32 - 32.0));
    assert_eq!(y6[32], 0.5 * s(2) * ((1 + 16) as f32 - 32.0));
    assert_eq!(y6[64], 0.5 * s(4) * ((3 + 32) as f32 - 32.0));
    assert_eq!(y6[96], 0.5 * s(6) * ((2 + 48) as f32 - 32.0));
    assert_eq!(y6[133], 0.5 * s(8) * (10.0 - 32.0));
    assert_eq!(y6[17], 0.5 * s(1) * -32.0);
}

#[test]
fn reference_quantizers_round_as_llama_cpp() {
    // Q8_0: d = max|x| / 127 = 1, round half away from zero.
    let mut x = vec![0f32; 32];
    x[0] = 127.0;
    x[1] = 2.5;
    x[2] = -2.5;
    x[3] = 0.49;
    let b = quantize(GgmlType::Q8_0, &x).unwrap();
    assert_eq!(&b[..2], &h(1.0));
    assert_eq!(&b[2..6], &[127, 3, (-3i8) as u8, 0]);

    // Q4_0: the largest magnitude (−8) gives d = 1; q = trunc(x + 8.5), at most 15.
    let mut x = vec![0f32; 32];
    x[0] = -8.0;
    x[1] = 0.5;
    x[2] = -0.5;
    x[3] = 7.9;
    x[16] = 1.0;
    let b = quantize(GgmlType::Q4_0, &x).unwrap();
    assert_eq!(&b[..2], &h(1.0));
    assert_eq!(b[2], 9 << 4); // element 0: 0; element 16: 9
    assert_eq!(&b[3..6], &[9 | (8 << 4), 8 | (8 << 4), 15 | (8 << 4)]);

    // Q4_1 of integers 0..=15: d = 1, m = 0, the quants are the values.
    let x: Vec<f32> = (0..32).map(|j| ((j * 7) % 16) as f32).collect();
    let b = quantize(GgmlType::Q4_1, &x).unwrap();
    assert_eq!(&b[..4], &[h(1.0), h(0.0)].concat());
    for j in 0..16 {
        assert_eq!(b[4 + j], x[j] as u8 | ((x[j + 16] as u8) << 4));
    }

    // Q5_0: −16 gives d = 1; the fifth bits go to qh.
    let mut x = vec![0f32; 32];
    x[0] = -16.0;
    x[31] = 15.0;
    let b = quantize(GgmlType::Q5_0, &x).unwrap();
    let qh = u32::from_le_bytes([b[2], b[3], b[4], b[5]]);
    // q = x + 16: element 0 → 0 (no fifth bit), 31 → 31, others 16 (fifth bit set).
    assert_eq!(qh, !1);
    assert_eq!(b[6], 0);
    assert_eq!(b[6 + 15], 0xf0);

    // f16 and bf16 round to nearest even.
    let b = quantize(GgmlType::F16, &[1.0 + 1.0 / 4096.0, 65504.0]).unwrap();
    assert_eq!(&b, &[h(1.0), h(65504.0)].concat());
    let b = quantize(GgmlType::BF16, &[1.0 + 1.0 / 256.0]).unwrap();
    assert_eq!(b, bf16::from_bits(0x3f80).to_le_bytes());
}

fn random_vec(rng: &mut StdRng, len: usize) -> Vec<f32> {
    (0..len).map(|_| rng.random_range(-1.0f32..1.0)).collect()
}

#[test]
fn quantize_then_dequantize_stays_within_half_a_step() {
    let mut rng = StdRng::seed_from_u64(7);
    for ty in [
        GgmlType::Q8_0,
        GgmlType::Q4_0,
        GgmlType::Q4_1,
        GgmlType::Q5_0,
        GgmlType::F16,
        GgmlType::BF16,
        GgmlType::F32,
    ] {
        for trial in 0..20 {
            let mut x = random_vec(&mut rng, 256);
            if trial == 0 {
                x[..32].fill(0.0); // an all-zero block
            }
            let y = dequant(ty, &quantize(ty, &x).unwrap(), x.len());
            for (xb, yb) in x.chunks(32).zip(y.chunks(32)) {
                let amax = xb.iter().fold(0f32, |a, v| a.max(v.abs()));
                let (lo, hi) = xb
                    .iter()
                    .fold((f32::MAX, f32::MIN), |(l, h), &v| (l.min(v), h.max(v)));
                // The step, and how far a value may land from x: half a step when
                // rounding, a whole one where the top quant is clamped (the
                // symmetric types give the positive end one level fewer), plus
                // the error of the f16 scale.
                let bound = match ty {
                    GgmlType::Q8_0 => amax / 127.0 * 0.5,
                    GgmlType::Q4_0 => amax / 8.0,
                    GgmlType::Q5_0 => amax / 16.0,
                    GgmlType::Q4_1 => (hi - lo) / 15.0 * 0.5,
                    _ => amax * 2f32.powi(-8),
                } * 1.02
                    + amax * 2f32.powi(-10);
                for (a, b) in xb.iter().zip(yb) {
                    assert!((a - b).abs() <= bound, "{ty}: {a} → {b}, bound {bound}");
                }
            }
        }
    }
}

/// A random, valid `rows × cols` matrix of `ty`: random bytes with every
/// f16 scale replaced by a finite one (so every quant bit pattern occurs).
fn random_matrix(rng: &mut StdRng, ty: GgmlType, rows: usize, cols: usize) -> QMatrix {
    let len = ty.row_bytes(cols as u64).unwrap() as usize * rows;
    let mut bytes: Vec<u8> = (0..len).map(|_| rng.random()).collect();
    let mut scale = |b: &mut [u8], at: usize, lo: f32, hi: f32| {
        b[at..at + 2].copy_from_slice(&h(rng.random_range(lo..hi)));
    };
    let bb = ty.block_bytes();
    for b in bytes.chunks_exact_mut(bb) {
        match ty {
            GgmlType::F16 => scale(b, 0, -1.0, 1.0),
            GgmlType::BF16 => b.copy_from_slice(&bf16::from_f32(0.0).to_le_bytes()),
            GgmlType::F32 => b.copy_from_slice(&0f32.to_le_bytes()),
            GgmlType::Q4_1 => {
                scale(b, 0, 0.0, 0.1);
                scale(b, 2, -0.8, 0.0);
            }
            GgmlType::Q8_0 | GgmlType::Q4_0 | GgmlType::Q5_0 => scale(b, 0, -0.1, 0.1),
            GgmlType::Q4K | GgmlType::Q5K => {
                scale(b, 0, 0.0, 0.01);
                scale(b, 2, 0.0, 0.01);
            }
            GgmlType::Q6K => scale(b, 208, -0.01, 0.01),
            _ => unreachable!(),
        }
    }
    // Float weights: random values (bytes would include NaNs and infinities).
    if matches!(ty, GgmlType::F32 | GgmlType::BF16) {
        let values = random_vec(rng, rows * cols);
        bytes = quantize(ty, &values).unwrap();
    }
    QMatrix::new(ty, rows, cols, WeightBytes::new(bytes)).unwrap()
}

/// Columns for a type: whole blocks, with float types given a ragged tail.
fn shapes(ty: GgmlType) -> Vec<usize> {
    match ty.block_len() {
        1 => vec![7, 32, 45, 576],
        32 => vec![32, 96, 576],
        _ => vec![256, 768],
    }
}

#[test]
fn every_path_matches_an_f64_reference_within_the_activations_rounding() {
    let mut rng = StdRng::seed_from_u64(11);
    for ty in TYPES {
        for cols in shapes(ty) {
            // 16 and 24: whole groups of eight, which the SIMD paths regroup.
            for rows in [1, 3, 4, 13, 16, 24, 67] {
                let m = random_matrix(&mut rng, ty, rows, cols);
                let w = m.to_f32();
                let x = random_vec(&mut rng, cols);
                // The activations' blocks and their rounding step.
                let block = ty.block_len().max(32);
                let step: Vec<f32> = x
                    .chunks(block)
                    .map(|b| b.iter().fold(0f32, |a, v| a.max(v.abs())) / 127.0)
                    .collect();
                for path in KernelPath::supported() {
                    let mut y = vec![f32::NAN; rows];
                    m.matvec_with(path, &x, &mut y).unwrap();
                    for r in 0..rows {
                        let row = &w[r * cols..(r + 1) * cols];
                        let exact: f64 =
                            row.iter().zip(&x).map(|(&a, &b)| a as f64 * b as f64).sum();
                        let magnitude: f64 = row
                            .iter()
                            .zip(&x)
                            .map(|(&a, &b)| (a as f64 * b as f64).abs())
                            .sum();
                        // x is rounded to within half a step (float weights: not at all).
                        let rounding: f64 = if ty.block_len() == 1 {
                            0.0
                        } else {
                            row.iter()
                                .enumerate()
                                .map(|(j, &a)| a.abs() as f64 * step[j / block] as f64 * 0.5)
                                .sum()
                        };
                        let tol = rounding * 1.001 + magnitude * 1e-5 + 1e-6;
                        let err = (y[r] as f64 - exact).abs();
                        assert!(
                            err <= tol,
                            "{ty} {path} {rows}×{cols} row {r}: {} vs {exact} (tolerance {tol})",
                            y[r]
                        );
                    }
                }
            }
        }
    }
}

#[test]
fn simd_paths_equal_the_portable_one_and_matmul_equals_matvecs() {
    let mut rng = StdRng::seed_from_u64(5);
    for ty in TYPES {
        let cols = *shapes(ty).last().unwrap();
        for rows in [5, 64, 257, 136] {
            let m = random_matrix(&mut rng, ty, rows, cols);
            let w = m.to_f32();
            // Four activation rows at a time and the two left over.
            let n = 6;
            let x = random_vec(&mut rng, n * cols);
            let mut portable = vec![0f32; n * rows];
            m.matmul_with(KernelPath::Portable, &x, n, &mut portable)
                .unwrap();
            for path in KernelPath::supported() {
                let mut y = vec![f32::NAN; n * rows];
                m.matmul_with(path, &x, n, &mut y).unwrap();
                for t in 0..n {
                    let mut v = vec![f32::NAN; rows];
                    m.matvec_with(path, &x[t * cols..(t + 1) * cols], &mut v)
                        .unwrap();
                    assert_eq!(
                        &y[t * rows..(t + 1) * rows],
                        &v[..],
                        "{ty} {path}: matmul row {t} vs matvec"
                    );
                }
                // Only the order of the float additions differs.
                for (i, (a, b)) in y.iter().zip(&portable).enumerate() {
                    let t = i / rows;
                    let xs = &x[t * cols..(t + 1) * cols];
                    let row = &w[(i % rows) * cols..][..cols];
                    let magnitude: f32 = row.iter().zip(xs).map(|(a, b)| (a * b).abs()).sum();
                    assert!(
                        (a - b).abs() <= magnitude * 1e-5 + 1e-6,
                        "{ty} {path} output {i}: {a} vs portable {b}"
                    );
                }
            }
        }
    }
}

#[test]
fn bad_sizes_are_errors_not_panics() {
    let bytes = |n: usize| WeightBytes::new(vec![0u8; n]);
    assert!(QMatrix::new(GgmlType::Q4_1, 2, 32, bytes(40)).is_ok());
    let e = QMatrix::new(GgmlType::Q4_1, 2, 32, bytes(41))
        .unwrap_err()
        .to_string();
    assert!(e.contains("40 bytes") && e.contains("41"), "{e}");
    assert!(QMatrix::new(GgmlType::Q4_1, 2, 33, bytes(40)).is_err());
    assert!(QMatrix::new(GgmlType::Q4K, 1, 128, bytes(72)).is_err());
    assert!(QMatrix::new(GgmlType::Q4_1, 0, 32, bytes(0)).is_err());
    assert!(QMatrix::new(GgmlType::Q2K, 1, 256, bytes(84)).is_err());
    assert!(QMatrix::new(GgmlType::F32, usize::MAX, 4, bytes(16)).is_err());

    let m = QMatrix::new(GgmlType::Q8_0, 2, 64, bytes(136)).unwrap();
    for path in KernelPath::supported() {
        assert!(m.matvec_with(path, &[0.0; 63], &mut [0.0; 2]).is_err());
        assert!(m.matvec_with(path, &[0.0; 64], &mut [0.0; 3]).is_err());
        assert!(m.matmul_with(path, &[0.0; 128], 3, &mut [0.0; 6]).is_err());
        assert!(m
            .matmul_with(path, &[0.0; 128], usize::MAX, &mut [0.0; 6])
            .is_err());
        assert!(m.matmul_with(path, &[], 0, &mut []).is_ok());
    }
    for path in KernelPath::ALL.into_iter().filter(|p| !p.available()) {
        assert!(m.matvec_with(path, &[0.0; 64], &mut [0.0; 2]).is_err());
    }
    assert!(m.dequantize_row(2, &mut [0.0; 64]).is_err());
    assert!(m.dequantize_row(1, &mut [0.0; 32]).is_err());
    assert!(dequantize_row(GgmlType::Q4_0, &[0; 17], &mut [0.0; 32]).is_err());
    assert!(dequantize_row(GgmlType::Q4_0, &[0; 18], &mut [0.0; 31]).is_err());
    assert!(quantize(GgmlType::Q4_0, &[0.0; 31]).is_err());
    assert!(quantize(GgmlType::Q5K, &[0.0; 256]).is_err());
    assert!(quantize_row(GgmlType::Q8_0, &[0.0; 32], &mut [0; 33]).is_err());
}

/// CPU time of the calling thread, in seconds (not counting time the
/// thread waited for a core, which on a shared machine is most of the noise).
#[cfg(unix)]
fn thread_cpu_seconds() -> f64 {
    let mut t = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `t` is a valid timespec for the call to fill.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut t) };
    t.tv_sec as f64 + t.tv_nsec as f64 * 1e-9
}

/// Matrix-vector timings for SmolLM2-135M's Q4_1 shapes (and other types):
/// one thread's CPU time per call, and the fastest of several batches'
/// wall time per call on every thread. Run with
/// `cargo test --release --lib -- --ignored --nocapture quant::tests::matvec_speed`
/// (`SEER_BENCH_TYPES=q4_1,q8_0` picks types).
#[cfg(unix)]
#[test]
#[ignore]
fn matvec_speed() {
    let wanted =
        std::env::var("SEER_BENCH_TYPES").unwrap_or_else(|_| "q4_1,q8_0,f16,q4_K,q6_K".into());
    let one = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap();
    let mut rng = StdRng::seed_from_u64(1);
    for ty in TYPES
        .into_iter()
        .filter(|t| wanted.split(',').any(|w| w == t.name()))
    {
        for (rows, cols) in [(4, 576), (1536, 576), (576, 1536), (576, 576), (49152, 576)] {
            if ty.row_bytes(cols as u64).is_none() {
                continue;
            }
            let m = random_matrix(&mut rng, ty, rows, cols);
            let x = random_vec(&mut rng, cols);
            let mut y = vec![0f32; rows];
            let reps = (100_000_000 / m.bytes().len()).clamp(10, 10_000);
            for path in KernelPath::supported() {
                let mut call = || m.matvec_with(path, &x, &mut y).unwrap();
                let cpu = one.install(|| {
                    call();
                    let start = thread_cpu_seconds();
                    for _ in 0..reps {
                        call();
                    }
                    (thread_cpu_seconds() - start) / reps as f64
                });
                let wall = crate::threads::on_pool(|| {
                    (0..10)
                        .map(|_| {
                            let start = std::time::Instant::now();
                            for _ in 0..reps.div_ceil(10) {
                                call();
                            }
                            start.elapsed().as_secs_f64() / reps.div_ceil(10) as f64
                        })
                        .fold(f64::MAX, f64::min)
                });
                let gb = |t: f64| m.bytes().len() as f64 / t / 1e9;
                println!(
                    "{ty:>5} {rows:>5}×{cols:<5} {path:>8}: 1 thread {:>8.1} µs {:>5.1} GB/s | {} threads {:>8.1} µs {:>5.1} GB/s",
                    cpu * 1e6,
                    gb(cpu),
                    rayon::current_num_threads(),
                    wall * 1e6,
                    gb(wall)
                );
            }
        }
    }
}

/// Q4_K's error per value stays within one step of its 32-element
/// sub-block (range / 15) plus the error the 6-bit scales and minimums add
/// (about max|x| / 63 of the super-block); measured worst: 0.81 of that.
#[test]
fn q4_k_round_trips_within_a_step_of_each_sub_block() {
    let mut rng = StdRng::seed_from_u64(11);
    let mut worst = 0f32;
    for trial in 0..200 {
        let scale = [1e-3f32, 1.0, 300.0][trial % 3];
        let mut x: Vec<f32> = random_vec(&mut rng, 512)
            .iter()
            .map(|v| v * scale)
            .collect();
        if trial % 5 == 1 {
            x.iter_mut().for_each(|v| *v = v.abs() + scale * 0.1); // all positive
        }
        if trial % 7 == 2 {
            x[64..96].fill(0.0);
        }
        let y = dequant(
            GgmlType::Q4K,
            &quantize(GgmlType::Q4K, &x).unwrap(),
            x.len(),
        );
        for (xs, ys) in x.chunks(256).zip(y.chunks(256)) {
            let amax = xs.iter().fold(0f32, |a, v| a.max(v.abs()));
            for (xb, yb) in xs.chunks(32).zip(ys.chunks(32)) {
                let (lo, hi) = xb
                    .iter()
                    .fold((0f32, f32::MIN), |(l, h), &v| (l.min(v), h.max(v)));
                for (a, b) in xb.iter().zip(yb) {
                    let e = (a - b).abs() / ((hi - lo) / 15.0 + amax / 63.0);
                    worst = worst.max(e);
                }
            }
        }
    }
    eprintln!("worst Q4_K error: {worst} steps");
    assert!(worst <= 1.0, "{worst}");
}
