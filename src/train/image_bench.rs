//! Text-to-image speed on a preset's shapes (random weights): the stage-2
//! training step and the sampling of a grid of pictures.

use super::image::{diffusion_loss, fresh_stage_two};
use super::{AdamW, ImageTrainConfig};
use crate::diffusion::SamplerKind;
use crate::generate::{generate_images, ImageOptions};
use crate::model::ImageModel;
use crate::Result;
use std::time::Instant;

/// What `bench_image` measured.
#[derive(Debug, Clone)]
pub struct ImageBench {
    /// Median milliseconds per stage-2 training step.
    pub train_step_ms: f64,
    /// Median seconds to sample the pictures.
    pub sample_s: f64,
    /// Pictures per second at that median.
    pub images_per_s: f64,
    /// Denoiser parameters.
    pub params: usize,
}

/// Times `iters` stage-2 steps (after `warmup`) of `config`, then samples
/// `images` pictures with `steps` DDIM steps and guidance `guidance`
/// (`rounds` times).
pub fn bench_image(
    config: &ImageTrainConfig,
    warmup: usize,
    iters: usize,
    images: usize,
    steps: usize,
    rounds: usize,
) -> Result<ImageBench> {
    config.validate()?;
    let (model, dit, options) = fresh_stage_two(config, 5000)?;
    let stage = &config.diffusion;
    let mut optimizer = AdamW::new(dit.params(), 0.9, 0.999, stage.weight_decay)?;
    let mut step_ms = Vec::with_capacity(iters);
    for step in 0..warmup + iters {
        let t0 = Instant::now();
        let loss = diffusion_loss(&model, &dit, &options, step as u64)?;
        optimizer.step(&loss.backward()?, stage.lr, stage.grad_clip)?;
        if step >= warmup {
            step_ms.push(t0.elapsed().as_secs_f64() * 1e3);
        }
    }
    let params = dit.params().count();
    let model = ImageModel {
        denoiser: Some(dit),
        ..model
    };
    let prompts = vec!["a red circle to the left of a blue square".to_string(); images];
    let sample_options = ImageOptions {
        steps,
        guidance: 4.0,
        sampler: SamplerKind::Ddim { eta: 0.0 },
        seed: 0,
    };
    let mut sample_s = Vec::with_capacity(rounds);
    for _ in 0..rounds.max(1) {
        let t0 = Instant::now();
        generate_images(&model, &prompts, &sample_options, |_| {})?;
        sample_s.push(t0.elapsed().as_secs_f64());
    }
    let sample_s = median(&mut sample_s);
    Ok(ImageBench {
        train_step_ms: median(&mut step_ms),
        sample_s,
        images_per_s: images as f64 / sample_s,
        params,
    })
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(f64::NAN)
}
