use rayon::prelude::*;
use std::time::Instant;
fn main() {
    let n = 64 << 20; // 256 MB of u32
    let v: Vec<u32> = (0..n as u32).collect();
    for threads in [1, 2] {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        let mut best = f64::MAX;
        for _ in 0..7 {
            let t = Instant::now();
            let s: u64 = pool.install(|| {
                v.par_chunks(n / threads)
                    .map(|c| {
                        let mut acc = [0u32; 16];
                        for ch in c.chunks_exact(16) {
                            for i in 0..16 {
                                acc[i] = acc[i].wrapping_add(ch[i]);
                            }
                        }
                        acc.iter().map(|&a| a as u64).sum::<u64>()
                    })
                    .sum()
            });
            std::hint::black_box(s);
            best = best.min(t.elapsed().as_secs_f64());
        }
        println!(
            "{threads} threads: read {:.1} GB/s",
            (n * 4) as f64 / best / 1e9
        );
    }
}
