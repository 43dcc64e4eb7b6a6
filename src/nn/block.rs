//! The pre-LayerNorm Transformer block: `x + attn(ln_1(x))`, then `x + mlp(ln_2(x))`.
//!
//! A whole pass over a sequence runs as seer's fused block kernel, its
//! parameters packed into the kernel's two flat tensors on each call (a copy
//! of the weights, small beside the pass; their gradients flow back through
//! the packing to each named parameter). Generation with a KV cache runs the
//! layers one by one.

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
    ln_1: LayerNorm,
    attn: SelfAttention,
    ln_2: LayerNorm,
    mlp: Mlp,
}

impl Block {
    /// Builds the block's parameters under `p`.
    pub fn new(p: &ParamBuilder, s: &BlockShape) -> Result<Self> {
        Ok(Self {
            shape: *s,
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
        };
        let (matrices, vectors) = self.packed(x)?;
        Ok(transformer_block(x, &matrices, &vectors, spec, lengths)?)
    }

    /// The parameters as the block kernel takes them: the four matrices
    /// flattened one after another, then the eight vectors (zeros for
    /// missing biases, in the dtype of `x`).
    fn packed(&self, x: &Tensor) -> Result<(Tensor, Tensor)> {
        let (c_attn, attn_proj) = self.attn.projections();
        let (c_fc, mlp_proj) = self.mlp.layers();
        let matrices = [c_attn, attn_proj, c_fc, mlp_proj]
            .map(|layer| layer.weight().flatten_all())
            .into_iter()
            .collect::<candle_core::Result<Vec<_>>>()?;
        let vectors = [
            self.ln_1.weight().clone(),
            self.ln_1.bias_or_zeros()?,
            c_attn.bias_or_zeros(x)?,
            attn_proj.bias_or_zeros(x)?,
            self.ln_2.weight().clone(),
            self.ln_2.bias_or_zeros()?,
            c_fc.bias_or_zeros(x)?,
            mlp_proj.bias_or_zeros(x)?,
        ];
        Ok((Tensor::cat(&matrices, 0)?, Tensor::cat(&vectors, 0)?))
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
