//! Text generation: choosing the next token from the model's logits, the
//! loop that chains those choices into text, and the stream that shows the
//! text as it forms (whole characters only, cut at stop sequences), and the
//! conversation that `seer chat` keeps as context; and the text-to-image
//! pipeline.

mod bench;
mod chat;
mod image;
mod loaded;
mod model;
mod model_bench;
mod sampler;
mod stream;
mod text;

pub use bench::{bench_generate, copy_bandwidth, peak_rss, GenerateBench};
pub use chat::{Conversation, Role, Turn, REPLY_STOP};
pub use image::{generate_images, DenoisingStep, ImageOptions};
pub use loaded::LoadedModel;
pub use model::TextModel;
pub use model_bench::{bench_model, median, ModelBench};
pub use sampler::{Sampler, SamplingParams};
pub use stream::{TextStream, Update};
pub use text::{
    generate, generate_from_ids, prompt_tokens, Event, FinishReason, GenerateOptions, Generation,
    Sequence, Step,
};
