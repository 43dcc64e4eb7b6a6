//! The shared Transformer blocks every seer model is built from: parameters
//! and their initialisation, linear layers, LayerNorm, multi-head attention
//! (causal or bidirectional, with a KV cache for generation), the MLP, the
//! pre-LayerNorm block and dropout.
//!
//! Layers keep Hugging Face GPT-2's parameter names and layouts, so a model
//! built from them saves and loads as a GPT-2 checkpoint does.

mod attention;
mod block;
mod dropout;
mod kv_cache;
mod layer_norm;
mod linear;
mod mlp;
mod params;

pub use attention::SelfAttention;
pub use block::{Block, BlockShape};
pub use dropout::Mode;
pub use kv_cache::{KvCache, LayerCache};
pub use layer_norm::LayerNorm;
pub use linear::Linear;
pub use mlp::Mlp;
pub use params::{load_tensors, save_tensors, Init, ParamBuilder, ParamSource, Params};
