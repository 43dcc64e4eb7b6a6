//! Multi-head cross-attention: queries from one sequence (image patches),
//! keys and values from another (a caption's token states), with a mask
//! over the context's padding. Built from candle ops: the context is short
//! (a caption), so the score matrix is small.

use super::{Init, Linear, ParamBuilder};
use crate::{Error, Result};
use candle_core::{DType, Tensor, D};

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

    /// Attends `x` to `context`; `mask` (from [`context_mask`]) hides padding.
    pub fn forward(&self, x: &Tensor, context: &Tensor, mask: &Tensor) -> Result<Tensor> {
        let (b, n, dim) = x.dims3()?;
        let l = context.dim(1)?;
        let (h, d) = (self.n_head, dim / self.n_head);
        let heads = |t: Tensor, len: usize| -> Result<Tensor> {
            Ok(t.reshape((b, len, h, d))?.transpose(1, 2)?.contiguous()?)
        };
        let q = heads(self.q.forward(x)?, n)?;
        let kv = self.kv.forward(context)?;
        let k = heads(kv.narrow(D::Minus1, 0, dim)?, l)?;
        let v = heads(kv.narrow(D::Minus1, dim, dim)?, l)?;
        let scores = (q.matmul(&k.t()?)? * (1.0 / (d as f64).sqrt()))?.broadcast_add(mask)?;
        let weights = candle_nn::ops::softmax(&scores, D::Minus1)?;
        let y = weights.matmul(&v)?.transpose(1, 2)?.reshape((b, n, dim))?;
        self.c_proj.forward(&y)
    }
}

/// The additive mask `[batch, 1, 1, l]` for contexts of `lengths` real
/// positions out of `l`: 0 where a key is real, a large negative number
/// where it is padding.
pub fn context_mask(
    lengths: &[usize],
    l: usize,
    dtype: DType,
    device: &candle_core::Device,
) -> Result<Tensor> {
    let values: Vec<f32> = lengths
        .iter()
        .flat_map(|&n| (0..l).map(move |j| if j < n { 0.0 } else { -1e9 }))
        .collect();
    Ok(Tensor::from_vec(values, (lengths.len(), 1, 1, l), device)?.to_dtype(dtype)?)
}
