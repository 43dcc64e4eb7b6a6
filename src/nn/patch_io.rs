//! The way in and out of a patch Transformer: pictures to patch tokens and
//! tokens back to pictures. Plain patches (each token sees and draws its own
//! `p × p` square) or overlapping ones: each token reads a window `overlap`
//! pixels wider on every side (a strided convolution) and draws into one
//! (a transposed convolution, neighbouring tokens' drawings added), so that
//! no seam runs along the patch grid.

use super::{patchify, unpatchify, Init, Linear, ParamBuilder};
use crate::Result;
use candle_core::Tensor;

/// Pictures `[batch, channels, side, side]` ↔ tokens `[batch, (side/p)², dim]`.
#[derive(Debug, Clone)]
pub struct PatchIo {
    patch: usize,
    overlap: usize,
    channels: usize,
    kind: Kind,
}

#[derive(Debug, Clone)]
enum Kind {
    Plain {
        embed: Linear,
        head: Linear,
    },
    Overlapping {
        embed: (Tensor, Tensor),
        head: (Tensor, Tensor),
    },
}

impl PatchIo {
    /// `patch_embed` (reading) and `final_linear` (drawing, zero-initialised)
    /// for `patch × patch` patches of `channels`, widened by `overlap`.
    pub fn new(
        p: &ParamBuilder,
        patch: usize,
        overlap: usize,
        channels: usize,
        dim: usize,
    ) -> Result<Self> {
        let kind = if overlap == 0 {
            let len = patch * patch * channels;
            let xavier = Init::Normal((2.0 / (len + dim) as f64).sqrt());
            Kind::Plain {
                embed: Linear::new(&p.pp("patch_embed"), len, dim, true, xavier)?,
                head: Linear::new(&p.pp("final_linear"), dim, len, true, Init::Zeros)?,
            }
        } else {
            let k = patch + 2 * overlap;
            let fan_in = k * k * channels;
            let xavier = Init::Normal((2.0 / (fan_in + dim) as f64).sqrt());
            let (e, h) = (p.pp("patch_embed"), p.pp("final_linear"));
            Kind::Overlapping {
                embed: (
                    e.get(&[dim, channels, k, k], "weight", xavier)?,
                    e.get(&[dim], "bias", Init::Zeros)?,
                ),
                head: (
                    h.get(&[dim, channels, k, k], "weight", Init::Zeros)?,
                    h.get(&[channels], "bias", Init::Zeros)?,
                ),
            }
        };
        Ok(Self {
            patch,
            overlap,
            channels,
            kind,
        })
    }

    /// Patch tokens of `pictures`.
    pub fn tokens(&self, pictures: &Tensor) -> Result<Tensor> {
        match &self.kind {
            Kind::Plain { embed, .. } => embed.forward(&patchify(pictures, self.patch)?),
            Kind::Overlapping { embed: (w, b), .. } => {
                let grid = pictures.conv2d(w, self.overlap, self.patch, 1, 1)?;
                let grid = grid.broadcast_add(&b.reshape((1, b.dim(0)?, 1, 1))?)?;
                Ok(grid.flatten_from(2)?.transpose(1, 2)?)
            }
        }
    }

    /// Pictures drawn from `tokens` (a square grid).
    pub fn pictures(&self, tokens: &Tensor) -> Result<Tensor> {
        match &self.kind {
            Kind::Plain { head, .. } => {
                unpatchify(&head.forward(tokens)?, self.patch, self.channels)
            }
            Kind::Overlapping { head: (w, b), .. } => {
                let (batch, n, dim) = tokens.dims3()?;
                let grid = (n as f64).sqrt().round() as usize;
                let grid = tokens.transpose(1, 2)?.reshape((batch, dim, grid, grid))?;
                let pictures = grid.conv_transpose2d(w, self.overlap, 0, self.patch, 1)?;
                Ok(pictures.broadcast_add(&b.reshape((1, self.channels, 1, 1))?)?)
            }
        }
    }
}
