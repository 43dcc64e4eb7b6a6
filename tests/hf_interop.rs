//! Hugging Face GPT-2 checkpoints in seer: a random GPT2LMHeadModel saved by
//! transformers' save_pretrained, with a vocab.json + merges.txt tokenizer
//! (tests/fixtures/hf_gpt2, made by scripts/reference/hf_gpt2_parity.py).
//! seer's tokens, logits and greedy continuation must match transformers'.

mod common;

use candle_core::{DType, Device, Tensor};
use common::relative_error;
use seer::generate::{generate, GenerateOptions, Sampler, SamplingParams};
use seer::model::Gpt;
use seer::nn::{load_tensors, Mode};
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
    };
    let err = generate(&model, &big, "hi", &options, &mut sampler, |_| {})
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("does not belong to this model"), "{err}");
}
