//! seer's fused kernels against candle's composite ops (relative error ≤ 1e-5,
//! values and gradients) and against central finite differences in f64.

mod common;

use candle_core::{DType, Device, Tensor, Var};
use common::central_difference;
use common::composite::{
    composite_adamw, composite_attention, composite_cross_attention, composite_grouped_attention,
    composite_layer_norm, composite_linear, composite_llama_block, composite_rms_norm,
    composite_rope_rows, composite_swiglu, composite_token_log_probs, LlamaShape,
};
use common::relative_error as rel;
use seer::kernels::{
    adamw_update, attention, attention_padded, cross_attention, cross_entropy, dit_block,
    dit_block_with_cross_attention, dit_conditioning_width, dit_param_sizes, dropout,
    gated_residual, grouped_attention, layer_norm, linear, llama_block, llama_block_sizes,
    matrix_sizes, rms_norm, rope, sum_of_squares, swiglu, token_log_probs, transformer_block,
    vector_sizes, AdamWStep, AttentionSpec, BlockSpec, DitBlockSpec, LlamaBlockSpec, WeightLayout,
};

fn randn(shape: &[usize], dtype: DType, seed: u64) -> Var {
    use rand::SeedableRng;
    use rand_distr::Distribution;
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let n: usize = shape.iter().product();
    let values: Vec<f64> = (0..n)
        .map(|_| rand_distr::StandardNormal.sample(&mut rng))
        .collect();
    Var::from_tensor(
        &Tensor::from_vec(values, shape, &Device::Cpu)
            .unwrap()
            .to_dtype(dtype)
            .unwrap(),
    )
    .unwrap()
}

/// A scalar that depends on every output element: Σ out ∘ weights.
fn project(out: &Tensor, seed: u64) -> Tensor {
    let w = randn(out.dims(), out.dtype(), seed);
    (out * w.as_tensor()).unwrap().sum_all().unwrap()
}

/// Checks `fused` against `composite` in f32 (values and gradients of every input).
fn against_composite(
    inputs: &[Var],
    fused: impl Fn(&[Tensor]) -> Tensor,
    composite: impl Fn(&[Tensor]) -> Tensor,
) {
    let xs: Vec<Tensor> = inputs.iter().map(|v| v.as_tensor().clone()).collect();
    let (a, b) = (fused(&xs), composite(&xs));
    let e = rel(&a, &b);
    assert!(e <= 1e-5, "values: relative error {e:.2e}");
    let (ga, gb) = (
        project(&a, 99).backward().unwrap(),
        project(&b, 99).backward().unwrap(),
    );
    for (i, x) in xs.iter().enumerate() {
        let e = rel(ga.get(x).unwrap(), gb.get(x).unwrap());
        assert!(e <= 1e-5, "gradient of input {i}: relative error {e:.2e}");
    }
}

/// Checks the gradients of `f` (f64) against central finite differences at a
/// sample of elements of every input.
fn against_finite_differences(inputs: &[Var], f: impl Fn(&[Tensor]) -> Tensor) {
    let xs = || {
        inputs
            .iter()
            .map(|v| v.as_tensor().clone())
            .collect::<Vec<_>>()
    };
    let loss = || project(&f(&xs()), 7);
    let grads = loss().backward().unwrap();
    for (k, var) in inputs.iter().enumerate() {
        let analytic: Vec<f64> = grads
            .get(var.as_tensor())
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap();
        let original: Vec<f64> = var.as_tensor().flatten_all().unwrap().to_vec1().unwrap();
        let step = (original.len() / 17).max(1);
        for i in (0..original.len()).step_by(step) {
            let numeric = central_difference(var, &original, i, 1e-5, || {
                loss().to_scalar::<f64>().unwrap()
            });
            // A central difference carries a rounding error of about
            // ε·|loss|/h ≈ 1e-10 here, which is all there is to compare
            // where the true gradient is zero (a key bias, which shifts
            // every score of a row alike).
            let diff = (analytic[i] - numeric).abs();
            let err = diff / (analytic[i].abs() + numeric.abs()).max(1e-8);
            assert!(
                err < 1e-6 || diff < 1e-9,
                "input {k}[{i}]: analytic {} numeric {numeric} ({err:.1e})",
                analytic[i]
            );
        }
        var.set(&Tensor::from_vec(original, var.shape(), &Device::Cpu).unwrap())
            .unwrap();
    }
}

fn spec(n_head: usize, causal: bool, dropout: f64) -> AttentionSpec {
    AttentionSpec {
        n_head,
        causal,
        dropout,
        seed: 42,
    }
}

#[test]
fn attention_matches_composite_causal_and_bidirectional() {
    // 150 positions: three query tiles, the last one partial.
    for (t, causal) in [(150, true), (150, false), (7, true)] {
        let qkv = randn(&[2, t, 3 * 16], DType::F32, t as u64);
        against_composite(
            &[qkv],
            |x| attention(&x[0], spec(4, causal, 0.0)).unwrap(),
            |x| composite_attention(&x[0], 4, causal),
        );
    }
}

#[test]
fn attention_gradients_match_finite_differences() {
    for causal in [true, false] {
        let qkv = randn(&[2, 70, 3 * 8], DType::F64, 3);
        against_finite_differences(&[qkv], |x| attention(&x[0], spec(2, causal, 0.0)).unwrap());
    }
    let qkv = randn(&[1, 9, 3 * 8], DType::F64, 4);
    against_finite_differences(&[qkv], |x| attention(&x[0], spec(2, true, 0.3)).unwrap());
}

#[test]
fn padded_attention_sees_only_each_items_real_positions() {
    let qkv = randn(&[2, 70, 3 * 8], DType::F32, 6);
    let qkv = qkv.as_tensor();
    for causal in [true, false] {
        let padded = attention_padded(qkv, spec(2, causal, 0.0), &[23, 70]).unwrap();
        let short = qkv.narrow(0, 0, 1).unwrap().narrow(1, 0, 23).unwrap();
        let alone = attention(&short.contiguous().unwrap(), spec(2, causal, 0.0)).unwrap();
        let head = padded.narrow(0, 0, 1).unwrap().narrow(1, 0, 23).unwrap();
        assert!(rel(&head, &alone) < 1e-6, "item 0's real positions");
        let full = attention(
            &qkv.narrow(0, 1, 1).unwrap().contiguous().unwrap(),
            spec(2, causal, 0.0),
        );
        assert!(
            rel(&padded.narrow(0, 1, 1).unwrap(), &full.unwrap()) < 1e-6,
            "item 1 unpadded"
        );
    }
    for causal in [true, false] {
        let qkv = randn(&[2, 9, 3 * 8], DType::F64, 7);
        against_finite_differences(&[qkv], |x| {
            attention_padded(&x[0], spec(2, causal, 0.0), &[4, 9]).unwrap()
        });
    }
    assert!(attention_padded(qkv, spec(2, false, 0.0), &[0, 5]).is_err());
    assert!(attention_padded(qkv, spec(2, false, 0.0), &[71, 5]).is_err());
}

#[test]
fn cross_attention_matches_composite_and_finite_differences() {
    // 70 queries (two tiles) against contexts of 9 keys, the first item padded to 4.
    let inputs = [
        randn(&[2, 70, 16], DType::F32, 11),
        randn(&[2, 9, 32], DType::F32, 12),
    ];
    against_composite(
        &inputs,
        |x| cross_attention(&x[0], &x[1], 4, &[4, 9]).unwrap(),
        |x| composite_cross_attention(&x[0], &x[1], 4, &[4, 9]),
    );
    let inputs = [
        randn(&[2, 5, 8], DType::F64, 13),
        randn(&[2, 3, 16], DType::F64, 14),
    ];
    against_finite_differences(&inputs, |x| {
        cross_attention(&x[0], &x[1], 2, &[2, 3]).unwrap()
    });
    let q = randn(&[2, 5, 8], DType::F32, 1);
    let kv = randn(&[2, 3, 12], DType::F32, 2);
    assert!(cross_attention(q.as_tensor(), kv.as_tensor(), 2, &[]).is_err());
}

#[test]
fn attention_dropout_is_seeded_and_drops_about_p() {
    let qkv = randn(&[2, 64, 3 * 16], DType::F32, 5);
    let run = |p: f64, seed: u64| {
        attention(
            qkv.as_tensor(),
            AttentionSpec {
                n_head: 2,
                causal: false,
                dropout: p,
                seed,
            },
        )
        .unwrap()
    };
    let (a, b, c, none) = (run(0.5, 1), run(0.5, 1), run(0.5, 2), run(0.0, 1));
    assert_eq!(rel(&a, &b), 0.0, "same seed, same mask");
    assert!(rel(&a, &c) > 0.01, "another seed, another mask");
    assert!(rel(&a, &none) > 0.01, "dropout changes the output");
    // With values all ones the output row equals the sum of kept, rescaled
    // weights: 1 on average.
    let ones = Tensor::ones((1, 256, 3 * 4), DType::F32, &Device::Cpu).unwrap();
    let y = attention(
        &ones,
        AttentionSpec {
            n_head: 1,
            causal: false,
            dropout: 0.25,
            seed: 3,
        },
    )
    .unwrap();
    let mean = y.mean_all().unwrap().to_scalar::<f32>().unwrap();
    assert!((mean - 1.0).abs() < 0.02, "mean of kept weights {mean}");
}

#[test]
fn layer_norm_with_a_weight_and_bias_per_item_matches_composite() {
    // Adaptive LayerNorm: rows of item b use weight[b] and bias[b]; 37 rows
    // per item so that tasks of 16 rows end inside an item.
    let inputs = [
        randn(&[3, 37, 24], DType::F32, 4),
        randn(&[3, 24], DType::F32, 5),
        randn(&[3, 24], DType::F32, 6),
    ];
    let per_item = |x: &[Tensor]| {
        let w = x[1].unsqueeze(1).unwrap();
        let b = x[2].unsqueeze(1).unwrap();
        composite_layer_norm(&x[0], &w, &b)
    };
    against_composite(
        &inputs,
        |x| layer_norm(&x[0], &x[1], &x[2], 1e-5).unwrap(),
        per_item,
    );
    let inputs = [
        randn(&[2, 5, 8], DType::F64, 7),
        randn(&[2, 8], DType::F64, 8),
        randn(&[2, 8], DType::F64, 9),
    ];
    against_finite_differences(&inputs, |x| layer_norm(&x[0], &x[1], &x[2], 1e-5).unwrap());
    let bad = randn(&[4, 24], DType::F32, 1);
    assert!(layer_norm(
        inputs[0].as_tensor(),
        bad.as_tensor(),
        bad.as_tensor(),
        1e-5
    )
    .is_err());
}

#[test]
fn layer_norm_matches_composite_and_finite_differences() {
    let inputs = [
        randn(&[3, 37, 24], DType::F32, 1),
        randn(&[24], DType::F32, 2),
        randn(&[24], DType::F32, 3),
    ];
    against_composite(
        &inputs,
        |x| layer_norm(&x[0], &x[1], &x[2], 1e-5).unwrap(),
        |x| composite_layer_norm(&x[0], &x[1], &x[2]),
    );
    let inputs = [
        randn(&[2, 5, 12], DType::F64, 4),
        randn(&[12], DType::F64, 5),
        randn(&[12], DType::F64, 6),
    ];
    against_finite_differences(&inputs, |x| layer_norm(&x[0], &x[1], &x[2], 1e-5).unwrap());
}

#[test]
fn linear_matches_composite_and_finite_differences() {
    for (layout, gelu) in [
        (WeightLayout::InOut, false),
        (WeightLayout::InOut, true),
        (WeightLayout::OutIn, false),
    ] {
        let w_shape = if layout == WeightLayout::InOut {
            [24, 40]
        } else {
            [40, 24]
        };
        let inputs = [
            randn(&[3, 33, 24], DType::F32, 7),
            randn(&w_shape, DType::F32, 8),
            randn(&[40], DType::F32, 9),
        ];
        against_composite(
            &inputs,
            |x| linear(&x[0], &x[1], &x[2], layout, gelu).unwrap(),
            |x| composite_linear(&x[0], &x[1], &x[2], layout, gelu),
        );
        let w_shape = if layout == WeightLayout::InOut {
            [6, 10]
        } else {
            [10, 6]
        };
        let inputs = [
            randn(&[2, 3, 6], DType::F64, 10),
            randn(&w_shape, DType::F64, 11),
            randn(&[10], DType::F64, 12),
        ];
        against_finite_differences(&inputs, |x| {
            linear(&x[0], &x[1], &x[2], layout, gelu).unwrap()
        });
    }
}

#[test]
fn linear_with_bf16_weights_computes_with_the_rounded_weights() {
    // (in, out): sizes that are not multiples of 32 take the generic loops;
    // multiples of 32 take the AVX-512 kernel where the build has it (for
    // `[in, out]` weights the output size decides, for `[out, in]` the
    // input size), 50 rows leave a remainder after rows of four, and 200
    // rows give each thread more than one slice of W to share between inputs.
    for (d_in, d_out) in [(48, 40), (64, 96), (50, 64), (200, 64)] {
        for (layout, gelu) in [
            (WeightLayout::InOut, false),
            (WeightLayout::InOut, true),
            (WeightLayout::OutIn, false),
        ] {
            let w_shape = if layout == WeightLayout::InOut {
                [d_in, d_out]
            } else {
                [d_out, d_in]
            };
            let w = randn(&w_shape, DType::F32, 21)
                .as_tensor()
                .to_dtype(DType::BF16)
                .unwrap();
            let rounded = w.to_dtype(DType::F32).unwrap();
            let b = randn(&[d_out], DType::F32, 22).as_tensor().clone();
            // One and three rows take the streaming product, nine the packed one.
            for rows in [1, 3, 9] {
                let x = randn(&[rows, d_in], DType::F32, 23).as_tensor().clone();
                let narrow = linear(&x, &w, &b, layout, gelu).unwrap();
                assert_eq!(narrow.dtype(), DType::F32);
                let case = format!("[{d_in}, {d_out}] {layout:?} gelu {gelu} rows {rows}");
                // The f32 kernel on the rounded weights, and candle's own ops.
                let wide = linear(&x, &rounded, &b, layout, gelu).unwrap();
                let e = rel(&narrow, &wide);
                assert!(e <= 1e-6, "{case}: {e:.2e} against the f32 kernel");
                let reference = composite_linear(&x, &rounded, &b, layout, gelu);
                let e = rel(&narrow, &reference);
                assert!(e <= 1e-5, "{case}: {e:.2e} against candle's ops");
            }
            // Such a layer is for inference: its backward pass says so.
            let x = randn(&[2, d_in], DType::F32, 24);
            let err = linear(x.as_tensor(), &w, &b, layout, gelu)
                .unwrap()
                .sum_all()
                .unwrap()
                .backward()
                .unwrap_err();
            assert!(err.to_string().contains("inference only"), "{err}");
        }
    }
}

/// Consecutive parts of the flat `t` with these sizes.
fn split_flat(t: &Tensor, sizes: &[usize]) -> Vec<Tensor> {
    let mut at = 0;
    sizes
        .iter()
        .map(|&n| {
            let part = t.narrow(0, at, n).unwrap();
            at += n;
            part
        })
        .collect()
}

/// The Transformer block composed of the separate kernels (each checked
/// against candle's own ops above) and candle's adds: the reference for the
/// fused block.
fn composed_block(
    x: &Tensor,
    matrices: &Tensor,
    vectors: &Tensor,
    spec: BlockSpec,
    lengths: &[usize],
) -> Tensor {
    let c = x.dim(2).unwrap();
    let m = split_flat(matrices, &matrix_sizes(c));
    let v = split_flat(vectors, &vector_sizes(c, spec.bias));
    // Without biases: the two LayerNorm weights, zeros for every bias.
    let v = if spec.bias {
        v
    } else {
        let zeros = |n: usize| Tensor::zeros(n, x.dtype(), x.device()).unwrap();
        let (w1, w2) = (v[0].clone(), v[1].clone());
        vec![
            w1,
            zeros(c),
            zeros(3 * c),
            zeros(c),
            w2,
            zeros(c),
            zeros(4 * c),
            zeros(c),
        ]
    };
    let matrix = |i: usize, d_in: usize| m[i].reshape((d_in, m[i].elem_count() / d_in)).unwrap();
    let drop = |t: Tensor, seed: u64| {
        if spec.dropout > 0.0 {
            dropout(&t, spec.dropout, seed).unwrap()
        } else {
            t
        }
    };
    let linear_ = |x: &Tensor, w: Tensor, b: &Tensor, gelu: bool| {
        linear(x, &w, b, WeightLayout::InOut, gelu).unwrap()
    };
    let attention_spec = AttentionSpec {
        n_head: spec.n_head,
        causal: spec.causal,
        dropout: spec.dropout,
        seed: spec.seeds[0],
    };
    let h = layer_norm(x, &v[0], &v[1], spec.eps).unwrap();
    let qkv = linear_(&h, matrix(0, c), &v[2], false);
    let att = attention_padded(&qkv, attention_spec, lengths).unwrap();
    let x1 = (x + drop(linear_(&att, matrix(1, c), &v[3], false), spec.seeds[1])).unwrap();
    let h = layer_norm(&x1, &v[4], &v[5], spec.eps).unwrap();
    let h = linear_(&h, matrix(2, c), &v[6], true);
    (&x1 + drop(linear_(&h, matrix(3, 4 * c), &v[7], false), spec.seeds[2])).unwrap()
}

/// Random inputs for a block `c` wide: x, the matrices (GPT-2's scale) and
/// the vectors (LayerNorm weights near one).
fn block_inputs(
    spec: BlockSpec,
    b: usize,
    t: usize,
    c: usize,
    dtype: DType,
    seed: u64,
) -> [Var; 3] {
    let x = randn(&[b, t, c], dtype, seed);
    let m: usize = matrix_sizes(c).iter().sum();
    let v: usize = vector_sizes(c, spec.bias).iter().sum();
    let scaled = |n: usize, seed: u64, scale: f64, shift: f64| {
        let t = randn(&[n], dtype, seed).as_tensor().affine(scale, shift);
        Var::from_tensor(&t.unwrap()).unwrap()
    };
    let (matrices, vectors) = (scaled(m, seed + 1, 0.2, 0.0), scaled(v, seed + 2, 0.1, 1.0));
    [x, matrices, vectors]
}

fn block_spec(n_head: usize, causal: bool, dropout: f64, bias: bool) -> BlockSpec {
    BlockSpec {
        n_head,
        causal,
        eps: 1e-5,
        dropout,
        seeds: [11, 12, 13],
        bias,
    }
}

#[test]
fn transformer_block_matches_the_composed_kernels() {
    // 70 positions: two attention tiles; padding, dropout, both directions,
    // with and without biases.
    for (causal, dropout, lengths, bias) in [
        (true, 0.0, vec![], true),
        (false, 0.0, vec![70, 41], true),
        (true, 0.2, vec![], true),
        (false, 0.1, vec![13, 70], true),
        (true, 0.1, vec![], false),
    ] {
        let spec = block_spec(4, causal, dropout, bias);
        let inputs = block_inputs(spec, 2, 70, 32, DType::F32, 5);
        against_composite(
            &inputs,
            |x| transformer_block(&x[0], &x[1], &x[2], spec, &lengths).unwrap(),
            |x| composed_block(&x[0], &x[1], &x[2], spec, &lengths),
        );
    }
}

#[test]
fn transformer_block_gradients_match_finite_differences() {
    for (causal, dropout, lengths, bias) in [
        (true, 0.3, vec![6, 4], true),
        (false, 0.0, vec![], true),
        (true, 0.0, vec![], false),
    ] {
        let spec = block_spec(2, causal, dropout, bias);
        let inputs = block_inputs(spec, 2, 6, 8, DType::F64, 9);
        against_finite_differences(&inputs, |x| {
            transformer_block(&x[0], &x[1], &x[2], spec, &lengths).unwrap()
        });
    }
}

#[test]
fn transformer_block_with_bf16_matrices_is_for_inference() {
    let spec = block_spec(4, true, 0.0, true);
    let [x, m, v] = block_inputs(spec, 2, 9, 32, DType::F32, 3);
    let narrow = m.as_tensor().to_dtype(DType::BF16).unwrap();
    let rounded = narrow.to_dtype(DType::F32).unwrap();
    let y = transformer_block(x.as_tensor(), &narrow, v.as_tensor(), spec, &[]).unwrap();
    let wide = transformer_block(x.as_tensor(), &rounded, v.as_tensor(), spec, &[]).unwrap();
    let e = rel(&y, &wide);
    assert!(
        e <= 1e-6,
        "bf16 matrices against their f32 rounding: {e:.2e}"
    );
    let err = y.sum_all().unwrap().backward().unwrap_err();
    assert!(err.to_string().contains("inference only"), "{err}");
    // Parameters that do not fit the width are an error, not a panic.
    let short = v.as_tensor().narrow(0, 1, 31).unwrap();
    let err = transformer_block(x.as_tensor(), m.as_tensor(), &short, spec, &[]).unwrap_err();
    assert!(err.to_string().contains("vector elements"), "{err}");
}

/// The DiT block composed of the separate kernels (each checked against
/// candle's own ops above) and candle's adds: the reference for the fused
/// block. Also returns its cross-attention weights, `[b, heads, n, l]`,
/// from candle's own product and softmax.
fn composed_dit_block(
    x: &Tensor,
    cond: &Tensor,
    params: &Tensor,
    spec: DitBlockSpec,
    lengths: &[usize],
) -> (Tensor, Tensor) {
    let (b, _, c) = x.dims3().unwrap();
    let ctx = spec.context_dim;
    let p = split_flat(params, &dit_param_sizes(c, ctx));
    let matrix = |i: usize, d_in: usize| p[i].reshape((d_in, p[i].elem_count() / d_in)).unwrap();
    let linear_ = |x: &Tensor, i: usize, d_in: usize, gelu: bool| {
        linear(x, &matrix(i, d_in), &p[i + 8], WeightLayout::InOut, gelu).unwrap()
    };
    let vector = cond.narrow(1, 0, c).unwrap();
    let l = (cond.dim(1).unwrap() - c) / ctx;
    let states = cond
        .narrow(1, c, l * ctx)
        .unwrap()
        .reshape((b, l, ctx))
        .unwrap();
    let m = linear_(&vector, 0, c, false);
    let part = |k: usize| m.narrow(1, k * c, c).unwrap();
    let modulated = |x: &Tensor, shift: Tensor, scale: Tensor| {
        layer_norm(x, &(scale + 1.0).unwrap(), &shift, spec.eps).unwrap()
    };
    let attention_spec = AttentionSpec {
        n_head: spec.n_head,
        causal: false,
        dropout: 0.0,
        seed: 0,
    };
    let h = modulated(x, part(0), part(1));
    let att = attention(&linear_(&h, 1, c, false), attention_spec).unwrap();
    let x1 = gated_residual(x, &linear_(&att, 2, c, false), &part(2)).unwrap();
    let h = layer_norm(&x1, &p[11], &p[12], spec.eps).unwrap();
    let q = linear(&h, &matrix(3, c), &p[13], WeightLayout::InOut, false).unwrap();
    let kv = linear(&states, &matrix(4, ctx), &p[14], WeightLayout::InOut, false).unwrap();
    let cross = cross_attention(&q, &kv, spec.n_head, lengths).unwrap();
    let cproj = linear(&cross, &matrix(5, c), &p[15], WeightLayout::InOut, false).unwrap();
    let x2 = (&x1 + cproj).unwrap();
    let h = modulated(&x2, part(3), part(4));
    let h = linear(&h, &matrix(6, c), &p[16], WeightLayout::InOut, true).unwrap();
    let out = linear(&h, &matrix(7, 4 * c), &p[17], WeightLayout::InOut, false).unwrap();
    let y = gated_residual(&x2, &out, &part(5)).unwrap();
    (
        y,
        cross_weights(&q, &kv.narrow(2, 0, c).unwrap(), spec.n_head, lengths),
    )
}

/// `softmax(q·kᵀ/√d)` per head, `[b, heads, n, l]`, item `i` seeing only
/// its first `lengths[i]` keys (all when empty).
fn cross_weights(q: &Tensor, k: &Tensor, n_head: usize, lengths: &[usize]) -> Tensor {
    let (b, n, c) = q.dims3().unwrap();
    let l = k.dim(1).unwrap();
    let d = c / n_head;
    let heads = |t: &Tensor, rows: usize| {
        t.reshape((b, rows, n_head, d))
            .unwrap()
            .transpose(1, 2)
            .unwrap()
            .contiguous()
            .unwrap()
    };
    let scores = heads(q, n)
        .matmul(&heads(k, l).t().unwrap())
        .unwrap()
        .affine(1.0 / (d as f64).sqrt(), 0.0)
        .unwrap();
    let mask: Vec<f64> = (0..b * l)
        .map(|i| match lengths.get(i / l) {
            Some(&seen) if i % l >= seen => f64::NEG_INFINITY,
            _ => 0.0,
        })
        .collect();
    let mask = Tensor::from_vec(mask, (b, 1, 1, l), q.device())
        .unwrap()
        .to_dtype(q.dtype())
        .unwrap();
    candle_nn::ops::softmax_last_dim(&scores.broadcast_add(&mask).unwrap()).unwrap()
}

/// Random inputs for a DiT block `c` wide over `n` patches, reading `l`
/// caption states `ctx` wide: x, the conditioning, the parameters (the
/// matrices at 0.2, the vectors near one, so every gate and LayerNorm
/// weight is live).
fn dit_inputs(
    b: usize,
    n: usize,
    c: usize,
    (l, ctx): (usize, usize),
    dtype: DType,
    seed: u64,
) -> [Var; 3] {
    let sizes = dit_param_sizes(c, ctx);
    let matrices: usize = sizes[..8].iter().sum();
    let vectors: usize = sizes[8..].iter().sum();
    let params = Tensor::cat(
        &[
            randn(&[matrices], dtype, seed + 2)
                .as_tensor()
                .affine(0.2, 0.0)
                .unwrap(),
            randn(&[vectors], dtype, seed + 3)
                .as_tensor()
                .affine(0.1, 1.0)
                .unwrap(),
        ],
        0,
    )
    .unwrap();
    [
        randn(&[b, n, c], dtype, seed),
        randn(&[b, dit_conditioning_width(c, ctx, l)], dtype, seed + 1),
        Var::from_tensor(&params).unwrap(),
    ]
}

#[test]
fn dit_block_matches_the_composed_kernels() {
    // 70 patches: two attention tiles; captions padded or whole; states
    // as wide as the block or not.
    for (lengths, ctx) in [(vec![5, 2, 7], 24), (vec![], 32)] {
        let spec = DitBlockSpec {
            n_head: 4,
            context_dim: ctx,
            eps: 1e-6,
        };
        let inputs = dit_inputs(3, 70, 32, (7, ctx), DType::F32, 41);
        against_composite(
            &inputs,
            |x| dit_block(&x[0], &x[1], &x[2], spec, &lengths).unwrap(),
            |x| composed_dit_block(&x[0], &x[1], &x[2], spec, &lengths).0,
        );
    }
}

#[test]
fn dit_block_cross_attention_weights_match_candles_softmax() {
    for (lengths, ctx) in [(vec![5, 2, 7], 24), (vec![], 32)] {
        let spec = DitBlockSpec {
            n_head: 4,
            context_dim: ctx,
            eps: 1e-6,
        };
        let [x, cond, params] = dit_inputs(3, 70, 32, (7, ctx), DType::F32, 47);
        let (x, cond, params) = (x.as_tensor(), cond.as_tensor(), params.as_tensor());
        let (y, weights) = dit_block_with_cross_attention(x, cond, params, spec, &lengths).unwrap();
        let (y_ref, weights_ref) = composed_dit_block(x, cond, params, spec, &lengths);
        assert_eq!(weights.dims(), [3, 4, 70, 7]);
        assert!(rel(&y, &y_ref) <= 1e-5);
        assert!(rel(&weights, &weights_ref) <= 1e-5);
        // The plain op's output, and nothing past each caption's end.
        let plain = dit_block(x, cond, params, spec, &lengths).unwrap();
        assert!(rel(&y, &plain) == 0.0);
        if let Some(&seen) = lengths.get(1) {
            let past = weights
                .narrow(0, 1, 1)
                .unwrap()
                .narrow(3, seen, 7 - seen)
                .unwrap();
            assert_eq!(
                past.abs()
                    .unwrap()
                    .sum_all()
                    .unwrap()
                    .to_scalar::<f32>()
                    .unwrap(),
                0.0
            );
        }
    }
}

#[test]
fn dit_block_gradients_match_finite_differences() {
    let spec = DitBlockSpec {
        n_head: 2,
        context_dim: 6,
        eps: 1e-6,
    };
    let inputs = dit_inputs(2, 5, 8, (3, 6), DType::F64, 43);
    against_finite_differences(&inputs, |x| {
        dit_block(&x[0], &x[1], &x[2], spec, &[3, 1]).unwrap()
    });
    // Inputs that do not fit are an error naming what, not a panic.
    let x = inputs[0].as_tensor();
    let short = inputs[2].as_tensor().narrow(0, 1, 50).unwrap();
    let err = dit_block(x, inputs[1].as_tensor(), &short, spec, &[]).unwrap_err();
    assert!(err.to_string().contains("parameters"), "{err}");
    let narrow = inputs[1].as_tensor().narrow(1, 0, 11).unwrap();
    let err = dit_block(x, &narrow, inputs[2].as_tensor(), spec, &[]).unwrap_err();
    assert!(err.to_string().contains("conditioning"), "{err}");
    let err = dit_block(
        x,
        inputs[1].as_tensor(),
        inputs[2].as_tensor(),
        spec,
        &[4, 1],
    );
    assert!(err.unwrap_err().to_string().contains("lengths"));
}

#[test]
fn cross_entropy_matches_composite_and_finite_differences() {
    let targets = Tensor::new(&[3u32, 0, 64, 17, 17, 5], &Device::Cpu).unwrap();
    let logits = [randn(&[6, 65], DType::F32, 11)];
    against_composite(
        &logits,
        |x| cross_entropy(&x[0], &targets).unwrap(),
        |x| candle_nn::loss::cross_entropy(&x[0], &targets).unwrap(),
    );
    let logits = [randn(&[6, 65], DType::F64, 12)];
    against_finite_differences(&logits, |x| cross_entropy(&x[0], &targets).unwrap());
    let bad = Tensor::new(&[65u32, 0, 0, 0, 0, 0], &Device::Cpu).unwrap();
    let err = cross_entropy(logits[0].as_tensor(), &bad)
        .unwrap_err()
        .to_string();
    assert!(err.contains("target 65"), "{err}");
}

#[test]
fn gated_residual_matches_composite_and_finite_differences() {
    // 3 items of 70 rows: the parallel tasks' rows cross items.
    let composite =
        |x: &[Tensor]| (&x[0] + x[1].broadcast_mul(&x[2].unsqueeze(1).unwrap()).unwrap()).unwrap();
    let inputs = [
        randn(&[3, 70, 8], DType::F32, 31),
        randn(&[3, 70, 8], DType::F32, 32),
        randn(&[3, 8], DType::F32, 33),
    ];
    against_composite(
        &inputs,
        |x| gated_residual(&x[0], &x[1], &x[2]).unwrap(),
        composite,
    );
    let inputs = [
        randn(&[2, 5, 4], DType::F64, 34),
        randn(&[2, 5, 4], DType::F64, 35),
        randn(&[2, 4], DType::F64, 36),
    ];
    against_finite_differences(&inputs, |x| gated_residual(&x[0], &x[1], &x[2]).unwrap());
    let x = inputs[0].as_tensor();
    let err = gated_residual(x, x, &x.narrow(2, 0, 3).unwrap().sum(1).unwrap()).unwrap_err();
    assert!(err.to_string().contains("do not fit"), "{err}");
}

#[test]
fn dropout_keeps_about_one_minus_p_and_its_gradient_uses_the_same_mask() {
    let x = Var::from_tensor(&Tensor::ones((64, 1000), DType::F32, &Device::Cpu).unwrap()).unwrap();
    let y = dropout(x.as_tensor(), 0.2, 11).unwrap();
    let values: Vec<f32> = y.flatten_all().unwrap().to_vec1().unwrap();
    let kept = values.iter().filter(|&&v| v != 0.0).count() as f64 / values.len() as f64;
    assert!((kept - 0.8).abs() < 0.01, "kept {kept}");
    assert!(values.iter().all(|&v| v == 0.0 || (v - 1.25).abs() < 1e-6));
    assert_eq!(
        rel(&y, &dropout(x.as_tensor(), 0.2, 11).unwrap()),
        0.0,
        "same seed, same mask"
    );
    assert!(
        rel(&y, &dropout(x.as_tensor(), 0.2, 12).unwrap()) > 0.5,
        "another seed, another mask"
    );
    // d(sum y)/dx is the mask itself: the backward pass regenerates it.
    let grads = y.sum_all().unwrap().backward().unwrap();
    assert_eq!(rel(grads.get(x.as_tensor()).unwrap(), &y), 0.0);
    let inputs = [randn(&[3, 50], DType::F64, 13)];
    against_finite_differences(&inputs, |x| dropout(&x[0], 0.3, 5).unwrap());
    assert!(dropout(x.as_tensor(), 1.0, 1).is_err());
}

#[test]
fn adamw_update_matches_composite_over_several_steps() {
    let n = 40_000;
    let param = randn(&[200, 200], DType::F32, 21);
    let moments = Tensor::zeros((2, n), DType::F32, &Device::Cpu).unwrap();
    let (mut p, mut m, mut v) = (
        param.as_tensor().copy().unwrap(),
        Tensor::zeros((200, 200), DType::F32, &Device::Cpu).unwrap(),
        Tensor::zeros((200, 200), DType::F32, &Device::Cpu).unwrap(),
    );
    for step in 1..=5u64 {
        let g = randn(&[200, 200], DType::F32, 100 + step);
        let s = AdamWStep {
            lr: 1e-2,
            beta1: 0.9,
            beta2: 0.99,
            eps: 1e-8,
            weight_decay: 0.1,
            // All, none, or a leading part that ends inside the first or
            // the second parallel chunk.
            decayed: [n, 15_000, 35_000, 0, n][step as usize - 1],
            step,
            grad_scale: 0.7,
        };
        adamw_update(param.as_tensor(), &moments, g.as_tensor(), &s).unwrap();
        (p, m, v) = composite_adamw(&p, &m, &v, g.as_tensor(), &s);
        let e = rel(param.as_tensor(), &p);
        assert!(e <= 1e-5, "step {step}: parameter relative error {e:.2e}");
        assert!(rel(&moments.get(0).unwrap().reshape((200, 200)).unwrap(), &m) <= 1e-5);
        assert!(rel(&moments.get(1).unwrap().reshape((200, 200)).unwrap(), &v) <= 1e-5);
    }
    let g = randn(&[200, 200], DType::F32, 9);
    let expected = g
        .as_tensor()
        .sqr()
        .unwrap()
        .sum_all()
        .unwrap()
        .to_scalar::<f32>()
        .unwrap() as f64;
    assert!((sum_of_squares(g.as_tensor()).unwrap() - expected).abs() / expected < 1e-5);
}

#[test]
fn rms_norm_matches_composite_and_finite_differences() {
    // 70 rows: parallel tasks of 16 rows, the last one partial.
    let inputs = [
        randn(&[2, 35, 24], DType::F32, 41),
        randn(&[24], DType::F32, 42),
    ];
    against_composite(
        &inputs,
        |x| rms_norm(&x[0], &x[1], 1e-5).unwrap(),
        |x| composite_rms_norm(&x[0], &x[1], 1e-5),
    );
    let inputs = [
        randn(&[3, 5, 8], DType::F64, 43),
        randn(&[8], DType::F64, 44),
    ];
    against_finite_differences(&inputs, |x| rms_norm(&x[0], &x[1], 1e-5).unwrap());
    let err = rms_norm(
        inputs[0].as_tensor(),
        &Tensor::ones(7, DType::F64, &Device::Cpu).unwrap(),
        1e-5,
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("must be [8]"), "{err}");
}

#[test]
fn token_log_probs_match_composite_and_finite_differences() {
    let targets = Tensor::new(&[[3u32, 0, 64], [17, 17, 5]], &Device::Cpu).unwrap();
    let logits = [randn(&[2, 3, 65], DType::F32, 13)];
    against_composite(
        &logits,
        |x| token_log_probs(&x[0], &targets).unwrap(),
        |x| composite_token_log_probs(&x[0], &targets),
    );
    let logits = [randn(&[2, 3, 65], DType::F64, 14)];
    against_finite_differences(&logits, |x| token_log_probs(&x[0], &targets).unwrap());
    let bad = Tensor::new(&[[0u32, 65, 0], [0, 0, 0]], &Device::Cpu).unwrap();
    let err = token_log_probs(logits[0].as_tensor(), &bad)
        .unwrap_err()
        .to_string();
    assert!(err.contains("target 65"), "{err}");
}

#[test]
fn a_token_log_prob_with_zero_gradient_sends_exact_zeros_to_its_logits() {
    let logits = randn(&[2, 3, 65], DType::F32, 15);
    let targets = Tensor::new(&[[3u32, 0, 64], [17, 17, 5]], &Device::Cpu).unwrap();
    let mask = Tensor::new(&[[1f32, 0.0, 1.0], [0.0, 1.0, 1.0]], &Device::Cpu).unwrap();
    let log_probs = token_log_probs(logits.as_tensor(), &targets).unwrap();
    let grads = (log_probs * &mask)
        .unwrap()
        .sum_all()
        .unwrap()
        .backward()
        .unwrap();
    let g: Vec<Vec<Vec<f32>>> = grads.get(logits.as_tensor()).unwrap().to_vec3().unwrap();
    for (row, masked) in [(0, 1), (1, 0)] {
        assert!(
            g[row][masked].iter().all(|v| v.to_bits() == 0),
            "row {row}, {masked}"
        );
    }
    assert!(g[0][0].iter().any(|&v| v != 0.0));
}

#[test]
fn rope_matches_composite_and_finite_differences() {
    // 35 positions × 2 items: parallel tasks of 16 rows cross items.
    let x = [randn(&[2, 35, 3 * 8], DType::F32, 51)];
    against_composite(
        &x,
        |x| rope(&x[0], 8, 10000.0).unwrap(),
        |x| composite_rope_rows(&x[0], 8, 10000.0),
    );
    let x = [randn(&[2, 5, 2 * 6], DType::F64, 52)];
    against_finite_differences(&x, |x| rope(&x[0], 6, 500.0).unwrap());
    let err = rope(x[0].as_tensor(), 5, 1e4).unwrap_err().to_string();
    assert!(err.contains("even width 5"), "{err}");
}

#[test]
fn swiglu_matches_composite_and_finite_differences() {
    let x = [randn(&[2, 35, 2 * 12], DType::F32, 53)];
    against_composite(&x, |x| swiglu(&x[0]).unwrap(), |x| composite_swiglu(&x[0]));
    let x = [randn(&[3, 2 * 7], DType::F64, 54)];
    against_finite_differences(&x, |x| swiglu(&x[0]).unwrap());
    let err = swiglu(&randn(&[2, 5], DType::F32, 1).as_tensor().clone())
        .unwrap_err()
        .to_string();
    assert!(err.contains("two equal halves"), "{err}");
}

#[test]
fn grouped_attention_matches_repeat_kv_and_finite_differences() {
    // 70 positions: two query tiles; 2 and 4 query heads per KV head, and
    // one KV head per query head (plain multi-head attention).
    for (h, kv) in [(4, 2), (4, 1), (2, 2)] {
        let qkv = [randn(&[2, 70, (h + 2 * kv) * 8], DType::F32, 55)];
        against_composite(
            &qkv,
            |x| grouped_attention(&x[0], h, kv).unwrap(),
            |x| composite_grouped_attention(&x[0], h, kv),
        );
    }
    let qkv = [randn(&[2, 6, (4 + 2 * 2) * 4], DType::F64, 56)];
    against_finite_differences(&qkv, |x| grouped_attention(&x[0], 4, 2).unwrap());
    // Multi-head grouped attention is the fused attention, bit for bit.
    let qkv = randn(&[2, 9, 3 * 16], DType::F32, 57);
    let a = grouped_attention(qkv.as_tensor(), 4, 4).unwrap();
    let b = attention(qkv.as_tensor(), spec(4, true, 0.0)).unwrap();
    assert_eq!(rel(&a, &b), 0.0);
    let err = grouped_attention(qkv.as_tensor(), 4, 3)
        .unwrap_err()
        .to_string();
    assert!(err.contains("4 query and 2 × 3"), "{err}");
}

fn llama_spec(n_head: usize, n_kv_head: usize, head_dim: usize, n_ff: usize) -> LlamaBlockSpec {
    LlamaBlockSpec {
        n_head,
        n_kv_head,
        head_dim,
        n_ff,
        eps: 1e-5,
        rope_theta: 10000.0,
    }
}

fn llama_shape(s: LlamaBlockSpec) -> LlamaShape {
    LlamaShape {
        n_head: s.n_head,
        n_kv_head: s.n_kv_head,
        head_dim: s.head_dim,
        n_ff: s.n_ff,
        eps: s.eps,
        theta: s.rope_theta,
    }
}

/// Random inputs for a Llama layer `c` wide: x, and the flat parameters
/// (matrices N(0, 0.2²)... scaled by 1/√fan-in, norm weights near one).
fn llama_inputs(
    spec: LlamaBlockSpec,
    b: usize,
    t: usize,
    c: usize,
    dtype: DType,
    seed: u64,
) -> [Var; 2] {
    let x = randn(&[b, t, c], dtype, seed);
    let sizes = llama_block_sizes(c, &spec);
    let fan_in = [c, c, c, spec.n_head * spec.head_dim, c, c, spec.n_ff];
    let mut parts = Vec::new();
    for (i, &n) in sizes.iter().enumerate() {
        let (scale, shift) = match fan_in.get(i) {
            Some(&f) => (1.0 / (f as f64).sqrt(), 0.0),
            None => (0.1, 1.0),
        };
        parts.push(
            randn(&[n], dtype, seed + 1 + i as u64)
                .as_tensor()
                .affine(scale, shift)
                .unwrap(),
        );
    }
    let params = Var::from_tensor(&Tensor::cat(&parts, 0).unwrap()).unwrap();
    [x, params]
}

#[test]
fn llama_block_matches_transformers_layer_composed_of_candle_ops() {
    // 70 positions: two attention tiles; grouped (2 query heads per KV
    // head), multi-head, one KV head, and heads wider than dim / n_head.
    for (spec, c) in [
        (llama_spec(4, 2, 8, 48), 32),
        (llama_spec(4, 4, 8, 40), 32),
        (llama_spec(4, 1, 8, 40), 32),
        (llama_spec(4, 2, 12, 40), 24),
    ] {
        let inputs = llama_inputs(spec, 2, 70, c, DType::F32, 5);
        against_composite(
            &inputs,
            |x| llama_block(&x[0], &x[1], spec).unwrap(),
            |x| composite_llama_block(&x[0], &x[1], llama_shape(spec)),
        );
    }
}

#[test]
fn llama_block_gradients_match_finite_differences() {
    for (spec, c) in [(llama_spec(4, 2, 4, 12), 8), (llama_spec(2, 1, 6, 10), 8)] {
        let inputs = llama_inputs(spec, 2, 5, c, DType::F64, 21);
        against_finite_differences(&inputs, |x| llama_block(&x[0], &x[1], spec).unwrap());
    }
}

#[test]
fn llama_block_refuses_parameters_or_heads_that_do_not_fit() {
    let spec = llama_spec(4, 2, 8, 48);
    let [x, params] = llama_inputs(spec, 1, 3, 32, DType::F32, 1);
    let short = params
        .as_tensor()
        .narrow(0, 1, params.elem_count() - 1)
        .unwrap();
    let err = llama_block(x.as_tensor(), &short, spec)
        .unwrap_err()
        .to_string();
    assert!(err.contains("parameters"), "{err}");
    let err = llama_block(x.as_tensor(), params.as_tensor(), llama_spec(4, 3, 8, 48))
        .unwrap_err()
        .to_string();
    assert!(err.contains("cannot share 3"), "{err}");
}
