//! File formats of the open-model world: GGUF (metadata, tensors, writing),
//! the tokenizers and chat templates that GGUF files carry.

mod chat_template;
mod gguf;
mod gguf_tokenizer;
mod py_json;
#[cfg(test)]
mod reference_tests;
mod value;

pub use chat_template::{ChatMessage, ChatTemplate, CHATML};
pub use gguf::{Gguf, TensorInfo, DEFAULT_ALIGNMENT, MAGIC, MAX_DIMS};
pub use gguf_tokenizer::{GgufTokenizer, SpecialTokens, PRE_TOKENIZERS};

pub use value::{Metadata, Value};
