//! Images as sequences of patch tokens, and back: `[batch, channels, h, w]`
//! ↔ `[batch, (h/p)·(w/p), p·p·channels]`, patches in row-major order, each
//! patch's pixels row by row with their channels last.

use crate::{Error, Result};
use candle_core::Tensor;

/// Cuts images into `patch × patch` tokens.
pub fn patchify(images: &Tensor, patch: usize) -> Result<Tensor> {
    let (b, c, h, w) = images.dims4()?;
    if patch == 0 || !h.is_multiple_of(patch) || !w.is_multiple_of(patch) {
        return Err(Error::Invalid(format!(
            "image size {h}×{w} is not a multiple of the patch size {patch}"
        )));
    }
    let (gh, gw) = (h / patch, w / patch);
    Ok(images
        .reshape(&[b, c, gh, patch, gw, patch][..])?
        .permute([0, 2, 4, 3, 5, 1])?
        .reshape((b, gh * gw, patch * patch * c))?)
}

/// Puts `patch × patch` tokens back together into `[batch, channels, side, side]`
/// images (square grids).
pub fn unpatchify(tokens: &Tensor, patch: usize, channels: usize) -> Result<Tensor> {
    let (b, n, len) = tokens.dims3()?;
    let grid = (n as f64).sqrt().round() as usize;
    if grid * grid != n || len != patch * patch * channels {
        return Err(Error::Invalid(format!(
            "{n} tokens of {len} values are not a square grid of {patch}×{patch}×{channels} patches"
        )));
    }
    Ok(tokens
        .reshape(&[b, grid, grid, patch, patch, channels][..])?
        .permute([0, 5, 1, 3, 2, 4])?
        .reshape((b, channels, grid * patch, grid * patch))?)
}
