//! The next-token distribution after a prompt: the full softmax of the
//! model's last logits (temperature 1, nothing filtered), most likely first.

use super::tokens::{token_piece, TokenPiece};
use crate::generate::{prompt_tokens, TextModel};
use crate::tokenize::Tokenizer;
use crate::{Error, Result};
use serde::Serialize;

/// One candidate next token.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NextToken {
    /// Its text (bytes as `<0xE2>` when not whole characters).
    pub token: String,
    /// Its id.
    pub id: u32,
    /// Its probability under the full softmax.
    pub prob: f64,
}

/// The prompt's tokens and the most likely next tokens.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NextTokens {
    /// The prompt's tokens, as text.
    pub prompt_tokens: Vec<String>,
    /// The `top` most likely next tokens, most likely first.
    pub next: Vec<NextToken>,
}

/// The prompt's token ids ([`prompt_tokens`]: an empty prompt starts from
/// `<|endoftext|>`, or a newline for a character model), refusing one longer
/// than the model's context.
pub fn prompt_ids(model: &dyn TextModel, tokenizer: &Tokenizer, prompt: &str) -> Result<Vec<u32>> {
    fits(model, prompt_tokens(tokenizer, prompt)?)
}

/// `ids`, refused when longer than the model's context.
pub fn fits(model: &dyn TextModel, ids: Vec<u32>) -> Result<Vec<u32>> {
    let context = model.context_length();
    if ids.len() > context {
        return Err(Error::Invalid(format!(
            "the prompt is {} tokens, more than the model's context of {context}: shorten it",
            ids.len()
        )));
    }
    Ok(ids)
}

/// The next-token probabilities after `ids`, for every token of the
/// vocabulary, from the model's logits at the last position.
pub fn next_token_probs(model: &dyn TextModel, ids: &[u32]) -> Result<Vec<f64>> {
    let last = model.next_logits(ids, &mut model.new_cache())?;
    Ok(softmax(&last))
}

/// The `top` most likely next tokens after the prompt `ids` (see
/// [`prompt_ids`]).
pub fn next_tokens(
    model: &dyn TextModel,
    tokenizer: &Tokenizer,
    ids: &[u32],
    top: usize,
) -> Result<NextTokens> {
    let probs = next_token_probs(model, ids)?;
    let mut order: Vec<usize> = (0..probs.len()).collect();
    order.sort_by(|&a, &b| probs[b].total_cmp(&probs[a]).then(a.cmp(&b)));
    let next = order
        .into_iter()
        .take(top)
        .map(|id| {
            let id = id as u32;
            Ok(NextToken {
                token: token_piece(tokenizer, id)?.text(),
                id,
                prob: probs[id as usize],
            })
        })
        .collect::<Result<_>>()?;
    let prompt_tokens = ids
        .iter()
        .map(|&id| Ok(token_piece(tokenizer, id)?.text()))
        .collect::<Result<_>>()?;
    Ok(NextTokens {
        prompt_tokens,
        next,
    })
}

/// Softmax in f64, stable against large logits.
fn softmax(logits: &[f32]) -> Vec<f64> {
    let max = logits.iter().fold(f32::NEG_INFINITY, |m, &x| m.max(x)) as f64;
    let exps: Vec<f64> = logits.iter().map(|&x| (x as f64 - max).exp()).collect();
    let sum: f64 = exps.iter().sum();
    exps.into_iter().map(|e| e / sum).collect()
}

/// The pieces of `ids`, for display.
pub fn pieces(tokenizer: &Tokenizer, ids: &[u32]) -> Result<Vec<TokenPiece>> {
    ids.iter().map(|&id| token_piece(tokenizer, id)).collect()
}
