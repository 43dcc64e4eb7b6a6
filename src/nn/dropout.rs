//! Training or inference mode, and dropout with reproducible masks.
//!
//! Masks come from an RNG seeded by the caller (the trainer seeds it from the
//! run seed and the step), so a resumed run drops the same units.

use crate::Result;
use candle_core::Tensor;
use rand::{Rng, SeedableRng};

/// Whether a forward pass trains (dropout active) or infers.
pub enum Mode {
    /// Inference: dropout is the identity.
    Eval,
    /// Training: dropout masks drawn from this RNG.
    Train(Box<rand::rngs::StdRng>),
}

impl Mode {
    /// Training mode with masks drawn from an RNG seeded with `seed`.
    pub fn train(seed: u64) -> Self {
        Mode::Train(Box::new(rand::rngs::StdRng::seed_from_u64(seed)))
    }

    /// A fresh seed for a kernel's own dropout mask in training; `None` in inference.
    pub fn seed(&mut self) -> Option<u64> {
        match self {
            Mode::Train(rng) => Some(rng.random()),
            Mode::Eval => None,
        }
    }

    /// Zeroes each element of `x` with probability `p` and scales the rest by
    /// `1 / (1 - p)` in training (seer's dropout kernel, its mask drawn from
    /// this mode's RNG); returns `x` unchanged otherwise.
    pub fn dropout(&mut self, x: &Tensor, p: f64) -> Result<Tensor> {
        match self.seed() {
            Some(seed) if p > 0.0 => Ok(crate::kernels::dropout(x, p, seed)?),
            _ => Ok(x.clone()),
        }
    }
}
