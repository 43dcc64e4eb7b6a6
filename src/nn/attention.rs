//! Multi-head self-attention, causal (GPT) or bidirectional (encoders), with
//! GPT-2's fused `c_attn` projection to queries, keys and values; the
//! attention itself is seer's fused kernel.

use super::LayerCache;
use super::{Init, Linear, Mode, ParamBuilder};
use crate::kernels::{attention_cached, attention_padded, AttentionSpec};
use crate::{Error, Result};
use candle_core::Tensor;

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
        self.forward_padded(x, &[], mode)
    }

    /// As [`SelfAttention::forward`] for right-padded sequences: item `b`
    /// attends only to its first `lengths[b]` positions (all when empty).
    pub fn forward_padded(&self, x: &Tensor, lengths: &[usize], mode: &mut Mode) -> Result<Tensor> {
        let qkv = self.c_attn.forward(x)?;
        let (dropout, seed) = match mode.seed() {
            Some(seed) if self.dropout > 0.0 => (self.dropout, seed),
            _ => (0.0, 0),
        };
        let spec = AttentionSpec {
            n_head: self.n_head,
            causal: self.causal,
            dropout,
            seed,
        };
        let y = attention_padded(&qkv, spec, lengths)?;
        mode.dropout(&self.c_proj.forward(&y)?, self.dropout)
    }

    /// The attention weights of `x` (`[batch, seq, dim]`), as
    /// `[batch, n_head, seq, seq]`: row `i` of a head is how much position `i`
    /// attends to each position (zero past `i` when causal). Computed apart
    /// from the fused kernel, which never forms them, so only inspection pays.
    pub fn weights(&self, x: &Tensor) -> Result<Tensor> {
        let qkv = self.c_attn.forward(x)?;
        let (b, t, three_c) = qkv.dims3()?;
        let c = three_c / 3;
        let head_size = c / self.n_head;
        let heads = |part: usize| -> Result<Tensor> {
            Ok(qkv
                .narrow(2, part * c, c)?
                .reshape((b, t, self.n_head, head_size))?
                .transpose(1, 2)?
                .contiguous()?)
        };
        let (q, k) = (heads(0)?, heads(1)?);
        let scores = (q.matmul(&k.t()?)? / (head_size as f64).sqrt())?;
        let scores = if self.causal {
            let mask: Vec<f32> = (0..t * t)
                .map(|i| {
                    if i % t > i / t {
                        f32::NEG_INFINITY
                    } else {
                        0.0
                    }
                })
                .collect();
            let mask = Tensor::from_vec(mask, (t, t), x.device())?.to_dtype(scores.dtype())?;
            scores.broadcast_add(&mask)?
        } else {
            scores
        };
        Ok(candle_nn::ops::softmax_last_dim(&scores)?)
    }

    /// Attention for `x` (`[1, t, dim]`, the next `t` positions) against the
    /// positions in `cache`, to which their keys and values are appended.
    pub fn forward_cached(&self, x: &Tensor, cache: &mut LayerCache) -> Result<Tensor> {
        let y = self.attend_cached(&self.c_attn.forward(x)?, cache)?;
        self.c_proj.forward(&y)
    }

    /// Attention for one next position of each of `n` sequences (`x`:
    /// `[n, 1, dim]`, row `i` against `caches[i]`): the projections run once
    /// over all rows, the attention row by row against its own cache.
    pub fn forward_cached_batch(
        &self,
        x: &Tensor,
        caches: &mut [&mut LayerCache],
    ) -> Result<Tensor> {
        let qkv = self.c_attn.forward(x)?;
        let rows = caches
            .iter_mut()
            .enumerate()
            .map(|(i, cache)| self.attend_cached(&qkv.narrow(0, i, 1)?, cache))
            .collect::<Result<Vec<_>>>()?;
        self.c_proj.forward(&Tensor::cat(&rows, 0)?)
    }

    /// Appends the keys and values of `qkv` (`[1, t, 3·dim]`) to `cache` and
    /// attends its queries to everything cached.
    fn attend_cached(&self, qkv: &Tensor, cache: &mut LayerCache) -> Result<Tensor> {
        let c = qkv.dim(2)? / 3;
        let rows: Vec<f32> = qkv
            .to_dtype(candle_core::DType::F32)?
            .flatten_all()?
            .to_vec1()?;
        for row in rows.chunks(3 * c) {
            cache.keys.extend_from_slice(&row[c..2 * c]);
            cache.values.extend_from_slice(&row[2 * c..]);
        }
        let spec = AttentionSpec {
            n_head: self.n_head,
            causal: self.causal,
            dropout: 0.0,
            seed: 0,
        };
        Ok(attention_cached(qkv, &cache.keys, &cache.values, spec)?)
    }
}
