//! Perplexity on held-out text, measured as `llama-perplexity` measures it:
//! the tokens are cut into non-overlapping windows of `ctx` tokens, each
//! window runs from an empty cache (its first token replaced by the model's
//! beginning-of-sequence token when it has one), and only the second half of
//! each window is scored, so that every scored token has at least `ctx/2`
//! tokens of context.

use crate::generate::TextModel;
use crate::model::Logits;
use crate::{Error, Result};

/// The result of [`perplexity`].
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Perplexity {
    /// exp of the mean negative log-likelihood of the scored tokens.
    pub perplexity: f64,
    /// The mean negative log-likelihood (nats per token).
    pub mean_nll: f64,
    /// Windows run.
    pub windows: usize,
    /// Tokens scored.
    pub scored: usize,
    /// Tokens per window.
    pub ctx: usize,
}

/// The perplexity of `model` on `tokens` in windows of `ctx` tokens (at
/// most `max_windows` of them); `bos` replaces each window's first token.
/// `on_window` is called with each window's number as it finishes.
pub fn perplexity(
    model: &dyn TextModel,
    tokens: &[u32],
    ctx: usize,
    bos: Option<u32>,
    max_windows: Option<usize>,
    mut on_window: impl FnMut(usize),
) -> Result<Perplexity> {
    if ctx < 4 || ctx > model.context_length() {
        return Err(Error::Invalid(format!(
            "--ctx {ctx}: windows must be 4 to {} tokens (the model's context)",
            model.context_length()
        )));
    }
    let available = tokens.len() / ctx;
    let windows = max_windows.map_or(available, |m| m.min(available));
    if windows == 0 {
        return Err(Error::Invalid(format!(
            "the text has {} tokens, fewer than one window of --ctx {ctx}",
            tokens.len()
        )));
    }
    let vocab = model.vocab_size();
    let first_scored = ctx / 2;
    let (mut nll, mut scored) = (0.0f64, 0usize);
    for w in 0..windows {
        let mut window = tokens[w * ctx..(w + 1) * ctx].to_vec();
        if let Some(bos) = bos {
            window[0] = bos;
        }
        let mut cache = model.new_cache();
        let logits = model.logits(&window, &mut cache, Logits::All)?;
        // Position j's logits predict token j + 1.
        for j in first_scored..ctx - 1 {
            let row = &logits[j * vocab..(j + 1) * vocab];
            let target = tokens[w * ctx + j + 1] as usize;
            let max = row.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v));
            let log_sum: f64 = row
                .iter()
                .map(|&v| ((v - max) as f64).exp())
                .sum::<f64>()
                .ln();
            nll += log_sum - (row[target] - max) as f64;
            scored += 1;
        }
        on_window(w + 1);
    }
    let mean_nll = nll / scored as f64;
    Ok(Perplexity {
        perplexity: mean_nll.exp(),
        mean_nll,
        windows,
        scored,
        ctx,
    })
}
