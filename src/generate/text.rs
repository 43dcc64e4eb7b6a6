//! The generation loop: encode the prompt, process it once into the KV
//! cache, then predict, sample and feed one token per step, showing the text
//! as it forms. When prompt plus output outgrow the model's context, the
//! window slides: the oldest half of the context is dropped and the cache
//! rebuilt from the newer half (the caller is told once).

use super::{Sampler, TextModel, TextStream, Update};
use crate::nn::KvCache;
use crate::tokenize::Tokenizer;
use crate::{Error, Result};

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
    /// End at any of these token ids (besides `<|endoftext|>`): an open
    /// model's end-of-sequence and end-of-turn tokens.
    pub stop_ids: Vec<u32>,
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
    end_ids: Vec<u32>,
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
        model: &dyn TextModel,
        tokenizer: &Tokenizer,
        prompt_ids: Vec<u32>,
        options: &GenerateOptions,
        sampler: Sampler,
    ) -> Result<Self> {
        let vocab = model.vocab_size();
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
            block_size: model.context_length(),
            end_ids: tokenizer
                .end_of_text()
                .into_iter()
                .chain(options.stop_ids.iter().copied())
                .collect(),
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
        if self.end_ids.contains(&next) {
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
    model: &dyn TextModel,
    tokenizer: &Tokenizer,
    prompt: &str,
    options: &GenerateOptions,
    sampler: &mut Sampler,
    on_event: impl FnMut(Event),
) -> Result<Generation> {
    let prompt_ids = prompt_tokens(tokenizer, prompt)?;
    generate_from_ids(model, tokenizer, prompt_ids, options, sampler, on_event)
}

/// Generates after the tokens `prompt_ids` (a prompt already encoded, with
/// whatever start token the model wants), as [`generate`] does.
pub fn generate_from_ids(
    model: &dyn TextModel,
    tokenizer: &Tokenizer,
    prompt_ids: Vec<u32>,
    options: &GenerateOptions,
    sampler: &mut Sampler,
    mut on_event: impl FnMut(Event),
) -> Result<Generation> {
    // The sequence owns the sampler while it runs; it is handed back at the end.
    let owned = std::mem::replace(sampler, Sampler::new(sampler.params().clone())?);
    let mut sequence = Sequence::new(model, tokenizer, prompt_ids, options, owned)?;
    while sequence.finished().is_none() {
        if sequence.make_room() {
            on_event(Event::WindowSlid {
                block_size: model.context_length(),
            });
        }
        let pending = sequence.pending().to_vec();
        let last = model.next_logits(&pending, sequence.cache_mut())?;
        let step = sequence.accept(tokenizer, &last)?;
        if !step.text.is_empty() {
            on_event(Event::Text(&step.text));
        }
    }
    // The caller's sampler goes on from where this generation left it.
    std::mem::swap(sampler, &mut sequence.sampler);
    Ok(sequence.into_generation())
}
