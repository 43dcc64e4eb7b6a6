//! Attention maps: for every layer and head, how much each position of a
//! prompt attends to each earlier one; a chosen layer and head or their mean,
//! and the positions a query attends to most.

use super::next::{fits, pieces, prompt_ids};
use crate::model::{Gpt, OpenModel};
use crate::tokenize::Tokenizer;
use crate::{Error, Result};
use candle_core::{Device, Tensor};
use serde::Serialize;

/// A prompt's tokens and the attention weights over them.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AttentionMaps {
    /// The prompt's tokens, as text.
    pub tokens: Vec<String>,
    /// `attention[layer][head][query][key]`: each query row sums to 1.
    pub attention: Vec<Vec<Vec<Vec<f32>>>>,
}

/// One position a query attends to.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Attended {
    /// The key's position in the prompt.
    pub position: usize,
    /// Its token.
    pub token: String,
    /// The attention weight on it.
    pub weight: f32,
}

/// The attention weights of every layer and head of `model` on `prompt`.
pub fn attention_maps(model: &Gpt, tokenizer: &Tokenizer, prompt: &str) -> Result<AttentionMaps> {
    let ids = prompt_ids(model, tokenizer, prompt)?;
    let input = Tensor::new(ids.as_slice(), &Device::Cpu)?
        .to_device(&model.device())?
        .unsqueeze(0)?;
    let (_, layers) = model.forward_with_attention(&input)?;
    let attention = layers
        .iter()
        .map(|w| Ok(w.squeeze(0)?.to_dtype(candle_core::DType::F32)?.to_vec3()?))
        .collect::<Result<_>>()?;
    let tokens = pieces(tokenizer, &ids)?.iter().map(|p| p.text()).collect();
    Ok(AttentionMaps { tokens, attention })
}

/// The attention weights of every layer and head of an open model on
/// `prompt`, from the start token it puts first (a Llama's BOS is where
/// many heads rest their attention).
pub fn open_model_attention_maps(model: &OpenModel, prompt: &str) -> Result<AttentionMaps> {
    let ids = fits(model.model(), model.prompt_ids(prompt)?)?;
    if ids.is_empty() {
        return Err(Error::Invalid("give a prompt: it has no tokens".into()));
    }
    let attention = model.model().attention_maps(&ids)?;
    let tokens = pieces(model.tokenizer(), &ids)?
        .iter()
        .map(|p| p.text())
        .collect();
    Ok(AttentionMaps { tokens, attention })
}

impl AttentionMaps {
    /// Layers in the model.
    pub fn layers(&self) -> usize {
        self.attention.len()
    }

    /// Heads per layer.
    pub fn heads(&self) -> usize {
        self.attention.first().map_or(0, Vec::len)
    }

    /// The `[query][key]` map of `layer` and `head`, averaging over all
    /// layers or heads where one is not given.
    pub fn select(&self, layer: Option<usize>, head: Option<usize>) -> Result<Vec<Vec<f32>>> {
        check_index("--layer", layer, self.layers(), "layers")?;
        check_index("--head", head, self.heads(), "heads per layer")?;
        let n = self.tokens.len();
        let chosen: Vec<&Vec<Vec<f32>>> = self
            .attention
            .iter()
            .enumerate()
            .filter(|(l, _)| layer.is_none_or(|want| want == *l))
            .flat_map(|(_, heads)| {
                heads
                    .iter()
                    .enumerate()
                    .filter(|(h, _)| head.is_none_or(|want| want == *h))
                    .map(|(_, map)| map)
            })
            .collect();
        let scale = 1.0 / chosen.len() as f32;
        Ok((0..n)
            .map(|q| {
                (0..n)
                    .map(|k| chosen.iter().map(|m| m[q][k]).sum::<f32>() * scale)
                    .collect()
            })
            .collect())
    }

    /// The `top` positions that `query` attends to most in `map`, heaviest first.
    pub fn most_attended(
        &self,
        map: &[Vec<f32>],
        query: usize,
        top: usize,
    ) -> Result<Vec<Attended>> {
        check_index(
            "--query",
            Some(query),
            self.tokens.len(),
            "tokens in the prompt",
        )?;
        let row = &map[query];
        let mut order: Vec<usize> = (0..row.len()).collect();
        order.sort_by(|&a, &b| row[b].total_cmp(&row[a]).then(a.cmp(&b)));
        Ok(order
            .into_iter()
            .take(top)
            .map(|position| Attended {
                position,
                token: self.tokens[position].clone(),
                weight: row[position],
            })
            .collect())
    }
}

/// Refuses an index past `count` `things` (layers, heads or prompt
/// positions), naming the flag.
fn check_index(flag: &str, index: Option<usize>, count: usize, things: &str) -> Result<()> {
    match index {
        Some(i) if i >= count => Err(Error::Invalid(format!(
            "{flag} {i} is out of range: there are {count} {things} (0 to {})",
            count.saturating_sub(1)
        ))),
        _ => Ok(()),
    }
}
