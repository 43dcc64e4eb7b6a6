//! Quantized weights as GGUF stores them (GGML's block formats), and the
//! kernels that multiply by them without expanding them.

mod bytes;
mod types;

pub use bytes::WeightBytes;
pub use types::GgmlType;
