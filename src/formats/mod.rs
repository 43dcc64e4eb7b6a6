//! File formats of the open-model world: GGUF (metadata, tensors, writing),
//! the tokenizers and chat templates that GGUF files carry.

mod value;

pub use value::{Metadata, Value};
