//! Text to image: the prompt through the text encoder, then pure noise
//! denoised step by step by the DiT under a DDPM or DDIM sampler, steered by
//! classifier-free guidance (the prediction with the caption pushed away
//! from the prediction without it).

use crate::data::tensor_to_images;
use crate::diffusion::{Sampler, SamplerKind, StepOutput};
use crate::model::ImageModel;
use crate::nn::Mode;
use crate::{Error, Result};
use candle_core::{Device, Tensor};
use image::RgbImage;
use rand::SeedableRng;
use rand_distr::{Distribution, StandardNormal};

/// How to generate.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ImageOptions {
    /// Denoising steps.
    pub steps: usize,
    /// Classifier-free guidance scale: 1 uses the caption alone, 0 ignores
    /// it, above 1 pushes further towards it.
    pub guidance: f64,
    /// DDPM or DDIM.
    pub sampler: SamplerKind,
    /// Seed of the starting noise (and of DDPM's fresh noise).
    pub seed: u64,
}

/// One denoising step, as [`generate_images`] reports it.
#[derive(Debug)]
pub struct DenoisingStep<'a> {
    /// Its index, from 0.
    pub index: usize,
    /// The timestep it denoised from.
    pub timestep: usize,
    /// The samples it started from (`x_t`, `[n, 3, side, side]`).
    pub sample: &'a Tensor,
    /// Its result: the less noisy samples and the clean-image estimates.
    pub output: &'a StepOutput,
}

/// Generates one picture per prompt, all in one batch (repeat a prompt for
/// several pictures of it); `on_step` sees every step.
pub fn generate_images(
    model: &ImageModel,
    prompts: &[String],
    options: &ImageOptions,
    mut on_step: impl FnMut(&DenoisingStep),
) -> Result<Vec<RgbImage>> {
    let denoiser = model.denoiser.as_ref().ok_or_else(|| {
        Error::Invalid("this image model has no denoiser (stage 2 was not trained)".into())
    })?;
    if options.guidance < 0.0 || !options.guidance.is_finite() {
        return Err(Error::Invalid(format!(
            "--guidance must be 0 or more, not {}",
            options.guidance
        )));
    }
    if prompts.is_empty() {
        return Err(Error::Invalid("no prompts to draw".into()));
    }
    let device = Device::Cpu;
    // Guidance can push the clean-image estimate past the pixel range; the
    // noise estimate is recomputed from the clipped one so the two agree.
    let sampler = Sampler::new(model.schedule.clone(), options.sampler, options.steps)?
        .with_clipped_noise(true);
    let n = prompts.len();
    let mut captions = prompts
        .iter()
        .map(|p| Ok(model.caption_ids(p)?.0))
        .collect::<Result<Vec<_>>>()?;
    let (empty_ids, _) = model.caption_ids("")?;
    let guided = options.guidance != 1.0;
    if guided {
        captions.extend(std::iter::repeat_n(empty_ids, n));
    }
    // Inference: cut every result off the autograd graph, or each step's
    // graph (all its activations) would stay alive through the sample.
    let features = model
        .text_encoder
        .encode(&captions, &mut Mode::Eval)?
        .detach();
    let config = denoiser.config();
    let shape = (n, config.channels, config.image_size, config.image_size);
    let mut rng = rand::rngs::StdRng::seed_from_u64(options.seed);
    let noise = |rng: &mut rand::rngs::StdRng| -> Result<Tensor> {
        let count = shape.0 * shape.1 * shape.2 * shape.3;
        let values: Vec<f32> = (0..count).map(|_| StandardNormal.sample(rng)).collect();
        Ok(Tensor::from_vec(values, shape, &device)?)
    };
    let mut x = noise(&mut rng)?;
    for (index, &t) in sampler.timesteps().iter().enumerate() {
        let input = if guided {
            Tensor::cat(&[&x, &x], 0)?
        } else {
            x.clone()
        };
        let times = vec![t as f32; input.dim(0)?];
        let out = denoiser.forward(&input, &times, &features)?.detach();
        let out = if guided {
            let (cond, uncond) = (out.narrow(0, 0, n)?, out.narrow(0, n, n)?);
            (&uncond + ((cond - &uncond)? * options.guidance)?)?
        } else {
            out
        };
        let fresh = sampler
            .needs_noise(index)
            .then(|| noise(&mut rng))
            .transpose()?;
        let step = sampler.step(&out, index, &x, fresh.as_ref())?;
        on_step(&DenoisingStep {
            index,
            timestep: t,
            sample: &x,
            output: &step,
        });
        x = step.prev_sample;
    }
    tensor_to_images(&x)
}
