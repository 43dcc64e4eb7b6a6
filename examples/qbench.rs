// scratch: per-matrix matvec rates (not committed)
use seer::kernels::quant::{quantize, GgmlType, KernelPath, QMatrix, WeightBytes};
use std::time::Instant;
fn main() {
    let threads: usize = std::env::args().nth(1).map_or(1, |s| s.parse().unwrap());
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap();
    let shapes = [
        ("q4_1 576x576", GgmlType::Q4_1, 576, 576, 1),
        ("q4_1 1536x576", GgmlType::Q4_1, 1536, 576, 1),
        ("q4_1 576x1536", GgmlType::Q4_1, 576, 1536, 1),
        ("q4_1 layers(30x) stream", GgmlType::Q4_1, 1536, 576, 60),
        ("q8_0 49152x576", GgmlType::Q8_0, 49152, 576, 1),
    ];
    for (name, ty, rows, cols, copies) in shapes {
        let mut s = 1u64;
        let mut rnd = || {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((s >> 33) as f32 / (1u64 << 31) as f32) - 0.5
        };
        let row: Vec<f32> = (0..cols).map(|_| rnd()).collect();
        let one = quantize(ty, &row).unwrap();
        let mats: Vec<QMatrix> = (0..copies)
            .map(|_| {
                let mut bytes = Vec::with_capacity(one.len() * rows);
                for _ in 0..rows {
                    bytes.extend_from_slice(&one);
                }
                QMatrix::new(ty, rows, cols, WeightBytes::new(bytes)).unwrap()
            })
            .collect();
        let x: Vec<f32> = (0..cols).map(|_| rnd()).collect();
        let mut y = vec![0f32; rows];
        let mut times = vec![];
        for _ in 0..15 {
            let t = Instant::now();
            let reps = if copies > 1 { 1 } else { 20 };
            for _ in 0..reps {
                for m in &mats {
                    pool.install(|| m.matvec_with(KernelPath::Avx2, &x, &mut y).unwrap());
                }
            }
            times.push(t.elapsed().as_secs_f64() / reps as f64);
        }
        times.sort_by(|a, b| a.partial_cmp(b).unwrap());
        let t = times[7];
        let bytes = (one.len() * rows * copies) as f64;
        println!("{name:28} {:8.1} us  {:6.2} GB/s", t * 1e6, bytes / t / 1e9);
    }
}
