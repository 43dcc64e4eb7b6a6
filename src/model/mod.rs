//! The models seer trains and runs, and their configs.

mod gpt;
mod gpt_config;

pub use gpt::Gpt;
pub use gpt_config::GptConfig;
