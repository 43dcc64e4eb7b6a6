//! Open models from Hugging Face folders (tests/fixtures/llama/hf-llama and
//! hf-gemma3, written by transformers' save_pretrained; see the fixtures'
//! README, "Hugging Face folders"): logits against transformers', token ids,
//! the chat template and stop tokens, sharded weights, and one-line errors
//! for folders seer cannot run.

use safetensors::tensor::TensorView;
use safetensors::SafeTensors;
use seer::formats::ChatMessage;
use seer::kernels::quant::GgmlType;
use seer::model::{Llama, LlamaConfig, Logits, OpenModel};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/llama")
}

fn read_json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// `hf_folders.json`'s entry for the folder `name`.
fn recorded(name: &str) -> Value {
    read_json(&fixtures().join("hf_folders.json"))[name].clone()
}

fn ids(value: &Value) -> Vec<u32> {
    value
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap() as u32)
        .collect()
}

/// transformers' logits `logits.f32` of a reference file.
fn reference_logits(file: &str) -> Vec<f32> {
    let bytes = std::fs::read(fixtures().join(file)).unwrap();
    let tensors = SafeTensors::deserialize(&bytes).unwrap();
    let logits = tensors.tensor("logits.f32").unwrap();
    logits
        .data()
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
        .collect()
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

/// The folder's model, tokenizing the recorded input (from `text_file`'s
/// `text`) to the recorded ids and giving transformers' logits within 1e-4.
fn check_parity(name: &str, text_file: &str, logits_file: &str, weights: GgmlType) {
    let open = OpenModel::open(&fixtures().join(name), None).unwrap();
    let text = read_json(&fixtures().join(text_file))["text"]
        .as_str()
        .unwrap()
        .to_owned();
    let want_ids = ids(&recorded(name)["ids"]);
    assert_eq!(open.prompt_ids(&text).unwrap(), want_ids, "{name}: ids");
    let model = open.model();
    assert_eq!(model.output().ty(), weights, "{name}: kept in its type");
    let logits = model
        .forward(&want_ids, &mut model.new_cache(), Logits::All)
        .unwrap();
    let gap = max_abs_diff(&logits, &reference_logits(logits_file));
    assert!(gap <= 1e-4, "{name}: logits differ by {gap}");
}

/// Llama: q/k in Hugging Face's order, so RoPE pairs halves (the GGUF of
/// the same weights pairs neighbours of permuted rows); untied lm_head.
#[test]
fn hf_llama_gives_transformers_logits() {
    check_parity("hf-llama", "tiny.json", "tiny.safetensors", GgmlType::F32);
}

/// Gemma 3 in bfloat16, kept as BF16 matrices: norms stored as `w` (1 is
/// added), the sliding windows of `layer_types`, both RoPE bases of
/// `rope_parameters`, tied embeddings.
#[test]
fn hf_gemma3_in_bf16_gives_transformers_logits() {
    check_parity(
        "hf-gemma3",
        "tiny_gemma3.json",
        "tiny_gemma3.safetensors",
        GgmlType::BF16,
    );
    let model = Llama::open_hf_dir(&fixtures().join("hf-gemma3"), None).unwrap();
    let config = model.config();
    assert!(config.is_sliding(0) && !config.is_sliding(5) && config.is_sliding(6));
    assert_eq!((config.rope_theta, config.rope_local_theta), (1e5, 1e4));
}

#[test]
fn chat_templates_special_tokens_and_stops_come_from_the_folder() {
    let hi = [ChatMessage::new("user", "hi")];
    let llama = OpenModel::open(&fixtures().join("hf-llama"), None).unwrap();
    let rendered = llama.template().render(&hi, true).unwrap();
    assert_eq!(rendered, recorded("hf-llama")["chat_template_example"]);
    assert!(!llama.special().add_bos);
    assert_eq!(llama.stop_ids(), [0], "<|endoftext|>");

    let gemma = OpenModel::open(&fixtures().join("hf-gemma3"), None).unwrap();
    let expected = recorded("hf-gemma3");
    let rendered = gemma.template().render(&hi, true).unwrap();
    assert_eq!(rendered, expected["chat_template_example"]);
    assert_eq!(
        gemma.chat_ids(&rendered).unwrap(),
        ids(&expected["chat_template_example_ids"])
    );
    let special = gemma.special();
    assert_eq!(
        (
            special.bos,
            special.eos,
            special.pad,
            special.unk,
            special.eot
        ),
        (Some(2), Some(1), Some(0), Some(3), Some(5))
    );
    assert!(special.add_bos && !special.add_eos);
    assert_eq!(gemma.stop_ids(), [1, 5], "<eos> and <end_of_turn>");
    // <mask> (id 400) lies past the 400 embeddings: left out, as in the GGUF.
    assert_eq!(gemma.tokenizer().vocab_size(), 400);
}

/// A copy of fixture folder `name` in a temporary folder.
fn copy_folder(name: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(fixtures().join(name)).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, dir.path().join(path.file_name().unwrap())).unwrap();
    }
    dir
}

/// Rewrites `dir/config.json` (or another JSON file) by `change`.
fn edit_json(dir: &Path, file: &str, change: impl FnOnce(&mut Value)) {
    let path = dir.join(file);
    let mut json = if path.exists() {
        read_json(&path)
    } else {
        json!({})
    };
    change(&mut json);
    std::fs::write(&path, serde_json::to_string_pretty(&json).unwrap()).unwrap();
}

/// Writes the tensors of fixture folder `name`'s `model.safetensors` that
/// `keep` accepts (in the shape it gives) into `dir/file`; returns their names.
fn rewrite_weights(
    name: &str,
    dir: &Path,
    file: &str,
    keep: impl Fn(&str, &[usize]) -> Option<Vec<usize>>,
) -> Vec<String> {
    let bytes = std::fs::read(fixtures().join(name).join("model.safetensors")).unwrap();
    let tensors = SafeTensors::deserialize(&bytes).unwrap();
    let kept: Vec<(String, TensorView<'_>)> = tensors
        .iter()
        .filter_map(|(name, view)| {
            let shape = keep(name, view.shape())?;
            Some((
                name.to_owned(),
                TensorView::new(view.dtype(), shape, view.data()).unwrap(),
            ))
        })
        .collect();
    let names = kept.iter().map(|(n, _)| n.clone()).collect();
    safetensors::serialize_to_file(kept, None, &dir.join(file)).unwrap();
    names
}

fn open_error(dir: &Path) -> String {
    let err = OpenModel::open(dir, None).unwrap_err().to_string();
    assert_eq!(err.lines().count(), 1, "{err}");
    err
}

#[test]
fn sharded_weights_give_the_same_model() {
    let dir = copy_folder("hf-llama");
    let first = rewrite_weights(
        "hf-llama",
        dir.path(),
        "model-00001-of-00002.safetensors",
        |n, s| n.contains("layers.0.").then(|| s.to_vec()),
    );
    let second = rewrite_weights(
        "hf-llama",
        dir.path(),
        "model-00002-of-00002.safetensors",
        |n, s| (!n.contains("layers.0.")).then(|| s.to_vec()),
    );
    std::fs::remove_file(dir.path().join("model.safetensors")).unwrap();
    let weight_map: serde_json::Map<String, Value> = first
        .iter()
        .map(|n| (n.clone(), json!("model-00001-of-00002.safetensors")))
        .chain(
            second
                .iter()
                .map(|n| (n.clone(), json!("model-00002-of-00002.safetensors"))),
        )
        .collect();
    edit_json(dir.path(), "model.safetensors.index.json", |j| {
        *j = json!({"metadata": {}, "weight_map": weight_map})
    });
    let ids = ids(&recorded("hf-llama")["ids"]);
    let model = Llama::open_hf_dir(dir.path(), None).unwrap();
    let logits = model
        .forward(&ids, &mut model.new_cache(), Logits::All)
        .unwrap();
    let gap = max_abs_diff(&logits, &reference_logits("tiny.safetensors"));
    assert!(gap <= 1e-4, "sharded: logits differ by {gap}");

    // A tensor none of the shards holds is reported against the index.
    rewrite_weights(
        "hf-llama",
        dir.path(),
        "model-00001-of-00002.safetensors",
        |n, s| (n.contains("layers.0.") && !n.contains("v_proj")).then(|| s.to_vec()),
    );
    let err = open_error(dir.path());
    assert!(
        err.contains("model.safetensors.index.json")
            && err.contains("model.layers.0.self_attn.v_proj.weight"),
        "{err}"
    );
}

#[test]
fn a_missing_or_misshapen_tensor_is_named_with_its_file() {
    let dir = copy_folder("hf-gemma3");
    rewrite_weights("hf-gemma3", dir.path(), "model.safetensors", |n, s| {
        (n != "model.layers.3.post_feedforward_layernorm.weight").then(|| s.to_vec())
    });
    let err = open_error(dir.path());
    assert!(
        err.contains("model.safetensors")
            && err.contains("has no tensor 'model.layers.3.post_feedforward_layernorm.weight'"),
        "{err}"
    );

    let dir = copy_folder("hf-llama");
    rewrite_weights("hf-llama", dir.path(), "model.safetensors", |n, s| {
        Some(match n {
            "model.layers.1.mlp.down_proj.weight" => vec![s[1], s[0]],
            _ => s.to_vec(),
        })
    });
    let err = open_error(dir.path());
    assert!(
        err.contains("model.safetensors")
            && err.contains("'model.layers.1.mlp.down_proj.weight' has dimensions [160, 64]")
            && err.contains("[64, 160]"),
        "{err}"
    );

    // Untied without lm_head.
    let dir = copy_folder("hf-llama");
    rewrite_weights("hf-llama", dir.path(), "model.safetensors", |n, s| {
        (n != "lm_head.weight").then(|| s.to_vec())
    });
    let err = open_error(dir.path());
    assert!(
        err.contains("lm_head.weight") && err.contains("tie_word_embeddings"),
        "{err}"
    );
}

#[test]
fn configs_seer_cannot_run_are_refused_by_field() {
    /// A fixture folder, a change to its config.json, and what the error says.
    type Case = (&'static str, fn(&mut Value), &'static str);
    let cases: [Case; 6] = [
        (
            "hf-llama",
            |c| {
                c["architectures"] = json!(["Qwen2ForCausalLM"]);
                c["model_type"] = json!("qwen2");
            },
            "'architectures' is [\"Qwen2ForCausalLM\"]",
        ),
        (
            "hf-llama",
            |c| {
                c["rope_parameters"] =
                    json!({"rope_type": "llama3", "factor": 32.0, "rope_theta": 5e5})
            },
            "'rope_parameters' has rope_type 'llama3'",
        ),
        (
            "hf-llama",
            |c| c["attention_bias"] = json!(true),
            "'attention_bias'",
        ),
        (
            "hf-gemma3",
            |c| c["final_logit_softcapping"] = json!(30.0),
            "'final_logit_softcapping'",
        ),
        (
            "hf-gemma3",
            |c| c["layer_types"][1] = json!("full_attention"),
            "'layer_types'",
        ),
        (
            "hf-gemma3",
            |c| {
                c["rope_parameters"]["full_attention"] =
                    json!({"rope_type": "linear", "factor": 8.0})
            },
            "'rope_parameters.full_attention' has rope_type 'linear'",
        ),
    ];
    for (folder, change, needle) in cases {
        let dir = copy_folder(folder);
        edit_json(dir.path(), "config.json", change);
        let err = open_error(dir.path());
        assert!(
            err.contains("config.json") && err.contains(needle),
            "{needle}: {err}"
        );
    }
}

/// transformers 4 wrote `rope_theta`, `rope_local_base_freq` and
/// `sliding_window_pattern` where transformers 5 writes `rope_parameters`
/// and `layer_types`; absent fields take transformers' defaults.
#[test]
fn transformers_4_configs_read_as_transformers_5_ones() {
    let v5 = read_json(&fixtures().join("hf-gemma3/config.json"));
    let mut v4 = v5.clone();
    let fields = v4.as_object_mut().unwrap();
    for k in ["rope_parameters", "layer_types", "_sliding_window_pattern"] {
        fields.remove(k);
    }
    fields.insert("rope_theta".into(), json!(100000.0));
    fields.insert("rope_local_base_freq".into(), json!(10000.0));
    fields.insert("sliding_window_pattern".into(), json!(6));
    fields.insert("rope_scaling".into(), Value::Null);
    let (old, new) = (
        LlamaConfig::from_hf(&v4).unwrap(),
        LlamaConfig::from_hf(&v5).unwrap(),
    );
    assert_eq!(old, new);
    assert_eq!(new.attention_scale, 1.0 / 32f32.sqrt());
    v4.as_object_mut().unwrap().remove("query_pre_attn_scalar");
    let defaulted = LlamaConfig::from_hf(&v4).unwrap();
    assert_eq!(
        defaulted.attention_scale,
        1.0 / 16.0,
        "256, as transformers"
    );
}

/// Where transformers 5 keeps the template (`chat_template.jinja`), named
/// templates, and `generation_config.json`'s list of end ids.
#[test]
fn folder_settings_in_their_other_spellings() {
    let dir = copy_folder("hf-gemma3");
    edit_json(dir.path(), "tokenizer_config.json", |c| {
        c["chat_template"] = json!([
            {"name": "tool_use", "template": "tools"},
            {"name": "default", "template": "{{ bos_token }}[{{ messages[0]['content'] }}]"}
        ]);
        c["bos_token"] = json!({"content": "<bos>", "special": true});
        c.as_object_mut().unwrap().remove("add_bos_token");
    });
    edit_json(dir.path(), "generation_config.json", |g| {
        g["eos_token_id"] = json!([1, 4]);
    });
    let hi = [ChatMessage::new("user", "hi")];
    let open = OpenModel::open(dir.path(), None).unwrap();
    assert_eq!(open.template().render(&hi, true).unwrap(), "<bos>[hi]");
    assert_eq!(open.stop_ids(), [1, 4, 5]);
    assert!(
        open.special().add_bos,
        "without add_bos_token, the post-processor's BOS"
    );

    std::fs::write(
        dir.path().join("chat_template.jinja"),
        "<{{ messages[0]['content'] }}>",
    )
    .unwrap();
    let open = OpenModel::open(dir.path(), None).unwrap();
    assert_eq!(open.template().render(&hi, true).unwrap(), "<hi>");

    edit_json(dir.path(), "tokenizer_config.json", |c| {
        c["eos_token"] = json!("<nope>");
    });
    let err = open_error(dir.path());
    assert!(
        err.contains("tokenizer_config.json") && err.contains("'eos_token'"),
        "{err}"
    );
}
