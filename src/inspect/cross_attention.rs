//! Where each caption word lands in a picture: while the picture is drawn,
//! how much each patch of the denoiser reads each caption token through
//! cross-attention, summed over the denoising steps, blocks and heads (as
//! DAAM does for Stable Diffusion), as one map over the picture per token.

use super::token_piece;
use crate::generate::{generate_images, ImageOptions};
use crate::model::ImageModel;
use crate::nn::Mode;
use crate::plot::draw;
use crate::{Error, Result};
use candle_core::Tensor;
use image::imageops::{replace, resize, FilterType};
use image::{Rgb, RgbImage};
use plotters::prelude::*;
use serde::Serialize;

/// A drawn picture and its caption tokens' cross-attention maps.
#[derive(Debug, Clone, Serialize)]
pub struct CrossAttentionMaps {
    /// The caption's tokens, as the text each stands for.
    pub tokens: Vec<String>,
    /// Patches per side of the picture.
    pub grid: usize,
    /// `maps[token][row · grid + column]`: the token's attention weight at
    /// each patch, averaged over steps, blocks and heads; at every patch
    /// the tokens' weights sum to 1.
    pub maps: Vec<Vec<f32>>,
    /// The picture drawn.
    #[serde(skip)]
    pub picture: RgbImage,
}

impl CrossAttentionMaps {
    /// Token `token`'s share of the attention: its map's mean.
    pub fn share(&self, token: usize) -> f32 {
        let map = &self.maps[token];
        map.iter().sum::<f32>() / map.len() as f32
    }

    /// Where token `token` is read most: the centre of its map's strongest
    /// patch, `(x, y)` as fractions of the picture's width and height from
    /// its top-left corner.
    pub fn peak(&self, token: usize) -> (f32, f32) {
        let map = &self.maps[token];
        let best = (0..map.len())
            .max_by(|&a, &b| map[a].total_cmp(&map[b]))
            .unwrap_or(0);
        let side = self.grid as f32;
        (
            ((best % self.grid) as f32 + 0.5) / side,
            ((best / self.grid) as f32 + 0.5) / side,
        )
    }

    /// How unevenly token `token` is read over the picture: its map's
    /// largest weight over its mean (1: every patch reads it alike).
    pub fn contrast(&self, token: usize) -> f32 {
        let max = self.maps[token].iter().copied().fold(0.0, f32::max);
        max / self.share(token).max(f32::MIN_POSITIVE)
    }
}

/// Draws `prompt` with `options` and maps where each caption token is read:
/// at every step, the conditional pass's cross-attention weights of every
/// block (or only `block`, from 0) and head, averaged.
pub fn cross_attention_maps(
    model: &ImageModel,
    prompt: &str,
    options: &ImageOptions,
    block: Option<usize>,
) -> Result<CrossAttentionMaps> {
    let denoiser = model.denoiser.as_ref().ok_or_else(|| {
        Error::Invalid("this image model has no denoiser (stage 2 was not trained)".into())
    })?;
    let config = denoiser.config();
    if let Some(b) = block.filter(|&b| b >= config.layers) {
        return Err(Error::Invalid(format!(
            "--block {b}: the denoiser has {} blocks (0 to {})",
            config.layers,
            config.layers - 1
        )));
    }
    let (ids, _) = model.caption_ids(prompt)?;
    let tokens = ids
        .iter()
        .map(|&id| Ok(token_piece(&model.tokenizer, id)?.text()))
        .collect::<Result<Vec<_>>>()?;
    let features = model
        .text_encoder
        .encode(std::slice::from_ref(&ids), &mut Mode::Eval)?
        .detach();
    // Summed weights, `[patches, tokens]`, and how many maps went in.
    let mut sum: Option<Tensor> = None;
    let mut count = 0usize;
    let mut failure = None;
    let pictures = generate_images(model, &[prompt.to_string()], options, |step| {
        let mut add = || -> Result<()> {
            let t = [step.timestep as f32];
            let (_, weights) = denoiser.forward_with_cross_attention(step.sample, &t, &features)?;
            for (i, w) in weights.iter().enumerate() {
                if block.is_none_or(|b| b == i) {
                    // [1, heads, patches, tokens] -> [patches, tokens]
                    let heads = w.dim(1)?;
                    let w = w.squeeze(0)?.sum(0)?;
                    count += heads;
                    sum = Some(match sum.take() {
                        Some(s) => (s + w)?,
                        None => w,
                    });
                }
            }
            Ok(())
        };
        if let Err(e) = add() {
            failure.get_or_insert(e);
        }
    })?;
    if let Some(e) = failure {
        return Err(e);
    }
    let sum = sum.ok_or_else(|| Error::Invalid("no denoising steps to map".into()))?;
    let maps: Vec<Vec<f32>> = (sum / count as f64)?
        .t()?
        .to_dtype(candle_core::DType::F32)?
        .to_vec2()?;
    let picture = pictures
        .into_iter()
        .next()
        .ok_or_else(|| Error::Invalid("no picture drawn".into()))?;
    Ok(CrossAttentionMaps {
        tokens,
        grid: config.image_size / config.patch_size,
        maps,
        picture,
    })
}

/// The picture, then one panel per caption token: the picture dimmed under
/// the token's map in red (each map stretched from its own minimum to its
/// maximum, so a map that barely varies still shows its shape), labelled
/// with the token and its share of the attention; every panel enlarged
/// `scale` times.
pub fn cross_attention_strip(maps: &CrossAttentionMaps, scale: u32) -> Result<RgbImage> {
    let side = maps.picture.width() * scale;
    let (gap, top) = (8, 46);
    let panels = maps.tokens.len() as u32 + 1;
    let width = gap + panels * (side + gap);
    // Left edge of panel `k` (0: the picture, then one per token).
    let left = |k: usize| gap + k as u32 * (side + gap);
    let mut strip = draw(width, top + side + gap, |root| {
        let font = ("sans-serif", 15).into_font();
        root.draw(&Text::new("picture", (gap as i32, 6), font.clone()))?;
        for (i, token) in maps.tokens.iter().enumerate() {
            let x = left(i + 1) as i32;
            let share = format!("{:.0}%", 100.0 * maps.share(i));
            root.draw(&Text::new(token.trim().to_string(), (x, 6), font.clone()))?;
            root.draw(&Text::new(share, (x, 24), font.clone()))?;
        }
        Ok(())
    })?;
    let picture = resize(&maps.picture, side, side, FilterType::Nearest);
    replace(&mut strip, &picture, gap as i64, top as i64);
    for (i, map) in maps.maps.iter().enumerate() {
        let x = left(i + 1) as i64;
        replace(
            &mut strip,
            &heat_panel(&picture, map, maps.grid),
            x,
            top as i64,
        );
    }
    Ok(strip)
}

/// `picture` dimmed to grey, with `map` (a `grid × grid` map) over it in red,
/// stretched from the map's minimum (none) to its maximum (full red).
fn heat_panel(picture: &RgbImage, map: &[f32], grid: usize) -> RgbImage {
    let max = map.iter().copied().fold(f32::MIN, f32::max);
    let min = map.iter().copied().fold(f32::MAX, f32::min);
    let range = (max - min).max(f32::MIN_POSITIVE);
    let side = picture.width();
    RgbImage::from_fn(side, side, |x, y| {
        let cell = (y as usize * grid / side as usize) * grid + x as usize * grid / side as usize;
        let heat = ((map[cell] - min) / range).clamp(0.0, 1.0);
        let Rgb([r, g, b]) = *picture.get_pixel(x, y);
        let grey = (0.3 * r as f32 + 0.59 * g as f32 + 0.11 * b as f32) * 0.5;
        let red = grey + heat * (255.0 - grey);
        let other = grey * (1.0 - 0.6 * heat);
        Rgb([red as u8, other as u8, other as u8])
    })
}

#[cfg(test)]
mod tests {
    use super::CrossAttentionMaps;
    use image::RgbImage;

    #[test]
    fn share_peak_and_contrast_follow_the_weights() {
        // A 2 × 2 grid: token 0 read most at the top right, token 1 at the
        // top left.
        let maps = CrossAttentionMaps {
            tokens: vec!["right".into(), "left".into()],
            grid: 2,
            maps: vec![vec![0.4, 0.8, 0.4, 0.4], vec![0.7, 0.2, 0.5, 0.6]],
            picture: RgbImage::new(4, 4),
        };
        assert_eq!(maps.peak(0), (0.75, 0.25));
        assert!((maps.share(0) - 0.5).abs() < 1e-6);
        assert!((maps.contrast(0) - 1.6).abs() < 1e-6);
        assert!((maps.share(1) - 0.5).abs() < 1e-6);
        assert_eq!(maps.peak(1), (0.25, 0.25));
    }
}
