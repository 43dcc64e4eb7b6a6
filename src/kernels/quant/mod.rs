//! Quantized weights as GGUF stores them (GGML's block formats), and the
//! kernels that multiply by them without expanding them.

mod types;

pub use types::GgmlType;
