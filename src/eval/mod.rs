//! Judging trained image models: CLIP's retrieval and hard-negative
//! accuracy on held-out shapes pairs, and a GenEval-style table of generated
//! pictures scored by the shapes detector.

mod clip;
mod digits;
mod image;

pub use clip::{evaluate_clip, ClipReport};
pub use digits::{evaluate_digits, DigitClassifier};
pub use image::{evaluate_images, CategoryScore, ImageReport};
