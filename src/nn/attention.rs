//! Multi-head self-attention, causal (GPT) or bidirectional (encoders), with
//! GPT-2's fused `c_attn` projection to queries, keys and values.

use super::{Init, Linear, Mode, ParamBuilder};
use crate::{Error, Result};
use candle_core::{Device, Tensor, D};

/// Multi-head self-attention over `[batch, seq, dim]`.
#[derive(Debug, Clone)]
pub struct SelfAttention {
    c_attn: Linear,
    c_proj: Linear,
    n_head: usize,
    causal: bool,
    dropout: f64,
}

impl SelfAttention {
    /// `c_attn` (`[dim, 3·dim]`) and `c_proj` (`[dim, dim]`, drawn with `proj_init`).
    pub fn new(
        p: &ParamBuilder,
        dim: usize,
        n_head: usize,
        causal: bool,
        bias: bool,
        dropout: f64,
        proj_init: Init,
    ) -> Result<Self> {
        if n_head == 0 || !dim.is_multiple_of(n_head) {
            return Err(Error::Invalid(format!(
                "n_embd {dim} is not divisible by n_head {n_head}"
            )));
        }
        Ok(Self {
            c_attn: Linear::new(&p.pp("c_attn"), dim, 3 * dim, bias, Init::Normal(0.02))?,
            c_proj: Linear::new(&p.pp("c_proj"), dim, dim, bias, proj_init)?,
            n_head,
            causal,
            dropout,
        })
    }

    /// Attends every position of `x` to the others (to earlier ones only when causal).
    pub fn forward(&self, x: &Tensor, mode: &mut Mode) -> Result<Tensor> {
        let (b, t, c) = x.dims3()?;
        let hd = c / self.n_head;
        let qkv = self.c_attn.forward(x)?;
        let heads = |i: usize| -> Result<Tensor> {
            Ok(qkv
                .narrow(2, i * c, c)?
                .reshape((b, t, self.n_head, hd))?
                .transpose(1, 2)?
                .contiguous()?)
        };
        let (q, k, v) = (heads(0)?, heads(1)?, heads(2)?);
        let scores = (q.matmul(&k.t()?)? * (1.0 / (hd as f64).sqrt()))?;
        let scores = if self.causal {
            scores.broadcast_add(&causal_mask(t, x.device())?.to_dtype(x.dtype())?)?
        } else {
            scores
        };
        let weights = candle_nn::ops::softmax(&scores, D::Minus1)?;
        let weights = mode.dropout(&weights, self.dropout)?;
        let y = weights.matmul(&v)?.transpose(1, 2)?.reshape((b, t, c))?;
        mode.dropout(&self.c_proj.forward(&y)?, self.dropout)
    }
}

/// `[t, t]`: 0 on and below the diagonal, -inf above.
fn causal_mask(t: usize, device: &Device) -> Result<Tensor> {
    let mask: Vec<f32> = (0..t)
        .flat_map(|i| (0..t).map(move |j| if j <= i { 0.0 } else { f32::NEG_INFINITY }))
        .collect();
    Ok(Tensor::from_vec(mask, (t, t), device)?)
}
