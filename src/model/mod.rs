//! The models seer trains and runs, and their configs: the GPT, CLIP's text
//! and image encoders, and the diffusion Transformer.

mod clip;
mod component;
mod dit;
mod gpt;
mod gpt_config;
mod image_model;
mod llama;
mod open_model;

pub use clip::{
    contrastive_loss, normalize, ImageEncoder, ImageEncoderConfig, TextEncoder, TextEncoderConfig,
    TextFeatures,
};
pub use dit::{Dit, DitConfig};
pub use gpt::Gpt;
pub use gpt_config::{GptConfig, LAYER_NORM_EPS};
pub use image_model::{caption_ids, ImageModel};
pub use llama::{Activation, Family, Llama, LlamaConfig, Logits, RopeStyle, TrainableLlama};
pub use open_model::OpenModel;
