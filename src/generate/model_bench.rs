//! The speed of a loaded model, measured as llama.cpp's `llama-bench` does:
//! prompt processing (`pp`: one batch of N tokens into an empty cache) and
//! token generation (`tg`: N tokens decoded one at a time from an empty
//! cache), each repeated and reported as tokens per second.

use super::TextModel;
use crate::model::Logits;
use crate::{Error, Result};
use std::time::Instant;

/// What [`bench_model`] measured: tokens per second of every repetition.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelBench {
    /// Prompt processing, tokens/s, one value per repetition.
    pub prompt: Vec<f64>,
    /// Token generation, tokens/s, one value per repetition.
    pub generation: Vec<f64>,
}

/// The median of `values` (0 for none).
pub fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    match sorted.len() {
        0 => 0.0,
        n if n % 2 == 1 => sorted[n / 2],
        n => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
    }
}

/// Times `repetitions` rounds of a `prompt_tokens` batch and of
/// `new_tokens` single-token steps (after one untimed warm-up round of each).
pub fn bench_model(
    model: &dyn TextModel,
    prompt_tokens: usize,
    new_tokens: usize,
    repetitions: usize,
) -> Result<ModelBench> {
    if prompt_tokens.max(new_tokens) > model.context_length() || repetitions == 0 {
        return Err(Error::Invalid(format!(
            "--prompt-tokens {prompt_tokens} and --new-tokens {new_tokens} must fit the context of {}, \
             and --repetitions be at least 1",
            model.context_length()
        )));
    }
    // A fixed token sequence (every id valid); the speed does not depend on it.
    let vocab = model.vocab_size() as u32;
    let tokens: Vec<u32> = (0..prompt_tokens.max(1) as u32)
        .map(|i| (i * 7919 + 13) % vocab)
        .collect();
    let time_prompt = || -> Result<f64> {
        let mut cache = model.new_cache();
        let start = Instant::now();
        model.logits(&tokens[..prompt_tokens], &mut cache, Logits::Last)?;
        Ok(prompt_tokens as f64 / start.elapsed().as_secs_f64())
    };
    let time_generation = || -> Result<f64> {
        let mut cache = model.new_cache();
        let mut next = tokens[0];
        let start = Instant::now();
        for _ in 0..new_tokens {
            let logits = model.next_logits(&[next], &mut cache)?;
            next = (0..logits.len())
                .fold(0, |best, i| if logits[i] > logits[best] { i } else { best })
                as u32;
        }
        Ok(new_tokens as f64 / start.elapsed().as_secs_f64())
    };
    let mut bench = ModelBench {
        prompt: Vec::new(),
        generation: Vec::new(),
    };
    for round in 0..=repetitions {
        let (p, g) = (
            if prompt_tokens > 0 {
                time_prompt()?
            } else {
                0.0
            },
            if new_tokens > 0 {
                time_generation()?
            } else {
                0.0
            },
        );
        // Round 0 warms the caches and the thread pool.
        if round > 0 {
            bench.prompt.push(p);
            bench.generation.push(g);
        }
    }
    Ok(bench)
}
