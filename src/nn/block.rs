//! The pre-LayerNorm Transformer block: `x + attn(ln_1(x))`, then `x + mlp(ln_2(x))`.
//!
//! A whole pass over a sequence runs as seer's fused block kernel. The
//! block's parameters live packed as that kernel takes them, in two flat
//! trainable tensors (its matrices, its vectors), which the optimizer
//! updates; the named parameters (`attn.c_attn.weight`, ...) that
//! checkpoints hold and the layers read are views of them. Generation with
//! a KV cache runs the layers one by one.

use super::{Init, LayerCache, LayerNorm, Mlp, Mode, ParamBuilder, SelfAttention};
use crate::kernels::{transformer_block, BlockSpec};
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
    shape: BlockShape,
    /// The packed matrices and vectors (see [`crate::kernels::matrix_sizes`]).
    matrices: Tensor,
    vectors: Tensor,
    ln_1: LayerNorm,
    attn: SelfAttention,
    ln_2: LayerNorm,
    mlp: Mlp,
}

impl Block {
    /// Builds the block's parameters under `p`, packed.
    pub fn new(p: &ParamBuilder, s: &BlockShape) -> Result<Self> {
        // Built once to draw (or load) every parameter by name, then packed,
        // then built again: the second time each layer gets views of the packs.
        Self::layers(p, s)?;
        let matrices = p.pack(
            "matrices",
            &[
                "attn.c_attn.weight",
                "attn.c_proj.weight",
                "mlp.c_fc.weight",
                "mlp.c_proj.weight",
            ],
        )?;
        let vectors = if s.bias {
            p.pack(
                "vectors",
                &[
                    "ln_1.weight",
                    "ln_1.bias",
                    "attn.c_attn.bias",
                    "attn.c_proj.bias",
                    "ln_2.weight",
                    "ln_2.bias",
                    "mlp.c_fc.bias",
                    "mlp.c_proj.bias",
                ],
            )?
        } else {
            p.pack("vectors", &["ln_1.weight", "ln_2.weight"])?
        };
        let (ln_1, attn, ln_2, mlp) = Self::layers(p, s)?;
        Ok(Self {
            shape: *s,
            matrices,
            vectors,
            ln_1,
            attn,
            ln_2,
            mlp,
        })
    }

    /// The block's layers under `p`.
    fn layers(
        p: &ParamBuilder,
        s: &BlockShape,
    ) -> Result<(LayerNorm, SelfAttention, LayerNorm, Mlp)> {
        let ln_1 = LayerNorm::new(&p.pp("ln_1"), s.dim, s.bias, s.eps)?;
        let attn = SelfAttention::new(
            &p.pp("attn"),
            s.dim,
            s.n_head,
            s.causal,
            s.bias,
            s.dropout,
            s.proj_init,
        )?;
        let ln_2 = LayerNorm::new(&p.pp("ln_2"), s.dim, s.bias, s.eps)?;
        let mlp = Mlp::new(
            &p.pp("mlp"),
            s.dim,
            4 * s.dim,
            s.bias,
            s.dropout,
            s.proj_init,
        )?;
        Ok((ln_1, attn, ln_2, mlp))
    }

    /// Applies the block to `x` (`[batch, seq, dim]`).
    pub fn forward(&self, x: &Tensor, mode: &mut Mode) -> Result<Tensor> {
        self.forward_padded(x, &[], mode)
    }

    /// Applies the block to right-padded sequences, item `b` attending only
    /// to its first `lengths[b]` positions (all when empty).
    pub fn forward_padded(&self, x: &Tensor, lengths: &[usize], mode: &mut Mode) -> Result<Tensor> {
        // Three dropout seeds in training (the attention weights, then each
        // branch's output), none in inference.
        let seeds = [(); 3].map(|_| mode.seed());
        let spec = BlockSpec {
            n_head: self.shape.n_head,
            causal: self.shape.causal,
            eps: self.shape.eps,
            dropout: if seeds[0].is_some() {
                self.shape.dropout
            } else {
                0.0
            },
            seeds: seeds.map(|s| s.unwrap_or(0)),
            bias: self.shape.bias,
        };
        Ok(transformer_block(
            x,
            &self.matrices,
            &self.vectors,
            spec,
            lengths,
        )?)
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
