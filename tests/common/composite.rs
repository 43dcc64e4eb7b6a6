//! Composite versions of seer's fused kernels, written with candle's own
//! differentiable tensor ops: the references the kernel tests compare
//! against and the "before" column of the kernel benchmark.

#![allow(dead_code)]

use candle_core::{Device, Tensor, D};
use seer::kernels::{AdamWStep, WeightLayout};

/// Self-attention from matmul, mask and softmax.
pub fn composite_attention(qkv: &Tensor, n_head: usize, causal: bool) -> Tensor {
    let (b, t, c3) = qkv.dims3().unwrap();
    let (c, hd) = (c3 / 3, c3 / 3 / n_head);
    let heads = |i: usize| {
        qkv.narrow(2, i * c, c)
            .unwrap()
            .reshape((b, t, n_head, hd))
            .unwrap()
            .transpose(1, 2)
            .unwrap()
            .contiguous()
            .unwrap()
    };
    let (q, k, v) = (heads(0), heads(1), heads(2));
    let mut scores = (q.matmul(&k.t().unwrap()).unwrap() / (hd as f64).sqrt()).unwrap();
    if causal {
        let mask: Vec<f32> = (0..t)
            .flat_map(|i| (0..t).map(move |j| if j <= i { 0.0 } else { f32::NEG_INFINITY }))
            .collect();
        let mask = Tensor::from_vec(mask, (t, t), &Device::Cpu)
            .unwrap()
            .to_dtype(qkv.dtype())
            .unwrap();
        scores = scores.broadcast_add(&mask).unwrap();
    }
    let w = candle_nn::ops::softmax(&scores, D::Minus1).unwrap();
    w.matmul(&v)
        .unwrap()
        .transpose(1, 2)
        .unwrap()
        .reshape((b, t, c))
        .unwrap()
}

/// LayerNorm from mean, variance and broadcasts.
pub fn composite_layer_norm(x: &Tensor, w: &Tensor, b: &Tensor) -> Tensor {
    let mean = x.mean_keepdim(D::Minus1).unwrap();
    let xc = x.broadcast_sub(&mean).unwrap();
    let var = xc.sqr().unwrap().mean_keepdim(D::Minus1).unwrap();
    let xn = xc
        .broadcast_div(&(var + 1e-5).unwrap().sqrt().unwrap())
        .unwrap();
    xn.broadcast_mul(w).unwrap().broadcast_add(b).unwrap()
}

/// GELU (tanh) from element-wise ops.
pub fn composite_gelu(u: &Tensor) -> Tensor {
    let inner = ((u + (u.sqr().unwrap() * u).unwrap() * 0.044715).unwrap()
        * (2.0 / std::f64::consts::PI).sqrt())
    .unwrap();
    ((u * 0.5).unwrap() * (inner.tanh().unwrap() + 1.0).unwrap()).unwrap()
}

/// `x·W + b` (then GELU) with matmul and broadcast add.
pub fn composite_linear(
    x: &Tensor,
    w: &Tensor,
    b: &Tensor,
    layout: WeightLayout,
    gelu: bool,
) -> Tensor {
    let (n, d) = (
        x.elem_count() / x.dim(D::Minus1).unwrap(),
        x.dim(D::Minus1).unwrap(),
    );
    let w = match layout {
        WeightLayout::InOut => w.clone(),
        WeightLayout::OutIn => w.t().unwrap(),
    };
    let y = x
        .reshape((n, d))
        .unwrap()
        .matmul(&w)
        .unwrap()
        .broadcast_add(b)
        .unwrap();
    let y = if gelu { composite_gelu(&y) } else { y };
    let mut dims = x.dims().to_vec();
    *dims.last_mut().unwrap() = b.dim(0).unwrap();
    y.reshape(dims).unwrap()
}

/// AdamW written with candle's tensor ops, as PyTorch defines it.
pub fn composite_adamw(
    p: &Tensor,
    m: &Tensor,
    v: &Tensor,
    g: &Tensor,
    s: &AdamWStep,
) -> (Tensor, Tensor, Tensor) {
    let g = (g * s.grad_scale).unwrap();
    let m = ((m * s.beta1).unwrap() + (&g * (1.0 - s.beta1)).unwrap()).unwrap();
    let v = ((v * s.beta2).unwrap() + (g.sqr().unwrap() * (1.0 - s.beta2)).unwrap()).unwrap();
    let (bias1, bias2) = (
        1.0 - s.beta1.powi(s.step as i32),
        1.0 - s.beta2.powi(s.step as i32),
    );
    let denom = ((&v / bias2).unwrap().sqrt().unwrap() + s.eps).unwrap();
    let update = ((&m / denom).unwrap() * (s.lr / bias1)).unwrap();
    let decay: Vec<f32> = (0..p.elem_count())
        .map(|i| match i < s.decayed {
            true => (1.0 - s.lr * s.weight_decay) as f32,
            false => 1.0,
        })
        .collect();
    let decay = Tensor::from_vec(decay, p.shape(), p.device())
        .unwrap()
        .to_dtype(p.dtype())
        .unwrap();
    let p = ((p * decay).unwrap() - update).unwrap();
    (p, m, v)
}

/// Cross-attention from element-wise ops: queries `q` `[b, n, c]`, keys and
/// values `kv` `[b, l, 2c]`, item `i` seeing its first `lengths[i]` keys.
pub fn composite_cross_attention(
    q: &Tensor,
    kv: &Tensor,
    n_head: usize,
    lengths: &[usize],
) -> Tensor {
    let (b, n, c) = q.dims3().unwrap();
    let l = kv.dim(1).unwrap();
    let hd = c / n_head;
    let heads = |x: Tensor, len: usize| {
        x.reshape((b, len, n_head, hd))
            .unwrap()
            .transpose(1, 2)
            .unwrap()
            .contiguous()
            .unwrap()
    };
    let qh = heads(q.clone(), n);
    let k = heads(kv.narrow(2, 0, c).unwrap(), l);
    let v = heads(kv.narrow(2, c, c).unwrap(), l);
    let mask: Vec<f32> = lengths
        .iter()
        .flat_map(|&len| (0..l).map(move |j| if j < len { 0.0 } else { f32::NEG_INFINITY }))
        .collect();
    let mask = Tensor::from_vec(mask, (b, 1, 1, l), &Device::Cpu)
        .unwrap()
        .to_dtype(q.dtype())
        .unwrap();
    let scores = (qh.matmul(&k.t().unwrap()).unwrap() / (hd as f64).sqrt())
        .unwrap()
        .broadcast_add(&mask)
        .unwrap();
    let w = candle_nn::ops::softmax(&scores, D::Minus1).unwrap();
    w.matmul(&v)
        .unwrap()
        .transpose(1, 2)
        .unwrap()
        .reshape((b, n, c))
        .unwrap()
}

/// RMSNorm from element-wise ops: `x / sqrt(mean(x²) + eps) · w`.
pub fn composite_rms_norm(x: &Tensor, w: &Tensor, eps: f64) -> Tensor {
    let ms = x.sqr().unwrap().mean_keepdim(D::Minus1).unwrap();
    let inv = (ms + eps).unwrap().sqrt().unwrap().recip().unwrap();
    x.broadcast_mul(&inv).unwrap().broadcast_mul(w).unwrap()
}

/// RoPE in transformers' layout on heads `[b, h, t, d]`:
/// `x·cos + rotate_half(x)·sin`, `rotate_half(x) = [−x₂, x₁]`.
pub fn composite_rope(x: &Tensor, theta: f64) -> Tensor {
    let (_, _, t, d) = x.dims4().unwrap();
    let half = d / 2;
    let angles: Vec<f64> = (0..t)
        .flat_map(|p| {
            (0..d).map(move |i| p as f64 * theta.powf(-2.0 * (i % half) as f64 / d as f64))
        })
        .collect();
    let table = |f: fn(f64) -> f64| {
        let v: Vec<f64> = angles.iter().map(|&a| f(a)).collect();
        Tensor::from_vec(v, (t, d), x.device())
            .unwrap()
            .to_dtype(x.dtype())
            .unwrap()
    };
    let (cos, sin) = (table(f64::cos), table(f64::sin));
    let x1 = x.narrow(3, 0, half).unwrap();
    let x2 = x.narrow(3, half, half).unwrap();
    let rotated = Tensor::cat(&[&x2.neg().unwrap(), &x1], 3).unwrap();
    (x.broadcast_mul(&cos).unwrap() + rotated.broadcast_mul(&sin).unwrap()).unwrap()
}

/// The shape of a Llama layer for [`composite_llama_block`]: query heads,
/// key/value heads, head width, MLP width, RMSNorm epsilon, RoPE base.
#[derive(Clone, Copy)]
pub struct LlamaShape {
    pub n_head: usize,
    pub n_kv_head: usize,
    pub head_dim: usize,
    pub n_ff: usize,
    pub eps: f64,
    pub theta: f64,
}

/// RoPE on rows `[b, t, heads·head_dim]`, through [`composite_rope`].
pub fn composite_rope_rows(x: &Tensor, head_dim: usize, theta: f64) -> Tensor {
    let (b, t, width) = x.dims3().unwrap();
    let heads = x
        .reshape((b, t, width / head_dim, head_dim))
        .unwrap()
        .transpose(1, 2)
        .unwrap()
        .contiguous()
        .unwrap();
    composite_rope(&heads, theta)
        .transpose(1, 2)
        .unwrap()
        .reshape((b, t, width))
        .unwrap()
}

/// `silu(gate) ⊙ up` for `[gate | up]` rows, silu as `g / (1 + e^−g)`.
pub fn composite_swiglu(gate_up: &Tensor) -> Tensor {
    let f = gate_up.dim(D::Minus1).unwrap() / 2;
    let gate = gate_up.narrow(D::Minus1, 0, f).unwrap();
    let up = gate_up.narrow(D::Minus1, f, f).unwrap();
    let sigmoid = (gate.neg().unwrap().exp().unwrap() + 1.0)
        .unwrap()
        .recip()
        .unwrap();
    ((gate * sigmoid).unwrap() * up).unwrap()
}

/// Causal grouped-query attention of packed `[q | k | v]` rows as
/// transformers' eager Llama attention computes it: keys and values
/// repeated for each query head of their group (`repeat_kv`), matmul, mask,
/// softmax.
pub fn composite_grouped_attention(qkv: &Tensor, n_head: usize, n_kv_head: usize) -> Tensor {
    let (b, t, width) = qkv.dims3().unwrap();
    let d = width / (n_head + 2 * n_kv_head);
    let heads = |start: usize, n: usize| {
        qkv.narrow(2, start * d, n * d)
            .unwrap()
            .reshape((b, t, n, d))
            .unwrap()
            .transpose(1, 2)
            .unwrap()
            .contiguous()
            .unwrap()
    };
    let repeat_kv = |x: Tensor| {
        x.unsqueeze(2)
            .unwrap()
            .broadcast_as((b, n_kv_head, n_head / n_kv_head, t, d))
            .unwrap()
            .contiguous()
            .unwrap()
            .reshape((b, n_head, t, d))
            .unwrap()
    };
    let q = heads(0, n_head);
    let k = repeat_kv(heads(n_head, n_kv_head));
    let v = repeat_kv(heads(n_head + n_kv_head, n_kv_head));
    let scores = (q.matmul(&k.t().unwrap()).unwrap() / (d as f64).sqrt()).unwrap();
    let mask: Vec<f32> = (0..t)
        .flat_map(|i| (0..t).map(move |j| if j <= i { 0.0 } else { f32::NEG_INFINITY }))
        .collect();
    let mask = Tensor::from_vec(mask, (t, t), qkv.device())
        .unwrap()
        .to_dtype(qkv.dtype())
        .unwrap();
    let w = candle_nn::ops::softmax(&scores.broadcast_add(&mask).unwrap(), D::Minus1).unwrap();
    w.matmul(&v)
        .unwrap()
        .transpose(1, 2)
        .unwrap()
        .reshape((b, t, n_head * d))
        .unwrap()
}

/// A Llama decoder layer as transformers' `LlamaDecoderLayer` writes it
/// (eager attention), from the composite stages above and candle's matmuls;
/// the parameters are flat, in the order q, k, v, o, gate, up, down (each
/// `[out, in]`), input norm, post-attention norm.
pub fn composite_llama_block(x: &Tensor, params: &Tensor, s: LlamaShape) -> Tensor {
    let c = x.dim(2).unwrap();
    let (q, kv, f) = (s.n_head * s.head_dim, s.n_kv_head * s.head_dim, s.n_ff);
    let shapes = [
        (q, c),
        (kv, c),
        (kv, c),
        (c, q),
        (f, c),
        (f, c),
        (c, f),
        (1, c),
        (1, c),
    ];
    let mut at = 0;
    let p: Vec<Tensor> = shapes
        .iter()
        .map(|&(rows, cols)| {
            let part = params
                .narrow(0, at, rows * cols)
                .unwrap()
                .reshape((rows, cols))
                .unwrap();
            at += rows * cols;
            part
        })
        .collect();
    let proj = |x: &Tensor, w: &Tensor| x.broadcast_matmul(&w.t().unwrap()).unwrap();
    let rope = |x: Tensor| composite_rope_rows(&x, s.head_dim, s.theta);
    let n1 = composite_rms_norm(x, &p[7].squeeze(0).unwrap(), s.eps);
    let qkv = Tensor::cat(
        &[
            rope(proj(&n1, &p[0])),
            rope(proj(&n1, &p[1])),
            proj(&n1, &p[2]),
        ],
        2,
    )
    .unwrap();
    let att = composite_grouped_attention(&qkv, s.n_head, s.n_kv_head);
    let x1 = (x + proj(&att, &p[3])).unwrap();
    let n2 = composite_rms_norm(&x1, &p[8].squeeze(0).unwrap(), s.eps);
    let gate_up = Tensor::cat(&[proj(&n2, &p[4]), proj(&n2, &p[5])], 2).unwrap();
    (&x1 + proj(&composite_swiglu(&gate_up), &p[6])).unwrap()
}

/// `log softmax(logits)[target]` per row, from candle's ops.
pub fn composite_token_log_probs(logits: &Tensor, targets: &Tensor) -> Tensor {
    let max = logits.max_keepdim(D::Minus1).unwrap().detach();
    let shifted = logits.broadcast_sub(&max).unwrap();
    let lse = shifted
        .exp()
        .unwrap()
        .sum_keepdim(D::Minus1)
        .unwrap()
        .log()
        .unwrap();
    let log_probs = shifted.broadcast_sub(&lse).unwrap();
    log_probs
        .gather(&targets.unsqueeze(D::Minus1).unwrap(), D::Minus1)
        .unwrap()
        .squeeze(D::Minus1)
        .unwrap()
}
