//! The shape of a Llama-family or Gemma 3 model, read from a GGUF file's
//! metadata or a Hugging Face `config.json`; anything seer cannot run is
//! refused by field name.

use crate::formats::Metadata;
use crate::{Error, Result};

/// Which architecture the weights belong to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// Llama, Llama 2/3, SmolLM, Mistral without sliding windows, ...:
    /// RMSNorm, RoPE, SwiGLU, grouped-query attention.
    Llama,
    /// Gemma 3: as Llama, plus q/k norms, norms after attention and MLP,
    /// embeddings scaled by √d, GELU (tanh) gating, and sliding-window layers
    /// between global ones.
    Gemma3,
}

impl Family {
    /// What token embeddings are multiplied by in a model `n_embd` wide.
    fn embedding_scale(self, n_embd: usize) -> f32 {
        match self {
            Family::Llama => 1.0,
            Family::Gemma3 => (n_embd as f32).sqrt(),
        }
    }

    /// The MLP's gate activation.
    fn activation(self) -> Activation {
        match self {
            Family::Llama => Activation::Silu,
            Family::Gemma3 => Activation::GeluTanh,
        }
    }
}

/// How RoPE pairs the dimensions of a head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RopeStyle {
    /// Dimensions `2i` and `2i + 1` rotate together: GGML's "normal" RoPE,
    /// for Llama q/k weights that GGUF conversion permuted to suit it.
    Adjacent,
    /// Dimensions `i` and `i + d/2` rotate together (GPT-NeoX's, and
    /// Hugging Face's `rotate_half`).
    Halves,
}

/// The MLP's gate activation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activation {
    /// SiLU (SwiGLU).
    Silu,
    /// GELU, tanh approximation (GeGLU).
    GeluTanh,
}

/// Everything the forward pass needs to know about a model's shape.
#[derive(Debug, Clone, PartialEq)]
pub struct LlamaConfig {
    /// The architecture.
    pub family: Family,
    /// Transformer blocks.
    pub n_layer: usize,
    /// Width of the residual stream.
    pub n_embd: usize,
    /// Width of the MLP's hidden layer.
    pub n_ff: usize,
    /// Query heads.
    pub n_head: usize,
    /// Key/value heads (fewer than query heads: grouped-query attention).
    pub n_kv_head: usize,
    /// Width of one head.
    pub head_dim: usize,
    /// Vocabulary size.
    pub vocab_size: usize,
    /// The context length the model was trained for.
    pub context_length: usize,
    /// RMSNorm's epsilon.
    pub rms_eps: f32,
    /// RoPE's base frequency (global layers, for Gemma 3).
    pub rope_theta: f32,
    /// RoPE's base frequency on sliding-window layers (Gemma 3).
    pub rope_local_theta: f32,
    /// How RoPE pairs dimensions.
    pub rope_style: RopeStyle,
    /// Sliding-window layers attend to at most this many positions.
    pub sliding_window: Option<usize>,
    /// Every `n`th layer (the last of each group of `n`) attends globally; the
    /// others use the sliding window (Gemma 3: 6). `None`: all global.
    pub global_every: Option<usize>,
    /// Scores are `q·k · attention_scale`.
    pub attention_scale: f32,
    /// Token embeddings are multiplied by this (Gemma: √d).
    pub embedding_scale: f32,
    /// The MLP's gate activation.
    pub activation: Activation,
}

impl LlamaConfig {
    /// The config in a GGUF file's metadata (`general.architecture` is
    /// `llama` or `gemma3`).
    pub fn from_gguf(meta: &Metadata) -> Result<Self> {
        let arch = meta.string("general.architecture")?;
        let family = match arch {
            "llama" => Family::Llama,
            "gemma3" => Family::Gemma3,
            other => {
                return Err(Error::Invalid(format!(
                    "general.architecture '{other}' is not one seer runs (llama, gemma3)"
                )))
            }
        };
        let key = |k: &str| format!("{arch}.{k}");
        let int = |k: &str| -> Result<usize> { to_usize(meta.u64(&key(k))?, &key(k)) };
        let n_embd = int("embedding_length")?;
        let n_head = int("attention.head_count")?;
        let n_kv_head = match meta.opt_u64(&key("attention.head_count_kv"))? {
            Some(n) => to_usize(n, &key("attention.head_count_kv"))?,
            None => n_head,
        };
        let head_dim = match meta.opt_u64(&key("attention.key_length"))? {
            Some(n) => to_usize(n, &key("attention.key_length"))?,
            None if n_head > 0 => n_embd / n_head,
            None => 0,
        };
        if let Some(v) = meta.opt_u64(&key("attention.value_length"))? {
            if v as usize != head_dim {
                return Err(Error::Invalid(format!(
                    "{} ({v}) differs from the key length ({head_dim}); seer runs equal widths",
                    key("attention.value_length")
                )));
            }
        }
        if let Some(rope) = meta.opt_u64(&key("rope.dimension_count"))? {
            if rope as usize != head_dim {
                return Err(Error::Invalid(format!(
                    "{} is {rope} but heads are {head_dim} wide; partial RoPE is not supported",
                    key("rope.dimension_count")
                )));
            }
        }
        if let Some(kind) = meta.opt_string(&key("rope.scaling.type"))? {
            if kind != "none" && kind != "linear" {
                return Err(Error::Invalid(format!(
                    "{} '{kind}' is not supported (none, linear)",
                    key("rope.scaling.type")
                )));
            }
        }
        let vocab_size = match meta.opt_u64(&key("vocab_size"))? {
            Some(n) => to_usize(n, &key("vocab_size"))?,
            None => meta.array("tokenizer.ggml.tokens")?.len(),
        };
        let rope_theta = meta.opt_f64(&key("rope.freq_base"))?.unwrap_or(10_000.0) as f32;
        let gemma = family == Family::Gemma3;
        let config = Self {
            family,
            n_layer: int("block_count")?,
            n_embd,
            n_ff: int("feed_forward_length")?,
            n_head,
            n_kv_head,
            head_dim,
            vocab_size,
            context_length: int("context_length")?,
            rms_eps: meta.f64(&key("attention.layer_norm_rms_epsilon"))? as f32,
            rope_theta,
            rope_local_theta: if gemma { 10_000.0 } else { rope_theta },
            rope_style: if gemma {
                RopeStyle::Halves
            } else {
                RopeStyle::Adjacent
            },
            sliding_window: match meta.opt_u64(&key("attention.sliding_window"))? {
                Some(w) if gemma => Some(to_usize(w, &key("attention.sliding_window"))?),
                _ => None,
            },
            global_every: gemma.then_some(6),
            attention_scale: 1.0 / (head_dim as f32).sqrt(),
            embedding_scale: family.embedding_scale(n_embd),
            activation: family.activation(),
        };
        config.check()
    }

    /// The config in a Hugging Face `config.json` (`LlamaForCausalLM` or
    /// `Gemma3ForCausalLM`), whose weights keep q/k in Hugging Face's order.
    pub fn from_hf(json: &serde_json::Value) -> Result<Self> {
        let field = |k: &str| json.get(k).filter(|v| !v.is_null());
        let int = |k: &str| -> Result<usize> {
            field(k)
                .and_then(|v| v.as_u64())
                .ok_or_else(|| {
                    Error::Invalid(format!("config.json: '{k}' should be a whole number"))
                })
                .and_then(|v| to_usize(v, k))
        };
        let float = |k: &str, default: f64| -> Result<f32> {
            match field(k) {
                None => Ok(default as f32),
                Some(v) => v.as_f64().map(|f| f as f32).ok_or_else(|| {
                    Error::Invalid(format!("config.json: '{k}' should be a number"))
                }),
            }
        };
        let archs: Vec<&str> = field("architectures")
            .and_then(|a| a.as_array())
            .map(|a| a.iter().filter_map(|s| s.as_str()).collect())
            .unwrap_or_default();
        let family = if archs.contains(&"LlamaForCausalLM") {
            Family::Llama
        } else if archs.contains(&"Gemma3ForCausalLM") {
            Family::Gemma3
        } else {
            return Err(Error::Invalid(format!(
                "config.json: 'architectures' is {archs:?}; seer runs LlamaForCausalLM and Gemma3ForCausalLM"
            )));
        };
        if let Some(scaling) = field("rope_scaling") {
            let kind = scaling
                .get("rope_type")
                .or_else(|| scaling.get("type"))
                .and_then(|t| t.as_str())
                .unwrap_or("?");
            if kind != "default" && kind != "linear" {
                return Err(Error::Invalid(format!(
                    "config.json: 'rope_scaling' of type '{kind}' is not supported"
                )));
            }
        }
        if field("attention_bias").and_then(|b| b.as_bool()) == Some(true)
            || field("mlp_bias").and_then(|b| b.as_bool()) == Some(true)
        {
            return Err(Error::Invalid(
                "config.json: 'attention_bias'/'mlp_bias' true is not supported".into(),
            ));
        }
        let n_embd = int("hidden_size")?;
        let n_head = int("num_attention_heads")?;
        let head_dim = match field("head_dim") {
            Some(_) => int("head_dim")?,
            None if n_head > 0 => n_embd / n_head,
            None => 0,
        };
        let gemma = family == Family::Gemma3;
        let rope_theta = float("rope_theta", 10_000.0)?;
        let config = Self {
            family,
            n_layer: int("num_hidden_layers")?,
            n_embd,
            n_ff: int("intermediate_size")?,
            n_head,
            n_kv_head: match field("num_key_value_heads") {
                Some(_) => int("num_key_value_heads")?,
                None => n_head,
            },
            head_dim,
            vocab_size: int("vocab_size")?,
            context_length: int("max_position_embeddings")?,
            rms_eps: float("rms_norm_eps", 1e-6)?,
            rope_theta,
            rope_local_theta: if gemma {
                float("rope_local_base_freq", 10_000.0)?
            } else {
                rope_theta
            },
            rope_style: RopeStyle::Halves,
            sliding_window: match field("sliding_window") {
                Some(_) if gemma => Some(int("sliding_window")?),
                _ => None,
            },
            global_every: if gemma {
                Some(match field("sliding_window_pattern") {
                    Some(_) => int("sliding_window_pattern")?,
                    None => 6,
                })
            } else {
                None
            },
            attention_scale: if gemma {
                1.0 / float("query_pre_attn_scalar", head_dim as f64)?.sqrt()
            } else {
                1.0 / (head_dim as f32).sqrt()
            },
            embedding_scale: family.embedding_scale(n_embd),
            activation: family.activation(),
        };
        config.check()
    }

    /// Whether layer `layer` attends through the sliding window.
    pub fn is_sliding(&self, layer: usize) -> bool {
        match (self.sliding_window, self.global_every) {
            (Some(_), Some(every)) => !(layer + 1).is_multiple_of(every),
            (Some(_), None) => true,
            _ => false,
        }
    }

    /// Width of the keys (and values) of one position, all KV heads together.
    pub fn kv_dim(&self) -> usize {
        self.n_kv_head * self.head_dim
    }

    fn check(self) -> Result<Self> {
        let sizes = [
            ("block count", self.n_layer),
            ("embedding length", self.n_embd),
            ("feed-forward length", self.n_ff),
            ("head count", self.n_head),
            ("KV head count", self.n_kv_head),
            ("head width", self.head_dim),
            ("vocabulary size", self.vocab_size),
            ("context length", self.context_length),
        ];
        for (name, value) in sizes {
            if value == 0 || value > 1 << 24 {
                return Err(Error::Invalid(format!(
                    "the model's {name} is {value}, outside 1..=16777216"
                )));
            }
        }
        if !self.n_head.is_multiple_of(self.n_kv_head) {
            return Err(Error::Invalid(format!(
                "{} query heads do not split into groups over {} KV heads",
                self.n_head, self.n_kv_head
            )));
        }
        if !self.head_dim.is_multiple_of(2) {
            return Err(Error::Invalid(format!(
                "heads {} wide: RoPE needs an even width",
                self.head_dim
            )));
        }
        let positive = |v: f32| v.is_finite() && v > 0.0;
        if !(self.rms_eps.is_finite()
            && self.rms_eps >= 0.0
            && positive(self.rope_theta)
            && positive(self.rope_local_theta))
        {
            return Err(Error::Invalid(
                "the model's RMSNorm epsilon or RoPE base frequency is not a positive number"
                    .into(),
            ));
        }
        if self.sliding_window == Some(0) || self.global_every == Some(0) {
            return Err(Error::Invalid(
                "the model's sliding window and its pattern must be at least 1".into(),
            ));
        }
        Ok(self)
    }
}

fn to_usize(v: u64, key: &str) -> Result<usize> {
    usize::try_from(v).map_err(|_| Error::Invalid(format!("'{key}' is too large ({v})")))
}
