//! Hugging Face GPT-2 checkpoints in seer: a random GPT2LMHeadModel saved by
//! transformers' save_pretrained, with a vocab.json + merges.txt tokenizer
//! (tests/fixtures/hf_gpt2, made by scripts/reference/hf_gpt2_parity.py).
//! seer's tokens, logits and greedy continuation must match transformers'.

mod common;

use candle_core::{DType, Device, Tensor};
use common::relative_error;
use seer::generate::{generate, GenerateOptions, Sampler, SamplingParams};
use seer::model::Gpt;
use seer::nn::{load_tensors, Mode, Precision};
use seer::tokenize::Tokenizer;
use std::path::{Path, PathBuf};

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/hf_gpt2")
}

fn ids(t: &Tensor) -> Vec<u32> {
    t.to_dtype(DType::U32).unwrap().to_vec1().unwrap()
}

#[test]
fn tokens_logits_and_greedy_continuation_match_transformers() {
    let expected = load_tensors(&dir().join("expected.safetensors"), &Device::Cpu)
        .unwrap()
        .0;
    let model = Gpt::load(&dir(), DType::F32, &Device::Cpu).unwrap();
    let tokenizer = Tokenizer::load_model_dir(&dir()).unwrap();
    let prompts_text = std::fs::read_to_string(dir().join("prompts.txt")).unwrap();
    let prompts: Vec<&str> = prompts_text.split("\n---\n").collect();
    assert_eq!(prompts.len(), 3);
    for (i, prompt) in prompts.iter().enumerate() {
        let want = ids(&expected[&format!("ids.{i}")]);
        assert_eq!(
            tokenizer.encode(prompt).unwrap(),
            want,
            "tokens of {prompt:?}"
        );
        let input = Tensor::new(want.as_slice(), &Device::Cpu)
            .unwrap()
            .unsqueeze(0)
            .unwrap();
        let logits = model
            .forward(&input, &mut Mode::Eval)
            .unwrap()
            .squeeze(0)
            .unwrap();
        let e = relative_error(&logits, &expected[&format!("logits.{i}")]);
        assert!(e <= 1e-4, "logits of {prompt:?}: relative error {e:.2e}");
    }
    let greedy = ids(&expected["greedy"]);
    let prompt_len = ids(&expected["ids.0"]).len();
    let mut sampler = Sampler::new(SamplingParams {
        temperature: 0.0,
        ..Default::default()
    })
    .unwrap();
    let options = GenerateOptions {
        max_tokens: greedy.len() - prompt_len,
        stop: Vec::new(),
        ..Default::default()
    };
    let generation = generate(
        &model,
        &tokenizer,
        prompts[0],
        &options,
        &mut sampler,
        |_| {},
    )
    .unwrap();
    assert_eq!(generation.ids, greedy[prompt_len..].to_vec());
}

#[test]
fn unsupported_configs_and_pickles_are_refused_by_name() {
    let tmp = tempfile::tempdir().unwrap();
    let config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir().join("config.json")).unwrap()).unwrap();
    let cases = [
        ("activation_function", serde_json::json!("relu")),
        ("n_inner", serde_json::json!(100)),
        ("add_cross_attention", serde_json::json!(true)),
        ("model_type", serde_json::json!("llama")),
    ];
    for (field, value) in cases {
        let mut c = config.clone();
        c[field] = value;
        std::fs::write(tmp.path().join("config.json"), c.to_string()).unwrap();
        std::fs::copy(
            dir().join("model.safetensors"),
            tmp.path().join("model.safetensors"),
        )
        .unwrap();
        let err = Gpt::load(tmp.path(), DType::F32, &Device::Cpu)
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains(field), "{field}: {err}");
    }
    let pickle = tempfile::tempdir().unwrap();
    std::fs::copy(dir().join("config.json"), pickle.path().join("config.json")).unwrap();
    std::fs::write(pickle.path().join("pytorch_model.bin"), b"not read").unwrap();
    let err = Gpt::load(pickle.path(), DType::F32, &Device::Cpu)
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains("pytorch_model.bin") && err.contains("safe_serialization"),
        "{err}"
    );
    let err = Tokenizer::load_model_dir(pickle.path())
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("vocab.json"), "{err}");

    // A hub name where a folder is expected, a missing config, a wrong shape.
    let err = Gpt::load(Path::new("gpt2"), DType::F32, &Device::Cpu)
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains("gpt2") && err.contains("huggingface-cli download"),
        "{err}"
    );
    let missing = tempfile::tempdir().unwrap();
    std::fs::copy(
        dir().join("model.safetensors"),
        missing.path().join("model.safetensors"),
    )
    .unwrap();
    let err = Gpt::load(missing.path(), DType::F32, &Device::Cpu)
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("config.json"), "{err}");
    let mut c = config.clone();
    c["n_embd"] = serde_json::json!(60);
    std::fs::write(missing.path().join("config.json"), c.to_string()).unwrap();
    let err = Gpt::load(missing.path(), DType::F32, &Device::Cpu)
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains("model.safetensors") && err.contains("shape"),
        "{err}"
    );
}

#[test]
fn a_tokenizer_larger_than_the_model_is_refused() {
    let model = Gpt::load(&dir(), DType::F32, &Device::Cpu).unwrap();
    let corpus = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("data/tinyshakespeare.txt"),
    )
    .unwrap();
    let big = seer::tokenize::train_bpe(&[corpus[..50_000].to_string()], 400).unwrap();
    assert!(
        big.vocab_size() > model.config().vocab_size,
        "{}",
        big.vocab_size()
    );
    let mut sampler = Sampler::new(SamplingParams::default()).unwrap();
    let options = GenerateOptions {
        max_tokens: 3,
        stop: Vec::new(),
        ..Default::default()
    };
    let err = generate(&model, &big, "hi", &options, &mut sampler, |_| {})
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("does not belong to this model"), "{err}");
}

#[test]
fn bf16_matrices_compute_with_the_rounded_weights() {
    let precision = Precision {
        activations: DType::F32,
        matrices: DType::BF16,
    };
    let narrow = Gpt::load(&dir(), precision, &Device::Cpu).unwrap();
    let matrices: Vec<String> = narrow
        .params()
        .named()
        .unwrap()
        .into_iter()
        .filter(|(_, p)| p.dtype() == DType::BF16)
        .map(|(name, _)| name)
        .collect();
    // Every block's four matrices and the tied token embedding.
    let layers = narrow.config().n_layer;
    assert_eq!(matrices.len(), 4 * layers + 1, "{matrices:?}");
    // The reference: the f32 checkpoint with those matrices rounded to bf16.
    let (tensors, _) = load_tensors(&dir().join("model.safetensors"), &Device::Cpu).unwrap();
    let rounded: Vec<(String, Tensor)> = tensors
        .into_iter()
        .map(|(name, t)| {
            let full = if name.starts_with("transformer.") {
                name.clone()
            } else {
                format!("transformer.{name}")
            };
            let t = if matrices.contains(&full) {
                t.to_dtype(DType::BF16)
                    .unwrap()
                    .to_dtype(DType::F32)
                    .unwrap()
            } else {
                t
            };
            (name, t)
        })
        .collect();
    let tmp = tempfile::tempdir().unwrap();
    std::fs::copy(dir().join("config.json"), tmp.path().join("config.json")).unwrap();
    seer::nn::save_tensors(
        &rounded,
        &tmp.path().join("model.safetensors"),
        &Default::default(),
    )
    .unwrap();
    let reference = Gpt::load(tmp.path(), DType::F32, &Device::Cpu).unwrap();
    let full = Gpt::load(&dir(), DType::F32, &Device::Cpu).unwrap();
    let expected = load_tensors(&dir().join("expected.safetensors"), &Device::Cpu)
        .unwrap()
        .0;
    let tokens = ids(&expected["ids.0"]);
    let (mut narrow_cache, mut reference_cache) = (narrow.new_cache(), reference.new_cache());
    for (t, &token) in tokens.iter().enumerate() {
        let input = Tensor::new(&[token], &Device::Cpu)
            .unwrap()
            .unsqueeze(0)
            .unwrap();
        let a = narrow.forward_cached(&input, &mut narrow_cache).unwrap();
        let b = reference
            .forward_cached(&input, &mut reference_cache)
            .unwrap();
        let e = relative_error(&a, &b);
        assert!(e <= 1e-5, "step {t}: relative error {e:.2e}");
    }
    // The whole prompt at once (the packed product) agrees too, and stays
    // near the f32 model's logits.
    let input = Tensor::new(tokens.as_slice(), &Device::Cpu)
        .unwrap()
        .unsqueeze(0)
        .unwrap();
    let a = narrow.forward(&input, &mut Mode::Eval).unwrap();
    let b = reference.forward(&input, &mut Mode::Eval).unwrap();
    let e = relative_error(&a, &b);
    assert!(e <= 1e-5, "prompt: relative error {e:.2e}");
    let c = full.forward(&input, &mut Mode::Eval).unwrap();
    let e = relative_error(&a, &c);
    assert!(e <= 2e-2, "against f32: relative error {e:.2e}");
}
