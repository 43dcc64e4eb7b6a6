//! Fixed sinusoidal embeddings: of diffusion timesteps (as in DiT and
//! diffusers' `Timesteps`), and of the 2-D grid positions of image patches.

use crate::Result;
use candle_core::{Device, Tensor};

/// `[cos(t·f₀), …, cos(t·fₖ), sin(t·f₀), …, sin(t·fₖ)]` for each timestep,
/// with frequencies `fᵢ = 10000^(−i/k)`, `k = dim/2`: `[len(t), dim]`.
pub fn timestep_embedding(t: &[f32], dim: usize, device: &Device) -> Result<Tensor> {
    let half = dim / 2;
    let freqs: Vec<f64> = (0..half)
        .map(|i| (-(10000f64.ln()) * i as f64 / half as f64).exp())
        .collect();
    let mut values = Vec::with_capacity(t.len() * dim);
    for &step in t {
        let angles = freqs.iter().map(|f| step as f64 * f);
        values.extend(angles.clone().map(|a| a.cos() as f32));
        values.extend(angles.map(|a| a.sin() as f32));
        values.extend(std::iter::repeat_n(0.0, dim - 2 * half));
    }
    Ok(Tensor::from_vec(values, (t.len(), dim), device)?)
}

/// Position embeddings of a `side × side` grid, `[side², dim]`: the first
/// half of each row encodes the row index, the second half the column, each
/// with sines and cosines at `dim/4` frequencies (MAE's and DiT's scheme).
pub fn grid_embedding(side: usize, dim: usize, device: &Device) -> Result<Tensor> {
    let quarter = dim / 4;
    let freqs: Vec<f64> = (0..quarter)
        .map(|i| 1.0 / 10000f64.powf(i as f64 / quarter.max(1) as f64))
        .collect();
    let encode = |pos: usize, out: &mut Vec<f32>| {
        out.extend(freqs.iter().map(|f| (pos as f64 * f).sin() as f32));
        out.extend(freqs.iter().map(|f| (pos as f64 * f).cos() as f32));
    };
    let mut values = Vec::with_capacity(side * side * dim);
    for row in 0..side {
        for col in 0..side {
            encode(row, &mut values);
            encode(col, &mut values);
            values.extend(std::iter::repeat_n(0.0, dim - 4 * quarter));
        }
    }
    Ok(Tensor::from_vec(values, (side * side, dim), device)?)
}
