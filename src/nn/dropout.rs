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
    /// `1 / (1 - p)` in training; returns `x` unchanged otherwise.
    pub fn dropout(&mut self, x: &Tensor, p: f64) -> Result<Tensor> {
        match self {
            Mode::Train(rng) if p > 0.0 => {
                let scale = 1.0 / (1.0 - p);
                let mask: Vec<f32> = (0..x.elem_count())
                    .map(|_| {
                        if rng.random::<f64>() < p {
                            0.0
                        } else {
                            scale as f32
                        }
                    })
                    .collect();
                let mask = Tensor::from_vec(mask, x.shape(), x.device())?.to_dtype(x.dtype())?;
                Ok(x.mul(&mask)?)
            }
            _ => Ok(x.clone()),
        }
    }
}
