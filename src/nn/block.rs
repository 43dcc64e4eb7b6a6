//! The pre-LayerNorm Transformer block: `x + attn(ln_1(x))`, then `x + mlp(ln_2(x))`.

use super::{Init, LayerCache, LayerNorm, Mlp, Mode, ParamBuilder, SelfAttention};
use crate::Result;
use candle_core::Tensor;

/// Shape of a Transformer block.
#[derive(Debug, Clone, Copy)]
pub struct BlockShape {
    /// Width of the residual stream.
    pub dim: usize,
    /// Attention heads.
    pub n_head: usize,
    /// Whether attention is causal.
    pub causal: bool,
    /// Whether linear layers and LayerNorms have biases.
    pub bias: bool,
    /// Dropout probability.
    pub dropout: f64,
    /// LayerNorm epsilon.
    pub eps: f64,
    /// Initialisation of the residual projections (GPT-2 scales it by `1/sqrt(2·n_layer)`).
    pub proj_init: Init,
}

/// One pre-LayerNorm Transformer block (GPT-2 names: `ln_1`, `attn`, `ln_2`, `mlp`).
#[derive(Debug, Clone)]
pub struct Block {
    ln_1: LayerNorm,
    attn: SelfAttention,
    ln_2: LayerNorm,
    mlp: Mlp,
}

impl Block {
    /// Builds the block's parameters under `p`.
    pub fn new(p: &ParamBuilder, s: &BlockShape) -> Result<Self> {
        Ok(Self {
            ln_1: LayerNorm::new(&p.pp("ln_1"), s.dim, s.bias, s.eps)?,
            attn: SelfAttention::new(
                &p.pp("attn"),
                s.dim,
                s.n_head,
                s.causal,
                s.bias,
                s.dropout,
                s.proj_init,
            )?,
            ln_2: LayerNorm::new(&p.pp("ln_2"), s.dim, s.bias, s.eps)?,
            mlp: Mlp::new(
                &p.pp("mlp"),
                s.dim,
                4 * s.dim,
                s.bias,
                s.dropout,
                s.proj_init,
            )?,
        })
    }

    /// Applies the block to `x` (`[batch, seq, dim]`).
    pub fn forward(&self, x: &Tensor, mode: &mut Mode) -> Result<Tensor> {
        self.forward_padded(x, &[], mode)
    }

    /// Applies the block to right-padded sequences, item `b` attending only
    /// to its first `lengths[b]` positions (all when empty).
    pub fn forward_padded(&self, x: &Tensor, lengths: &[usize], mode: &mut Mode) -> Result<Tensor> {
        let x = (x + self
            .attn
            .forward_padded(&self.ln_1.forward(x)?, lengths, mode)?)?;
        Ok((&x + self.mlp.forward(&self.ln_2.forward(&x)?, mode)?)?)
    }

    /// Applies the block to `x` in inference and returns, with the output,
    /// its attention weights (`[batch, n_head, seq, seq]`, see
    /// [`SelfAttention::weights`]).
    pub fn forward_with_attention(&self, x: &Tensor) -> Result<(Tensor, Tensor)> {
        let weights = self.attn.weights(&self.ln_1.forward(x)?)?;
        Ok((self.forward(x, &mut Mode::Eval)?, weights))
    }

    /// Applies the block to the next positions `x` (`[1, t, dim]`) in
    /// inference, attending to and extending `cache`.
    pub fn forward_cached(&self, x: &Tensor, cache: &mut LayerCache) -> Result<Tensor> {
        let x = (x + self.attn.forward_cached(&self.ln_1.forward(x)?, cache)?)?;
        Ok((&x + self.mlp.forward(&self.ln_2.forward(&x)?, &mut Mode::Eval)?)?)
    }

    /// Applies the block to one next position of each of `n` sequences
    /// (`x`: `[n, 1, dim]`), row `i` attending to and extending `caches[i]`.
    pub fn forward_cached_batch(
        &self,
        x: &Tensor,
        caches: &mut [&mut LayerCache],
    ) -> Result<Tensor> {
        let x = (x + self
            .attn
            .forward_cached_batch(&self.ln_1.forward(x)?, caches)?)?;
        Ok((&x + self.mlp.forward(&self.ln_2.forward(&x)?, &mut Mode::Eval)?)?)
    }
}
