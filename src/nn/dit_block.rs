//! The diffusion Transformer's block: DiT's adaLN-Zero block with a
//! cross-attention sub-layer (as in PixArt-α) between self-attention and the
//! MLP, so every patch can read the caption's token states.
//!
//! ```text
//! x = x + gate₁ · attn(modulate(norm(x), shift₁, scale₁))
//! x = x + cross(ln_cross(x), context)
//! x = x + gate₂ · mlp(modulate(norm(x), shift₂, scale₂))
//! ```
//!
//! The whole block runs as seer's fused DiT block kernel. Its parameters
//! live packed as that kernel takes them, in one flat trainable tensor
//! (matrices first, then vectors); the named parameters (`adaln.weight`,
//! `attn.c_attn.weight`, ...) that checkpoints hold are views of it.

use super::adaln::EPS;
use super::{AdaLn, CrossAttention, Init, LayerNorm, Mlp, ParamBuilder, SelfAttention};
use crate::kernels::{dit_block, dit_block_with_cross_attention, DitBlockSpec};
use crate::Result;
use candle_core::Tensor;

/// The pack's members, in [`crate::kernels::dit_param_sizes`]' order.
const MEMBERS: [&str; 18] = [
    "adaln.weight",
    "attn.c_attn.weight",
    "attn.c_proj.weight",
    "cross.q.weight",
    "cross.kv.weight",
    "cross.c_proj.weight",
    "mlp.c_fc.weight",
    "mlp.c_proj.weight",
    "adaln.bias",
    "attn.c_attn.bias",
    "attn.c_proj.bias",
    "ln_cross.weight",
    "ln_cross.bias",
    "cross.q.bias",
    "cross.kv.bias",
    "cross.c_proj.bias",
    "mlp.c_fc.bias",
    "mlp.c_proj.bias",
];

/// What a DiT block attends to besides its own patches.
pub struct Conditioning<'a> {
    /// Every item's `silu(c)` (the timestep and pooled caption's vector
    /// through SiLU) followed by its caption's token states, `[batch,
    /// dim + l·context_dim]` (see [`crate::kernels::dit_conditioning_width`]).
    pub packed: &'a Tensor,
    /// Real tokens per caption.
    pub lengths: &'a [usize],
}

impl Conditioning<'_> {
    /// The packed conditioning of the vector `c` (`[batch, dim]`) and the
    /// caption states `context` (`[batch, l, context_dim]`, right-padded).
    pub fn pack(c: &Tensor, context: &Tensor) -> Result<Tensor> {
        Ok(Tensor::cat(&[&c.silu()?, &context.flatten_from(1)?], 1)?)
    }
}

/// One DiT block with cross-attention.
#[derive(Debug, Clone)]
pub struct DitBlock {
    spec: DitBlockSpec,
    params: Tensor,
}

impl DitBlock {
    /// A block of width `dim` with `n_head` heads, reading a context of
    /// `context_dim`: its layers' parameters drawn (or loaded) by name,
    /// then packed.
    pub fn new(p: &ParamBuilder, dim: usize, n_head: usize, context_dim: usize) -> Result<Self> {
        let proj = Init::Normal(0.02);
        AdaLn::new(&p.pp("adaln"), dim, dim, 6)?;
        SelfAttention::new(&p.pp("attn"), dim, n_head, false, true, 0.0, proj)?;
        LayerNorm::new(&p.pp("ln_cross"), dim, true, EPS)?;
        CrossAttention::new(&p.pp("cross"), dim, context_dim, n_head)?;
        Mlp::new(&p.pp("mlp"), dim, 4 * dim, true, 0.0, proj)?;
        Ok(Self {
            spec: DitBlockSpec {
                n_head,
                context_dim,
                eps: EPS,
            },
            params: p.pack("params", &MEMBERS)?,
        })
    }

    /// Applies the block to patch tokens `x` (`[batch, n, dim]`).
    pub fn forward(&self, x: &Tensor, cond: &Conditioning) -> Result<Tensor> {
        Ok(dit_block(
            x,
            cond.packed,
            &self.params,
            self.spec,
            cond.lengths,
        )?)
    }

    /// The block applied in inference, with its cross-attention weights
    /// `[batch, n_head, n, caption tokens]` (see
    /// [`crate::kernels::dit_block_with_cross_attention`]).
    pub fn forward_with_cross_attention(
        &self,
        x: &Tensor,
        cond: &Conditioning,
    ) -> Result<(Tensor, Tensor)> {
        Ok(dit_block_with_cross_attention(
            x,
            cond.packed,
            &self.params,
            self.spec,
            cond.lengths,
        )?)
    }
}
