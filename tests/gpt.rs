//! The GPT: gradients against finite differences, every parameter trained,
//! causality, the loss at initialisation, and fitting one batch.

mod common;

use candle_core::{DType, Device, Tensor};
use common::central_difference;
use rand::{Rng, SeedableRng};
use seer::model::{Gpt, GptConfig};
use seer::nn::Mode;
use seer::train::{train_step, AdamW, TrainConfig};

fn tiny(vocab_size: usize) -> GptConfig {
    GptConfig {
        vocab_size,
        block_size: 8,
        n_layer: 2,
        n_head: 2,
        n_embd: 8,
        dropout: 0.0,
        bias: true,
    }
}

fn random_ids(rng: &mut impl Rng, b: usize, t: usize, vocab: usize) -> Tensor {
    let ids: Vec<u32> = (0..b * t)
        .map(|_| rng.random_range(0..vocab as u32))
        .collect();
    Tensor::from_vec(ids, (b, t), &Device::Cpu).unwrap()
}

fn loss(model: &Gpt, x: &Tensor, y: &Tensor) -> Tensor {
    Gpt::loss(&model.forward(x, &mut Mode::Eval).unwrap(), y).unwrap()
}

#[test]
fn gradients_match_central_finite_differences_in_f64() {
    let config = tiny(11);
    let model = Gpt::new(&config, 3, DType::F64, &Device::Cpu).unwrap();
    let mut rng = rand::rngs::StdRng::seed_from_u64(0);
    let (x, y) = (
        random_ids(&mut rng, 2, 6, 11),
        random_ids(&mut rng, 2, 6, 11),
    );
    // Give the zero-initialised biases and unit LayerNorm weights generic values,
    // so that every term of every gradient is exercised.
    for (_, var) in model.params().iter() {
        let noise = Tensor::randn(0f64, 0.1, var.shape(), &Device::Cpu).unwrap();
        var.set(&(var.as_tensor() + noise).unwrap()).unwrap();
    }
    let grads = loss(&model, &x, &y).backward().unwrap();
    let eps = 1e-5;
    let mut checked = 0;
    for (pack, var) in model.params().iter() {
        let analytic: Vec<f64> = grads
            .get(var.as_tensor())
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap();
        let original: Vec<f64> = var.as_tensor().flatten_all().unwrap().to_vec1().unwrap();
        // Up to 12 elements of every named parameter in the tensor.
        for member in model.params().members(pack) {
            let n = member.shape.elem_count();
            let picks: Vec<usize> = if n <= 12 {
                (0..n).collect()
            } else {
                (0..12).map(|_| rng.random_range(0..n)).collect()
            };
            for i in picks.into_iter().map(|i| member.offset + i) {
                let numeric = central_difference(var, &original, i, eps, || {
                    loss(&model, &x, &y).to_scalar::<f64>().unwrap()
                });
                let error =
                    (analytic[i] - numeric).abs() / (analytic[i].abs() + numeric.abs()).max(1e-6);
                assert!(
                    error < 1e-4,
                    "{}[{}]: analytic {} numeric {numeric} (relative error {error:.2e})",
                    member.name,
                    i - member.offset,
                    analytic[i]
                );
                checked += 1;
            }
        }
        var.set(&Tensor::from_vec(original, var.shape(), &Device::Cpu).unwrap())
            .unwrap();
    }
    assert_eq!(model.params().named().unwrap().len(), 2 + 2 * 12 + 2);
    assert!(checked > 200);
}

#[test]
fn every_parameter_tensor_receives_a_nonzero_gradient() {
    let config = tiny(13);
    let model = Gpt::new(&config, 5, DType::F32, &Device::Cpu).unwrap();
    let mut rng = rand::rngs::StdRng::seed_from_u64(1);
    let (x, y) = (
        random_ids(&mut rng, 3, 8, 13),
        random_ids(&mut rng, 3, 8, 13),
    );
    let grads = loss(&model, &x, &y).backward().unwrap();
    let named = model.params().named_grads(&grads).unwrap();
    assert_eq!(named.len(), model.params().named().unwrap().len());
    for (name, g) in &named {
        let norm = g
            .sqr()
            .unwrap()
            .sum_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        assert!(norm > 0.0, "{name} has an all-zero gradient");
    }
    let names: Vec<&String> = named.iter().map(|(n, _)| n).collect();
    for expected in [
        "transformer.wte.weight",
        "transformer.wpe.weight",
        "transformer.h.0.attn.c_attn.weight",
        "transformer.h.1.mlp.c_proj.bias",
        "transformer.h.0.ln_1.bias",
        "transformer.ln_f.weight",
    ] {
        assert!(names.iter().any(|n| *n == expected), "missing {expected}");
    }
}

#[test]
fn later_tokens_do_not_change_earlier_logits() {
    let config = tiny(17);
    let model = Gpt::new(&config, 9, DType::F32, &Device::Cpu).unwrap();
    let a: Vec<u32> = vec![1, 5, 9, 2, 16, 3, 7, 0];
    for t in 0..7 {
        let mut b = a.clone();
        for (j, id) in b.iter_mut().enumerate().skip(t + 1) {
            *id = (*id + 1 + j as u32) % 17;
        }
        let logits = |ids: &[u32]| -> Vec<f32> {
            let x = Tensor::new(ids, &Device::Cpu)
                .unwrap()
                .unsqueeze(0)
                .unwrap();
            let l = model.forward(&x, &mut Mode::Eval).unwrap();
            l.narrow(1, 0, t + 1)
                .unwrap()
                .flatten_all()
                .unwrap()
                .to_vec1()
                .unwrap()
        };
        assert_eq!(logits(&a), logits(&b), "logits at positions <= {t} changed");
        let full = |ids: &[u32]| -> Vec<f32> {
            let x = Tensor::new(ids, &Device::Cpu)
                .unwrap()
                .unsqueeze(0)
                .unwrap();
            model
                .forward(&x, &mut Mode::Eval)
                .unwrap()
                .flatten_all()
                .unwrap()
                .to_vec1()
                .unwrap()
        };
        assert_ne!(
            full(&a),
            full(&b),
            "changing later tokens must change later logits"
        );
    }
}

#[test]
fn loss_at_initialisation_is_about_ln_vocab() {
    let config = GptConfig {
        vocab_size: 65,
        block_size: 32,
        n_layer: 2,
        n_head: 4,
        n_embd: 64,
        dropout: 0.0,
        bias: true,
    };
    let model = Gpt::new(&config, 1, DType::F32, &Device::Cpu).unwrap();
    let mut rng = rand::rngs::StdRng::seed_from_u64(2);
    let (x, y) = (
        random_ids(&mut rng, 8, 32, 65),
        random_ids(&mut rng, 8, 32, 65),
    );
    let l = loss(&model, &x, &y).to_scalar::<f32>().unwrap() as f64;
    assert!(
        (l - 65f64.ln()).abs() < 0.05,
        "initial loss {l}, ln 65 = {}",
        65f64.ln()
    );
}

#[test]
fn a_tiny_model_overfits_one_batch() {
    let mut train = TrainConfig::preset("tiny").unwrap();
    train.lr = 3e-3;
    train.min_lr = 3e-3;
    train.warmup_iters = 0;
    train.weight_decay = 0.0;
    let model = Gpt::new(&train.model(23), 4, DType::F32, &Device::Cpu).unwrap();
    let mut optimizer =
        AdamW::new(model.params(), train.beta1, train.beta2, train.weight_decay).unwrap();
    let mut rng = rand::rngs::StdRng::seed_from_u64(3);
    let batch = vec![(
        random_ids(&mut rng, 4, 32, 23),
        random_ids(&mut rng, 4, 32, 23),
    )];
    let mut first = None;
    let mut last = f64::NAN;
    for step in 0..300 {
        let loss = train_step(&model, &mut optimizer, &train, step, &batch)
            .unwrap()
            .loss;
        first.get_or_insert(loss);
        last = loss;
    }
    assert!(first.unwrap() > 3.0);
    assert!(last < 0.05, "loss after 300 steps on one batch: {last}");
}

#[test]
fn gradient_accumulation_equals_one_large_batch() {
    let train = TrainConfig {
        weight_decay: 0.1,
        ..TrainConfig::preset("tiny").unwrap()
    };
    let mut rng = rand::rngs::StdRng::seed_from_u64(8);
    let (x, y) = (
        random_ids(&mut rng, 4, 16, 19),
        random_ids(&mut rng, 4, 16, 19),
    );
    let halves = |t: &Tensor| (t.narrow(0, 0, 2).unwrap(), t.narrow(0, 2, 2).unwrap());
    let ((x1, x2), (y1, y2)) = (halves(&x), halves(&y));
    let run = |batches: &[(Tensor, Tensor)]| {
        let model = Gpt::new(&train.model(19), 6, DType::F32, &Device::Cpu).unwrap();
        let mut optimizer =
            AdamW::new(model.params(), train.beta1, train.beta2, train.weight_decay).unwrap();
        let report = train_step(&model, &mut optimizer, &train, 0, batches).unwrap();
        let (loss, norm) = (report.loss, report.grad_norm);
        let named = model.params().named().unwrap();
        let weights: Vec<f32> = named
            .iter()
            .find(|(name, _)| name == "transformer.h.0.attn.c_attn.weight")
            .map(|(_, t)| t)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap();
        (loss, norm, weights)
    };
    let (loss_a, norm_a, w_a) = run(&[(x, y)]);
    let (loss_b, norm_b, w_b) = run(&[(x1, y1), (x2, y2)]);
    assert!((loss_a - loss_b).abs() < 1e-5, "{loss_a} vs {loss_b}");
    assert!(
        (norm_a - norm_b).abs() / norm_a < 1e-4,
        "{norm_a} vs {norm_b}"
    );
    let diff = w_a
        .iter()
        .zip(&w_b)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f32::max);
    assert!(diff < 1e-6, "updated weights differ by {diff}");
}
