//! The generation loop: encode the prompt, predict, sample, append, repeat;
//! stream the new text as soon as it forms whole characters.

use super::Sampler;
use crate::model::Gpt;
use crate::nn::Mode;
use crate::tokenize::Tokenizer;
use crate::{Error, Result};
use candle_core::{DType, Tensor, D};

/// A finished generation.
#[derive(Debug, Clone, PartialEq)]
pub struct Generation {
    /// The generated text (prompt excluded).
    pub text: String,
    /// The generated token ids (prompt excluded).
    pub ids: Vec<u32>,
}

/// Generates up to `max_tokens` tokens after `prompt`, calling `on_text` with
/// each new piece of text. An empty prompt starts from `<|endoftext|>` (BPE)
/// or a newline (char). When the context fills, the oldest tokens are dropped.
pub fn generate(
    model: &Gpt,
    tokenizer: &Tokenizer,
    prompt: &str,
    max_tokens: usize,
    sampler: &mut Sampler,
    mut on_text: impl FnMut(&str),
) -> Result<Generation> {
    let mut context = if prompt.is_empty() {
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
    if let Some(bad) = context.iter().find(|&&id| id as usize >= vocab) {
        return Err(Error::Invalid(format!(
            "token id {bad} from the tokenizer is outside the model's vocabulary ({vocab}); \
             the tokenizer.json does not belong to this model"
        )));
    }
    let block = model.config().block_size;
    let device = model
        .params()
        .iter()
        .next()
        .map(|(_, v)| v.device().clone())
        .unwrap_or(candle_core::Device::Cpu);
    let mut ids = Vec::with_capacity(max_tokens);
    let mut emitted = 0;
    for _ in 0..max_tokens {
        let window = &context[context.len().saturating_sub(block)..];
        let input = Tensor::new(window, &device)?.unsqueeze(0)?;
        let logits = model.forward(&input, &mut Mode::Eval)?.detach();
        let last = logits.squeeze(0)?.get(window.len() - 1)?;
        let last: Vec<f32> = last
            .to_dtype(DType::F32)?
            .flatten_to(D::Minus1)?
            .to_vec1()?;
        let next = sampler.sample(&last);
        context.push(next);
        ids.push(next);
        let text = tokenizer.decode(&ids)?;
        if !text.ends_with('\u{FFFD}') && text.len() > emitted {
            on_text(&text[emitted..]);
            emitted = text.len();
        }
    }
    let text = tokenizer.decode(&ids)?;
    if text.len() > emitted {
        on_text(&text[emitted..]);
    }
    Ok(Generation { text, ids })
}
