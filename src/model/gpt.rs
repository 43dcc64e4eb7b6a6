//! The GPT: GPT-2's architecture, exactly.
//!
//! Token and learned position embeddings, `n_layer` pre-LayerNorm blocks of
//! causal self-attention and a GELU MLP, a final LayerNorm, and an output
//! layer tied to the token embedding. Parameter names and layouts are Hugging
//! Face's (`transformer.h.0.attn.c_attn.weight`, ...), so a seer model folder
//! is a GPT-2 checkpoint and the other way round.

use super::GptConfig;
use crate::kernels::{linear, WeightLayout};
use crate::model::gpt_config::LAYER_NORM_EPS;
use crate::nn::{
    load_tensors, Block, BlockShape, Init, KvCache, LayerCache, LayerNorm, Mode, ParamBuilder,
    ParamSource, Params, Precision,
};
use crate::tokenize::Tokenizer;
use crate::{Error, Result};
use candle_core::{Device, Tensor};
use std::collections::HashMap;
use std::path::Path;

/// Names in `model.safetensors` that seer reads past: GPT-2's cached causal
/// masks, and the output layer (tied to `transformer.wte.weight`).
const IGNORED_TENSORS: [&str; 3] = [".attn.bias", ".attn.masked_bias", "lm_head.weight"];

/// A GPT-2-architecture language model.
pub struct Gpt {
    config: GptConfig,
    wte: Tensor,
    wpe: Tensor,
    blocks: Vec<Block>,
    ln_f: LayerNorm,
    params: Params,
}

impl Gpt {
    /// A new model with GPT-2's initialisation (normal 0.02; residual
    /// projections 0.02/sqrt(2·n_layer)), drawn from `seed`. `precision` is a
    /// dtype, or a [`Precision`] whose narrower matrices make an
    /// inference-only model.
    pub fn new(
        config: &GptConfig,
        seed: u64,
        precision: impl Into<Precision>,
        device: &Device,
    ) -> Result<Self> {
        Self::build(config, ParamSource::init(seed, precision, device))
    }

    /// Loads `model.safetensors` with GPT-2 tensor names (with or without the
    /// `transformer.` prefix) for `config`.
    pub fn from_safetensors(
        config: &GptConfig,
        path: &Path,
        precision: impl Into<Precision>,
        device: &Device,
    ) -> Result<Self> {
        let (tensors, _) = load_tensors(path, device)?;
        let mut named = HashMap::new();
        for (name, tensor) in tensors {
            if IGNORED_TENSORS.iter().any(|s| name.ends_with(s)) {
                continue;
            }
            let name = if name.starts_with("transformer.") {
                name
            } else {
                format!("transformer.{name}")
            };
            named.insert(name, tensor);
        }
        Self::build(config, ParamSource::load(named, path, precision, device))
    }

    /// Loads a model folder: `config.json` and `model.safetensors`.
    pub fn load(dir: &Path, precision: impl Into<Precision>, device: &Device) -> Result<Self> {
        if !dir.is_dir() {
            return Err(Error::bad_file(
                dir,
                "no such model folder; seer does not download from the Hugging Face hub: fetch a GPT-2 \
                 checkpoint with `huggingface-cli download gpt2 --local-dir DIR` and pass DIR",
            ));
        }
        if dir.join("pytorch_model.bin").exists() && !dir.join("model.safetensors").exists() {
            return Err(Error::bad_file(
                dir.join("pytorch_model.bin"),
                "pickled PyTorch weights can run arbitrary code, so seer does not read them; \
                 convert with transformers: `AutoModelForCausalLM.from_pretrained(dir).save_pretrained(dir, safe_serialization=True)`",
            ));
        }
        let config = GptConfig::from_hf_json(&dir.join("config.json"))?;
        Self::from_safetensors(&config, &dir.join("model.safetensors"), precision, device)
    }

    /// Saves the model folder: `config.json`, `model.safetensors` and, if
    /// given, `tokenizer.json`. Every file is written atomically.
    pub fn save(&self, dir: &Path, tokenizer: Option<&Tokenizer>) -> Result<()> {
        std::fs::create_dir_all(dir).map_err(Error::io(dir))?;
        let config =
            serde_json::to_string_pretty(&self.config.to_hf_json()).expect("config serialises");
        crate::atomic::write_atomic(&dir.join("config.json"), config.as_bytes())?;
        let metadata = HashMap::from([("format".to_string(), "pt".to_string())]);
        self.params
            .save(&dir.join("model.safetensors"), &metadata)?;
        if let Some(tokenizer) = tokenizer {
            tokenizer.save(&dir.join("tokenizer.json"))?;
        }
        Ok(())
    }

    fn build(config: &GptConfig, source: ParamSource) -> Result<Self> {
        config.validate()?;
        let (c, v) = (config.n_embd, config.vocab_size);
        let (wte, wpe, blocks, ln_f) = {
            let p: ParamBuilder = source.builder().pp("transformer");
            let wte = p
                .pp("wte")
                .get_matrix(&[v, c], "weight", Init::Normal(0.02))?;
            let wpe = p
                .pp("wpe")
                .get(&[config.block_size, c], "weight", Init::Normal(0.02))?;
            let shape = BlockShape {
                dim: c,
                n_head: config.n_head,
                causal: true,
                bias: config.bias,
                dropout: config.dropout,
                eps: LAYER_NORM_EPS,
                proj_init: Init::Normal(0.02 / (2.0 * config.n_layer as f64).sqrt()),
            };
            let blocks = (0..config.n_layer)
                .map(|i| Block::new(&p.pp("h").pp(i), &shape))
                .collect::<Result<Vec<_>>>()?;
            let ln_f = LayerNorm::new(&p.pp("ln_f"), c, config.bias, LAYER_NORM_EPS)?;
            (wte, wpe, blocks, ln_f)
        };
        Ok(Self {
            config: config.clone(),
            wte,
            wpe,
            blocks,
            ln_f,
            params: source.into_params(),
        })
    }

    /// The model's config.
    pub fn config(&self) -> &GptConfig {
        &self.config
    }

    /// The device the parameters live on.
    pub fn device(&self) -> candle_core::Device {
        self.wte.device().clone()
    }

    /// The trainable parameters by name.
    pub fn params(&self) -> &Params {
        &self.params
    }

    /// Logits `[batch, seq, vocab]` for token ids `[batch, seq]` (u32), seq ≤ block_size.
    pub fn forward(&self, ids: &Tensor, mode: &mut Mode) -> Result<Tensor> {
        let x = mode.dropout(&self.embed(ids, 0)?, self.config.dropout)?;
        let x = self
            .blocks
            .iter()
            .try_fold(x, |x, block| block.forward(&x, mode))?;
        self.head(&x)
    }

    /// Logits `[batch, seq, vocab]`, in inference, with every layer's
    /// attention weights (`[batch, n_head, seq, seq]` each), for inspection.
    /// Generation never pays for them: only this path forms them.
    pub fn forward_with_attention(&self, ids: &Tensor) -> Result<(Tensor, Vec<Tensor>)> {
        let mut x = self.embed(ids, 0)?;
        let mut weights = Vec::with_capacity(self.blocks.len());
        for block in &self.blocks {
            let (out, w) = block.forward_with_attention(&x)?;
            x = out;
            weights.push(w);
        }
        Ok((self.head(&x)?, weights))
    }

    /// An empty KV cache for this model.
    pub fn new_cache(&self) -> KvCache {
        KvCache::new(
            self.config.n_layer,
            self.config.n_embd,
            self.config.block_size,
        )
    }

    /// Logits `[1, t, vocab]` for the next `t` tokens `ids` (`[1, t]`), in
    /// inference, given the positions already in `cache` (which grows by `t`).
    pub fn forward_cached(&self, ids: &Tensor, cache: &mut KvCache) -> Result<Tensor> {
        let b = ids.dim(0)?;
        if b != 1 {
            return Err(Error::Invalid(format!(
                "the KV cache serves one sequence, not {b}"
            )));
        }
        let start = cache.reserve(ids.dim(1)?)?;
        let mut x = self.embed(ids, start)?;
        for (i, block) in self.blocks.iter().enumerate() {
            x = block.forward_cached(&x, cache.layer_mut(i))?;
        }
        cache.advance(ids.dim(1)?);
        self.head(&x)
    }

    /// Logits `[n, vocab]` for one next token of each of `n` sequences
    /// (`ids[i]` continues the sequence cached in `caches[i]`, each at its
    /// own position), in inference. The linear layers run once over all of
    /// them, so a server can batch the requests it is serving.
    pub fn forward_cached_batch(&self, ids: &[u32], caches: &mut [&mut KvCache]) -> Result<Tensor> {
        if ids.len() != caches.len() || ids.is_empty() {
            return Err(Error::Invalid(format!(
                "{} tokens for {} cached sequences",
                ids.len(),
                caches.len()
            )));
        }
        let positions = caches
            .iter()
            .map(|c| Ok(c.reserve(1)? as u32))
            .collect::<Result<Vec<u32>>>()?;
        let device = self.wte.device();
        let tok = self.wte.index_select(&Tensor::new(ids, device)?, 0)?;
        let pos = self.wpe.index_select(&Tensor::new(positions, device)?, 0)?;
        let mut x = (tok + pos)?.unsqueeze(1)?;
        for (i, block) in self.blocks.iter().enumerate() {
            let mut layers: Vec<&mut LayerCache> =
                caches.iter_mut().map(|c| c.layer_mut(i)).collect();
            x = block.forward_cached_batch(&x, &mut layers)?;
        }
        for cache in caches.iter_mut() {
            cache.advance(1);
        }
        Ok(self.head(&x)?.squeeze(1)?)
    }

    /// Token plus position embeddings `[batch, seq, n_embd]` of `ids`
    /// (`[batch, seq]`) at positions `start..start + seq`.
    fn embed(&self, ids: &Tensor, start: usize) -> Result<Tensor> {
        let (b, t) = ids.dims2()?;
        if start + t > self.config.block_size {
            return Err(Error::Invalid(format!(
                "sequence of {} tokens is longer than the model's context (block_size {})",
                start + t,
                self.config.block_size
            )));
        }
        let tok = self
            .wte
            .index_select(&ids.flatten_all()?, 0)?
            .to_dtype(self.wpe.dtype())?
            .reshape((b, t, self.config.n_embd))?;
        Ok(tok.broadcast_add(&self.wpe.narrow(0, start, t)?)?)
    }

    /// The final LayerNorm and the output layer: the token embedding read as
    /// `[vocab, n_embd]`, without bias.
    fn head(&self, x: &Tensor) -> Result<Tensor> {
        let x = self.ln_f.forward(x)?;
        let no_bias = Tensor::zeros(self.config.vocab_size, x.dtype(), x.device())?;
        Ok(linear(&x, &self.wte, &no_bias, WeightLayout::OutIn, false)?)
    }

    /// The token embedding matrix `[vocab, n_embd]` (also the output layer).
    pub fn token_embeddings(&self) -> &Tensor {
        &self.wte
    }

    /// Mean next-token cross-entropy of `logits` (`[batch, seq, vocab]`) against `targets` (`[batch, seq]`).
    pub fn loss(logits: &Tensor, targets: &Tensor) -> Result<Tensor> {
        Ok(crate::kernels::cross_entropy(logits, targets)?)
    }
}
