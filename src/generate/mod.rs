//! Text generation: choosing the next token from the model's logits, and the
//! loop that chains those choices into text, streamed as it is produced.

mod sampler;
mod text;

pub use sampler::{Sampler, SamplingParams};
pub use text::{generate, Generation};
