//! The commands on open models' GGUF files and Hugging Face folders,
//! through the binary, on the tiny fixtures (tests/fixtures/llama):
//! generation, chat with the file's template, the next-token table,
//! perplexity, the speed bench, and one-line errors for broken files.

mod common;

use common::run::{fails, seer, seer_with_input};
use std::path::PathBuf;

fn fixture(name: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/llama")
        .join(name)
        .to_string_lossy()
        .into_owned()
}

#[test]
fn generate_and_inspect_next_run_a_gguf_model_deterministically() {
    let model = fixture("tiny-q4_1.gguf");
    let args = [
        "generate",
        "-m",
        &model,
        "ROMEO:",
        "--max-tokens",
        "6",
        "--seed",
        "3",
        "--json",
    ];
    let first = seer(&args);
    assert_eq!(first.code, 0, "{}", first.stderr);
    let line: serde_json::Value = serde_json::from_str(first.stdout.trim()).unwrap();
    assert_eq!(line["prompt_tokens"], 6, "ROMEO: is six tokens: {line}");
    assert!(line["completion_tokens"].as_u64().unwrap() <= 6);
    assert_eq!(
        seer(&args).stdout,
        first.stdout,
        "the same seed gives the same text"
    );

    let next = seer(&[
        "inspect", "next", "-m", &model, "ROMEO:", "--top", "300", "--json",
    ]);
    assert_eq!(next.code, 0, "{}", next.stderr);
    let table: serde_json::Value = serde_json::from_str(&next.stdout).unwrap();
    let probs: Vec<f64> = table["next"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["prob"].as_f64().unwrap())
        .collect();
    assert_eq!(probs.len(), 300, "the whole vocabulary");
    assert!(probs.windows(2).all(|w| w[0] >= w[1]), "most likely first");
    assert!((probs.iter().sum::<f64>() - 1.0).abs() < 1e-6);
}

#[test]
fn chat_renders_the_template_and_perplexity_and_bench_report() {
    let model = fixture("tiny-gemma3-f32.gguf");
    let out = seer_with_input(
        &[
            "chat",
            "-m",
            &model,
            "--max-tokens",
            "4",
            "--temperature",
            "0",
        ],
        "hello\n/history\n",
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stdout.contains("User: hello") && out.stdout.contains("Assistant: "),
        "{}",
        out.stdout
    );

    let text = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("data/tinyshakespeare.txt");
    let text = text.to_string_lossy();
    let ppl = seer(&[
        "eval",
        "perplexity",
        "-m",
        &model,
        &text,
        "--ctx",
        "32",
        "--windows",
        "3",
        "--json",
    ]);
    assert_eq!(ppl.code, 0, "{}", ppl.stderr);
    let result: serde_json::Value = serde_json::from_str(&ppl.stdout).unwrap();
    assert_eq!(
        (result["windows"].as_u64(), result["scored"].as_u64()),
        (Some(3), Some(45))
    );
    assert!(result["perplexity"].as_f64().unwrap() > 1.0);

    let bench = seer(&[
        "bench",
        "generate",
        "--model",
        &model,
        "--prompt-tokens",
        "8",
        "--new-tokens",
        "8",
        "--repetitions",
        "2",
    ]);
    assert_eq!(bench.code, 0, "{}", bench.stderr);
    assert!(
        bench.stdout.contains("pp8: ") && bench.stdout.contains("tg8: "),
        "{}",
        bench.stdout
    );
}

#[test]
fn broken_gguf_files_fail_in_one_line_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = std::fs::read(fixture("tiny-q8_0.gguf")).unwrap();
    let truncated = dir.path().join("truncated.gguf");
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
    let truncated = truncated.to_string_lossy();
    fails(
        &["generate", "-m", &truncated, "hi"],
        &["truncated.gguf", "past the end"],
    );
    let missing = dir.path().join("missing.gguf");
    fails(
        &["chat", "-m", &missing.to_string_lossy()],
        &["missing.gguf"],
    );
    fails(
        &[
            "generate",
            "-m",
            &fixture("tiny-q8_0.gguf"),
            "hi",
            "--device",
            "cuda",
        ],
        &["--device cuda", "CPU"],
    );
}

#[test]
fn inspect_shows_tokens_attention_and_embeddings_of_a_gguf_model() {
    let model = fixture("tiny-gemma3-f32.gguf");
    let tokens = seer(&["inspect", "tokens", "-m", &model, "ROMEO: What", "--json"]);
    assert_eq!(tokens.code, 0, "{}", tokens.stderr);
    let tokens: serde_json::Value = serde_json::from_str(&tokens.stdout).unwrap();
    let ids: Vec<u64> = tokens["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_u64().unwrap())
        .collect();
    // The fixture's README: "ROMEO: What" is R O M E O : ▁W hat in transformers.
    assert_eq!(ids, [378, 386, 376, 382, 386, 364, 343, 379, 293]);

    let attention = seer(&[
        "inspect",
        "attention",
        "-m",
        &model,
        "ROMEO: What, 12 men?",
        "--json",
    ]);
    assert_eq!(attention.code, 0, "{}", attention.stderr);
    let maps: serde_json::Value = serde_json::from_str(&attention.stdout).unwrap();
    assert_eq!(
        maps["tokens"][0], "<bos>",
        "the model's start token comes first"
    );
    let layers = maps["attention"].as_array().unwrap();
    assert_eq!(layers.len(), 7);
    let row = |layer: usize, head: usize, query: usize| -> Vec<f64> {
        layers[layer][head][query]
            .as_array()
            .unwrap()
            .iter()
            .map(|w| w.as_f64().unwrap())
            .collect()
    };
    let last = maps["tokens"].as_array().unwrap().len() - 1;
    assert!(last >= 8);
    for layer in 0..7 {
        for head in 0..2 {
            let weights = row(layer, head, last);
            assert!((weights.iter().sum::<f64>() - 1.0).abs() < 1e-5);
            // Layer 5 is global; the others see the last 4 positions (window 4).
            let unseen = &weights[..last - 3];
            if layer == 5 {
                assert!(unseen.iter().all(|&w| w > 0.0), "layer 5 sees everything");
            } else {
                assert!(unseen.iter().all(|&w| w == 0.0), "layer {layer} slides");
            }
            assert!(row(layer, head, 2)[3..].iter().all(|&w| w == 0.0), "causal");
        }
    }

    let embed = seer(&[
        "inspect",
        "embed",
        "-m",
        &model,
        "--neighbours",
        "The",
        "--top",
        "3",
        "--json",
    ]);
    assert_eq!(embed.code, 0, "{}", embed.stderr);
    let report: serde_json::Value = serde_json::from_str(&embed.stdout).unwrap();
    let nearest = report["neighbours"]["nearest"].as_array().unwrap();
    assert_eq!(nearest.len(), 3);
    let cosines: Vec<f64> = nearest
        .iter()
        .map(|n| n["similarity"].as_f64().unwrap())
        .collect();
    assert!(cosines.windows(2).all(|w| w[0] >= w[1]) && cosines[0] <= 1.0);
}

#[test]
fn hugging_face_folders_run_like_gguf_files() {
    let greedy = |model: &str| {
        let out = seer(&[
            "generate",
            "-m",
            model,
            "ROMEO:",
            "--max-tokens",
            "5",
            "--temperature",
            "0",
        ]);
        assert_eq!(out.code, 0, "{}", out.stderr);
        out.stdout
    };
    let folder = greedy(&fixture("hf-llama"));
    assert!(!folder.trim().is_empty(), "prints the text");
    assert_eq!(
        folder,
        greedy(&fixture("tiny-f32.gguf")),
        "the folder holds the GGUF's weights"
    );

    let chat = seer_with_input(
        &[
            "chat",
            "-m",
            &fixture("hf-gemma3"),
            "--max-tokens",
            "4",
            "--temperature",
            "0",
        ],
        "hello\n/history\n",
    );
    assert_eq!(chat.code, 0, "{}", chat.stderr);
    assert!(chat.stdout.contains("User: hello"), "{}", chat.stdout);

    let next = seer(&[
        "inspect",
        "next",
        "-m",
        &fixture("hf-gemma3"),
        "ROMEO:",
        "--json",
    ]);
    assert_eq!(next.code, 0, "{}", next.stderr);
    let table: serde_json::Value = serde_json::from_str(&next.stdout).unwrap();
    assert_eq!(table["prompt_tokens"][0], "<bos>", "Gemma's BOS: {table}");

    let text = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("data/tinyshakespeare.txt");
    let ppl = seer(&[
        "eval",
        "perplexity",
        "-m",
        &fixture("hf-llama"),
        &text.to_string_lossy(),
        "--ctx",
        "32",
        "--windows",
        "2",
        "--json",
    ]);
    assert_eq!(ppl.code, 0, "{}", ppl.stderr);

    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("config.json"),
        r#"{"architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2"}"#,
    )
    .unwrap();
    fails(
        &["generate", "-m", &dir.path().to_string_lossy(), "hi"],
        &["config.json", "'architectures'", "Qwen2ForCausalLM"],
    );
}
