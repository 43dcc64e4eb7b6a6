//! Choosing the next token: temperature (0 = greedy) and top-k, from a seeded RNG.

use crate::{Error, Result};
use rand::{Rng, SeedableRng};

/// How to turn logits into a token.
#[derive(Debug, Clone, PartialEq)]
pub struct SamplingParams {
    /// Divide logits by this; 0 picks the most likely token.
    pub temperature: f64,
    /// Keep only the `k` most likely tokens (`None` keeps all).
    pub top_k: Option<usize>,
    /// RNG seed: the same seed gives the same text.
    pub seed: u64,
}

impl SamplingParams {
    /// Checks the values; errors name the flag.
    pub fn validate(&self) -> Result<()> {
        if !(self.temperature >= 0.0 && self.temperature.is_finite()) {
            return Err(Error::Invalid(format!(
                "--temperature {} must be a finite number >= 0",
                self.temperature
            )));
        }
        if self.top_k == Some(0) {
            return Err(Error::Invalid("--top-k must be at least 1".into()));
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

    /// The next token for `logits` (one score per vocabulary entry).
    pub fn sample(&mut self, logits: &[f32]) -> u32 {
        let argmax = || {
            logits
                .iter()
                .enumerate()
                .fold((0, f32::NEG_INFINITY), |best, (i, &l)| {
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
        let mut candidates: Vec<(u32, f64)> = logits
            .iter()
            .enumerate()
            .map(|(i, &l)| (i as u32, l as f64 / self.params.temperature))
            .collect();
        if let Some(k) = self.params.top_k {
            if k < candidates.len() {
                candidates.select_nth_unstable_by(k - 1, |a, b| b.1.total_cmp(&a.1));
                candidates.truncate(k);
            }
        }
        let max = candidates
            .iter()
            .map(|c| c.1)
            .fold(f64::NEG_INFINITY, f64::max);
        let weights: Vec<f64> = candidates.iter().map(|c| (c.1 - max).exp()).collect();
        let total: f64 = weights.iter().sum();
        if !(total.is_finite() && total > 0.0) {
            return argmax();
        }
        let mut r = self.rng.random::<f64>() * total;
        for (c, w) in candidates.iter().zip(&weights) {
            r -= w;
            if r <= 0.0 {
                return c.0;
            }
        }
        candidates.last().map(|c| c.0).unwrap_or_else(argmax)
    }
}
