//! The diffusion Transformer's block: DiT's adaLN-Zero block with a
//! cross-attention sub-layer (as in PixArt-α) between self-attention and the
//! MLP, so every patch can read the caption's token states.
//!
//! ```text
//! x = x + gate₁ · attn(modulate(norm(x), shift₁, scale₁))
//! x = x + cross(ln_cross(x), context)
//! x = x + gate₂ · mlp(modulate(norm(x), shift₂, scale₂))
//! ```

use super::{
    gated_residual, modulated_norm, AdaLn, CrossAttention, Init, LayerNorm, Mlp, Mode,
    ParamBuilder, SelfAttention,
};
use crate::Result;
use candle_core::Tensor;

/// What a DiT block attends to besides its own patches.
pub struct Conditioning<'a> {
    /// The conditioning vector (timestep and pooled caption), `[batch, dim]`.
    pub vector: &'a Tensor,
    /// The caption's token states, `[batch, l, context_dim]`, right-padded.
    pub context: &'a Tensor,
    /// Real tokens per caption.
    pub lengths: &'a [usize],
}

/// One DiT block with cross-attention.
#[derive(Debug, Clone)]
pub struct DitBlock {
    adaln: AdaLn,
    attn: SelfAttention,
    ln_cross: LayerNorm,
    cross: CrossAttention,
    mlp: Mlp,
}

impl DitBlock {
    /// A block of width `dim` with `n_head` heads, reading a context of `context_dim`.
    pub fn new(p: &ParamBuilder, dim: usize, n_head: usize, context_dim: usize) -> Result<Self> {
        let proj = Init::Normal(0.02);
        Ok(Self {
            adaln: AdaLn::new(&p.pp("adaln"), dim, dim, 6)?,
            attn: SelfAttention::new(&p.pp("attn"), dim, n_head, false, true, 0.0, proj)?,
            ln_cross: LayerNorm::new(&p.pp("ln_cross"), dim, true, 1e-6)?,
            cross: CrossAttention::new(&p.pp("cross"), dim, context_dim, n_head)?,
            mlp: Mlp::new(&p.pp("mlp"), dim, 4 * dim, true, 0.0, proj)?,
        })
    }

    /// Applies the block to patch tokens `x` (`[batch, n, dim]`).
    pub fn forward(&self, x: &Tensor, cond: &Conditioning) -> Result<Tensor> {
        let m = self.adaln.forward(cond.vector)?;
        let h = modulated_norm(x, &m[0], &m[1])?;
        let x = gated_residual(x, &self.attn.forward(&h, &mut Mode::Eval)?, &m[2])?;
        let x = (&x
            + self
                .cross
                .forward(&self.ln_cross.forward(&x)?, cond.context, cond.lengths)?)?;
        let h = modulated_norm(&x, &m[3], &m[4])?;
        gated_residual(&x, &self.mlp.forward(&h, &mut Mode::Eval)?, &m[5])
    }
}
