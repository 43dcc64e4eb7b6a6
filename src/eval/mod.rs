//! Judging models: a language model's perplexity on held-out text; for
//! image models, CLIP's retrieval and hard-negative accuracy on held-out
//! shapes pairs, a GenEval-style table of generated pictures scored by the
//! shapes detector, and a probe of attribute binding that uses the denoiser
//! as a classifier.

mod binding;
mod clip;
mod digits;
mod image;
mod perplexity;

pub use binding::{probe_binding, probe_timesteps, BindingAtTimestep, BindingReport, Phrasing};
pub use clip::{evaluate_clip, ClipReport};
pub use digits::{evaluate_digits, DigitClassifier};
pub use image::{evaluate_images, CategoryScore, ImageReport};
pub use perplexity::{perplexity, Perplexity};
