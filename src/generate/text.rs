//! The generation loop: encode the prompt, process it once into the KV
//! cache, then predict, sample and feed one token per step, showing the text
//! as it forms. When prompt plus output outgrow the model's context, the
//! window slides: the oldest half of the context is dropped and the cache
//! rebuilt from the newer half (the caller is told once).

use super::{Sampler, TextStream, Update};
use crate::model::Gpt;
use crate::tokenize::Tokenizer;
use crate::{Error, Result};
use candle_core::{DType, Tensor, D};

/// Why a generation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FinishReason {
    /// A stop sequence or the end-of-text token.
    Stop,
    /// The token limit.
    Length,
}

/// A finished generation.
#[derive(Debug, Clone, PartialEq)]
pub struct Generation {
    /// The generated text (prompt excluded, cut before any stop sequence).
    pub text: String,
    /// The generated token ids (prompt excluded).
    pub ids: Vec<u32>,
    /// Tokens in the prompt.
    pub prompt_tokens: usize,
    /// Why it ended.
    pub finish_reason: FinishReason,
}

/// What to generate besides the sampling settings.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct GenerateOptions {
    /// At most this many new tokens.
    pub max_tokens: usize,
    /// End when the text contains any of these (they are left out).
    pub stop: Vec<String>,
}

/// Something the caller may want to show while generating.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event<'a> {
    /// New text.
    Text(&'a str),
    /// The context was full: the oldest tokens no longer fit (told once).
    WindowSlid {
        /// The model's context length.
        block_size: usize,
    },
}

/// Generates after `prompt`, calling `on_event` with each new piece of text.
/// An empty prompt starts from `<|endoftext|>` (BPE) or a newline (char).
pub fn generate(
    model: &Gpt,
    tokenizer: &Tokenizer,
    prompt: &str,
    options: &GenerateOptions,
    sampler: &mut Sampler,
    mut on_event: impl FnMut(Event),
) -> Result<Generation> {
    let prompt_ids = if prompt.is_empty() {
        let start = tokenizer
            .end_of_text()
            .or_else(|| tokenizer.inner().token_to_id("\n"))
            .ok_or_else(|| {
                Error::Invalid("give a prompt: this tokenizer has no start token".into())
            })?;
        vec![start]
    } else {
        tokenizer.encode(prompt)?
    };
    let vocab = model.config().vocab_size;
    if tokenizer.vocab_size() > vocab {
        return Err(Error::Invalid(format!(
            "the tokenizer has {} tokens but the model only {vocab}: tokenizer.json does not belong to this model",
            tokenizer.vocab_size()
        )));
    }
    let block = model.config().block_size;
    let device = model.device();
    let end_of_text = tokenizer.end_of_text();
    let mut context = prompt_ids.clone();
    let mut ids = Vec::with_capacity(options.max_tokens);
    let mut stream = TextStream::new(&options.stop);
    let mut cache = model.new_cache();
    // Tokens the model has not seen yet: the prompt first, then each new token.
    let mut pending = context.clone();
    let mut slid = false;
    let mut finish_reason = FinishReason::Length;
    let mut stopped_at = None;
    let mut text = String::new();
    for _ in 0..options.max_tokens {
        if cache.len() + pending.len() > block {
            if !slid {
                slid = true;
                on_event(Event::WindowSlid { block_size: block });
            }
            let keep = if cache.is_empty() {
                block
            } else {
                (block / 2).max(1)
            };
            cache.clear();
            pending = context[context.len() - keep.min(context.len())..].to_vec();
        }
        let input = Tensor::new(pending.as_slice(), &device)?.unsqueeze(0)?;
        let logits = model.forward_cached(&input, &mut cache)?;
        let last = logits.squeeze(0)?.get(pending.len() - 1)?;
        let last: Vec<f32> = last
            .to_dtype(DType::F32)?
            .flatten_to(D::Minus1)?
            .to_vec1()?;
        let next = sampler.sample(&last, &prompt_ids, &ids);
        if Some(next) == end_of_text {
            finish_reason = FinishReason::Stop;
            break;
        }
        context.push(next);
        ids.push(next);
        pending = vec![next];
        text = tokenizer.decode(&ids)?;
        match stream.update(&text) {
            Update::More(piece) => {
                if !piece.is_empty() {
                    on_event(Event::Text(&piece));
                }
            }
            Update::Stopped { piece, at } => {
                on_event(Event::Text(&piece));
                finish_reason = FinishReason::Stop;
                stopped_at = Some(at);
                break;
            }
        }
    }
    match stopped_at {
        Some(at) => text.truncate(at),
        None => {
            let rest = stream.finish(&text);
            if !rest.is_empty() {
                on_event(Event::Text(&rest));
            }
        }
    }
    Ok(Generation {
        text,
        ids,
        prompt_tokens: prompt_ids.len(),
        finish_reason,
    })
}
