//! An exponential moving average of a model's weights, the copy diffusion
//! models sample with: `shadow ← d·shadow + (1 − d)·weights` after every
//! step, with `d` warming up as `min(decay, (1 + step) / (10 + step))` so
//! that the average does not drag the first random weights along.

use crate::nn::Params;
use crate::{Error, Result};
use candle_core::Var;

/// The moving average of one set of parameters, kept in another.
pub struct Ema {
    decay: f64,
    pairs: Vec<(Var, Var)>,
}

impl Ema {
    /// Averages `live` into `shadow` (same names and shapes); `shadow`
    /// starts as a copy of `live`.
    pub fn new(live: &Params, shadow: &Params, decay: f64) -> Result<Self> {
        if !(0.0..1.0).contains(&decay) {
            return Err(Error::Invalid(format!(
                "ema decay must be in [0, 1), not {decay}"
            )));
        }
        let pairs = live
            .iter()
            .map(|(name, var)| {
                let copy = shadow
                    .get(name)
                    .filter(|s| s.shape() == var.shape())
                    .ok_or_else(|| {
                        Error::Invalid(format!(
                            "ema: no parameter '{name}' of shape {:?} to average into",
                            var.dims()
                        ))
                    })?;
                copy.set(var.as_tensor())?;
                Ok((var.clone(), copy.clone()))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self { decay, pairs })
    }

    /// Moves the average towards the current weights after optimizer step `step` (0-based).
    pub fn update(&self, step: u64) -> Result<()> {
        let d = self.decay.min((1.0 + step as f64) / (10.0 + step as f64));
        for (live, shadow) in &self.pairs {
            let mixed = ((shadow.as_tensor() * d)? + (live.as_tensor() * (1.0 - d))?)?;
            shadow.set(&mixed)?;
        }
        Ok(())
    }
}
