//! Multi-head cross-attention: queries from one sequence (image patches),
//! keys and values from another (a caption's token states), with the
//! context's padding hidden; the attention itself is seer's fused kernel.

use super::{Init, Linear, ParamBuilder};
use crate::kernels::cross_attention;
use crate::{Error, Result};
use candle_core::Tensor;

/// Cross-attention from `[batch, n, dim]` onto a context `[batch, l, ctx_dim]`.
#[derive(Debug, Clone)]
pub struct CrossAttention {
    q: Linear,
    kv: Linear,
    c_proj: Linear,
    n_head: usize,
}

impl CrossAttention {
    /// `q` (`[dim, dim]`), `kv` (`[ctx_dim, 2·dim]`) and the output
    /// projection `c_proj`, which starts at zero so that a new layer leaves
    /// the residual stream untouched.
    pub fn new(p: &ParamBuilder, dim: usize, ctx_dim: usize, n_head: usize) -> Result<Self> {
        if n_head == 0 || !dim.is_multiple_of(n_head) {
            return Err(Error::Invalid(format!(
                "width {dim} is not divisible by {n_head} heads"
            )));
        }
        Ok(Self {
            q: Linear::new(&p.pp("q"), dim, dim, true, Init::Normal(0.02))?,
            kv: Linear::new(&p.pp("kv"), ctx_dim, 2 * dim, true, Init::Normal(0.02))?,
            c_proj: Linear::new(&p.pp("c_proj"), dim, dim, true, Init::Zeros)?,
            n_head,
        })
    }

    /// Attends `x` to `context`, item `b` seeing its first `lengths[b]`
    /// context positions (all when empty).
    pub fn forward(&self, x: &Tensor, context: &Tensor, lengths: &[usize]) -> Result<Tensor> {
        let q = self.q.forward(x)?;
        let kv = self.kv.forward(context)?;
        let y = cross_attention(&q, &kv, self.n_head, lengths)?;
        self.c_proj.forward(&y)
    }
}
