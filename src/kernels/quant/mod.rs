//! Quantized weights as GGUF stores them (GGML's block formats), and the
//! kernels that multiply by them without expanding them.
//!
//! This module owns:
//! - the formats: `GgmlType` (block sizes), `blocks` (byte layouts),
//!   `WeightBytes` (shared, memory-mappable storage);
//! - conversions: `dequantize_row` (to f32, as llama.cpp's
//!   `dequantize_row_*`) and `quantize`/`quantize_row` (from f32, as
//!   llama.cpp's reference quantizers), one row at a time;
//! - `QMatrix`: a weight matrix in its encoding, with `matvec` (one token)
//!   and `matmul` (a prompt), multi-threaded over rows;
//! - the kernel paths (`KernelPath`): portable Rust, and AVX2 chosen at run
//!   time (AVX-512 machines run the AVX2 kernels until AVX-512 ones are
//!   written); quantized weights multiply 8-bit activations (`activations`)
//!   with integer dot products.
//!
//! Supported weight types: f32, f16, bf16, q8_0, q4_0, q4_1, q5_0, q4_K,
//! q5_K, q6_K.

mod activations;
#[cfg(target_arch = "x86_64")]
mod avx2;
mod blocks;
mod bytes;
mod dequant;
mod huge_pages;
mod interleaved;
mod matrix;
mod path;
mod portable;
mod quantize;
mod types;

pub use bytes::WeightBytes;
pub use dequant::{dequantize_row, supported};
pub use matrix::QMatrix;
pub use path::{KernelPath, KERNELS_VAR};
pub use quantize::{can_quantize, quantize, quantize_row};
pub use types::GgmlType;

#[cfg(test)]
mod tests;
