//! Adaptive LayerNorm (DiT's adaLN-Zero): a conditioning vector sets the
//! shift, scale and gate of each sub-layer. The projection starts at zero,
//! so every block starts as the identity.

use super::{Init, Linear, ParamBuilder};
use crate::kernels::layer_norm;
use crate::Result;
use candle_core::{Tensor, D};

/// DiT's LayerNorm epsilon.
pub(super) const EPS: f64 = 1e-6;

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
    /// each `[batch, dim]`.
    pub fn forward(&self, c: &Tensor) -> Result<Vec<Tensor>> {
        let all = self.linear.forward(&c.silu()?)?;
        (0..self.chunks)
            .map(|i| Ok(all.narrow(D::Minus1, i * self.dim, self.dim)?))
            .collect()
    }
}

/// `norm(x) · (1 + scale) + shift` for `x` `[batch, seq, dim]`, with a
/// `shift` and `scale` (`[batch, dim]`) per item: one fused LayerNorm.
pub fn modulated_norm(x: &Tensor, shift: &Tensor, scale: &Tensor) -> Result<Tensor> {
    Ok(layer_norm(x, &(scale + 1.0)?, shift, EPS)?)
}
