//! The forward (noising) process: the β schedule, ᾱ (the cumulative product
//! of 1 − β), noising a clean image to step `t`, the training target for each
//! prediction type, and the inference timesteps for a number of steps, all
//! as diffusers computes them (f32 tables, the same spacing rules).

use crate::{Error, Result};
use candle_core::Tensor;
use serde::{Deserialize, Serialize};

/// How β grows over the training timesteps.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BetaSchedule {
    /// β evenly spaced from `beta_start` to `beta_end` (DDPM's schedule).
    Linear,
    /// √β evenly spaced (Stable Diffusion's schedule).
    ScaledLinear,
    /// ᾱ(t) = cos²((t/T + 0.008)/1.008 · π/2), β capped at 0.999 (the
    /// improved-DDPM cosine schedule).
    #[serde(rename = "squaredcos_cap_v2")]
    Cosine,
}

/// What the denoiser predicts.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Prediction {
    /// The noise ε that was added.
    Epsilon,
    /// The velocity v = √ᾱ·ε − √(1−ᾱ)·x₀.
    #[serde(rename = "v_prediction")]
    Velocity,
    /// The clean image x₀.
    Sample,
}

/// How inference timesteps are spread over the training ones.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Spacing {
    /// `0, r, 2r, ...` with `r = T / n` rounded down, plus `steps_offset`.
    Leading,
    /// Counting down from `T − 1` in steps of `T / n`.
    Trailing,
    /// `n` points evenly spread over `[0, T − 1]`, rounded.
    Linspace,
}

/// A scheduler's settings, with diffusers' `scheduler_config.json` names.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SchedulerConfig {
    /// Number of training timesteps `T`.
    pub num_train_timesteps: usize,
    /// First β of the linear schedules.
    pub beta_start: f64,
    /// Last β of the linear schedules.
    pub beta_end: f64,
    /// The β schedule.
    pub beta_schedule: BetaSchedule,
    /// What the model predicts.
    pub prediction_type: Prediction,
    /// Whether the predicted clean image is clipped to `±clip_sample_range`.
    pub clip_sample: bool,
    /// The clipping range.
    pub clip_sample_range: f64,
    /// How inference timesteps are chosen.
    pub timestep_spacing: Spacing,
    /// Added to every timestep under `leading` spacing.
    pub steps_offset: usize,
    /// DDIM: whether the step after the last uses ᾱ = 1 (else ᾱ₀).
    pub set_alpha_to_one: bool,
    /// The DDPM step's variance; only `fixed_small` is supported.
    pub variance_type: String,
    /// Dynamic thresholding of the clean-image estimate; not supported.
    pub thresholding: bool,
    /// Rescaling β to zero terminal SNR; not supported.
    pub rescale_betas_zero_snr: bool,
}

impl Default for SchedulerConfig {
    /// diffusers' defaults.
    fn default() -> Self {
        Self {
            num_train_timesteps: 1000,
            beta_start: 0.0001,
            beta_end: 0.02,
            beta_schedule: BetaSchedule::Linear,
            prediction_type: Prediction::Epsilon,
            clip_sample: true,
            clip_sample_range: 1.0,
            timestep_spacing: Spacing::Leading,
            steps_offset: 0,
            set_alpha_to_one: true,
            variance_type: "fixed_small".into(),
            thresholding: false,
            rescale_betas_zero_snr: false,
        }
    }
}

/// The noise tables of one configuration.
#[derive(Debug, Clone)]
pub struct NoiseSchedule {
    /// The settings.
    pub config: SchedulerConfig,
    /// β for each training timestep.
    pub betas: Vec<f32>,
    /// ᾱ for each training timestep.
    pub alphas_cumprod: Vec<f32>,
}

impl NoiseSchedule {
    /// The tables for `config`.
    pub fn new(config: SchedulerConfig) -> Result<Self> {
        let t = config.num_train_timesteps;
        if config.variance_type != "fixed_small" {
            return Err(Error::Invalid(format!(
                "scheduler variance_type {:?} is not supported (only \"fixed_small\")",
                config.variance_type
            )));
        }
        if config.thresholding || config.rescale_betas_zero_snr {
            return Err(Error::Invalid(
                "scheduler thresholding and rescale_betas_zero_snr are not supported; set them to false"
                    .into(),
            ));
        }
        if t < 2 {
            return Err(Error::Invalid(format!(
                "num_train_timesteps must be at least 2, not {t}"
            )));
        }
        if !(config.beta_start > 0.0
            && config.beta_start <= config.beta_end
            && config.beta_end < 1.0)
        {
            return Err(Error::Invalid(format!(
                "beta_start {} and beta_end {} must satisfy 0 < beta_start ≤ beta_end < 1",
                config.beta_start, config.beta_end
            )));
        }
        let betas: Vec<f32> = match config.beta_schedule {
            BetaSchedule::Linear => {
                linspace_f32(config.beta_start as f32, config.beta_end as f32, t)
            }
            BetaSchedule::ScaledLinear => linspace_f32(
                config.beta_start.sqrt() as f32,
                config.beta_end.sqrt() as f32,
                t,
            )
            .into_iter()
            .map(|b| b * b)
            .collect(),
            BetaSchedule::Cosine => {
                let alpha_bar = |s: f64| {
                    ((s + 0.008) / 1.008 * std::f64::consts::FRAC_PI_2)
                        .cos()
                        .powi(2)
                };
                (0..t)
                    .map(|i| {
                        let (a, b) = (i as f64 / t as f64, (i + 1) as f64 / t as f64);
                        (1.0 - alpha_bar(b) / alpha_bar(a)).min(0.999) as f32
                    })
                    .collect()
            }
        };
        let alphas_cumprod = betas
            .iter()
            .scan(1.0f32, |product, beta| {
                *product *= 1.0 - beta;
                Some(*product)
            })
            .collect();
        Ok(Self {
            config,
            betas,
            alphas_cumprod,
        })
    }

    /// Number of training timesteps.
    pub fn len(&self) -> usize {
        self.betas.len()
    }

    /// Always false: a schedule has at least two steps.
    pub fn is_empty(&self) -> bool {
        self.betas.is_empty()
    }

    /// The timesteps, highest first, for sampling in `steps` steps.
    pub fn timesteps(&self, steps: usize) -> Result<Vec<usize>> {
        let t = self.len();
        if steps == 0 || steps > t {
            return Err(Error::Invalid(format!(
                "steps must be between 1 and {t} (the training timesteps), not {steps}"
            )));
        }
        let timesteps = match self.config.timestep_spacing {
            Spacing::Leading => {
                let ratio = t / steps;
                (0..steps)
                    .rev()
                    .map(|i| i * ratio + self.config.steps_offset)
                    .collect()
            }
            Spacing::Trailing => {
                let ratio = t as f64 / steps as f64;
                (0..steps)
                    .map(|i| round_half_even(t as f64 - i as f64 * ratio) as usize - 1)
                    .collect()
            }
            Spacing::Linspace => (0..steps)
                .rev()
                .map(|i| {
                    let x = if steps == 1 {
                        0.0
                    } else {
                        i as f64 * (t - 1) as f64 / (steps - 1) as f64
                    };
                    round_half_even(x) as usize
                })
                .collect(),
        };
        Ok(timesteps)
    }

    /// ᾱ at `t`, or at "before the first step" (1) when `t` is `None`.
    pub fn alpha_bar(&self, t: Option<usize>) -> f64 {
        t.map_or(1.0, |t| self.alphas_cumprod[t] as f64)
    }

    /// `x₀` noised to timestep `t[i]` for each batch item `i`:
    /// `√ᾱ·x₀ + √(1−ᾱ)·ε`.
    pub fn add_noise(&self, x0: &Tensor, noise: &Tensor, t: &[usize]) -> Result<Tensor> {
        let (a, b) = self.per_item(x0, t, |ab| (ab.sqrt(), (1.0 - ab).sqrt()))?;
        Ok((x0.broadcast_mul(&a)? + noise.broadcast_mul(&b)?)?)
    }

    /// What the denoiser should output for `x₀` noised with `noise` at `t`.
    pub fn target(&self, x0: &Tensor, noise: &Tensor, t: &[usize]) -> Result<Tensor> {
        Ok(match self.config.prediction_type {
            Prediction::Epsilon => noise.clone(),
            Prediction::Sample => x0.clone(),
            Prediction::Velocity => {
                let (a, b) = self.per_item(x0, t, |ab| (ab.sqrt(), (1.0 - ab).sqrt()))?;
                (noise.broadcast_mul(&a)? - x0.broadcast_mul(&b)?)?
            }
        })
    }

    /// The Min-SNR-γ weight of the loss at `t` for this prediction type:
    /// `min(SNR, γ)` over the factor by which the type's squared error
    /// already scales the clean image's (SNR for ε, SNR + 1 for v, 1 for
    /// x₀), with SNR = ᾱ / (1 − ᾱ).
    pub fn min_snr_weight(&self, t: usize, gamma: f64) -> f64 {
        let ab = self.alphas_cumprod[t] as f64;
        let snr = ab / (1.0 - ab).max(f64::MIN_POSITIVE);
        let capped = snr.min(gamma);
        match self.config.prediction_type {
            Prediction::Epsilon if snr > 0.0 => capped / snr,
            Prediction::Epsilon => 1.0,
            Prediction::Velocity => capped / (snr + 1.0),
            Prediction::Sample => capped,
        }
    }

    /// Two per-item coefficients of ᾱ, shaped to broadcast over `like`.
    fn per_item(
        &self,
        like: &Tensor,
        t: &[usize],
        coefficients: impl Fn(f64) -> (f64, f64),
    ) -> Result<(Tensor, Tensor)> {
        let batch = like.dim(0)?;
        if t.len() != batch || t.iter().any(|&t| t >= self.len()) {
            return Err(Error::Invalid(format!(
                "need {batch} timesteps below {}, got {t:?}",
                self.len()
            )));
        }
        let mut shape = vec![1; like.rank()];
        shape[0] = batch;
        let (a, b): (Vec<f32>, Vec<f32>) = t
            .iter()
            .map(|&t| {
                let (a, b) = coefficients(self.alphas_cumprod[t] as f64);
                (a as f32, b as f32)
            })
            .unzip();
        let make = |v: Vec<f32>| -> Result<Tensor> {
            Ok(Tensor::from_vec(v, shape.as_slice(), like.device())?.to_dtype(like.dtype())?)
        };
        Ok((make(a)?, make(b)?))
    }
}

/// `n` points from `start` to `end` in f32, computed as PyTorch's CPU
/// `linspace` does (from the start for the first half, from the end after).
fn linspace_f32(start: f32, end: f32, n: usize) -> Vec<f32> {
    let step = (end - start) / (n - 1) as f32;
    (0..n)
        .map(|i| {
            if i < n / 2 {
                start + step * i as f32
            } else {
                end - step * (n - 1 - i) as f32
            }
        })
        .collect()
}

/// NumPy's `round`: halves go to the even neighbour.
fn round_half_even(x: f64) -> f64 {
    let r = x.round();
    if (x - x.trunc()).abs() == 0.5 && r % 2.0 != 0.0 {
        r - x.signum()
    } else {
        r
    }
}
