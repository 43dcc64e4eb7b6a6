//! seer: a prediction machine for text and images.
//!
//! The library holds everything the `seer` command does: tokenizers, token
//! shards, the Transformer blocks and the GPT built from them, the training loop
//! with its optimizer, schedule and checkpoints, and text generation. The
//! binary in `src/main.rs` only parses the command line and calls in here.

pub mod atomic;
pub mod convert;
pub mod data;
pub mod device;
pub mod diffusion;
pub mod error;
pub mod eval;
pub mod formats;
pub mod generate;
pub mod inspect;
pub mod kernels;
pub mod model;
pub mod nn;
pub mod plot;
pub mod serve;
pub mod threads;
pub mod tokenize;
pub mod train;

pub use error::{Error, Result};
