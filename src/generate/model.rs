//! What generation needs of a language model: next-token logits after some
//! tokens, with a KV cache. seer's own GPT and the open models (Llama
//! family, Gemma 3) both provide it, so every command that generates runs
//! either.

use crate::model::{Gpt, Llama, Logits};
use crate::nn::KvCache;
use crate::{Error, Result};
use candle_core::{DType, Tensor};

/// A causal language model that generation can drive (from any thread).
pub trait TextModel: Sync {
    /// Token ids the model has logits for.
    fn vocab_size(&self) -> usize;
    /// The most positions a cache holds.
    fn context_length(&self) -> usize;
    /// An empty KV cache.
    fn new_cache(&self) -> KvCache;
    /// Runs `tokens` after what `cache` holds (they join it) and returns the
    /// logits `which` asks for: the next token's, or every position's
    /// (row after row, `vocab_size` each).
    fn logits(&self, tokens: &[u32], cache: &mut KvCache, which: Logits) -> Result<Vec<f32>>;

    /// The logits for the token after the last of `tokens`.
    fn next_logits(&self, tokens: &[u32], cache: &mut KvCache) -> Result<Vec<f32>> {
        self.logits(tokens, cache, Logits::Last)
    }

    /// One decode step of several sequences: `tokens[i]` runs after what
    /// `caches[i]` holds, and row `i` of the result is its next token's
    /// logits. (A model that can batch them overrides this one-by-one loop.)
    fn next_logits_batch(
        &self,
        tokens: &[u32],
        caches: &mut [&mut KvCache],
    ) -> Result<Vec<Vec<f32>>> {
        check_batch(tokens, caches)?;
        tokens
            .iter()
            .zip(caches.iter_mut())
            .map(|(&t, cache)| self.next_logits(&[t], cache))
            .collect()
    }
}

/// One token per cache, and at least one.
fn check_batch(tokens: &[u32], caches: &[&mut KvCache]) -> Result<()> {
    if tokens.len() != caches.len() || tokens.is_empty() {
        return Err(Error::Invalid(format!(
            "{} tokens for {} cached sequences",
            tokens.len(),
            caches.len()
        )));
    }
    Ok(())
}

impl TextModel for Gpt {
    fn vocab_size(&self) -> usize {
        self.config().vocab_size
    }

    fn context_length(&self) -> usize {
        self.config().block_size
    }

    fn new_cache(&self) -> KvCache {
        Gpt::new_cache(self)
    }

    fn logits(&self, tokens: &[u32], cache: &mut KvCache, which: Logits) -> Result<Vec<f32>> {
        let input = Tensor::new(tokens, &self.device())?.unsqueeze(0)?;
        let logits = self.forward_cached(&input, cache)?.squeeze(0)?;
        let logits = match which {
            Logits::Last => logits.get(tokens.len() - 1)?,
            Logits::All => logits,
        };
        Ok(logits.to_dtype(DType::F32)?.flatten_all()?.to_vec1()?)
    }

    fn next_logits_batch(
        &self,
        tokens: &[u32],
        caches: &mut [&mut KvCache],
    ) -> Result<Vec<Vec<f32>>> {
        // forward_cached_batch checks the batch itself.
        Ok(self
            .forward_cached_batch(tokens, caches)?
            .to_dtype(DType::F32)?
            .to_vec2()?)
    }
}

impl TextModel for Llama {
    fn vocab_size(&self) -> usize {
        self.config().vocab_size
    }

    fn context_length(&self) -> usize {
        self.context()
    }

    fn new_cache(&self) -> KvCache {
        Llama::new_cache(self)
    }

    fn logits(&self, tokens: &[u32], cache: &mut KvCache, which: Logits) -> Result<Vec<f32>> {
        self.forward(tokens, cache, which)
    }
}
