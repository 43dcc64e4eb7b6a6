//! A Llama-family model's weights, by what each tensor is for, from a
//! [`TensorSource`]: a GGUF file (llama.cpp's tensor names, here) or a
//! Hugging Face folder (`hf`). Every tensor is checked against the shape the
//! config implies. Matrices stay in the file's format (views of the mapped
//! file); the small norm vectors are read into f32, as the multipliers the
//! forward pass applies.

use super::config::{Family, LlamaConfig};
use super::Llama;
use crate::formats::{Gguf, TensorInfo};
use crate::kernels::quant::{GgmlType, QMatrix, WeightBytes};
use crate::{Error, Result};
use std::path::Path;

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
        Self::load(&GgufTensors { gguf }, config)
    }

    /// Reads the weights of `config` from `source`.
    pub(super) fn load(source: &impl TensorSource, config: &LlamaConfig) -> Result<Self> {
        use LayerTensor::*;
        let c = config;
        let q_width = c.n_head * c.head_dim;
        let gemma = c.family == Family::Gemma3;
        let mut layers = Vec::with_capacity(c.n_layer);
        for l in 0..c.n_layer {
            let matrix = |t, rows, cols| source.matrix(Tensor::Layer(l, t), rows, cols);
            let norm = |t, len| source.norm(Tensor::Layer(l, t), len);
            let gemma_norm = |t, len| gemma.then(|| norm(t, len)).transpose();
            layers.push(LayerWeights {
                attn_norm: norm(AttnNorm, c.n_embd)?,
                wq: matrix(Query, q_width, c.n_embd)?,
                wk: matrix(Key, c.kv_dim(), c.n_embd)?,
                wv: matrix(Value, c.kv_dim(), c.n_embd)?,
                wo: matrix(AttnOutput, c.n_embd, q_width)?,
                ffn_norm: norm(FfnNorm, c.n_embd)?,
                w_gate: matrix(Gate, c.n_ff, c.n_embd)?,
                w_up: matrix(Up, c.n_ff, c.n_embd)?,
                w_down: matrix(Down, c.n_embd, c.n_ff)?,
                q_norm: gemma_norm(QueryNorm, c.head_dim)?,
                k_norm: gemma_norm(KeyNorm, c.head_dim)?,
                post_attn_norm: gemma_norm(PostAttnNorm, c.n_embd)?,
                post_ffn_norm: gemma_norm(PostFfnNorm, c.n_embd)?,
            });
        }
        let output = match source.has_output()? {
            true => Some(source.matrix(Tensor::Output, c.vocab_size, c.n_embd)?),
            false => None,
        };
        Ok(Self {
            embeddings: source.matrix(Tensor::Embeddings, c.vocab_size, c.n_embd)?,
            layers,
            output_norm: source.norm(Tensor::OutputNorm, c.n_embd)?,
            output,
        })
    }
}

/// One tensor as a GGUF file holds it: its llama.cpp name, its GGML
/// dimensions (the row length first) and its values.
pub type GgufTensor = (String, Vec<u64>, QMatrix);

impl Llama {
    /// The model's tensors named and ordered as llama.cpp's converter
    /// writes them: `token_embd`, each block's (`attn_norm`, `attn_q`, ...),
    /// `output_norm`, and `output` unless tied to the embeddings. Norms are
    /// one-row f32 matrices of the multipliers the model applies (Gemma 3's
    /// `1 + w`, which is what its GGUF files store). Matrices are as loaded:
    /// a model whose RoPE pairs halves (a Llama read from a Hugging Face
    /// folder) keeps its q/k rows in that order, which a `llama` GGUF
    /// permutes.
    pub fn gguf_tensors(&self) -> Result<Vec<GgufTensor>> {
        self.weights
            .in_gguf_order()
            .into_iter()
            .map(|(tensor, values)| {
                let name = gguf_name(tensor);
                Ok(match values {
                    Stored::Matrix(m) => (name, vec![m.cols() as u64, m.rows() as u64], m.clone()),
                    Stored::Norm(w) => {
                        let bytes: Vec<u8> = w.iter().flat_map(|v| v.to_le_bytes()).collect();
                        let m = QMatrix::new(GgmlType::F32, 1, w.len(), WeightBytes::new(bytes))?;
                        (name, vec![w.len() as u64], m)
                    }
                })
            })
            .collect()
    }
}

/// A tensor's values in memory.
enum Stored<'a> {
    Matrix(&'a QMatrix),
    Norm(&'a [f32]),
}

impl Weights {
    /// Every tensor by what it is for, in the order llama.cpp's converter
    /// writes them.
    fn in_gguf_order(&self) -> Vec<(Tensor, Stored<'_>)> {
        use LayerTensor::*;
        use Stored::{Matrix, Norm};
        let mut out = vec![(Tensor::Embeddings, Matrix(&self.embeddings))];
        for (l, w) in self.layers.iter().enumerate() {
            let parts = [
                (AttnNorm, Some(Norm(&w.attn_norm))),
                (Query, Some(Matrix(&w.wq))),
                (Key, Some(Matrix(&w.wk))),
                (Value, Some(Matrix(&w.wv))),
                (QueryNorm, w.q_norm.as_deref().map(Norm)),
                (KeyNorm, w.k_norm.as_deref().map(Norm)),
                (AttnOutput, Some(Matrix(&w.wo))),
                (PostAttnNorm, w.post_attn_norm.as_deref().map(Norm)),
                (FfnNorm, Some(Norm(&w.ffn_norm))),
                (Gate, Some(Matrix(&w.w_gate))),
                (Up, Some(Matrix(&w.w_up))),
                (Down, Some(Matrix(&w.w_down))),
                (PostFfnNorm, w.post_ffn_norm.as_deref().map(Norm)),
            ];
            out.extend(
                parts
                    .into_iter()
                    .filter_map(|(part, values)| Some((Tensor::Layer(l, part), values?))),
            );
        }
        out.push((Tensor::OutputNorm, Norm(&self.output_norm)));
        if let Some(output) = &self.output {
            out.push((Tensor::Output, Matrix(output)));
        }
        out
    }
}

/// What a tensor is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Tensor {
    /// The token embeddings (`vocab × n_embd`).
    Embeddings,
    /// The output layer, when not tied to the embeddings.
    Output,
    /// The final RMSNorm.
    OutputNorm,
    /// One of layer `n`'s tensors.
    Layer(usize, LayerTensor),
}

/// What a tensor of one layer is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum LayerTensor {
    AttnNorm,
    Query,
    Key,
    Value,
    AttnOutput,
    /// Gemma 3's per-head norms of queries and keys.
    QueryNorm,
    KeyNorm,
    /// Gemma 3's norm of the attention's output.
    PostAttnNorm,
    /// The norm before the MLP.
    FfnNorm,
    Gate,
    Up,
    Down,
    /// Gemma 3's norm of the MLP's output.
    PostFfnNorm,
}

/// Where a model's tensors come from, each by what it is for.
pub(super) trait TensorSource {
    /// The `rows × cols` matrix `tensor`, in its stored type.
    fn matrix(&self, tensor: Tensor, rows: usize, cols: usize) -> Result<QMatrix>;
    /// The norm vector `tensor` of `len` values, as the multipliers RMSNorm applies.
    fn norm(&self, tensor: Tensor, len: usize) -> Result<Vec<f32>>;
    /// Whether the model has an output layer of its own (else the token
    /// embeddings serve).
    fn has_output(&self) -> Result<bool>;
}

/// The error unless a tensor's dimensions are those the config implies.
pub(super) fn check_dims(file: &Path, name: &str, dims: &[u64], wanted: &[u64]) -> Result<()> {
    if dims == wanted {
        return Ok(());
    }
    Err(Error::bad_file(
        file,
        format!("tensor '{name}' has dimensions {dims:?}; the model's config implies {wanted:?}"),
    ))
}

/// A 1 × `len` matrix's one row, read into f32 (a mapped file's pages
/// released: the values are copied).
pub(super) fn vector_of(matrix: QMatrix, len: usize) -> Result<Vec<f32>> {
    let mut out = vec![0.0; len];
    matrix.dequantize_row(0, &mut out)?;
    matrix.bytes().release();
    Ok(out)
}

/// A GGUF file's tensors by llama.cpp's names.
struct GgufTensors<'a> {
    gguf: &'a Gguf,
}

impl TensorSource for GgufTensors<'_> {
    /// A `rows × cols` matrix (GGUF dims `[cols, rows]`).
    fn matrix(&self, tensor: Tensor, rows: usize, cols: usize) -> Result<QMatrix> {
        self.load(&gguf_name(tensor), &[cols as u64, rows as u64], rows, cols)
    }

    /// GGUF files store norms as the multiplier (Gemma's `1 + w` included).
    fn norm(&self, tensor: Tensor, len: usize) -> Result<Vec<f32>> {
        vector_of(self.load(&gguf_name(tensor), &[len as u64], 1, len)?, len)
    }

    fn has_output(&self) -> Result<bool> {
        Ok(self.gguf.tensor(&gguf_name(Tensor::Output)).is_some())
    }
}

/// llama.cpp's name for `tensor`.
fn gguf_name(tensor: Tensor) -> String {
    use LayerTensor::*;
    let (l, part) = match tensor {
        Tensor::Embeddings => return "token_embd.weight".into(),
        Tensor::Output => return "output.weight".into(),
        Tensor::OutputNorm => return "output_norm.weight".into(),
        Tensor::Layer(l, part) => (l, part),
    };
    let part = match part {
        AttnNorm => "attn_norm",
        Query => "attn_q",
        Key => "attn_k",
        Value => "attn_v",
        AttnOutput => "attn_output",
        QueryNorm => "attn_q_norm",
        KeyNorm => "attn_k_norm",
        PostAttnNorm => "post_attention_norm",
        FfnNorm => "ffn_norm",
        Gate => "ffn_gate",
        Up => "ffn_up",
        Down => "ffn_down",
        PostFfnNorm => "post_ffw_norm",
    };
    format!("blk.{l}.{part}.weight")
}

impl GgufTensors<'_> {
    fn info(&self, name: &str, dims: &[u64]) -> Result<&TensorInfo> {
        let info = self.gguf.require_tensor(name)?;
        check_dims(self.gguf.path(), name, &info.dims, dims)?;
        Ok(info)
    }

    fn load(&self, name: &str, dims: &[u64], rows: usize, cols: usize) -> Result<QMatrix> {
        let info = self.info(name, dims)?;
        let bytes = self.gguf.tensor_bytes(info)?;
        QMatrix::new(info.ty, rows, cols, bytes)
            .map_err(|e| Error::bad_file(self.gguf.path(), format!("tensor '{name}': {e}")))
    }
}
