//! LayerNorm over the last dimension, with weight and optional bias, on
//! seer's fused kernel (candle-nn 0.11's fused LayerNorm with a bias has no
//! backward pass).

use super::{Init, ParamBuilder};
use crate::kernels::layer_norm;
use crate::Result;
use candle_core::Tensor;

/// `(x - mean) / sqrt(var + eps) * weight + bias`.
#[derive(Debug, Clone)]
pub struct LayerNorm {
    weight: Tensor,
    bias: Option<Tensor>,
    eps: f64,
}

impl LayerNorm {
    /// Parameters `weight` (ones) and, if `bias`, `bias` (zeros), both `[dim]`.
    pub fn new(p: &ParamBuilder, dim: usize, bias: bool, eps: f64) -> Result<Self> {
        let weight = p.get(&[dim], "weight", Init::Ones)?;
        let bias = bias
            .then(|| p.get(&[dim], "bias", Init::Zeros))
            .transpose()?;
        Ok(Self { weight, bias, eps })
    }

    /// Normalises `x` over its last dimension.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        Ok(layer_norm(
            x,
            &self.weight,
            &self.bias_or_zeros()?,
            self.eps,
        )?)
    }

    /// The bias, or zeros when the layer has none.
    fn bias_or_zeros(&self) -> Result<Tensor> {
        Ok(match &self.bias {
            Some(b) => b.clone(),
            None => self.weight.zeros_like()?,
        })
    }
}
