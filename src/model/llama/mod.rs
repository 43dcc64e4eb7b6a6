//! The Llama family and Gemma 3, for inference on quantized weights (and,
//! in `trainable`, the Llama family with f32 weights for training).
//!
//! The weights stay as the file stores them (memory-mapped GGUF blocks, or
//! a Hugging Face folder's tensors) and are multiplied in place by the
//! quantized kernels (`kernels::quant`); the rest of the forward pass
//! (RMSNorm, RoPE, attention over the KV cache, the gated MLP) runs on plain
//! f32 rows in `ops`. One block:
//!
//! ```text
//! x += W_o · attention(rope(W_q · n), rope(W_k · n), W_v · n)   n = rms_norm(x)
//! x += W_down · (act(W_gate · n) ⊙ W_up · n)                    n = rms_norm(x)
//! ```
//!
//! Gemma 3 adds RMSNorms on each head's queries and keys and on the outputs
//! of attention and MLP before the residual adds, scales the embeddings by
//! √d, gates with GELU, and alternates sliding-window and global layers.

mod config;
mod hf;
mod ops;
mod trainable;
mod weights;

pub use config::{Activation, Family, LlamaConfig, RopeStyle};
pub use trainable::TrainableLlama;

use crate::formats::Gguf;
use crate::kernels::quant::{KernelPath, QMatrix};
use crate::nn::KvCache;
use crate::{Error, Result};
use ops::{AttentionShape, Rope};
use std::path::Path;
use weights::Weights;

/// Which positions' logits a forward pass returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Logits {
    /// Only the last position's (generation).
    Last,
    /// Every new position's, row after row (scoring text).
    All,
}

/// A Llama-family (or Gemma 3) model ready to run.
pub struct Llama {
    config: LlamaConfig,
    weights: Weights,
    rope_global: Rope,
    rope_local: Rope,
    context: usize,
    kernels: KernelPath,
}

impl std::fmt::Debug for Llama {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Llama")
            .field("config", &self.config)
            .field("context", &self.context)
            .finish()
    }
}

impl Llama {
    /// The model in an opened GGUF file, its context limited to `context`
    /// tokens (at most the trained length; `None`: the trained length).
    pub fn from_gguf(gguf: &Gguf, context: Option<usize>) -> Result<Self> {
        let config = LlamaConfig::from_gguf(gguf.metadata())
            .map_err(|e| Error::bad_file(gguf.path(), e.to_string()))?;
        Self::from_gguf_with(gguf, config, context)
    }

    /// [`Llama::from_gguf`] with the configuration already read from the
    /// file's metadata (which may since have forgotten its vocabulary).
    pub fn from_gguf_with(
        gguf: &Gguf,
        config: LlamaConfig,
        context: Option<usize>,
    ) -> Result<Self> {
        let weights = Weights::from_gguf(gguf, &config)?;
        Self::assemble(config, weights, context)
    }

    /// Opens the GGUF file at `path` (see [`Llama::from_gguf`]).
    pub fn open_gguf(path: &Path, context: Option<usize>) -> Result<Self> {
        Self::from_gguf(&Gguf::open(path)?, context)
    }

    /// The model in the Hugging Face folder `dir` (`config.json` and
    /// `model.safetensors` or its shards), its context limited as for
    /// [`Llama::from_gguf`]. F32, F16 and BF16 weights stay in their type.
    pub fn open_hf_dir(dir: &Path, context: Option<usize>) -> Result<Self> {
        let (config_path, json) = hf::read_config(dir)?;
        let in_config = |e: Error| Error::bad_file(&config_path, e.to_string());
        let config = LlamaConfig::from_hf(&json).map_err(in_config)?;
        let tied = config.hf_tied_embeddings(&json).map_err(in_config)?;
        let weights = Weights::load(&hf::HfTensors::open(dir, &config, tied)?, &config)?;
        Self::assemble(config, weights, context)
    }

    fn assemble(config: LlamaConfig, weights: Weights, context: Option<usize>) -> Result<Self> {
        let context = context
            .unwrap_or(config.context_length)
            .clamp(1, config.context_length);
        Ok(Self {
            rope_global: Rope::new(config.head_dim, config.rope_theta, config.rope_style),
            rope_local: Rope::new(config.head_dim, config.rope_local_theta, config.rope_style),
            config,
            weights,
            context,
            kernels: KernelPath::detect()?,
        })
    }

    /// The same model on kernel path `path` (by default the best one this
    /// CPU runs, or the one `SEER_KERNELS` names).
    pub fn with_kernel_path(self, path: KernelPath) -> Result<Self> {
        if !path.available() {
            return Err(Error::Invalid(format!(
                "this CPU cannot run the {path} kernels"
            )));
        }
        Ok(Self {
            kernels: path,
            ..self
        })
    }

    /// The kernel path the products run on.
    pub fn kernel_path(&self) -> KernelPath {
        self.kernels
    }

    /// The same model with every weight matrix expanded to f32: the
    /// reference path (products in f32 on unquantized activations, as
    /// transformers computes them), at four to eight times the memory.
    pub fn dequantized(self) -> Result<Self> {
        Ok(Self {
            weights: self.weights.dequantized()?,
            ..self
        })
    }

    /// The model's shape.
    pub fn config(&self) -> &LlamaConfig {
        &self.config
    }

    /// The most tokens a cache holds (the context this model was opened with).
    pub fn context(&self) -> usize {
        self.context
    }

    /// An empty KV cache for this model.
    pub fn new_cache(&self) -> KvCache {
        KvCache::new(self.config.n_layer, self.config.kv_dim(), self.context)
    }

    /// The token embedding of `token` (scaled as the model's input is).
    pub fn embedding(&self, token: u32) -> Result<Vec<f32>> {
        let vocab = self.config.vocab_size;
        if token as usize >= vocab {
            return Err(Error::Invalid(format!(
                "token id {token} is outside the model's vocabulary of {vocab}"
            )));
        }
        let mut row = vec![0.0; self.config.n_embd];
        self.weights
            .embeddings
            .dequantize_row(token as usize, &mut row)?;
        if self.config.embedding_scale != 1.0 {
            row.iter_mut()
                .for_each(|v| *v *= self.config.embedding_scale);
        }
        Ok(row)
    }

    /// Runs `tokens` after the positions already in `cache` (which they
    /// join) and returns the logits that `which` asks for.
    pub fn forward(&self, tokens: &[u32], cache: &mut KvCache, which: Logits) -> Result<Vec<f32>> {
        self.forward_observed(tokens, cache, which, &mut |_| {})
    }

    /// The attention weights of every layer and head over `tokens` (from an
    /// empty cache): `[layer][head][query][key]`, each query's row summing
    /// to 1 over the keys it sees.
    pub fn attention_maps(&self, tokens: &[u32]) -> Result<Vec<Vec<Vec<Vec<f32>>>>> {
        let mut maps = Vec::with_capacity(self.config.n_layer);
        self.forward_observed(tokens, &mut self.new_cache(), Logits::Last, &mut |seen| {
            maps.push(ops::attention_weights(
                seen.q, seen.keys, seen.start, seen.shape,
            ));
        })?;
        Ok(maps)
    }

    /// [`Llama::forward`], showing each layer's attention inputs to `observe`.
    fn forward_observed(
        &self,
        tokens: &[u32],
        cache: &mut KvCache,
        which: Logits,
        observe: &mut dyn FnMut(AttentionInputs),
    ) -> Result<Vec<f32>> {
        let c = &self.config;
        let n = tokens.len();
        if n == 0 {
            return Err(Error::Invalid("no tokens to run".into()));
        }
        let start = cache.reserve(n)?;
        let d = c.n_embd;
        let q_width = c.n_head * c.head_dim;
        let mut x = Vec::with_capacity(n * d);
        for &t in tokens {
            x.extend(self.embedding(t)?);
        }
        let mut normed = vec![0.0; n * d];
        let mut q = vec![0.0; n * q_width];
        let mut k = vec![0.0; n * c.kv_dim()];
        let mut v = vec![0.0; n * c.kv_dim()];
        let mut attended = vec![0.0; n * q_width];
        let mut projected = vec![0.0; n * d];
        let mut gate = vec![0.0; n * c.n_ff];
        let mut up = vec![0.0; n * c.n_ff];
        for (l, layer) in self.weights.layers.iter().enumerate() {
            ops::rms_norm_into(&x, &layer.attn_norm, c.rms_eps, &mut normed);
            QMatrix::matmul_each(
                self.kernels,
                &normed,
                n,
                &mut [
                    (&layer.wq, &mut q),
                    (&layer.wk, &mut k),
                    (&layer.wv, &mut v),
                ],
            )?;
            if let (Some(qn), Some(kn)) = (&layer.q_norm, &layer.k_norm) {
                ops::rms_norm(&mut q, qn, c.rms_eps);
                ops::rms_norm(&mut k, kn, c.rms_eps);
            }
            let sliding = c.is_sliding(l);
            let rope = if sliding {
                &self.rope_local
            } else {
                &self.rope_global
            };
            for i in 0..n {
                rope.apply(&mut q[i * q_width..(i + 1) * q_width], start + i);
                rope.apply(&mut k[i * c.kv_dim()..(i + 1) * c.kv_dim()], start + i);
            }
            let layer_cache = cache.layer_mut(l);
            layer_cache.keys.extend_from_slice(&k);
            layer_cache.values.extend_from_slice(&v);
            let shape = AttentionShape {
                n_head: c.n_head,
                n_kv_head: c.n_kv_head,
                head_dim: c.head_dim,
                scale: c.attention_scale,
                window: if sliding { c.sliding_window } else { None },
            };
            observe(AttentionInputs {
                q: &q,
                keys: &layer_cache.keys,
                start,
                shape,
            });
            ops::attention(
                &q,
                &layer_cache.keys,
                &layer_cache.values,
                start,
                shape,
                &mut attended,
            );
            layer
                .wo
                .matmul_with(self.kernels, &attended, n, &mut projected)?;
            add_residual(
                &mut x,
                &mut projected,
                layer.post_attn_norm.as_deref(),
                c.rms_eps,
            );
            ops::rms_norm_into(&x, &layer.ffn_norm, c.rms_eps, &mut normed);
            QMatrix::matmul_each(
                self.kernels,
                &normed,
                n,
                &mut [(&layer.w_gate, &mut gate), (&layer.w_up, &mut up)],
            )?;
            ops::gated(&mut gate, &up, c.activation);
            layer
                .w_down
                .matmul_with(self.kernels, &gate, n, &mut projected)?;
            add_residual(
                &mut x,
                &mut projected,
                layer.post_ffn_norm.as_deref(),
                c.rms_eps,
            );
        }
        cache.advance(n);
        let rows = match which {
            Logits::Last => &mut x[(n - 1) * d..],
            Logits::All => &mut x[..],
        };
        ops::rms_norm(rows, &self.weights.output_norm, c.rms_eps);
        let m = rows.len() / d;
        let mut logits = vec![0.0; m * c.vocab_size];
        self.weights
            .output()
            .matmul_with(self.kernels, rows, m, &mut logits)?;
        Ok(logits)
    }

    /// The output layer (the token embedding when the model ties them).
    pub fn output(&self) -> &QMatrix {
        self.weights.output()
    }

    /// The token embedding matrix (`vocab × n_embd`, unscaled).
    pub fn embeddings(&self) -> &QMatrix {
        &self.weights.embeddings
    }
}

/// What one layer's attention reads: the new queries (after RoPE), every
/// cached key, and where the queries start.
struct AttentionInputs<'a> {
    q: &'a [f32],
    keys: &'a [f32],
    start: usize,
    shape: AttentionShape,
}

/// `x += norm(y)` (or `x += y` without a norm); `y` is overwritten.
fn add_residual(x: &mut [f32], y: &mut [f32], norm: Option<&[f32]>, eps: f32) {
    if let Some(w) = norm {
        ops::rms_norm(y, w, eps);
    }
    for (a, b) in x.iter_mut().zip(y.iter()) {
        *a += b;
    }
}
