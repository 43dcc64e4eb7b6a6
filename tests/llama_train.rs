//! Training the Llama family: seer's trainable Llama against transformers'
//! `LlamaForCausalLM` (eager, f32) on tiny random models with grouped-query
//! attention (tests/fixtures/llama_train, made by
//! scripts/reference/llama_train_parity.py): logits, the masked loss, every
//! gradient and the parameters after 5 AdamW steps, each within 1e-4
//! relative. Then the loss mask, loading from GGUF, and saving back to a
//! Hugging Face folder that transformers loads.

mod common;

use candle_core::{DType, Device, Tensor};
use common::relative_error;
use seer::model::TrainableLlama;
use seer::nn::load_tensors;
use seer::train::AdamW;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// The fixture's batch: tokens and targets (u32 `[B, T]`) and the loss mask.
struct Batch {
    tokens: Tensor,
    targets: Tensor,
    mask: Tensor,
}

fn expected(kind: &str) -> (HashMap<String, Tensor>, Batch) {
    let path = fixture("llama_train")
        .join(kind)
        .join("expected.safetensors");
    let (tensors, _) = load_tensors(&path, &Device::Cpu).unwrap();
    let ids = |name: &str| tensors[name].to_dtype(DType::U32).unwrap();
    let batch = Batch {
        tokens: ids("tokens"),
        targets: ids("targets"),
        mask: tensors["mask"].clone(),
    };
    (tensors, batch)
}

fn loss_of(model: &TrainableLlama, batch: &Batch) -> Tensor {
    let logits = model.forward(&batch.tokens).unwrap();
    TrainableLlama::masked_loss(&logits, &batch.targets, &batch.mask).unwrap()
}

/// The largest relative error over `named` tensors against `expected`'s
/// `prefix.NAME`, which must hold exactly those names.
fn worst_error(
    named: &[(String, Tensor)],
    expected: &HashMap<String, Tensor>,
    prefix: &str,
) -> (f64, String) {
    let count = expected
        .keys()
        .filter(|k| k.starts_with(&format!("{prefix}.")))
        .count();
    assert_eq!(named.len(), count, "{prefix}: parameter count");
    let mut worst = (0.0, String::new());
    for (name, t) in named {
        let want = expected
            .get(&format!("{prefix}.{name}"))
            .unwrap_or_else(|| panic!("{prefix}.{name} is not in the fixture"));
        let e = relative_error(t, want);
        if e >= worst.0 {
            worst = (e, name.clone());
        }
    }
    worst
}

#[test]
fn gradients_and_five_adamw_steps_match_transformers() {
    for kind in ["untied", "tied"] {
        let (expected, batch) = expected(kind);
        let model = TrainableLlama::open(&fixture("llama_train").join(kind)).unwrap();
        assert_eq!(model.tied(), kind == "tied");
        let logits = model.forward(&batch.tokens).unwrap();
        let e = relative_error(&logits, &expected["logits"]);
        assert!(e <= 1e-4, "{kind}: logits relative error {e:.2e}");
        let loss = TrainableLlama::masked_loss(&logits, &batch.targets, &batch.mask).unwrap();
        let e = relative_error(&loss.reshape(1).unwrap(), &expected["loss"]);
        assert!(e <= 1e-5, "{kind}: loss relative error {e:.2e}");
        let grads = loss.backward().unwrap();
        let named = model.params().named_grads(&grads).unwrap();
        let (e, name) = worst_error(&named, &expected, "grad");
        eprintln!("{kind}: gradients' largest relative error {e:.2e} ({name})");
        assert!(
            e <= 1e-4,
            "{kind}: gradient of {name}: relative error {e:.2e}"
        );

        let mut optimizer = AdamW::new(model.params(), 0.9, 0.95, 0.1).unwrap();
        let mut losses = Vec::new();
        for _ in 0..5 {
            let loss = loss_of(&model, &batch);
            losses.push(loss.to_scalar::<f32>().unwrap());
            optimizer
                .step(&loss.backward().unwrap(), 1e-2, 0.0)
                .unwrap();
        }
        losses.push(loss_of(&model, &batch).to_scalar::<f32>().unwrap());
        let e = relative_error(
            &Tensor::new(losses.as_slice(), &Device::Cpu).unwrap(),
            &expected["losses"],
        );
        assert!(
            e <= 1e-4,
            "{kind}: losses {losses:?}: relative error {e:.2e}"
        );
        let (e, name) = worst_error(&model.params().named().unwrap(), &expected, "step5");
        eprintln!("{kind}: parameters after 5 steps, largest relative error {e:.2e} ({name})");
        assert!(
            e <= 1e-4,
            "{kind}: {name} after 5 steps: relative error {e:.2e}"
        );
    }
}

#[test]
fn a_masked_target_contributes_exactly_zero_gradient() {
    let (_, batch) = expected("untied");
    let model = TrainableLlama::open(&fixture("llama_train/untied")).unwrap();
    let grads_for = |targets: &Tensor| -> (Vec<u32>, Vec<Vec<u32>>) {
        let logits = model.forward(&batch.tokens).unwrap();
        let loss = TrainableLlama::masked_loss(&logits, targets, &batch.mask).unwrap();
        let grads = loss.backward().unwrap();
        let bits = |t: &Tensor| -> Vec<u32> {
            let v: Vec<f32> = t.flatten_all().unwrap().to_vec1().unwrap();
            v.iter().map(|x| x.to_bits()).collect()
        };
        let named = model.params().named_grads(&grads).unwrap();
        (bits(&loss), named.iter().map(|(_, g)| bits(g)).collect())
    };
    let original = grads_for(&batch.targets);
    let mask: Vec<Vec<f32>> = batch.mask.to_vec2().unwrap();
    let targets: Vec<Vec<u32>> = batch.targets.to_vec2().unwrap();
    let changed = |masked: bool| {
        let rows: Vec<Vec<u32>> = targets
            .iter()
            .zip(&mask)
            .map(|(t, m)| {
                t.iter()
                    .zip(m)
                    .map(|(&t, &m)| {
                        if (m == 0.0) == masked {
                            (t + 7) % 64
                        } else {
                            t
                        }
                    })
                    .collect()
            })
            .collect();
        Tensor::new(rows, &Device::Cpu).unwrap()
    };
    // Every masked target changed: the loss and every gradient bit for bit.
    assert_eq!(grads_for(&changed(true)), original);
    // The unmasked targets changed: they do move the gradients (the check
    // above could fail).
    assert_ne!(grads_for(&changed(false)).1, original.1);
}

#[test]
fn sequence_log_probs_sum_the_masked_tokens() {
    let (_, batch) = expected("tied");
    let model = TrainableLlama::open(&fixture("llama_train/tied")).unwrap();
    let logits = model.forward(&batch.tokens).unwrap();
    let sums = TrainableLlama::sequence_log_probs(&logits, &batch.targets, &batch.mask).unwrap();
    let per_token = TrainableLlama::token_log_probs(&logits, &batch.targets).unwrap();
    let per_token: Vec<Vec<f32>> = per_token.to_vec2().unwrap();
    let mask: Vec<Vec<f32>> = batch.mask.to_vec2().unwrap();
    let sums: Vec<f32> = sums.to_vec1().unwrap();
    assert_eq!(sums.len(), 3);
    for (b, sum) in sums.iter().enumerate() {
        let want: f32 = (0..12).map(|t| per_token[b][t] * mask[b][t]).sum();
        assert!(
            (sum - want).abs() <= 1e-5 * want.abs(),
            "{sum} against {want}"
        );
        assert!(*sum < 0.0);
    }
    let loss = TrainableLlama::masked_loss(&logits, &batch.targets, &batch.mask).unwrap();
    let count: f32 = mask.iter().flatten().sum();
    let total: f32 = sums.iter().sum();
    let loss = loss.to_scalar::<f32>().unwrap();
    assert!((loss + total / count).abs() <= 1e-5 * loss, "{loss}");
}

#[test]
fn a_gguf_loads_as_the_same_model_as_its_hugging_face_folder() {
    // tiny-f32.gguf holds hf-llama's weights with q/k permuted for GGML's rope.
    let gguf = TrainableLlama::open(&fixture("llama/tiny-f32.gguf")).unwrap();
    let hf = TrainableLlama::open(&fixture("llama/hf-llama")).unwrap();
    let (a, b) = (gguf.params().named().unwrap(), hf.params().named().unwrap());
    assert_eq!(a.len(), b.len());
    for ((na, ta), (nb, tb)) in a.iter().zip(&b) {
        assert_eq!(na, nb);
        let (va, vb): (Vec<f32>, Vec<f32>) = (
            ta.flatten_all().unwrap().to_vec1().unwrap(),
            tb.flatten_all().unwrap().to_vec1().unwrap(),
        );
        assert!(va == vb, "{na} differs");
    }
    // And the forward pass gives transformers' logits for the file.
    let (expected, _) = load_tensors(&fixture("llama/tiny.safetensors"), &Device::Cpu).unwrap();
    let ids = expected["ids"]
        .to_dtype(DType::U32)
        .unwrap()
        .unsqueeze(0)
        .unwrap();
    let logits = gguf.forward(&ids).unwrap().squeeze(0).unwrap();
    let e = relative_error(&logits, &expected["logits.f32"]);
    assert!(e <= 1e-4, "logits relative error {e:.2e}");
}

#[test]
fn gemma_and_bad_inputs_are_refused_with_one_line() {
    let err = TrainableLlama::open(&fixture("llama/tiny-gemma3-f32.gguf"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("Llama family only"), "{err}");
    let model = TrainableLlama::open(&fixture("llama_train/tied")).unwrap();
    let (_, batch) = expected("tied");
    let bad = Tensor::new(&[[1u32, 64]], &Device::Cpu).unwrap();
    let err = model.forward(&bad).unwrap_err().to_string();
    assert!(
        err.contains("token 64 is outside the vocabulary of 64"),
        "{err}"
    );
    let err = model
        .forward(&bad.flatten_all().unwrap())
        .unwrap_err()
        .to_string();
    assert!(err.contains("[batch, positions]"), "{err}");
    let logits = model.forward(&batch.tokens).unwrap();
    let zeros = batch.mask.zeros_like().unwrap();
    let err = TrainableLlama::masked_loss(&logits, &batch.targets, &zeros)
        .unwrap_err()
        .to_string();
    assert!(err.contains("selects no position"), "{err}");
    let short = batch.mask.narrow(1, 0, 5).unwrap();
    let err = TrainableLlama::masked_loss(&logits, &batch.targets, &short)
        .unwrap_err()
        .to_string();
    assert!(err.contains("loss mask must be f32 [3, 12]"), "{err}");
    assert!(!err.contains('\n'), "{err}");
}

/// A model saved, reloaded: the same parameters bit for bit.
fn assert_round_trip(model: &TrainableLlama, dir: &Path) {
    let reloaded = TrainableLlama::open(dir).unwrap();
    assert_eq!(reloaded.tied(), model.tied());
    let (a, b) = (
        model.params().named().unwrap(),
        reloaded.params().named().unwrap(),
    );
    assert_eq!(a.len(), b.len());
    for ((na, ta), (nb, tb)) in a.iter().zip(&b) {
        assert_eq!(na, nb);
        let diff = (ta - tb).unwrap().abs().unwrap().max_all().unwrap();
        assert_eq!(diff.to_scalar::<f32>().unwrap(), 0.0, "{na}");
    }
}

/// One AdamW step on the fixture batch of `llama_train/untied`, so that the
/// saved weights are not the loaded ones.
fn train_one_step(model: &TrainableLlama) {
    let (_, batch) = expected("untied");
    let mut optimizer = AdamW::new(model.params(), 0.9, 0.95, 0.1).unwrap();
    let loss = loss_of(model, &batch);
    optimizer
        .step(&loss.backward().unwrap(), 1e-2, 0.0)
        .unwrap();
}

/// Runs tests/llama_from_pretrained.py on `dir` (after writing seer's
/// logits for `tokens` there): transformers must load the folder and agree.
/// Returns the ids its tokenizer gives `text`, or `None` when Python, torch
/// or transformers is missing (`PYTHON` names the interpreter; python3 by
/// default).
fn transformers_check(
    model: &TrainableLlama,
    dir: &Path,
    tokens: &Tensor,
    text: &str,
) -> Option<Vec<u32>> {
    let logits = model.forward(tokens).unwrap();
    let tensors = [
        ("tokens".to_string(), tokens.to_dtype(DType::I64).unwrap()),
        ("logits".to_string(), logits),
    ];
    seer::nn::save_tensors(&tensors, &dir.join("seer.safetensors"), &HashMap::new()).unwrap();
    let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/llama_from_pretrained.py");
    let Ok(out) = Command::new(&python)
        .arg(&script)
        .arg(dir)
        .arg(text)
        .output()
    else {
        eprintln!("skipped: {python} does not run");
        return None;
    };
    let stderr = String::from_utf8_lossy(&out.stderr);
    if stderr.contains("No module named 'torch'")
        || stderr.contains("No module named 'transformers'")
    {
        eprintln!("skipped: torch or transformers is missing (PYTHON=/path/to/venv/bin/python)");
        return None;
    }
    assert!(out.status.success(), "{stderr}");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    eprintln!("transformers on the saved folder: {report}");
    let ids = report["ids"].as_array().unwrap();
    Some(ids.iter().map(|v| v.as_u64().unwrap() as u32).collect())
}

#[test]
fn saved_folders_reload_in_seer_and_in_transformers() {
    let ids: Vec<u32> = vec![
        50, 47, 45, 37, 47, 26, 261, 264, 69, 65, 12, 260, 281, 261, 78,
    ];
    let text = "ROMEO: the sea, and then";
    let tokens = Tensor::new(vec![ids[..8].to_vec(), ids[7..].to_vec()], &Device::Cpu).unwrap();
    for source in [
        "llama/hf-llama",
        "llama/tiny-f32.gguf",
        "llama/tiny-q4_k.gguf",
    ] {
        let model = TrainableLlama::open(&fixture(source)).unwrap();
        if source.ends_with("hf-llama") {
            train_one_step(&model);
        }
        let dir = tempfile::tempdir().unwrap();
        model.save_hf(dir.path()).unwrap();
        for file in ["config.json", "model.safetensors", "tokenizer.json"] {
            assert!(dir.path().join(file).is_file(), "{source}: {file} missing");
        }
        assert_round_trip(&model, dir.path());
        let config = std::fs::read_to_string(dir.path().join("config.json")).unwrap();
        let config: serde_json::Value = serde_json::from_str(&config).unwrap();
        assert_eq!(config["rms_norm_eps"], 1e-5, "{source}");
        assert_eq!(
            config["tie_word_embeddings"],
            source.ends_with("q4_k.gguf"),
            "{source}"
        );
        let tokenizer =
            seer::tokenize::Tokenizer::load(&dir.path().join("tokenizer.json")).unwrap();
        assert_eq!(tokenizer.encode(text).unwrap(), ids, "{source}");
        if let Some(hf_ids) = transformers_check(&model, dir.path(), &tokens, text) {
            assert_eq!(hf_ids, ids, "{source}: transformers' tokenizer");
        }
    }
}
