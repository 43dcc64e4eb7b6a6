//! The generation loop: encode the prompt, process it once into the KV
//! cache, then predict, sample and feed one token per step, showing the text
//! as it forms. When prompt plus output outgrow the model's context, the
//! window slides: the oldest half of the context is dropped and the cache
//! rebuilt from the newer half (the caller is told once).

use super::{Sampler, TextStream, Update};
use crate::model::Gpt;
use crate::nn::KvCache;
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

/// The token ids of `prompt`; an empty prompt starts from `<|endoftext|>`
/// (BPE) or a newline (char).
pub fn prompt_tokens(tokenizer: &Tokenizer, prompt: &str) -> Result<Vec<u32>> {
    if !prompt.is_empty() {
        return tokenizer.encode(prompt);
    }
    let start = tokenizer
        .end_of_text()
        .or_else(|| tokenizer.inner().token_to_id("\n"))
        .ok_or_else(|| Error::Invalid("give a prompt: this tokenizer has no start token".into()))?;
    Ok(vec![start])
}

/// One generation in progress, advanced a token at a time by whoever runs
/// the model ([`generate`] alone, or a server batching many): it owns the
/// KV cache, the sampler and the text shown so far.
pub struct Sequence {
    prompt_ids: Vec<u32>,
    context: Vec<u32>,
    ids: Vec<u32>,
    /// Tokens the model has not seen yet: the prompt first, then each new token.
    pending: Vec<u32>,
    cache: KvCache,
    sampler: Sampler,
    stream: TextStream,
    max_tokens: usize,
    block_size: usize,
    end_of_text: Option<u32>,
    text: String,
    slid: bool,
    finish_reason: Option<FinishReason>,
}

/// What one step of a [`Sequence`] produced.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Step {
    /// Text that is now safe to show (possibly empty).
    pub text: String,
    /// Set when the generation ended with this step.
    pub finished: Option<FinishReason>,
}

impl Sequence {
    /// A generation of `model` after `prompt_ids` (see [`prompt_tokens`]).
    pub fn new(
        model: &Gpt,
        tokenizer: &Tokenizer,
        prompt_ids: Vec<u32>,
        options: &GenerateOptions,
        sampler: Sampler,
    ) -> Result<Self> {
        let vocab = model.config().vocab_size;
        if tokenizer.vocab_size() > vocab {
            return Err(Error::Invalid(format!(
                "the tokenizer has {} tokens but the model only {vocab}: tokenizer.json does not belong to this model",
                tokenizer.vocab_size()
            )));
        }
        if prompt_ids.is_empty() {
            return Err(Error::Invalid("the prompt has no tokens".into()));
        }
        Ok(Self {
            context: prompt_ids.clone(),
            pending: prompt_ids.clone(),
            prompt_ids,
            ids: Vec::with_capacity(options.max_tokens),
            cache: model.new_cache(),
            sampler,
            stream: TextStream::new(&options.stop),
            max_tokens: options.max_tokens,
            block_size: model.config().block_size,
            end_of_text: tokenizer.end_of_text(),
            text: String::new(),
            slid: false,
            finish_reason: (options.max_tokens == 0).then_some(FinishReason::Length),
        })
    }

    /// Makes room for the tokens still to feed: when they would pass the
    /// context, the oldest tokens are dropped (the newer half of the context
    /// is kept) and the cache is rebuilt from the rest. Returns true the
    /// first time this happens.
    pub fn make_room(&mut self) -> bool {
        if self.cache.len() + self.pending.len() <= self.block_size {
            return false;
        }
        let keep = if self.cache.is_empty() {
            self.block_size
        } else {
            (self.block_size / 2).max(1)
        };
        self.cache.clear();
        self.pending = self.context[self.context.len() - keep.min(self.context.len())..].to_vec();
        !std::mem::replace(&mut self.slid, true)
    }

    /// The tokens the model must see next (call [`Sequence::make_room`] first).
    pub fn pending(&self) -> &[u32] {
        &self.pending
    }

    /// The sequence's KV cache.
    pub fn cache_mut(&mut self) -> &mut KvCache {
        &mut self.cache
    }

    /// Samples the next token from the logits after the pending tokens, and
    /// returns the text it made safe to show.
    pub fn accept(&mut self, tokenizer: &Tokenizer, logits: &[f32]) -> Result<Step> {
        let next = self.sampler.sample(logits, &self.prompt_ids, &self.ids);
        if Some(next) == self.end_of_text {
            // Text held back for a stop sequence that never came is shown now.
            let rest = self.stream.finish(&self.text);
            return Ok(self.end(FinishReason::Stop, rest));
        }
        self.context.push(next);
        self.ids.push(next);
        self.pending = vec![next];
        self.text = tokenizer.decode(&self.ids)?;
        match self.stream.update(&self.text) {
            Update::Stopped { piece, at } => {
                self.text.truncate(at);
                Ok(self.end(FinishReason::Stop, piece))
            }
            Update::More(piece) if self.ids.len() >= self.max_tokens => {
                let rest = self.stream.finish(&self.text);
                Ok(self.end(FinishReason::Length, piece + &rest))
            }
            Update::More(piece) => Ok(Step {
                text: piece,
                finished: None,
            }),
        }
    }

    fn end(&mut self, reason: FinishReason, text: String) -> Step {
        self.finish_reason = Some(reason);
        Step {
            text,
            finished: Some(reason),
        }
    }

    /// Why it ended, once it has.
    pub fn finished(&self) -> Option<FinishReason> {
        self.finish_reason
    }

    /// Tokens in the prompt.
    pub fn prompt_len(&self) -> usize {
        self.prompt_ids.len()
    }

    /// Tokens generated so far.
    pub fn generated_len(&self) -> usize {
        self.ids.len()
    }

    /// The result (call once it has finished).
    pub fn into_generation(self) -> Generation {
        Generation {
            text: self.text,
            ids: self.ids,
            prompt_tokens: self.prompt_ids.len(),
            finish_reason: self.finish_reason.unwrap_or(FinishReason::Length),
        }
    }
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
    let prompt_ids = prompt_tokens(tokenizer, prompt)?;
    // The sequence owns the sampler while it runs; it is handed back at the end.
    let owned = std::mem::replace(sampler, Sampler::new(sampler.params().clone())?);
    let mut sequence = Sequence::new(model, tokenizer, prompt_ids, options, owned)?;
    let device = model.device();
    while sequence.finished().is_none() {
        if sequence.make_room() {
            on_event(Event::WindowSlid {
                block_size: model.config().block_size,
            });
        }
        let pending = sequence.pending().to_vec();
        let input = Tensor::new(pending.as_slice(), &device)?.unsqueeze(0)?;
        let logits = model.forward_cached(&input, sequence.cache_mut())?;
        let last: Vec<f32> = logits
            .squeeze(0)?
            .get(pending.len() - 1)?
            .to_dtype(DType::F32)?
            .flatten_to(D::Minus1)?
            .to_vec1()?;
        let step = sequence.accept(tokenizer, &last)?;
        if !step.text.is_empty() {
            on_event(Event::Text(&step.text));
        }
    }
    // The caller's sampler goes on from where this generation left it.
    std::mem::swap(sampler, &mut sequence.sampler);
    Ok(sequence.into_generation())
}
