//! Choosing the next token from the model's logits.
//!
//! In order: repetition penalty (transformers' semantics, over the prompt
//! and the generated tokens), frequency and presence penalties (OpenAI's
//! semantics, over the generated tokens), temperature (0 picks the most
//! likely token), then the top-k, top-p (nucleus) and min-p filters, then a
//! draw from a seeded RNG.

use crate::{Error, Result};
use rand::{Rng, SeedableRng};
use std::collections::HashMap;

/// How to turn logits into a token.
#[derive(Debug, Clone, PartialEq)]
pub struct SamplingParams {
    /// Divide logits by this; 0 picks the most likely token.
    pub temperature: f64,
    /// Keep only the `k` most likely tokens.
    pub top_k: Option<usize>,
    /// Keep the most likely tokens whose probabilities add up to `p`, in (0, 1].
    pub top_p: Option<f64>,
    /// Keep tokens at least `min_p` times as likely as the most likely one, in [0, 1].
    pub min_p: Option<f64>,
    /// Divide positive (multiply negative) logits of tokens already in the
    /// prompt or output by this; 1 is off.
    pub repetition_penalty: f64,
    /// Subtract this times a token's count in the output so far.
    pub frequency_penalty: f64,
    /// Subtract this once from every token that appeared in the output so far.
    pub presence_penalty: f64,
    /// RNG seed: the same seed gives the same text.
    pub seed: u64,
}

impl Default for SamplingParams {
    fn default() -> Self {
        Self {
            temperature: 0.8,
            top_k: None,
            top_p: None,
            min_p: None,
            repetition_penalty: 1.0,
            frequency_penalty: 0.0,
            presence_penalty: 0.0,
            seed: 0,
        }
    }
}

impl SamplingParams {
    /// Checks the values; errors name the flag.
    pub fn validate(&self) -> Result<()> {
        let bad = |msg: String| Err(Error::Invalid(msg));
        if !(self.temperature >= 0.0 && self.temperature.is_finite()) {
            return bad(format!(
                "--temperature {} must be a finite number >= 0",
                self.temperature
            ));
        }
        if let Some(p) = self.top_p {
            if !(p > 0.0 && p <= 1.0) {
                return bad(format!("--top-p {p} must be in (0, 1]"));
            }
        }
        if let Some(p) = self.min_p {
            if !(0.0..=1.0).contains(&p) {
                return bad(format!("--min-p {p} must be in [0, 1]"));
            }
        }
        if self.top_k == Some(0) {
            return bad("--top-k must be at least 1 (leave it out to keep every token)".into());
        }
        if !(self.repetition_penalty > 0.0 && self.repetition_penalty.is_finite()) {
            return bad(format!(
                "--repetition-penalty {} must be a positive number (1 is off)",
                self.repetition_penalty
            ));
        }
        for (flag, v) in [
            ("--frequency-penalty", self.frequency_penalty),
            ("--presence-penalty", self.presence_penalty),
        ] {
            if !(-2.0..=2.0).contains(&v) {
                return bad(format!("{flag} {v} must be in [-2, 2]"));
            }
        }
        Ok(())
    }
}

/// Draws tokens from logits.
pub struct Sampler {
    params: SamplingParams,
    rng: rand::rngs::StdRng,
}

impl Sampler {
    /// A sampler seeded from `params.seed`.
    pub fn new(params: SamplingParams) -> Result<Self> {
        params.validate()?;
        let rng = rand::rngs::StdRng::seed_from_u64(params.seed);
        Ok(Self { params, rng })
    }

    /// The sampling settings.
    pub fn params(&self) -> &SamplingParams {
        &self.params
    }

    /// The next token for `logits` (one score per vocabulary entry), given the
    /// prompt's tokens and those generated so far (for the penalties).
    pub fn sample(&mut self, logits: &[f32], prompt: &[u32], generated: &[u32]) -> u32 {
        let scores = self.penalised(logits, prompt, generated);
        let argmax = || {
            scores
                .iter()
                .enumerate()
                .fold((0, f64::NEG_INFINITY), |best, (i, &l)| {
                    if l > best.1 {
                        (i, l)
                    } else {
                        best
                    }
                })
                .0 as u32
        };
        if self.params.temperature == 0.0 {
            return argmax();
        }
        let candidates = self.candidates(&scores);
        if candidates.is_empty() {
            return argmax();
        }
        let total: f64 = candidates.iter().map(|c| c.1).sum();
        let mut r = self.rng.random::<f64>() * total;
        for &(id, p) in &candidates {
            r -= p;
            if r <= 0.0 {
                return id;
            }
        }
        candidates.last().map(|c| c.0).unwrap_or_else(argmax)
    }

    /// The logits after the repetition, frequency and presence penalties.
    fn penalised(&self, logits: &[f32], prompt: &[u32], generated: &[u32]) -> Vec<f64> {
        let p = &self.params;
        let mut scores: Vec<f64> = logits.iter().map(|&l| l as f64).collect();
        if p.repetition_penalty != 1.0 {
            let mut seen = vec![false; scores.len()];
            for &id in prompt.iter().chain(generated) {
                if let Some(s) = seen.get_mut(id as usize) {
                    *s = true;
                }
            }
            for (score, _) in scores.iter_mut().zip(&seen).filter(|(_, &s)| s) {
                *score = if *score < 0.0 {
                    *score * p.repetition_penalty
                } else {
                    *score / p.repetition_penalty
                };
            }
        }
        if p.frequency_penalty != 0.0 || p.presence_penalty != 0.0 {
            let mut counts: HashMap<u32, usize> = HashMap::new();
            for &id in generated {
                *counts.entry(id).or_default() += 1;
            }
            for (id, count) in counts {
                if let Some(score) = scores.get_mut(id as usize) {
                    *score -= count as f64 * p.frequency_penalty + p.presence_penalty;
                }
            }
        }
        scores
    }

    /// The tokens left after temperature, top-k, top-p and min-p, with their
    /// (unnormalised) probabilities, most likely first.
    pub fn candidates(&self, scores: &[f64]) -> Vec<(u32, f64)> {
        let p = &self.params;
        let mut ranked: Vec<(u32, f64)> = scores
            .iter()
            .enumerate()
            .filter(|(_, s)| s.is_finite())
            .map(|(i, &s)| (i as u32, s / p.temperature))
            .collect();
        ranked.sort_by(|a, b| b.1.total_cmp(&a.1));
        if let Some(k) = p.top_k {
            ranked.truncate(k);
        }
        let Some(max) = ranked.first().map(|c| c.1) else {
            return ranked;
        };
        for c in &mut ranked {
            c.1 = (c.1 - max).exp();
        }
        let total: f64 = ranked.iter().map(|c| c.1).sum();
        if let Some(top_p) = p.top_p {
            let mut cumulative = 0.0;
            let keep = ranked
                .iter()
                .take_while(|c| {
                    let before = cumulative;
                    cumulative += c.1 / total;
                    before < top_p
                })
                .count();
            ranked.truncate(keep.max(1));
        }
        if let Some(min_p) = p.min_p {
            // The most likely token has weight 1 after the shift above.
            ranked.retain(|c| c.1 >= min_p);
        }
        ranked
    }
}
