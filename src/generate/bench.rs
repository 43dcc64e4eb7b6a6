//! Generation speed: prompt processing and per-token generation with and
//! without the KV cache, peak memory, and how close generation comes to the
//! memory-bandwidth bound (every weight is read once per token).

use crate::model::{Gpt, GptConfig};
use crate::nn::{Mode, Precision};
use crate::{Error, Result};
use candle_core::{Device, Tensor, D};
use rand::{Rng, SeedableRng};
use std::time::Instant;

/// What `bench_generate` measured.
#[derive(Debug, Clone)]
pub struct GenerateBench {
    /// Prompt tokens processed per second (one forward pass over the prompt).
    pub prompt_tokens_per_s: f64,
    /// New tokens per second after the prompt.
    pub tokens_per_s: f64,
    /// Bytes of weights read per generated token.
    pub weight_bytes: usize,
    /// Peak resident memory of the process, in bytes (Linux), if known.
    pub peak_rss: Option<usize>,
}

/// Greedy generation of `new_tokens` after a random prompt of
/// `prompt_tokens`, on a randomly initialised model of `config`; with the KV
/// cache (one token per step) or without it (the whole context every step),
/// with the model's matrices in `precision`.
pub fn bench_generate(
    config: &GptConfig,
    precision: Precision,
    prompt_tokens: usize,
    new_tokens: usize,
    cache: bool,
) -> Result<GenerateBench> {
    if prompt_tokens == 0 || prompt_tokens + new_tokens > config.block_size {
        return Err(Error::Invalid(format!(
            "--prompt-tokens {prompt_tokens} plus --new-tokens {new_tokens} must fit the context of {} (and the prompt be non-empty)",
            config.block_size
        )));
    }
    let device = Device::Cpu;
    let model = Gpt::new(config, 7, precision, &device)?;
    let mut rng = rand::rngs::StdRng::seed_from_u64(1);
    let mut context: Vec<u32> = (0..prompt_tokens)
        .map(|_| rng.random_range(0..config.vocab_size as u32))
        .collect();
    let argmax = |logits: &Tensor| -> Result<u32> {
        let last = logits.squeeze(0)?.get(logits.dim(1)? - 1)?;
        Ok(last.argmax(D::Minus1)?.to_scalar::<u32>()?)
    };
    let ids =
        |tokens: &[u32]| -> Result<Tensor> { Ok(Tensor::new(tokens, &device)?.unsqueeze(0)?) };
    // One untimed pass first: thread start-up and first-touch page faults.
    model.forward_cached(&ids(&context)?, &mut model.new_cache())?;
    let mut kv = model.new_cache();
    let t0 = Instant::now();
    let logits = if cache {
        model.forward_cached(&ids(&context)?, &mut kv)?
    } else {
        model.forward(&ids(&context)?, &mut Mode::Eval)?
    };
    let mut next = argmax(&logits)?;
    let prompt_s = t0.elapsed().as_secs_f64();
    let t1 = Instant::now();
    for _ in 1..new_tokens {
        context.push(next);
        let logits = if cache {
            model.forward_cached(&ids(&[next])?, &mut kv)?
        } else {
            model.forward(&ids(&context)?, &mut Mode::Eval)?.detach()
        };
        next = argmax(&logits)?;
    }
    let generate_s = t1.elapsed().as_secs_f64();
    Ok(GenerateBench {
        prompt_tokens_per_s: prompt_tokens as f64 / prompt_s,
        tokens_per_s: (new_tokens.saturating_sub(1)) as f64 / generate_s,
        weight_bytes: model
            .params()
            .iter()
            .map(|(_, p)| p.elem_count() * p.dtype().size_in_bytes())
            .sum(),
        peak_rss: peak_rss(),
    })
}

/// Memory traffic per second (bytes read plus bytes written) of the best of
/// `reps` copies of a `bytes`-long buffer.
pub fn copy_bandwidth(bytes: usize, reps: usize) -> f64 {
    let src = vec![1u8; bytes];
    let mut dst = vec![0u8; bytes];
    let mut best = f64::MAX;
    for _ in 0..reps {
        let t = Instant::now();
        dst.copy_from_slice(&src);
        std::hint::black_box(&mut dst);
        best = best.min(t.elapsed().as_secs_f64());
    }
    2.0 * bytes as f64 / best
}

/// The process's peak resident memory (`VmHWM` in /proc/self/status), in bytes.
pub fn peak_rss() -> Option<usize> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: usize = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}
