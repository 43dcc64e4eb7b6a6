//! A GGUF file as the source of a requantized one: all its metadata and
//! tensors, in file order, rows dequantized on demand from the mapped file.
//!
//! One metadata value is respelled: `tokenizer.ggml.pre = gpt2`, which some
//! writers use for GPT-2's pre-tokenizer, becomes `gpt-2`, the name
//! llama.cpp's converter writes and the only one its loader accepts (it
//! refuses the file otherwise); seer reads both as the same split.

use super::{dequantize_rows, SourceTensor, TensorSource};
use crate::formats::{Gguf, Metadata, Value};
use crate::kernels::quant::WeightBytes;
use crate::{Error, Result};
use std::ops::Range;
use std::path::Path;

/// The pre-tokenizer's metadata key.
const PRE: &str = "tokenizer.ggml.pre";

/// An opened GGUF file to requantize (any architecture: names and metadata
/// are copied as they are).
pub struct GgufSource {
    gguf: Gguf,
    metadata: Metadata,
    tensors: Vec<SourceTensor>,
    data: Vec<WeightBytes>,
}

impl GgufSource {
    /// Opens and checks the GGUF file at `path`.
    pub fn open(path: &Path) -> Result<Self> {
        Self::new(Gguf::open(path)?)
    }

    /// The source for an opened file.
    pub fn new(gguf: Gguf) -> Result<Self> {
        let tensors = gguf
            .tensors()
            .iter()
            .map(|t| SourceTensor {
                name: t.name.clone(),
                dims: t.dims.clone(),
                ty: t.ty,
            })
            .collect();
        let data = gguf
            .tensors()
            .iter()
            .map(|t| gguf.tensor_bytes(t))
            .collect::<Result<_>>()?;
        let mut metadata = gguf.metadata().clone();
        if metadata.get(PRE) == Some(&Value::String("gpt2".into())) {
            metadata.set(PRE, Value::String("gpt-2".into()));
        }
        Ok(Self {
            gguf,
            metadata,
            tensors,
            data,
        })
    }
}

impl TensorSource for GgufSource {
    fn path(&self) -> &Path {
        self.gguf.path()
    }

    fn metadata(&self) -> &Metadata {
        &self.metadata
    }

    fn tensors(&self) -> &[SourceTensor] {
        &self.tensors
    }

    fn read_rows(&self, index: usize, rows: Range<usize>, out: &mut [f32]) -> Result<()> {
        let t = &self.tensors[index];
        dequantize_rows(
            t.ty,
            self.data[index].bytes(),
            t.dims[0] as usize,
            rows,
            out,
        )
        .map_err(|e| Error::bad_file(self.path(), format!("tensor '{}': {e}", t.name)))
    }

    fn stored_bytes(&self, index: usize) -> Option<&[u8]> {
        Some(self.data[index].bytes())
    }
}
