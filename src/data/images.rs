//! Image–caption pairs for the image models, and the conversions between
//! pictures and the tensors the models read (`[-1, 1]`, channels first).

use super::mnist::{digit_caption, Mnist};
use super::shapes::{hard_negatives, render, Description, Scene};
use crate::{Error, Result};
use candle_core::{Device, Tensor};
use image::RgbImage;
use rand::Rng;
use std::ops::Range;
use std::sync::Arc;

/// Where training pairs come from.
#[derive(Debug, Clone)]
pub enum PairSource {
    /// The procedural shapes world at this image side (fresh scenes forever).
    Shapes {
        /// Image side in pixels (32 or 64).
        side: u32,
    },
    /// MNIST digits (those in `range`), centred on `side × side`.
    Mnist {
        /// The digits.
        digits: Arc<Mnist>,
        /// Which of them to train on.
        range: Range<usize>,
        /// Image side in pixels (at least 28).
        side: u32,
    },
    /// A folder of captioned pictures, already square and resized.
    Folder {
        /// The pictures with their captions.
        pairs: Arc<Vec<(RgbImage, String)>>,
        /// Image side in pixels.
        side: u32,
    },
}

/// A batch of pictures with their captions.
#[derive(Debug, Clone)]
pub struct Pairs {
    /// `[batch, 3, side, side]` in `[-1, 1]`.
    pub images: Tensor,
    /// One caption per picture.
    pub captions: Vec<String>,
    /// Captions false of their picture yet naming nearly the same words
    /// (see [`crate::data::shapes::hard_negatives`]), when asked for and
    /// the source can make them (the shapes world); else empty.
    pub hard_negatives: Vec<HardNegative>,
}

/// A caption that is false of one picture of a batch yet names nearly the
/// same words as its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HardNegative {
    /// Which picture of the batch it is false of.
    pub picture: usize,
    /// How it was made from the true caption (one of
    /// [`crate::data::shapes::NEGATIVES`]' kinds).
    pub kind: &'static str,
    /// The caption.
    pub text: String,
}

impl PairSource {
    /// Image side in pixels.
    pub fn side(&self) -> u32 {
        match self {
            PairSource::Shapes { side }
            | PairSource::Mnist { side, .. }
            | PairSource::Folder { side, .. } => *side,
        }
    }

    /// One pair drawn with `rng`, with the scene and description behind
    /// it when the shapes world drew it.
    fn pair(&self, rng: &mut impl Rng) -> (RgbImage, String, Option<(Scene, Description)>) {
        match self {
            PairSource::Shapes { side } => {
                let scene = Scene::sample(rng);
                let description = Description::of(&scene, rng);
                (
                    render(&scene, *side),
                    description.text(),
                    Some((scene, description)),
                )
            }
            PairSource::Mnist {
                digits,
                range,
                side,
            } => {
                let i = rng.random_range(range.clone());
                (
                    digits.picture(i, *side),
                    digit_caption(digits.label(i), rng),
                    None,
                )
            }
            PairSource::Folder { pairs, .. } => {
                let (picture, text) = pairs[rng.random_range(0..pairs.len())].clone();
                (picture, text, None)
            }
        }
    }

    /// `n` pairs drawn with `rng`.
    pub fn sample(&self, n: usize, rng: &mut impl Rng, device: &Device) -> Result<Pairs> {
        self.sample_with(n, false, rng, device)
    }

    /// `n` pairs drawn with `rng` as [`PairSource::sample`] draws them,
    /// then, when `with_hard_negatives`, every hard negative of their
    /// captions that the source can make (drawn after the pairs, so the
    /// pairs are the same either way).
    pub fn sample_with(
        &self,
        n: usize,
        with_hard_negatives: bool,
        rng: &mut impl Rng,
        device: &Device,
    ) -> Result<Pairs> {
        let mut pictures = Vec::with_capacity(n);
        let mut captions = Vec::with_capacity(n);
        let mut described = Vec::new();
        for i in 0..n {
            let (picture, caption, scene) = self.pair(rng);
            pictures.push(picture);
            captions.push(caption);
            described.extend(scene.map(|s| (i, s)));
        }
        let mut negatives = Vec::new();
        if with_hard_negatives {
            for (picture, (scene, description)) in &described {
                for (kind, negative) in hard_negatives(description, scene, rng) {
                    negatives.push(HardNegative {
                        picture: *picture,
                        kind,
                        text: negative.text(),
                    });
                }
            }
        }
        Ok(Pairs {
            images: images_to_tensor(&pictures, device)?,
            captions,
            hard_negatives: negatives,
        })
    }

    /// Captions to train a tokenizer on: a folder's own, or `n` drawn.
    pub fn caption_corpus(&self, n: usize, rng: &mut impl Rng) -> Vec<String> {
        match self {
            PairSource::Folder { pairs, .. } => pairs.iter().map(|(_, c)| c.clone()).collect(),
            _ => (0..n).map(|_| self.pair(rng).1).collect(),
        }
    }
}

/// Pictures (all the same size) as `[n, 3, h, w]` in `[-1, 1]`.
pub fn images_to_tensor(pictures: &[RgbImage], device: &Device) -> Result<Tensor> {
    let first = pictures
        .first()
        .ok_or_else(|| Error::Invalid("no pictures to convert".into()))?;
    let (w, h) = first.dimensions();
    let mut values = Vec::with_capacity(pictures.len() * 3 * (w * h) as usize);
    for picture in pictures {
        if picture.dimensions() != (w, h) {
            return Err(Error::Invalid(format!(
                "pictures differ in size: {:?} and {:?}",
                picture.dimensions(),
                (w, h)
            )));
        }
        for channel in 0..3 {
            values.extend(picture.pixels().map(|p| p.0[channel] as f32 / 127.5 - 1.0));
        }
    }
    Ok(Tensor::from_vec(
        values,
        (pictures.len(), 3, h as usize, w as usize),
        device,
    )?)
}

/// `[n, 3, h, w]` in `[-1, 1]` back to pictures (values clipped).
pub fn tensor_to_images(images: &Tensor) -> Result<Vec<RgbImage>> {
    let (n, c, h, w) = images.dims4()?;
    if c != 3 {
        return Err(Error::Invalid(format!("expected 3 channels, got {c}")));
    }
    let values: Vec<f32> = images
        .to_dtype(candle_core::DType::F32)?
        .flatten_all()?
        .to_vec1()?;
    let plane = h * w;
    Ok((0..n)
        .map(|i| {
            let base = i * 3 * plane;
            RgbImage::from_fn(w as u32, h as u32, |x, y| {
                let at = y as usize * w + x as usize;
                image::Rgb(std::array::from_fn(|ch| {
                    let v = values[base + ch * plane + at];
                    ((v.clamp(-1.0, 1.0) + 1.0) * 127.5).round() as u8
                }))
            })
        })
        .collect())
}

/// Pictures side by side in a grid of `columns`, with a 2-pixel gap.
pub fn grid(pictures: &[RgbImage], columns: usize) -> RgbImage {
    let Some(first) = pictures.first() else {
        return RgbImage::new(0, 0);
    };
    let (w, h) = first.dimensions();
    let columns = columns.clamp(1, pictures.len());
    let rows = pictures.len().div_ceil(columns);
    let gap = 2;
    let mut out = RgbImage::from_pixel(
        columns as u32 * (w + gap) - gap,
        rows as u32 * (h + gap) - gap,
        image::Rgb([128, 128, 128]),
    );
    for (i, picture) in pictures.iter().enumerate() {
        let (x0, y0) = (
            (i % columns) as u32 * (w + gap),
            (i / columns) as u32 * (h + gap),
        );
        image::imageops::replace(&mut out, picture, x0 as i64, y0 as i64);
    }
    out
}
