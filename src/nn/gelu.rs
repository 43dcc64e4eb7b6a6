//! GELU with the tanh approximation (GPT-2's `gelu_new`), from differentiable
//! tensor ops with exact constants: candle's built-in `gelu` backward rounds
//! sqrt(2/pi) and its companions to six digits, which finite differences in
//! f64 detect.

use crate::Result;
use candle_core::Tensor;

/// `0.5·x·(1 + tanh(sqrt(2/π)·(x + 0.044715·x³)))`.
pub fn gelu(x: &Tensor) -> Result<Tensor> {
    let sqrt_2_over_pi = (2.0 / std::f64::consts::PI).sqrt();
    let cube = (x.sqr()? * x)?;
    let inner = ((x + (cube * 0.044715)?)? * sqrt_2_over_pi)?;
    Ok(((x * 0.5)? * (inner.tanh()? + 1.0)?)?)
}
