//! The KV cache: logits from feeding one token at a time against a cache
//! equal those of the full forward pass over the whole context.

mod common;

use candle_core::{DType, Device, Tensor};
use common::relative_error;
use rand::{Rng, SeedableRng};
use seer::model::{Gpt, GptConfig};
use seer::nn::Mode;

#[test]
fn cached_and_uncached_logits_agree_over_a_long_generation() {
    let config = GptConfig {
        vocab_size: 50,
        block_size: 96,
        n_layer: 3,
        n_head: 4,
        n_embd: 32,
        dropout: 0.0,
        bias: true,
    };
    let model = Gpt::new(&config, 17, DType::F32, &Device::Cpu).unwrap();
    let mut rng = rand::rngs::StdRng::seed_from_u64(3);
    let tokens: Vec<u32> = (0..90).map(|_| rng.random_range(0..50)).collect();
    let ids = |range: std::ops::Range<usize>| {
        Tensor::new(&tokens[range], &Device::Cpu)
            .unwrap()
            .unsqueeze(0)
            .unwrap()
    };
    let full = model.forward(&ids(0..90), &mut Mode::Eval).unwrap();

    // A 20-token prompt in one call, then one token per step.
    let mut cache = model.new_cache();
    let prompt = model.forward_cached(&ids(0..20), &mut cache).unwrap();
    let e = relative_error(&prompt, &full.narrow(1, 0, 20).unwrap());
    assert!(e <= 1e-5, "prompt logits: relative error {e:.2e}");
    let mut worst: f64 = 0.0;
    for t in 20..90 {
        let step = model.forward_cached(&ids(t..t + 1), &mut cache).unwrap();
        worst = worst.max(relative_error(&step, &full.narrow(1, t, 1).unwrap()));
    }
    assert!(
        worst <= 1e-5,
        "per-step logits: worst relative error {worst:.2e}"
    );
    assert_eq!(cache.len(), 90);

    // The cache refuses to pass the context.
    let err = model
        .forward_cached(&ids(0..7), &mut cache)
        .unwrap_err()
        .to_string();
    assert!(err.contains("context of 96"), "{err}");
}

#[test]
fn a_batched_step_equals_each_sequence_stepped_alone() {
    let config = GptConfig {
        vocab_size: 50,
        block_size: 64,
        n_layer: 2,
        n_head: 4,
        n_embd: 32,
        dropout: 0.0,
        bias: true,
    };
    let model = Gpt::new(&config, 5, DType::F32, &Device::Cpu).unwrap();
    let mut rng = rand::rngs::StdRng::seed_from_u64(9);
    // Three sequences at different positions: prompts of 3, 11 and 24 tokens.
    let mut caches: Vec<_> = [3usize, 11, 24]
        .iter()
        .map(|&n| {
            let prompt: Vec<u32> = (0..n).map(|_| rng.random_range(0..50)).collect();
            let mut cache = model.new_cache();
            let input = Tensor::new(prompt.as_slice(), &Device::Cpu)
                .unwrap()
                .unsqueeze(0)
                .unwrap();
            model.forward_cached(&input, &mut cache).unwrap();
            cache
        })
        .collect();
    for _ in 0..5 {
        let next: Vec<u32> = (0..3).map(|_| rng.random_range(0..50)).collect();
        let mut alone = caches.clone();
        let expected: Vec<Tensor> = next
            .iter()
            .zip(alone.iter_mut())
            .map(|(&id, cache)| {
                let input = Tensor::new(&[id], &Device::Cpu)
                    .unwrap()
                    .unsqueeze(0)
                    .unwrap();
                model
                    .forward_cached(&input, cache)
                    .unwrap()
                    .squeeze(0)
                    .unwrap()
            })
            .collect();
        let mut refs: Vec<&mut _> = caches.iter_mut().collect();
        let batched = model.forward_cached_batch(&next, &mut refs).unwrap();
        let e = relative_error(&batched, &Tensor::cat(&expected, 0).unwrap());
        assert!(e <= 1e-5, "batched logits: relative error {e:.2e}");
        for (a, b) in caches.iter().zip(&alone) {
            assert_eq!(a.len(), b.len());
        }
    }
}
