//! The reverse process: DDPM (ancestral) and DDIM (deterministic, or
//! stochastic with `eta`) steps, each as diffusers' `DDPMScheduler` and
//! `DDIMScheduler` compute them (fixed-small variance, optional clipping of
//! the predicted clean image).

use super::{NoiseSchedule, Prediction};
use crate::{Error, Result};
use candle_core::Tensor;

/// Which reverse process to run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum SamplerKind {
    /// Ancestral sampling: fresh noise at every step but the last.
    Ddpm,
    /// DDIM with `eta` (0 = deterministic, 1 ≈ DDPM's variance).
    Ddim {
        /// Scale of the fresh noise at each step.
        eta: f64,
    },
}

/// One step's result.
#[derive(Debug, Clone)]
pub struct StepOutput {
    /// The sample at the previous (less noisy) timestep.
    pub prev_sample: Tensor,
    /// The model's current estimate of the clean image.
    pub pred_original: Tensor,
}

/// A sampler set up for a number of steps.
#[derive(Debug, Clone)]
pub struct Sampler {
    schedule: NoiseSchedule,
    kind: SamplerKind,
    timesteps: Vec<usize>,
    clipped_noise: bool,
}

impl Sampler {
    /// `kind` over `steps` timesteps of `schedule`.
    pub fn new(schedule: NoiseSchedule, kind: SamplerKind, steps: usize) -> Result<Self> {
        if let SamplerKind::Ddim { eta } = kind {
            if !(0.0..=1.0).contains(&eta) {
                return Err(Error::Invalid(format!("eta must be in [0, 1], not {eta}")));
            }
        }
        let timesteps = schedule.timesteps(steps)?;
        Ok(Self {
            schedule,
            kind,
            timesteps,
            clipped_noise: false,
        })
    }

    /// DDIM: whether the noise estimate is recomputed from the clipped
    /// clean-image estimate (diffusers' `use_clipped_model_output`), so that
    /// the two stay consistent. Without it, a guided prediction that clipping
    /// cuts short keeps pushing the sample through the noise term (in pixel
    /// space: towards the complementary colour).
    pub fn with_clipped_noise(mut self, clipped: bool) -> Self {
        self.clipped_noise = clipped;
        self
    }

    /// The timesteps, highest first.
    pub fn timesteps(&self) -> &[usize] {
        &self.timesteps
    }

    /// Whether step `index` adds fresh noise (and so needs `noise`).
    pub fn needs_noise(&self, index: usize) -> bool {
        match self.kind {
            SamplerKind::Ddpm => self.timesteps[index] > 0,
            SamplerKind::Ddim { eta } => eta > 0.0,
        }
    }

    /// The timestep the step from `timesteps[index]` lands on (`None`: the
    /// clean end). DDPM takes the next listed timestep; DDIM subtracts
    /// `T / steps`, as diffusers does.
    fn previous(&self, index: usize) -> Option<usize> {
        match self.kind {
            SamplerKind::Ddpm => self.timesteps.get(index + 1).copied(),
            SamplerKind::Ddim { .. } => {
                let stride = self.schedule.len() / self.timesteps.len();
                self.timesteps[index].checked_sub(stride)
            }
        }
    }

    /// Steps `sample` at `timesteps[index]` back one step, given the
    /// model's `output` there; `noise` (same shape) is used when
    /// [`Sampler::needs_noise`] says so.
    pub fn step(
        &self,
        output: &Tensor,
        index: usize,
        sample: &Tensor,
        noise: Option<&Tensor>,
    ) -> Result<StepOutput> {
        let t = self.timesteps[index];
        let prev = self.previous(index);
        let alpha_t = self.schedule.alpha_bar(Some(t));
        let alpha_prev = match (self.kind, prev) {
            (SamplerKind::Ddim { .. }, None) if !self.schedule.config.set_alpha_to_one => {
                self.schedule.alpha_bar(Some(0))
            }
            _ => self.schedule.alpha_bar(prev),
        };
        let beta_t = 1.0 - alpha_t;
        let (x0, eps) = self.split_prediction(output, sample, alpha_t)?;
        let config = &self.schedule.config;
        let x0 = if config.clip_sample {
            let r = config.clip_sample_range;
            x0.clamp(-r, r)?
        } else {
            x0
        };
        let (mut prev_sample, sigma) = match self.kind {
            SamplerKind::Ddpm => {
                let current_alpha = alpha_t / alpha_prev;
                let current_beta = 1.0 - current_alpha;
                let x0_coeff = alpha_prev.sqrt() * current_beta / beta_t;
                let sample_coeff = current_alpha.sqrt() * (1.0 - alpha_prev) / beta_t;
                let mean = ((&x0 * x0_coeff)? + (sample * sample_coeff)?)?;
                let variance = ((1.0 - alpha_prev) / beta_t * current_beta).max(1e-20);
                (mean, variance.sqrt())
            }
            SamplerKind::Ddim { eta } => {
                let eps = if self.clipped_noise {
                    ((sample - (&x0 * alpha_t.sqrt())?)? / beta_t.sqrt())?
                } else {
                    eps
                };
                let variance = (1.0 - alpha_prev) / beta_t * (1.0 - alpha_t / alpha_prev);
                let sigma = eta * variance.sqrt();
                let direction = (1.0 - alpha_prev - sigma * sigma).sqrt();
                let mean = ((&x0 * alpha_prev.sqrt())? + (eps * direction)?)?;
                (mean, sigma)
            }
        };
        if self.needs_noise(index) {
            let noise = noise.ok_or_else(|| {
                Error::Invalid(format!("sampler step {index} needs a noise tensor"))
            })?;
            prev_sample = (prev_sample + (noise * sigma)?)?;
        }
        Ok(StepOutput {
            prev_sample,
            pred_original: x0,
        })
    }

    /// The clean-image and noise estimates from the model's output.
    fn split_prediction(
        &self,
        output: &Tensor,
        sample: &Tensor,
        alpha_t: f64,
    ) -> Result<(Tensor, Tensor)> {
        let (a, b) = (alpha_t.sqrt(), (1.0 - alpha_t).sqrt());
        Ok(match self.schedule.config.prediction_type {
            Prediction::Epsilon => {
                let x0 = ((sample - (output * b)?)? / a)?;
                (x0, output.clone())
            }
            Prediction::Sample => {
                let eps = ((sample - (output * a)?)? / b)?;
                (output.clone(), eps)
            }
            Prediction::Velocity => {
                let x0 = ((sample * a)? - (output * b)?)?;
                let eps = ((output * a)? + (sample * b)?)?;
                (x0, eps)
            }
        })
    }
}
