//! A linear layer in GPT-2's `Conv1D` layout: the weight is `[in, out]`, so
//! `y = x · W + b` and checkpoints load without transposes.

use super::{Init, ParamBuilder};
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
        let weight = p.get(&[d_in, d_out], "weight", init)?;
        let bias = bias
            .then(|| p.get(&[d_out], "bias", Init::Zeros))
            .transpose()?;
        Ok(Self { weight, bias })
    }

    /// Applies the layer to `x` of shape `[..., d_in]`.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let y = self.forward_without_bias(x)?;
        Ok(match &self.bias {
            Some(b) => y.broadcast_add(b)?,
            None => y,
        })
    }

    /// `x · W`, leaving the bias to a fused op that follows.
    pub fn forward_without_bias(&self, x: &Tensor) -> Result<Tensor> {
        let dims = x.dims().to_vec();
        let d_in = dims[dims.len() - 1];
        let rows = x.elem_count() / d_in;
        let y = x.reshape((rows, d_in))?.matmul(&self.weight)?;
        let mut out_dims = dims;
        *out_dims.last_mut().expect("non-empty") = self.weight.dim(1)?;
        Ok(y.reshape(out_dims)?)
    }

    /// The bias, or zeros when the layer has none.
    pub fn bias_or_zeros(&self) -> Result<Tensor> {
        match &self.bias {
            Some(b) => Ok(b.clone()),
            None => Ok(Tensor::zeros(
                self.weight.dim(1)?,
                self.weight.dtype(),
                self.weight.device(),
            )?),
        }
    }
}
