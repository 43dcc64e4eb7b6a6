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
