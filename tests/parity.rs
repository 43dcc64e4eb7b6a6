//! Parity with PyTorch: transformers' GPT2LMHeadModel loaded the tiny model
//! that seer trained and saved (tests/fixtures/gpt_tiny), and recorded logits,
//! loss, gradients and 10 AdamW steps (scripts/reference/gpt_parity.py).
//! seer must agree to a relative error of 1e-4.

mod common;

use candle_core::{DType, Device, Tensor};
use common::relative_error;
use seer::model::Gpt;
use seer::nn::{load_tensors, Mode};
use seer::train::{learning_rate, train_step, AdamW, TrainConfig};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/gpt_tiny")
}

fn expected() -> HashMap<String, Tensor> {
    load_tensors(&fixture_dir().join("expected.safetensors"), &Device::Cpu)
        .unwrap()
        .0
}

fn batch(expected: &HashMap<String, Tensor>) -> (Tensor, Tensor) {
    let ids = expected["ids"].to_dtype(DType::U32).unwrap();
    let targets = expected["targets"].to_dtype(DType::U32).unwrap();
    (ids, targets)
}

#[test]
fn logits_loss_and_gradients_match_pytorch() {
    let expected = expected();
    let model = Gpt::load(&fixture_dir(), DType::F32, &Device::Cpu).unwrap();
    let (ids, targets) = batch(&expected);
    let logits = model.forward(&ids, &mut Mode::Eval).unwrap();
    let e = relative_error(&logits, &expected["logits"]);
    assert!(e <= 1e-4, "logits relative error {e:.2e}");
    let loss = Gpt::loss(&logits, &targets).unwrap();
    let e = relative_error(&loss.reshape(1).unwrap(), &expected["loss"]);
    assert!(e <= 1e-4, "loss relative error {e:.2e}");
    let grads = loss.backward().unwrap();
    let mut compared = 0;
    for (name, grad) in model.params().named_grads(&grads).unwrap() {
        let reference = &expected[&format!("grad.{name}")];
        let e = relative_error(&grad, reference);
        assert!(e <= 1e-4, "gradient of {name}: relative error {e:.2e}");
        compared += 1;
    }
    assert_eq!(
        compared,
        expected.keys().filter(|k| k.starts_with("grad.")).count()
    );
}

#[test]
fn ten_adamw_steps_match_pytorch() {
    let expected = expected();
    let model = Gpt::load(&fixture_dir(), DType::F32, &Device::Cpu).unwrap();
    let config = TrainConfig {
        lr: 1e-2,
        min_lr: 1e-3,
        warmup_iters: 3,
        lr_decay_iters: 10,
        grad_clip: 1.0,
        beta1: 0.9,
        beta2: 0.99,
        weight_decay: 0.1,
        ..TrainConfig::preset("tiny").unwrap()
    };
    assert!(
        learning_rate(&config, 0) < learning_rate(&config, 2),
        "the schedule warms up"
    );
    let mut optimizer = AdamW::new(
        model.params(),
        config.beta1,
        config.beta2,
        config.weight_decay,
    )
    .unwrap();
    let batch = vec![batch(&expected)];
    let reference: Vec<f64> = expected["adamw_losses"].to_vec1().unwrap();
    let reference_norms: Vec<f64> = expected["adamw_grad_norms"].to_vec1().unwrap();
    for step in 0..10u64 {
        let report = train_step(&model, &mut optimizer, &config, step, &batch).unwrap();
        let (loss, norm) = (report.loss, report.grad_norm);
        let (want, want_norm) = (reference[step as usize], reference_norms[step as usize]);
        assert!(
            (loss - want).abs() / want.abs() <= 1e-4,
            "step {step}: loss {loss} vs PyTorch {want}"
        );
        assert!(
            (norm - want_norm).abs() / want_norm <= 1e-4,
            "step {step}: grad norm {norm} vs PyTorch {want_norm}"
        );
    }
    assert!(
        reference[9] < reference[0] - 1.0,
        "the reference run must learn"
    );
}
