//! Per-kernel timings at a preset's shapes, fused against composite: the
//! forward and backward pass of each of seer's kernels next to the same
//! computation in candle's own ops (tests/common/composite.rs), median of 20
//! runs after 3 untimed ones. Shows where a training step's time goes.
//!
//!     cargo bench --bench kernels                 # shakespeare-char-cpu shapes
//!     cargo bench --bench kernels -- 12 256 384 6 # batch, block, width, heads

#[path = "../tests/common/composite.rs"]
mod composite;

use candle_core::{DType, Device, Tensor, Var};
use composite::{composite_attention, composite_layer_norm, composite_linear};
use seer::kernels::{
    attention, cross_entropy, dropout, layer_norm, linear, transformer_block, AttentionSpec,
    BlockSpec, WeightLayout,
};
use std::time::Instant;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Median milliseconds of forward + backward through `f`.
fn median_ms(f: &dyn Fn() -> Tensor) -> f64 {
    let run = || {
        f().sum_all().unwrap().backward().unwrap();
    };
    for _ in 0..3 {
        run();
    }
    let mut times: Vec<f64> = (0..20)
        .map(|_| {
            let t = Instant::now();
            run();
            t.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    times.sort_by(f64::total_cmp);
    times[times.len() / 2]
}

fn var(shape: &[usize]) -> Var {
    Var::from_tensor(&Tensor::randn(0f32, 0.5, shape, &Device::Cpu).unwrap()).unwrap()
}

fn row(name: &str, fused: &dyn Fn() -> Tensor, composite: &dyn Fn() -> Tensor) {
    let (a, b) = (median_ms(fused), median_ms(composite));
    println!("| {name} | {a:.3} | {b:.3} | {:.1}x |", b / a);
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
    println!("batch {b}, block {t}, width {c}, {h} heads; forward + backward, median ms\n");
    println!("| op | fused | composite | speed-up |\n| --- | --- | --- | --- |");
    let x = var(&[b, t, c]);
    let (w_attn, b_attn) = (var(&[c, 3 * c]), var(&[3 * c]));
    let (w_fc, b_fc) = (var(&[c, 4 * c]), var(&[4 * c]));
    let (ln_w, ln_b) = (var(&[c]), var(&[c]));
    let qkv = var(&[b, t, 3 * c]);
    let logits = var(&[b, t, 65]);
    let targets = Tensor::zeros((b, t), DType::U32, &Device::Cpu).unwrap();
    let spec = AttentionSpec {
        n_head: h,
        causal: true,
        dropout: 0.0,
        seed: 0,
    };
    row(
        "layer_norm",
        &|| layer_norm(&x, &ln_w, &ln_b, 1e-5).unwrap(),
        &|| composite_layer_norm(&x, &ln_w, &ln_b),
    );
    row(
        "linear (c_attn)",
        &|| linear(&x, &w_attn, &b_attn, WeightLayout::InOut, false).unwrap(),
        &|| composite_linear(&x, &w_attn, &b_attn, WeightLayout::InOut, false),
    );
    row(
        "linear + GELU (c_fc)",
        &|| linear(&x, &w_fc, &b_fc, WeightLayout::InOut, true).unwrap(),
        &|| composite_linear(&x, &w_fc, &b_fc, WeightLayout::InOut, true),
    );
    row(
        "causal attention",
        &|| attention(&qkv, spec).unwrap(),
        &|| composite_attention(&qkv, h, true),
    );
    row(
        "cross-entropy (vocab 65)",
        &|| cross_entropy(&logits, &targets).unwrap(),
        &|| {
            let flat = logits.reshape((b * t, 65)).unwrap();
            candle_nn::loss::cross_entropy(&flat, &targets.flatten_all().unwrap()).unwrap()
        },
    );
    row("dropout 0.2", &|| dropout(&x, 0.2, 7).unwrap(), &|| {
        let mask = (Tensor::rand(0f32, 1.0, x.shape(), &Device::Cpu)
            .unwrap()
            .ge(0.2)
            .unwrap()
            .to_dtype(DType::F32)
            .unwrap()
            * 1.25)
            .unwrap();
        (x.as_tensor() * mask).unwrap()
    });
    whole_block(&x, h);
}

/// The whole GPT-2 block: the fused kernel on packed parameters against the
/// same block composed of candle's ops on separate parameters.
fn whole_block(x: &Var, h: usize) {
    let c = x.dim(2).unwrap();
    let (ln1_w, ln1_b, ln2_w, ln2_b) = (var(&[c]), var(&[c]), var(&[c]), var(&[c]));
    let (w_attn, b_attn) = (var(&[c, 3 * c]), var(&[3 * c]));
    let (w_proj, b_proj) = (var(&[c, c]), var(&[c]));
    let (w_fc, b_fc) = (var(&[c, 4 * c]), var(&[4 * c]));
    let (w_mlp, b_mlp) = (var(&[4 * c, c]), var(&[c]));
    let flat = |vars: &[&Var]| {
        let parts: Vec<Tensor> = vars
            .iter()
            .map(|v| v.as_tensor().flatten_all().unwrap())
            .collect();
        Var::from_tensor(&Tensor::cat(&parts, 0).unwrap()).unwrap()
    };
    let matrices = flat(&[&w_attn, &w_proj, &w_fc, &w_mlp]);
    let vectors = flat(&[
        &ln1_w, &ln1_b, &b_attn, &b_proj, &ln2_w, &ln2_b, &b_fc, &b_mlp,
    ]);
    let spec = BlockSpec {
        n_head: h,
        causal: true,
        eps: 1e-5,
        dropout: 0.0,
        seeds: [0; 3],
        bias: true,
    };
    let layer = |x: &Tensor, w: &Var, b: &Var, gelu: bool| {
        composite_linear(x, w, b, WeightLayout::InOut, gelu)
    };
    row(
        "whole block (LayerNorms, attention, MLP, residuals)",
        &|| transformer_block(x, &matrices, &vectors, spec, &[]).unwrap(),
        &|| {
            let qkv = layer(
                &composite_layer_norm(x, &ln1_w, &ln1_b),
                &w_attn,
                &b_attn,
                false,
            );
            let att = composite_attention(&qkv, h, true);
            let x1 = (x.as_tensor() + layer(&att, &w_proj, &b_proj, false)).unwrap();
            let hidden = layer(
                &composite_layer_norm(&x1, &ln2_w, &ln2_b),
                &w_fc,
                &b_fc,
                true,
            );
            (&x1 + layer(&hidden, &w_mlp, &b_mlp, false)).unwrap()
        },
    );
}
