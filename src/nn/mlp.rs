//! The Transformer's feed-forward part: expand 4x, GELU (tanh approximation,
//! fused with the bias add), project back.

use super::{Init, Linear, Mode, ParamBuilder};
use crate::Result;
use candle_core::Tensor;

/// `c_proj(gelu(c_fc(x)))`, with dropout after the projection.
#[derive(Debug, Clone)]
pub struct Mlp {
    c_fc: Linear,
    c_proj: Linear,
    dropout: f64,
}

impl Mlp {
    /// `c_fc` (`[dim, hidden]`) and `c_proj` (`[hidden, dim]`, drawn with `proj_init`).
    pub fn new(
        p: &ParamBuilder,
        dim: usize,
        hidden: usize,
        bias: bool,
        dropout: f64,
        proj_init: Init,
    ) -> Result<Self> {
        Ok(Self {
            c_fc: Linear::new(&p.pp("c_fc"), dim, hidden, bias, Init::Normal(0.02))?,
            c_proj: Linear::new(&p.pp("c_proj"), hidden, dim, bias, proj_init)?,
            dropout,
        })
    }

    /// Applies the MLP to `x` (`[..., dim]`).
    pub fn forward(&self, x: &Tensor, mode: &mut Mode) -> Result<Tensor> {
        let h = self.c_fc.forward_gelu(x)?;
        mode.dropout(&self.c_proj.forward(&h)?, self.dropout)
    }
}
