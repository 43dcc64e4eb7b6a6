//! The denoising path of text to image, as one strip: pure noise, then the
//! sample after chosen steps (top row) and, under each, the model's estimate
//! of the clean picture at that step (bottom row).

use crate::data::tensor_to_images;
use crate::generate::{generate_images, ImageOptions};
use crate::model::ImageModel;
use crate::plot::draw;
use crate::{Error, Result};
use image::imageops::{replace, resize, FilterType};
use image::RgbImage;
use plotters::prelude::*;

/// The picture at one point of the path.
#[derive(Debug, Clone)]
pub struct DenoiseFrame {
    /// Steps done (0: the starting noise).
    pub steps_done: usize,
    /// The sample.
    pub sample: RgbImage,
    /// The model's estimate of the clean picture (none for the starting noise).
    pub estimate: Option<RgbImage>,
}

/// Which steps (counted from 1) a strip of `frames` columns shows after the
/// starting noise: evenly spread, ending with the last.
pub fn shown_steps(steps: usize, frames: usize) -> Vec<usize> {
    let after = frames.saturating_sub(1).clamp(1, steps);
    let mut shown: Vec<usize> = (1..=after).map(|k| (k * steps).div_ceil(after)).collect();
    shown.dedup();
    shown
}

/// Draws `prompt` with `options`, keeping the starting noise and the
/// samples and estimates after [`shown_steps`].
pub fn denoise_frames(
    model: &ImageModel,
    prompt: &str,
    options: &ImageOptions,
    frames: usize,
) -> Result<Vec<DenoiseFrame>> {
    if frames < 2 {
        return Err(Error::Invalid(format!(
            "--frames {frames}: show at least 2 (the noise and the picture)"
        )));
    }
    let wanted = shown_steps(options.steps, frames);
    let mut kept = Vec::new();
    let mut failure = None;
    let first = |t: &candle_core::Tensor| -> Result<RgbImage> {
        Ok(tensor_to_images(&t.narrow(0, 0, 1)?)?.remove(0))
    };
    generate_images(model, &[prompt.to_string()], options, |step| {
        let mut keep = || -> Result<()> {
            if step.index == 0 {
                kept.push(DenoiseFrame {
                    steps_done: 0,
                    sample: first(step.sample)?,
                    estimate: None,
                });
            }
            if wanted.contains(&(step.index + 1)) {
                kept.push(DenoiseFrame {
                    steps_done: step.index + 1,
                    sample: first(&step.output.prev_sample)?,
                    estimate: Some(first(&step.output.pred_original)?),
                });
            }
            Ok(())
        };
        if let Err(e) = keep() {
            failure.get_or_insert(e);
        }
    })?;
    match failure {
        Some(e) => Err(e),
        None => Ok(kept),
    }
}

/// The frames side by side, each picture enlarged `scale` times, labelled
/// with the steps done; samples on top, estimates below.
pub fn denoise_strip(frames: &[DenoiseFrame], total_steps: usize, scale: u32) -> Result<RgbImage> {
    let Some(first) = frames.first() else {
        return Err(Error::Invalid("no frames to draw".into()));
    };
    let side = first.sample.width() * scale;
    let (gap, left, top) = (8, 150, 28);
    let width = left + frames.len() as u32 * (side + gap);
    let height = top + 2 * (side + gap) + 4;
    let mut strip = draw(width, height, |root| {
        let font = ("sans-serif", 15).into_font();
        for (i, frame) in frames.iter().enumerate() {
            let label = match frame.steps_done {
                0 => "noise".to_string(),
                n => format!("step {n}/{total_steps}"),
            };
            let x = (left + i as u32 * (side + gap)) as i32;
            root.draw(&Text::new(label, (x, 6), font.clone()))?;
        }
        for (row, label) in ["sample x_t", "estimate of x_0"].iter().enumerate() {
            let y = (top + row as u32 * (side + gap) + side / 2) as i32;
            root.draw(&Text::new(*label, (8, y - 8), font.clone()))?;
        }
        Ok(())
    })?;
    let enlarge = |p: &RgbImage| resize(p, side, side, FilterType::Nearest);
    let grey = RgbImage::from_pixel(side, side, image::Rgb([200, 200, 200]));
    for (i, frame) in frames.iter().enumerate() {
        let x = (left + i as u32 * (side + gap)) as i64;
        replace(&mut strip, &enlarge(&frame.sample), x, top as i64);
        let estimate = frame.estimate.as_ref().map_or(grey.clone(), enlarge);
        replace(&mut strip, &estimate, x, (top + side + gap) as i64);
    }
    Ok(strip)
}

#[cfg(test)]
mod tests {
    use super::shown_steps;

    #[test]
    fn shown_steps_spread_evenly_and_end_with_the_last() {
        assert_eq!(shown_steps(50, 8), [8, 15, 22, 29, 36, 43, 50]);
        assert_eq!(shown_steps(3, 8), [1, 2, 3]);
        assert_eq!(shown_steps(10, 2), [10]);
    }
}
