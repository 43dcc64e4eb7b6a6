//! The shared Transformer blocks every seer model is built from: parameters
//! and their initialisation, linear layers, LayerNorm, multi-head attention
//! (causal or bidirectional, with a KV cache for generation, over padded
//! batches), cross-attention, the MLP, the pre-LayerNorm block, dropout, and
//! the pieces of image models: patches, fixed position and timestep
//! embeddings, and adaptive LayerNorm.
//!
//! Layers keep Hugging Face GPT-2's parameter names and layouts, so a model
//! built from them saves and loads as a GPT-2 checkpoint does.

mod adaln;
mod attention;
mod block;
mod cross_attention;
mod dit_block;
mod dropout;
mod kv_cache;
mod layer_norm;
mod linear;
mod mlp;
mod neighbour_mix;
mod params;
mod patch;
mod patch_io;
mod position;

pub use adaln::{modulated_norm, AdaLn};
pub use attention::SelfAttention;
pub use block::{Block, BlockShape};
pub use cross_attention::CrossAttention;
pub use dit_block::{Conditioning, DitBlock};
pub use dropout::Mode;
pub use kv_cache::{KvCache, LayerCache};
pub use layer_norm::LayerNorm;
pub use linear::Linear;
pub use mlp::Mlp;
pub use neighbour_mix::NeighbourMix;
pub use params::{
    load_tensors, save_tensors, Init, Member, ParamBuilder, ParamSource, Params, Precision,
};
pub use patch::{patchify, unpatchify};
pub use patch_io::PatchIo;
pub use position::{grid_embedding, timestep_embedding};
