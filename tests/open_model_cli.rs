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
