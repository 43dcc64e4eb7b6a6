//! File formats of the open-model world: GGUF (metadata, tensors, writing),
//! the tokenizers and chat templates that GGUF files and Hugging Face
//! folders carry, and a fuzzer for everything that reads GGUF.

mod chat_template;
mod fuzz;
mod gguf;
mod gguf_tokenizer;
mod gguf_writer;
mod hf_tokenizer;
mod py_json;
#[cfg(test)]
mod reference_tests;
mod special_tokens;
mod value;

pub use chat_template::{ChatMessage, ChatTemplate, CHATML};
pub use fuzz::{fuzz_gguf, FuzzReport};
pub use gguf::{Gguf, TensorInfo, DEFAULT_ALIGNMENT, MAGIC, MAX_DIMS};
pub use gguf_tokenizer::{pre_tokenizer_of, GgufTokenizer, PRE_TOKENIZERS};
pub use gguf_writer::{GgufWriter, MAX_NAME_BYTES};
pub use hf_tokenizer::HfTokenizer;
pub use special_tokens::SpecialTokens;
pub use value::{Metadata, Value};
