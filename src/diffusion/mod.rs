//! Diffusion: the noise schedule that turns images into noise during
//! training, and the samplers (DDPM, DDIM) that turn noise back into images,
//! each step matching diffusers' schedulers.

mod sampler;
mod schedule;

pub use sampler::{Sampler, SamplerKind, StepOutput};
pub use schedule::{BetaSchedule, NoiseSchedule, Prediction, SchedulerConfig, Spacing};
