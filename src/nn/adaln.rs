//! Adaptive LayerNorm (DiT's adaLN-Zero): a conditioning vector sets the
//! shift, scale and gate of each sub-layer. The projection starts at zero,
//! so every block starts as the identity.

use super::{Init, Linear, ParamBuilder};
use crate::Result;
use candle_core::{Tensor, D};

/// `silu(c) · W + b`, split into `chunks` vectors of `dim`.
#[derive(Debug, Clone)]
pub struct AdaLn {
    linear: Linear,
    chunks: usize,
    dim: usize,
}

impl AdaLn {
    /// The projection from `cond_dim` to `chunks · dim`, zero-initialised.
    pub fn new(p: &ParamBuilder, cond_dim: usize, dim: usize, chunks: usize) -> Result<Self> {
        Ok(Self {
            linear: Linear::new(p, cond_dim, chunks * dim, true, Init::Zeros)?,
            chunks,
            dim,
        })
    }

    /// The `chunks` modulation vectors for conditioning `c` (`[batch, cond_dim]`),
    /// each `[batch, 1, dim]` to broadcast over a sequence.
    pub fn forward(&self, c: &Tensor) -> Result<Vec<Tensor>> {
        let all = self.linear.forward(&c.silu()?)?.unsqueeze(1)?;
        (0..self.chunks)
            .map(|i| Ok(all.narrow(D::Minus1, i * self.dim, self.dim)?))
            .collect()
    }
}

/// `x · (1 + scale) + shift`, with `shift` and `scale` broadcast over the sequence.
pub fn modulate(x: &Tensor, shift: &Tensor, scale: &Tensor) -> Result<Tensor> {
    Ok(x.broadcast_mul(&(scale + 1.0)?)?.broadcast_add(shift)?)
}
