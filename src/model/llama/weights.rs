//! A Llama-family model's weights, taken from a GGUF file by llama.cpp's
//! tensor names, each checked against the shape the config implies. Matrices
//! stay in the file's format (views of the mapped file); the small norm
//! vectors are read into f32.

use super::config::{Family, LlamaConfig};
use crate::formats::{Gguf, TensorInfo};
use crate::kernels::quant::{GgmlType, QMatrix, WeightBytes};
use crate::{Error, Result};

/// One block's weights.
pub struct LayerWeights {
    pub attn_norm: Vec<f32>,
    pub wq: QMatrix,
    pub wk: QMatrix,
    pub wv: QMatrix,
    pub wo: QMatrix,
    pub ffn_norm: Vec<f32>,
    pub w_gate: QMatrix,
    pub w_up: QMatrix,
    pub w_down: QMatrix,
    /// Gemma 3: RMSNorm weights of each head's queries and keys.
    pub q_norm: Option<Vec<f32>>,
    pub k_norm: Option<Vec<f32>>,
    /// Gemma 3: RMSNorms of the attention and MLP outputs.
    pub post_attn_norm: Option<Vec<f32>>,
    pub post_ffn_norm: Option<Vec<f32>>,
}

/// Every weight of the model.
pub struct Weights {
    pub embeddings: QMatrix,
    pub layers: Vec<LayerWeights>,
    pub output_norm: Vec<f32>,
    /// The output layer, when it is not tied to the embeddings.
    pub output: Option<QMatrix>,
}

impl Weights {
    /// The output layer (the token embedding when tied).
    pub fn output(&self) -> &QMatrix {
        self.output.as_ref().unwrap_or(&self.embeddings)
    }

    /// The same weights with every matrix expanded to f32.
    pub fn dequantized(self) -> Result<Self> {
        let f32 = |m: QMatrix| -> Result<QMatrix> {
            let bytes: Vec<u8> = m.to_f32().iter().flat_map(|v| v.to_le_bytes()).collect();
            QMatrix::new(GgmlType::F32, m.rows(), m.cols(), WeightBytes::new(bytes))
        };
        let layers = self
            .layers
            .into_iter()
            .map(|l| {
                Ok(LayerWeights {
                    wq: f32(l.wq)?,
                    wk: f32(l.wk)?,
                    wv: f32(l.wv)?,
                    wo: f32(l.wo)?,
                    w_gate: f32(l.w_gate)?,
                    w_up: f32(l.w_up)?,
                    w_down: f32(l.w_down)?,
                    ..l
                })
            })
            .collect::<Result<_>>()?;
        Ok(Self {
            embeddings: f32(self.embeddings)?,
            layers,
            output_norm: self.output_norm,
            output: self.output.map(f32).transpose()?,
        })
    }

    /// Reads the weights of `config` from `gguf`.
    pub fn from_gguf(gguf: &Gguf, config: &LlamaConfig) -> Result<Self> {
        let c = config;
        let file = Tensors { gguf };
        let q_width = c.n_head * c.head_dim;
        let gemma = c.family == Family::Gemma3;
        let mut layers = Vec::with_capacity(c.n_layer);
        for l in 0..c.n_layer {
            let name = |part: &str| format!("blk.{l}.{part}.weight");
            let optional_norm = |part: &str, len: usize| -> Result<Option<Vec<f32>>> {
                if gemma {
                    file.vector(&name(part), len).map(Some)
                } else {
                    Ok(None)
                }
            };
            layers.push(LayerWeights {
                attn_norm: file.vector(&name("attn_norm"), c.n_embd)?,
                wq: file.matrix(&name("attn_q"), q_width, c.n_embd)?,
                wk: file.matrix(&name("attn_k"), c.kv_dim(), c.n_embd)?,
                wv: file.matrix(&name("attn_v"), c.kv_dim(), c.n_embd)?,
                wo: file.matrix(&name("attn_output"), c.n_embd, q_width)?,
                ffn_norm: file.vector(&name("ffn_norm"), c.n_embd)?,
                w_gate: file.matrix(&name("ffn_gate"), c.n_ff, c.n_embd)?,
                w_up: file.matrix(&name("ffn_up"), c.n_ff, c.n_embd)?,
                w_down: file.matrix(&name("ffn_down"), c.n_embd, c.n_ff)?,
                q_norm: optional_norm("attn_q_norm", c.head_dim)?,
                k_norm: optional_norm("attn_k_norm", c.head_dim)?,
                post_attn_norm: optional_norm("post_attention_norm", c.n_embd)?,
                post_ffn_norm: optional_norm("post_ffw_norm", c.n_embd)?,
            });
        }
        let output = match gguf.tensor("output.weight") {
            Some(_) => Some(file.matrix("output.weight", c.vocab_size, c.n_embd)?),
            None => None,
        };
        Ok(Self {
            embeddings: file.matrix("token_embd.weight", c.vocab_size, c.n_embd)?,
            layers,
            output_norm: file.vector("output_norm.weight", c.n_embd)?,
            output,
        })
    }
}

/// Tensor lookups with shape checks that name the tensor and the file.
struct Tensors<'a> {
    gguf: &'a Gguf,
}

impl Tensors<'_> {
    fn info(&self, name: &str, dims: &[u64]) -> Result<&TensorInfo> {
        let info = self.gguf.require_tensor(name)?;
        if info.dims != dims {
            return Err(Error::bad_file(
                self.gguf.path(),
                format!(
                    "tensor '{name}' has dimensions {:?}; the model's config implies {dims:?}",
                    info.dims
                ),
            ));
        }
        Ok(info)
    }

    /// A `rows × cols` matrix (GGUF dims `[cols, rows]`).
    fn matrix(&self, name: &str, rows: usize, cols: usize) -> Result<QMatrix> {
        self.load(name, &[cols as u64, rows as u64], rows, cols)
    }

    /// A vector of `len` values, read into f32.
    fn vector(&self, name: &str, len: usize) -> Result<Vec<f32>> {
        let mut out = vec![0.0; len];
        self.load(name, &[len as u64], 1, len)?
            .dequantize_row(0, &mut out)?;
        Ok(out)
    }

    fn load(&self, name: &str, dims: &[u64], rows: usize, cols: usize) -> Result<QMatrix> {
        let info = self.info(name, dims)?;
        let bytes = self.gguf.tensor_bytes(info)?;
        QMatrix::new(info.ty, rows, cols, bytes)
            .map_err(|e| Error::bad_file(self.gguf.path(), format!("tensor '{name}': {e}")))
    }
}
