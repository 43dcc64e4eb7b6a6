//! File formats of the open-model world: GGUF (metadata, tensors, writing),
//! the tokenizers and chat templates that GGUF files carry.

mod gguf;
mod value;

pub use gguf::{Gguf, TensorInfo, DEFAULT_ALIGNMENT, MAGIC, MAX_DIMS};

pub use value::{Metadata, Value};
