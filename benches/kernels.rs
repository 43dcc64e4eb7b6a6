//! Per-kernel timings at a preset's shapes: forward, and forward + backward,
//! median of 30 runs after 3 untimed ones. Shows where a training step's
//! time goes, op by op.
//!
//!     cargo bench --bench kernels                 # shakespeare-char-cpu shapes
//!     cargo bench --bench kernels -- 12 256 384 6 # batch, block, width, heads

use candle_core::{DType, Device, Tensor, Var};
use seer::kernels::{attention, cross_entropy, layer_norm, linear, AttentionSpec, WeightLayout};
use std::time::Instant;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn median_ms(mut f: impl FnMut()) -> f64 {
    for _ in 0..3 {
        f();
    }
    let mut times: Vec<f64> = (0..30)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    times.sort_by(f64::total_cmp);
    times[times.len() / 2]
}

fn var(shape: &[usize]) -> Var {
    Var::from_tensor(&Tensor::randn(0f32, 0.5, shape, &Device::Cpu).unwrap()).unwrap()
}

/// Prints the forward and the forward + backward time of `f`.
fn report(name: &str, f: impl Fn() -> Tensor) {
    let forward = median_ms(|| {
        f();
    });
    let both = median_ms(|| {
        f().sum_all().unwrap().backward().unwrap();
    });
    println!("{name:32} forward {forward:7.3} ms   forward+backward {both:7.3} ms");
}

fn main() {
    std::env::set_var("CANDLE_NUM_THREADS", "1");
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let (b, t, c, h) = match args[..] {
        [b, t, c, h] => (b, t, c, h),
        _ => (12, 64, 128, 4),
    };
    println!("batch {b}, block {t}, width {c}, {h} heads");
    let x = var(&[b, t, c]);
    let (w_attn, b_attn) = (var(&[c, 3 * c]), var(&[3 * c]));
    let (w_fc, b_fc) = (var(&[c, 4 * c]), var(&[4 * c]));
    let (w_proj, b_proj) = (var(&[4 * c, c]), var(&[c]));
    let (ln_w, ln_b) = (var(&[c]), var(&[c]));
    let hidden = var(&[b, t, 4 * c]);
    let qkv = var(&[b, t, 3 * c]);
    let wte = var(&[65, c]);
    let no_bias = Tensor::zeros(65, DType::F32, &Device::Cpu).unwrap();
    let targets = Tensor::zeros(b * t, DType::U32, &Device::Cpu).unwrap();
    let spec = AttentionSpec {
        n_head: h,
        causal: true,
        dropout: 0.0,
        seed: 0,
    };
    report("layer_norm", || layer_norm(&x, &ln_w, &ln_b, 1e-5).unwrap());
    report("linear c_attn", || {
        linear(&x, &w_attn, &b_attn, WeightLayout::InOut, false).unwrap()
    });
    report("attention (causal)", || attention(&qkv, spec).unwrap());
    report("linear c_fc + gelu", || {
        linear(&x, &w_fc, &b_fc, WeightLayout::InOut, true).unwrap()
    });
    report("linear mlp c_proj", || {
        linear(&hidden, &w_proj, &b_proj, WeightLayout::InOut, false).unwrap()
    });
    report("linear lm_head (vocab 65)", || {
        linear(&x, &wte, &no_bias, WeightLayout::OutIn, false).unwrap()
    });
    let logits = var(&[b * t, 65]);
    report("cross_entropy (vocab 65)", || {
        cross_entropy(&logits, &targets).unwrap()
    });
    report("residual add", || (x.as_tensor() + x.as_tensor()).unwrap());
}
