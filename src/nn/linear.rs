//! A linear layer in GPT-2's `Conv1D` layout: the weight is `[in, out]`, so
//! `y = x · W + b` and checkpoints load without transposes. It runs on seer's
//! fused linear kernel.

use super::{Init, ParamBuilder};
use crate::kernels::{linear, WeightLayout};
use crate::Result;
use candle_core::Tensor;

/// `y = x · W + b` over the last dimension of `x`.
#[derive(Debug, Clone)]
pub struct Linear {
    weight: Tensor,
    bias: Option<Tensor>,
}

impl Linear {
    /// Parameters `weight` (`[d_in, d_out]`, drawn with `init`) and, if
    /// `bias`, `bias` (`[d_out]`, zeros).
    pub fn new(
        p: &ParamBuilder,
        d_in: usize,
        d_out: usize,
        bias: bool,
        init: Init,
    ) -> Result<Self> {
        let weight = p.get_matrix(&[d_in, d_out], "weight", init)?;
        let bias = bias
            .then(|| p.get(&[d_out], "bias", Init::Zeros))
            .transpose()?;
        Ok(Self { weight, bias })
    }

    /// Applies the layer to `x` of shape `[..., d_in]`.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        Ok(linear(
            x,
            &self.weight,
            &self.bias_or_zeros(x)?,
            WeightLayout::InOut,
            false,
        )?)
    }

    /// `gelu(x · W + b)`, the GELU fused into the same op.
    pub fn forward_gelu(&self, x: &Tensor) -> Result<Tensor> {
        Ok(linear(
            x,
            &self.weight,
            &self.bias_or_zeros(x)?,
            WeightLayout::InOut,
            true,
        )?)
    }

    /// The bias, or zeros in the dtype of the input `x`.
    fn bias_or_zeros(&self, x: &Tensor) -> Result<Tensor> {
        match &self.bias {
            Some(b) => Ok(b.clone()),
            None => Ok(Tensor::zeros(
                self.weight.dim(1)?,
                x.dtype(),
                self.weight.device(),
            )?),
        }
    }
}
