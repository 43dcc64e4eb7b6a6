//! A Llama-family model for training: every weight an f32 candle `Var`
//! under its Hugging Face name, each decoder layer's weights packed into
//! one flat tensor for the fused layer kernel (`kernels::llama_block`).
//!
//! It is loaded from a Hugging Face folder or a GGUF file (quantized
//! weights dequantized to f32; GGUF's permuted q/k rows put back in
//! Hugging Face's order, so RoPE is always `rotate_half`), runs a batch of
//! token sequences `[B, T]` to logits `[B, T, vocab]`, scores given tokens
//! (a masked mean cross-entropy for SFT, per-token and summed
//! log-probabilities for DPO and GRPO), and is saved back as a Hugging Face
//! folder that transformers' `LlamaForCausalLM.from_pretrained` loads.

use super::config::{Family, LlamaConfig, RopeStyle};
use super::Llama;
use crate::formats::{Gguf, GgufTokenizer};
use crate::kernels::{
    linear, llama_block, llama_block_sizes, rms_norm, token_log_probs, LlamaBlockSpec, WeightLayout,
};
use crate::nn::{save_tensors, Init, ParamSource, Params};
use crate::{Error, Result};
use candle_core::{DType, Device, Tensor};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// The names of a decoder layer's weights under `model.layers.N.`, in the
/// order the layer kernel packs them (matrices first, so that they alone
/// take weight decay).
const LAYER_WEIGHTS: [&str; 9] = [
    "self_attn.q_proj.weight",
    "self_attn.k_proj.weight",
    "self_attn.v_proj.weight",
    "self_attn.o_proj.weight",
    "mlp.gate_proj.weight",
    "mlp.up_proj.weight",
    "mlp.down_proj.weight",
    "input_layernorm.weight",
    "post_attention_layernorm.weight",
];

/// Tokenizer and generation files copied from a Hugging Face folder into a
/// saved one, when the source has them.
const TOKENIZER_FILES: [&str; 8] = [
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "tokenizer.model",
    "chat_template.jinja",
    "generation_config.json",
    "vocab.json",
    "merges.txt",
];

/// Where a model was loaded from (its tokenizer comes from there too).
#[derive(Debug, Clone)]
enum Origin {
    HfDir(PathBuf),
    Gguf(PathBuf),
}

/// A Llama-family model with trainable f32 weights (see the module docs).
pub struct TrainableLlama {
    config: LlamaConfig,
    tied: bool,
    origin: Origin,
    params: Params,
    embed: Tensor,
    /// Each layer's packed weights, in [`LAYER_WEIGHTS`]' order.
    layers: Vec<Tensor>,
    norm: Tensor,
    /// The output layer, when it is not the token embedding.
    lm_head: Option<Tensor>,
    /// Zeros: the output layer's (absent) bias.
    no_bias: Tensor,
}

impl std::fmt::Debug for TrainableLlama {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TrainableLlama")
            .field("config", &self.config)
            .field("tied", &self.tied)
            .finish()
    }
}

/// `rows` (`[n_head·head_dim, cols]`, GGUF's q or k) with each head's rows
/// put back in Hugging Face's order: GGUF row `2i + s` of a head is Hugging
/// Face row `s·head_dim/2 + i` (llama.cpp's conversion permutes them so
/// that RoPE pairs adjacent outputs).
fn unpermute(rows: &[f32], head_dim: usize, cols: usize) -> Vec<f32> {
    let half = head_dim / 2;
    let mut out = vec![0.0; rows.len()];
    for (h, head) in rows.chunks(head_dim * cols).enumerate() {
        for i in 0..half {
            for s in 0..2 {
                let from = &head[(2 * i + s) * cols..][..cols];
                let to = (h * head_dim + s * half + i) * cols;
                out[to..to + cols].copy_from_slice(from);
            }
        }
    }
    out
}

impl TrainableLlama {
    /// Opens the Hugging Face folder or GGUF file at `path`.
    pub fn open(path: &Path) -> Result<Self> {
        if path.is_dir() {
            let model = Llama::open_hf_dir(path, None)?;
            Self::from_llama(&model, Origin::HfDir(path.to_path_buf()))
        } else {
            let model = Llama::open_gguf(path, None)?;
            Self::from_llama(&model, Origin::Gguf(path.to_path_buf()))
        }
    }

    /// The weights of `model`, expanded to f32, as trainable parameters.
    fn from_llama(model: &Llama, origin: Origin) -> Result<Self> {
        let c = model.config().clone();
        if c.family != Family::Llama {
            return Err(Error::Invalid(format!(
                "training supports the Llama family only; {:?} models cannot be trained yet",
                c.family
            )));
        }
        let w = &model.weights;
        let mut tensors = HashMap::new();
        let mut put = |name: String, values: Vec<f32>, shape: &[usize]| -> Result<()> {
            tensors.insert(name, Tensor::from_vec(values, shape, &Device::Cpu)?);
            Ok(())
        };
        let (e, q_width, kv_width) = (c.n_embd, c.n_head * c.head_dim, c.kv_dim());
        let qk = |rows: Vec<f32>| match c.rope_style {
            RopeStyle::Adjacent => unpermute(&rows, c.head_dim, e),
            RopeStyle::Halves => rows,
        };
        for (l, layer) in w.layers.iter().enumerate() {
            let name = |n: &str| format!("model.layers.{l}.{n}");
            put(name(LAYER_WEIGHTS[0]), qk(layer.wq.to_f32()), &[q_width, e])?;
            put(
                name(LAYER_WEIGHTS[1]),
                qk(layer.wk.to_f32()),
                &[kv_width, e],
            )?;
            put(name(LAYER_WEIGHTS[2]), layer.wv.to_f32(), &[kv_width, e])?;
            put(name(LAYER_WEIGHTS[3]), layer.wo.to_f32(), &[e, q_width])?;
            put(name(LAYER_WEIGHTS[4]), layer.w_gate.to_f32(), &[c.n_ff, e])?;
            put(name(LAYER_WEIGHTS[5]), layer.w_up.to_f32(), &[c.n_ff, e])?;
            put(name(LAYER_WEIGHTS[6]), layer.w_down.to_f32(), &[e, c.n_ff])?;
            put(name(LAYER_WEIGHTS[7]), layer.attn_norm.clone(), &[e])?;
            put(name(LAYER_WEIGHTS[8]), layer.ffn_norm.clone(), &[e])?;
        }
        let vocab = c.vocab_size;
        put(
            "model.embed_tokens.weight".into(),
            w.embeddings.to_f32(),
            &[vocab, e],
        )?;
        put("model.norm.weight".into(), w.output_norm.clone(), &[e])?;
        let tied = w.output.is_none();
        if let Some(out) = &w.output {
            put("lm_head.weight".into(), out.to_f32(), &[vocab, e])?;
        }
        let path = match &origin {
            Origin::HfDir(p) | Origin::Gguf(p) => p.clone(),
        };
        Self::build(c, tied, origin, tensors, &path)
    }

    /// Hands the named tensors out as parameters, each layer's packed.
    fn build(
        config: LlamaConfig,
        tied: bool,
        origin: Origin,
        tensors: HashMap<String, Tensor>,
        path: &Path,
    ) -> Result<Self> {
        let c = &config;
        let source = ParamSource::load(tensors, path, DType::F32, &Device::Cpu);
        let p = source.builder();
        let spec = block_spec(c);
        let mut layers = Vec::with_capacity(c.n_layer);
        for l in 0..c.n_layer {
            let layer = p.pp(format!("model.layers.{l}"));
            let (q, kv) = (c.n_head * c.head_dim, c.kv_dim());
            let shapes: [&[usize]; 9] = [
                &[q, c.n_embd],
                &[kv, c.n_embd],
                &[kv, c.n_embd],
                &[c.n_embd, q],
                &[c.n_ff, c.n_embd],
                &[c.n_ff, c.n_embd],
                &[c.n_embd, c.n_ff],
                &[c.n_embd],
                &[c.n_embd],
            ];
            for (name, shape) in LAYER_WEIGHTS.iter().zip(shapes) {
                layer.get(shape, name, Init::Zeros)?;
            }
            let packed = layer.pack("packed", &LAYER_WEIGHTS)?;
            debug_assert_eq!(
                packed.elem_count(),
                llama_block_sizes(c.n_embd, &spec).iter().sum::<usize>()
            );
            layers.push(packed);
        }
        let (vocab, e) = (c.vocab_size, c.n_embd);
        let embed = p.get(&[vocab, e], "model.embed_tokens.weight", Init::Zeros)?;
        let norm = p.get(&[e], "model.norm.weight", Init::Zeros)?;
        let lm_head = match tied {
            true => None,
            false => Some(p.get(&[vocab, e], "lm_head.weight", Init::Zeros)?),
        };
        Ok(Self {
            no_bias: Tensor::zeros(vocab, DType::F32, &Device::Cpu)?,
            config,
            tied,
            origin,
            params: source.into_params(),
            embed,
            layers,
            norm,
            lm_head,
        })
    }

    /// The model's shape.
    pub fn config(&self) -> &LlamaConfig {
        &self.config
    }

    /// Whether the output layer is the token embedding.
    pub fn tied(&self) -> bool {
        self.tied
    }

    /// The trainable parameters (one pack per layer; Hugging Face names).
    pub fn params(&self) -> &Params {
        &self.params
    }

    /// Logits `[B, T, vocab]` for token ids `tokens` (`[B, T]`, u32), every
    /// sequence at positions `0..T`. Attention is causal, so a right-padded
    /// sequence's real positions do not see its padding.
    pub fn forward(&self, tokens: &Tensor) -> Result<Tensor> {
        let (b, t) = tokens.dims2().map_err(|_| {
            Error::Invalid(format!(
                "tokens must be [batch, positions], not {:?}",
                tokens.dims()
            ))
        })?;
        if tokens.dtype() != DType::U32 || b == 0 || t == 0 {
            return Err(Error::Invalid(format!(
                "tokens must be a non-empty u32 [batch, positions], not {:?} {:?}",
                tokens.dtype(),
                tokens.dims()
            )));
        }
        let c = &self.config;
        if t > c.context_length {
            return Err(Error::Invalid(format!(
                "{t} positions exceed the model's context of {}",
                c.context_length
            )));
        }
        let ids = tokens.flatten_all()?;
        let max = ids.max(0)?.to_scalar::<u32>()?;
        if max as usize >= c.vocab_size {
            return Err(Error::Invalid(format!(
                "token {max} is outside the vocabulary of {}",
                c.vocab_size
            )));
        }
        let mut x = self.embed.embedding(&ids)?.reshape((b, t, c.n_embd))?;
        let spec = block_spec(c);
        for layer in &self.layers {
            x = llama_block(&x, layer, spec)?;
        }
        let x = rms_norm(&x, &self.norm, c.rms_eps as f64)?;
        let out = self.lm_head.as_ref().unwrap_or(&self.embed);
        Ok(linear(&x, out, &self.no_bias, WeightLayout::OutIn, false)?)
    }

    /// `log p(targets[b, t] | tokens[b, ..=t])` for `logits` from
    /// [`forward`](Self::forward) (`[B, T, vocab]`): `[B, T]`.
    pub fn token_log_probs(logits: &Tensor, targets: &Tensor) -> Result<Tensor> {
        Ok(token_log_probs(logits, targets)?)
    }

    /// The sum over positions of the log-probabilities of `targets` where
    /// `mask` (`[B, T]`, f32 0 or 1) is 1: `[B]`, what DPO and GRPO compare.
    pub fn sequence_log_probs(logits: &Tensor, targets: &Tensor, mask: &Tensor) -> Result<Tensor> {
        let log_probs = Self::token_log_probs(logits, targets)?;
        check_mask(mask, &log_probs)?;
        Ok((log_probs * mask)?.sum(1)?)
    }

    /// The mean cross-entropy of `targets` over the positions where `mask`
    /// (`[B, T]`, f32 0 or 1) is 1, as transformers' loss with the other
    /// labels set to −100: a masked position contributes exactly zero
    /// gradient (and its target is never read for one).
    pub fn masked_loss(logits: &Tensor, targets: &Tensor, mask: &Tensor) -> Result<Tensor> {
        let log_probs = Self::token_log_probs(logits, targets)?;
        check_mask(mask, &log_probs)?;
        let count = mask.sum_all()?.to_scalar::<f32>()?;
        if count <= 0.0 {
            return Err(Error::Invalid(
                "the loss mask selects no position: nothing to train on".into(),
            ));
        }
        Ok(((log_probs * mask)?.sum_all()? / -(count as f64))?)
    }

    /// Saves the model as a Hugging Face folder `dir`: `config.json`
    /// (`LlamaForCausalLM`, f32), `model.safetensors` under Hugging Face's
    /// names, and the tokenizer (copied from the source folder, or rebuilt
    /// from the GGUF's metadata as `tokenizer.json` and
    /// `tokenizer_config.json`).
    pub fn save_hf(&self, dir: &Path) -> Result<()> {
        std::fs::create_dir_all(dir).map_err(Error::io(dir))?;
        let config = serde_json::to_string_pretty(&self.hf_config()?)
            .map_err(|e| Error::Invalid(e.to_string()))?;
        let path = dir.join("config.json");
        crate::atomic::write_atomic(&path, config.as_bytes())?;
        let mut metadata = HashMap::new();
        metadata.insert("format".to_string(), "pt".to_string());
        save_tensors(
            &self.params.named()?,
            &dir.join("model.safetensors"),
            &metadata,
        )?;
        match &self.origin {
            Origin::HfDir(source) => {
                for name in TOKENIZER_FILES {
                    let from = source.join(name);
                    if from.is_file() && source != dir {
                        let to = dir.join(name);
                        std::fs::copy(&from, &to).map_err(Error::io(&to))?;
                    }
                }
                Ok(())
            }
            Origin::Gguf(path) => write_gguf_tokenizer(path, dir, self.config.context_length),
        }
    }

    /// `config.json` for the saved folder: the source folder's with the
    /// dtype set to f32, or one written from the GGUF's shape.
    fn hf_config(&self) -> Result<serde_json::Value> {
        if let Origin::HfDir(source) = &self.origin {
            let (_, mut json) = super::hf::read_config(source)?;
            if let Some(fields) = json.as_object_mut() {
                fields.insert("dtype".into(), "float32".into());
                fields.remove("torch_dtype");
            }
            return Ok(json);
        }
        let c = &self.config;
        let (theta, eps) = (decimal(c.rope_theta), decimal(c.rms_eps));
        Ok(serde_json::json!({
            "architectures": ["LlamaForCausalLM"],
            "model_type": "llama",
            "hidden_size": c.n_embd,
            "intermediate_size": c.n_ff,
            "num_hidden_layers": c.n_layer,
            "num_attention_heads": c.n_head,
            "num_key_value_heads": c.n_kv_head,
            "head_dim": c.head_dim,
            "vocab_size": c.vocab_size,
            "max_position_embeddings": c.context_length,
            "rms_norm_eps": eps,
            "rope_theta": theta,
            "rope_parameters": {"rope_theta": theta, "rope_type": "default"},
            "hidden_act": "silu",
            "attention_bias": false,
            "mlp_bias": false,
            "tie_word_embeddings": self.tied,
            "dtype": "float32",
        }))
    }
}

/// `v` as the f64 its shortest decimal spelling names (an f32 `1e-5`
/// widened as it is would be written 9.99999974737875e-6).
fn decimal(v: f32) -> f64 {
    v.to_string().parse().unwrap_or(v as f64)
}

/// The layer kernel's shape for `config`.
fn block_spec(c: &LlamaConfig) -> LlamaBlockSpec {
    LlamaBlockSpec {
        n_head: c.n_head,
        n_kv_head: c.n_kv_head,
        head_dim: c.head_dim,
        n_ff: c.n_ff,
        eps: c.rms_eps as f64,
        rope_theta: c.rope_theta as f64,
    }
}

/// Checks that `mask` is an f32 tensor shaped as the log-probabilities.
fn check_mask(mask: &Tensor, log_probs: &Tensor) -> Result<()> {
    if mask.dims() != log_probs.dims() || mask.dtype() != DType::F32 {
        return Err(Error::Invalid(format!(
            "the loss mask must be f32 {:?}, not {:?} {:?}",
            log_probs.dims(),
            mask.dtype(),
            mask.dims()
        )));
    }
    Ok(())
}

/// Writes the tokenizer of the GGUF at `path` into `dir`: `tokenizer.json`
/// and a `tokenizer_config.json` with its special tokens and chat template.
fn write_gguf_tokenizer(path: &Path, dir: &Path, context: usize) -> Result<()> {
    let gguf = Gguf::open(path)?;
    let tokenizer = GgufTokenizer::from_metadata(gguf.metadata())
        .map_err(|e| Error::bad_file(path, e.to_string()))?;
    tokenizer.tokenizer().save(&dir.join("tokenizer.json"))?;
    let special = tokenizer.special();
    let name = |id: Option<u32>| id.and_then(|id| tokenizer.token(id)).map(str::to_string);
    let config = serde_json::json!({
        "tokenizer_class": "PreTrainedTokenizerFast",
        "add_bos_token": special.add_bos,
        "add_eos_token": special.add_eos,
        "bos_token": name(special.bos),
        "eos_token": name(special.eos),
        "pad_token": name(special.pad),
        "unk_token": name(special.unk),
        "chat_template": tokenizer.chat_template_source(),
        "model_max_length": context,
    });
    let text = serde_json::to_string_pretty(&config).map_err(|e| Error::Invalid(e.to_string()))?;
    crate::atomic::write_atomic(&dir.join("tokenizer_config.json"), text.as_bytes())
}
