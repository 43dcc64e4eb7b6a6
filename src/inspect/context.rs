//! How much a caption token's state depends on its context: two captions
//! of the same length (say, with the colours swapped) encoded side by side,
//! and the cosine between their states position by position. A state that
//! barely changes when its neighbours do ("circle" in "a red circle ..."
//! against "a blue circle ...") is a bag-of-words state: a patch that reads
//! it through cross-attention cannot tell which colour the shape was given.

use crate::model::{normalize, ImageModel};
use crate::nn::Mode;
use crate::{Error, Result};
use candle_core::{IndexOp, Tensor, D};
use serde::Serialize;

/// The two captions' states compared, position by position.
#[derive(Debug, Clone, Serialize)]
pub struct ContextComparison {
    /// The first caption's tokens.
    pub tokens_a: Vec<String>,
    /// The second caption's tokens.
    pub tokens_b: Vec<String>,
    /// Cosine between the caption encoder's states at each position.
    pub encoder: Vec<f32>,
    /// Cosine between the states the denoiser cross-attends to (after its
    /// caption mix), when the model has a denoiser.
    pub denoiser: Option<Vec<f32>>,
    /// Cosine between the pooled caption embeddings.
    pub pooled: f32,
}

/// Encodes captions `a` and `b` with `model` and compares their states.
/// The captions must split into the same number of tokens.
pub fn compare_contexts(model: &ImageModel, a: &str, b: &str) -> Result<ContextComparison> {
    let (ids_a, _) = model.caption_ids(a)?;
    let (ids_b, _) = model.caption_ids(b)?;
    if ids_a.len() != ids_b.len() {
        return Err(Error::Invalid(format!(
            "the captions split into {} and {} tokens: compare captions of the same length (e.g. with words swapped)",
            ids_a.len(),
            ids_b.len()
        )));
    }
    let features = model
        .text_encoder
        .encode(&[ids_a.clone(), ids_b.clone()], &mut Mode::Eval)?;
    let encoder = cosines(&features.states)?;
    let denoiser = match &model.denoiser {
        Some(dit) => Some(cosines(&dit.caption_context(&features)?)?),
        None => None,
    };
    let pooled = cosines(&features.pooled)?[0];
    let names = |ids: &[u32]| -> Vec<String> {
        ids.iter()
            .map(|&id| model.tokenizer.inner().id_to_token(id).unwrap_or_default())
            .collect()
    };
    Ok(ContextComparison {
        tokens_a: names(&ids_a),
        tokens_b: names(&ids_b),
        encoder,
        denoiser,
        pooled,
    })
}

/// Cosine between item 0's and item 1's rows of `x` (`[2, ..., width]`):
/// one per position for states, a single one for pooled embeddings.
fn cosines(x: &Tensor) -> Result<Vec<f32>> {
    let unit = normalize(x)?;
    let dot = (unit.i(0)? * unit.i(1)?)?.sum(D::Minus1)?;
    Ok(dot.flatten_all()?.to_vec1()?)
}
