//! Real open models against transformers' numbers for the same files
//! (`tests/fixtures/llama/smollm2*.json`, `gemma3_270m*.json`, made by
//! `scripts/reference/llama_parity.py` and `gemma3_parity.py`):
//! SmolLM2-135M-Instruct (Q4_1) and Gemma 3 270M (Q4_K_M). The models are not
//! committed: `scripts/get-model.sh smollm2-135m-instruct|gemma3-270m` puts
//! them in models/ (CI fetches SmolLM2); without one, its tests say so and
//! check nothing.

use seer::eval::perplexity;
use seer::generate::TextModel;
use seer::kernels::quant::KernelPath;
use seer::model::Llama;
use serde_json::Value;
use std::path::PathBuf;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A model file under models/, or `None` (with a note) when it has not
/// been fetched.
fn fetched(file: &str, name: &str) -> Option<PathBuf> {
    let path = root().join("models").join(file);
    if path.exists() {
        Some(path)
    } else {
        eprintln!(
            "skipped: {} is missing (run scripts/get-model.sh {name})",
            path.display()
        );
        None
    }
}

fn model_file() -> Option<PathBuf> {
    fetched("SmolLM2-135M-Instruct.Q4_1.gguf", "smollm2-135m-instruct")
}

fn fixture(name: &str) -> Value {
    let text = std::fs::read_to_string(root().join("tests/fixtures/llama").join(name)).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn numbers<T: serde::de::DeserializeOwned>(v: &Value) -> Vec<T> {
    serde_json::from_value(v.clone()).unwrap()
}

fn log_sum_exp(row: &[f32]) -> f64 {
    let max = row.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v)) as f64;
    max + row
        .iter()
        .map(|&v| (v as f64 - max).exp())
        .sum::<f64>()
        .ln()
}

fn argmax(row: &[f32]) -> usize {
    (0..row.len()).fold(0, |best, i| if row[i] > row[best] { i } else { best })
}

#[test]
fn dequantized_logits_match_transformers() {
    let Some(path) = model_file() else { return };
    let model = Llama::open_gguf(&path, Some(512))
        .unwrap()
        .dequantized()
        .unwrap();
    for prompt in fixture("smollm2.json")["prompts"].as_array().unwrap() {
        let ids: Vec<u32> = numbers(&prompt["ids"]);
        let logits = model.next_logits(&ids, &mut model.new_cache()).unwrap();
        let top: Vec<usize> = numbers(&prompt["top50_ids"]);
        let want: Vec<f32> = numbers(&prompt["top50_logits"]);
        let scale = want[0].abs();
        for (&id, &w) in top.iter().zip(&want) {
            let error = (logits[id] - w).abs() / scale;
            assert!(
                error <= 1e-4,
                "{}: token {id} logit {} vs {w}",
                prompt["label"],
                logits[id]
            );
        }
        let lse = prompt["logsumexp"].as_f64().unwrap();
        assert!((log_sum_exp(&logits) - lse).abs() / lse <= 1e-4);
    }
}

/// The fast path quantizes activations to 8 bits per 32 (as llama.cpp's
/// CPU path does). On the plain prompt it holds the bounds: top-1
/// identical, probabilities within 2e-2. On the chat prompt transformers'
/// top two tokens are 0.082 apart and the fast path moves them by about 1,
/// so only "one of transformers' top two" is asserted there (the gap is
/// recorded in BENCHMARKS with llama.cpp's own choice).
#[test]
fn quantized_kernels_keep_the_top_token_and_the_probabilities() {
    let Some(path) = model_file() else { return };
    for kernels in KernelPath::supported() {
        let model = Llama::open_gguf(&path, Some(512))
            .unwrap()
            .with_kernel_path(kernels)
            .unwrap();
        for prompt in fixture("smollm2.json")["prompts"].as_array().unwrap() {
            let label = prompt["label"].as_str().unwrap();
            let ids: Vec<u32> = numbers(&prompt["ids"]);
            let last = model.next_logits(&ids, &mut model.new_cache()).unwrap();
            let top: Vec<usize> = numbers(&prompt["top50_ids"]);
            let want: Vec<f64> = numbers(&prompt["top50_logits"]);
            if label == "chat" {
                assert!(
                    top[..2].contains(&argmax(&last)),
                    "{kernels:?} chat: {}",
                    argmax(&last)
                );
                continue;
            }
            let (lse, got_lse) = (prompt["logsumexp"].as_f64().unwrap(), log_sum_exp(&last));
            for (&id, &w) in top.iter().zip(&want) {
                let (p, q) = ((last[id] as f64 - got_lse).exp(), (w - lse).exp());
                assert!(
                    (p - q).abs() <= 2e-2,
                    "{kernels:?} {label}: token {id} p {p} vs {q}"
                );
            }
            assert_eq!(argmax(&last), top[0], "{kernels:?} {label}");
        }
    }
}

/// The first four of the fixture's sixteen windows (a quarter of the time).
const WINDOWS: usize = 4;

#[test]
fn perplexity_matches_transformers_within_one_percent() {
    let Some(path) = model_file() else { return };
    let reference = fixture("smollm2_ppl.json");
    let ids: Vec<u32> = numbers(&reference["ids"]);
    let ctx = reference["n_ctx"].as_u64().unwrap() as usize;
    let window_nll: Vec<f64> = numbers(&reference["window_nll_sum"]);
    let scored_per_window = ctx - 1 - ctx / 2;
    let want =
        (window_nll[..WINDOWS].iter().sum::<f64>() / (WINDOWS * scored_per_window) as f64).exp();
    let model = Llama::open_gguf(&path, Some(ctx))
        .unwrap()
        .dequantized()
        .unwrap();
    let result = perplexity(&model, &ids, ctx, None, Some(WINDOWS), |_| {}).unwrap();
    assert_eq!(result.scored, WINDOWS * scored_per_window);
    assert!(
        (result.perplexity - want).abs() / want <= 0.01,
        "{} vs {want}",
        result.perplexity
    );
    // The quantized path, as seer runs it by default, stays close too.
    let fast = Llama::open_gguf(&path, Some(ctx)).unwrap();
    let quick = perplexity(&fast, &ids, ctx, None, Some(WINDOWS), |_| {}).unwrap();
    assert!(
        (quick.perplexity - want).abs() / want <= 0.03,
        "{} vs {want}",
        quick.perplexity
    );
}

/// Gemma 3 270M: transformers' top-50 logits with the weights expanded to
/// f32, and its greedy continuations followed token by token (teacher
/// forcing) on the fast path wherever transformers' choice is clear.
#[test]
fn gemma3_matches_transformers() {
    let Some(path) = fetched("gemma-3-270m-q4_k_m.gguf", "gemma3-270m") else {
        return;
    };
    let exact = Llama::open_gguf(&path, Some(256))
        .unwrap()
        .dequantized()
        .unwrap();
    let fast = Llama::open_gguf(&path, Some(256)).unwrap();
    for prompt in fixture("gemma3_270m.json")["prompts"].as_array().unwrap() {
        let label = prompt["label"].as_str().unwrap();
        let ids: Vec<u32> = numbers(&prompt["ids"]);
        let logits = exact.next_logits(&ids, &mut exact.new_cache()).unwrap();
        let top: Vec<usize> = numbers(&prompt["top50_ids"]);
        let want: Vec<f32> = numbers(&prompt["top50_logits"]);
        for (&id, &w) in top.iter().zip(&want) {
            let error = (logits[id] - w).abs() / want[0].abs();
            assert!(
                error <= 1e-4,
                "{label}: token {id} logit {} vs {w}",
                logits[id]
            );
        }
        let greedy: Vec<u32> = numbers(&prompt["greedy_ids"]);
        let margins: Vec<f32> = numbers(&prompt["greedy_top2_margins"]);
        let mut cache = fast.new_cache();
        let mut next = fast.next_logits(&ids, &mut cache).unwrap();
        for (&token, &margin) in greedy.iter().zip(&margins) {
            if margin > 0.5 {
                assert_eq!(argmax(&next) as u32, token, "{label}: greedy step differs");
            }
            next = fast.next_logits(&[token], &mut cache).unwrap();
        }
    }
}
