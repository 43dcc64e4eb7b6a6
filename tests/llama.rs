//! The Llama-family model against transformers: tiny random Llamas written
//! to GGUF in every supported type (`scripts/reference/llama_parity.py`
//! made them and transformers' logits; see tests/fixtures/llama/README.md).

use safetensors::SafeTensors;
use seer::generate::TextModel;
use seer::kernels::quant::KernelPath;
use seer::model::{Llama, Logits};
use std::path::PathBuf;

const TYPES: [&str; 10] = [
    "f32", "f16", "bf16", "q8_0", "q4_0", "q4_1", "q5_0", "q4_k", "q5_k", "q6_k",
];

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/llama")
}

/// The token ids and transformers' logits for `tiny-<ty>.gguf` (`[T × vocab]`).
fn reference(ty: &str) -> (Vec<u32>, Vec<f32>) {
    reference_in("tiny.safetensors", ty)
}

/// The token ids and the logits `logits.<ty>` of a reference file.
fn reference_in(file: &str, ty: &str) -> (Vec<u32>, Vec<f32>) {
    let bytes = std::fs::read(fixtures().join(file)).unwrap();
    let tensors = SafeTensors::deserialize(&bytes).unwrap();
    let ids = tensors.tensor("ids").unwrap();
    let ids = ids
        .data()
        .chunks_exact(8)
        .map(|b| i64::from_le_bytes(b.try_into().unwrap()) as u32)
        .collect();
    let logits = tensors.tensor(&format!("logits.{ty}")).unwrap();
    let logits = logits
        .data()
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
        .collect();
    (ids, logits)
}

fn open(ty: &str) -> Llama {
    Llama::open_gguf(&fixtures().join(format!("tiny-{ty}.gguf")), None).unwrap()
}

fn relative_error(got: &[f32], want: &[f32]) -> f32 {
    max_abs_diff(got, want) / want.iter().fold(0f32, |m, v| m.max(v.abs()))
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

fn argmax(row: &[f32]) -> usize {
    (0..row.len()).fold(0, |best, i| if row[i] > row[best] { i } else { best })
}

#[test]
fn dequantized_weights_give_transformers_logits_in_every_type() {
    for ty in TYPES {
        let (ids, expected) = reference(ty);
        let model = open(ty).dequantized().unwrap();
        let logits = model
            .forward(&ids, &mut model.new_cache(), Logits::All)
            .unwrap();
        let error = relative_error(&logits, &expected);
        assert!(error <= 1e-4, "{ty}: relative error {error:e}");
    }
}

/// The fast path quantizes the activations to 8 bits (as llama.cpp's CPU
/// path does) before its integer dot products. On these tiny random models
/// that moves the logits by up to 0.23 (measured: q8_0 0.15, q4_1 0.16, q4_k
/// 0.23), so the top token may change only where transformers' own top two
/// are closer than twice that; the real model is held to the issue's
/// bounds in `real_models.rs`.
const ACTIVATION_QUANTIZATION_GAP: f32 = 0.25;

#[test]
fn quantized_kernels_agree_on_every_path_and_keep_clear_top_tokens() {
    for ty in TYPES {
        let (ids, expected) = reference(ty);
        let portable = open(ty).with_kernel_path(KernelPath::Portable).unwrap();
        let vocab = portable.config().vocab_size;
        let baseline = portable
            .forward(&ids, &mut portable.new_cache(), Logits::All)
            .unwrap();
        for (got, want) in baseline.chunks(vocab).zip(expected.chunks(vocab)) {
            let gap = max_abs_diff(got, want);
            assert!(
                gap <= ACTIVATION_QUANTIZATION_GAP,
                "{ty}: logits moved by {gap}"
            );
            let mut sorted = want.to_vec();
            sorted.sort_by(|a, b| b.total_cmp(a));
            if sorted[0] - sorted[1] > 2.0 * ACTIVATION_QUANTIZATION_GAP {
                assert_eq!(argmax(got), argmax(want), "{ty}: a clear top-1 changed");
            }
        }
        for path in KernelPath::supported() {
            let model = open(ty).with_kernel_path(path).unwrap();
            let logits = model
                .forward(&ids, &mut model.new_cache(), Logits::All)
                .unwrap();
            // The paths round differently by an ulp (fused multiply-adds), and
            // an ulp can move an activation across an 8-bit rounding boundary
            // in the next layer: one step there moves a logit by about 0.01.
            let gap = max_abs_diff(&logits, &baseline);
            assert!(
                gap <= 0.05,
                "{ty}: {path:?} differs from the portable path by {gap}"
            );
        }
    }
}

#[test]
fn the_cache_gives_the_same_logits_one_token_at_a_time() {
    let (ids, _) = reference("q4_k");
    let model = open("q4_k");
    let all = model
        .forward(&ids, &mut model.new_cache(), Logits::All)
        .unwrap();
    let vocab = model.vocab_size();
    let mut cache = model.new_cache();
    let (head, tail) = ids.split_at(5);
    let mut steps = model.logits(head, &mut cache, Logits::All).unwrap();
    for &id in tail {
        steps.extend(model.next_logits(&[id], &mut cache).unwrap());
    }
    assert_eq!(cache.len(), ids.len());
    assert_eq!(steps.len(), all.len());
    let gap = max_abs_diff(&steps, &all);
    assert!(
        gap < 1e-3 * all.iter().fold(1f32, |m, v| m.max(v.abs())),
        "{gap}"
    );
    assert_eq!(
        argmax(&steps[(ids.len() - 1) * vocab..]),
        argmax(&all[(ids.len() - 1) * vocab..])
    );
}

/// Gemma 3: q/k norms, norms after attention and MLP (stored as 1 + w),
/// GELU gating, √d embeddings, and sliding-window layers (window 4 here, so
/// the 24-token input exercises it) around a global one with its own RoPE base.
#[test]
fn gemma3_gives_transformers_logits_with_its_sliding_windows() {
    for ty in ["f32", "q8_0", "q4_k"] {
        let (ids, expected) = reference_in("tiny_gemma3.safetensors", ty);
        let path = fixtures().join(format!("tiny-gemma3-{ty}.gguf"));
        let model = Llama::open_gguf(&path, None).unwrap();
        assert!(model.config().is_sliding(0) && !model.config().is_sliding(5));
        let exact = Llama::open_gguf(&path, None)
            .unwrap()
            .dequantized()
            .unwrap();
        let logits = exact
            .forward(&ids, &mut exact.new_cache(), Logits::All)
            .unwrap();
        let error = relative_error(&logits, &expected);
        assert!(error <= 1e-4, "gemma3 {ty}: relative error {error:e}");
        let fast = model
            .forward(&ids, &mut model.new_cache(), Logits::All)
            .unwrap();
        let gap = max_abs_diff(&fast, &expected);
        assert!(
            gap <= ACTIVATION_QUANTIZATION_GAP,
            "gemma3 {ty}: the fast path moved the logits by {gap}"
        );
    }
}
