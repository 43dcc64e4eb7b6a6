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
            let factor = meta.opt_f64(&key("rope.scaling.factor"))?;
            if let Some(f) = factor.filter(|&f| kind == "linear" && f != 1.0) {
                return Err(Error::Invalid(format!(
                    "{} 'linear' by {} {f} is not supported (seer runs unscaled RoPE)",
                    key("rope.scaling.type"),
                    key("rope.scaling.factor")
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

    /// The config in a Hugging Face `config.json` (`LlamaForCausalLM`, or
    /// `Gemma3ForCausalLM` with `model_type` `gemma3_text`), whose weights
    /// keep q/k in Hugging Face's order, so RoPE pairs halves. Reads
    /// transformers 5's `rope_parameters` and `layer_types` as well as
    /// transformers 4's `rope_theta`, `rope_scaling`, `rope_local_base_freq`
    /// and `sliding_window_pattern`; absent fields take transformers'
    /// defaults. What seer cannot run (another architecture, scaled RoPE,
    /// biases, soft-capping, an irregular pattern of sliding layers) is
    /// refused by field name.
    pub fn from_hf(json: &serde_json::Value) -> Result<Self> {
        let hf = HfConfig(json);
        let family = hf.family()?;
        let gemma = family == Family::Gemma3;
        hf.refuse_unsupported(family)?;
        let n_embd = hf.int("hidden_size")?;
        let n_head = hf.int("num_attention_heads")?;
        let n_layer = hf.int("num_hidden_layers")?;
        let head_dim = match hf.field("head_dim") {
            Some(_) => hf.int("head_dim")?,
            None => n_embd / n_head.max(1),
        };
        let (rope_theta, rope_local_theta) = hf.rope_bases(family)?;
        let config = Self {
            family,
            n_layer,
            n_embd,
            n_ff: hf.int("intermediate_size")?,
            n_head,
            n_kv_head: match hf.field("num_key_value_heads") {
                Some(_) => hf.int("num_key_value_heads")?,
                None => n_head,
            },
            head_dim,
            vocab_size: hf.int("vocab_size")?,
            context_length: hf.int("max_position_embeddings")?,
            rms_eps: hf.float("rms_norm_eps", 1e-6)?,
            rope_theta,
            rope_local_theta,
            rope_style: RopeStyle::Halves,
            sliding_window: match hf.field("sliding_window") {
                Some(_) if gemma => Some(hf.int("sliding_window")?),
                // transformers' Gemma3TextConfig default.
                None if gemma => Some(4096),
                _ => None,
            },
            global_every: hf.global_every(family, n_layer)?,
            attention_scale: if gemma {
                // transformers' default is 256 (the head width of the real
                // checkpoints), not this model's head width.
                1.0 / hf.float("query_pre_attn_scalar", 256.0)?.sqrt()
            } else {
                1.0 / (head_dim as f32).sqrt()
            },
            embedding_scale: family.embedding_scale(n_embd),
            activation: family.activation(),
        };
        config.check()
    }

    /// Whether the output layer is the token embedding: `config.json`'s
    /// `tie_word_embeddings`, by default false for Llama and true for Gemma 3
    /// (transformers' defaults).
    pub(super) fn hf_tied_embeddings(&self, json: &serde_json::Value) -> Result<bool> {
        match HfConfig(json).field("tie_word_embeddings") {
            None => Ok(self.family == Family::Gemma3),
            Some(v) => v.as_bool().ok_or_else(|| {
                Error::Invalid("'tie_word_embeddings' should be true or false".into())
            }),
        }
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

/// The fields of a Hugging Face `config.json`; errors name the field.
struct HfConfig<'a>(&'a serde_json::Value);

impl HfConfig<'_> {
    /// Field `k`, unless absent or null.
    fn field(&self, k: &str) -> Option<&serde_json::Value> {
        self.0.get(k).filter(|v| !v.is_null())
    }

    fn int(&self, k: &str) -> Result<usize> {
        self.field(k)
            .and_then(|v| v.as_u64())
            .ok_or_else(|| Error::Invalid(format!("'{k}' should be a whole number")))
            .and_then(|v| to_usize(v, k))
    }

    fn float(&self, k: &str, default: f64) -> Result<f32> {
        match self.field(k) {
            None => Ok(default as f32),
            Some(v) => v
                .as_f64()
                .map(|f| f as f32)
                .ok_or_else(|| Error::Invalid(format!("'{k}' should be a number"))),
        }
    }

    fn string(&self, k: &str) -> Option<&str> {
        self.field(k).and_then(|v| v.as_str())
    }

    /// The family from `architectures` (else `model_type`).
    fn family(&self) -> Result<Family> {
        let archs: Vec<&str> = self
            .field("architectures")
            .and_then(|a| a.as_array())
            .map(|a| a.iter().filter_map(|s| s.as_str()).collect())
            .unwrap_or_default();
        let model_type = self.string("model_type");
        let family = if archs.contains(&"LlamaForCausalLM") {
            Family::Llama
        } else if archs.contains(&"Gemma3ForCausalLM") {
            Family::Gemma3
        } else if !archs.is_empty() {
            return Err(Error::Invalid(format!(
                "'architectures' is {archs:?}; seer runs LlamaForCausalLM and Gemma3ForCausalLM"
            )));
        } else {
            match model_type {
                Some("llama") => Family::Llama,
                Some("gemma3_text") => Family::Gemma3,
                other => {
                    return Err(Error::Invalid(format!(
                        "no 'architectures', and 'model_type' is {other:?}; \
                         seer runs 'llama' and 'gemma3_text'"
                    )))
                }
            }
        };
        if let (Family::Gemma3, Some(t)) = (family, model_type) {
            if t != "gemma3_text" {
                return Err(Error::Invalid(format!(
                    "'model_type' is '{t}'; seer runs Gemma3ForCausalLM from a 'gemma3_text' config"
                )));
            }
        }
        Ok(family)
    }

    /// Refuses biases, another activation and, for Gemma 3, soft-capping and
    /// bidirectional attention.
    fn refuse_unsupported(&self, family: Family) -> Result<()> {
        let on = |k: &str| self.field(k).and_then(|b| b.as_bool()) == Some(true);
        for flag in ["attention_bias", "mlp_bias"] {
            if on(flag) {
                return Err(Error::Invalid(format!("'{flag}' true is not supported")));
            }
        }
        let (key, wanted) = match family {
            Family::Llama => ("hidden_act", "silu"),
            Family::Gemma3 => ("hidden_activation", "gelu_pytorch_tanh"),
        };
        match self.string(key) {
            Some(act) if act != wanted => Err(Error::Invalid(format!(
                "'{key}' '{act}' is not supported ({wanted})"
            ))),
            _ => Ok(()),
        }?;
        if family == Family::Gemma3 {
            for cap in ["attn_logit_softcapping", "final_logit_softcapping"] {
                if self.field(cap).is_some() {
                    return Err(Error::Invalid(format!("'{cap}' is not supported (null)")));
                }
            }
            if on("use_bidirectional_attention") {
                return Err(Error::Invalid(
                    "'use_bidirectional_attention' true is not supported".into(),
                ));
            }
        }
        Ok(())
    }

    /// RoPE's base frequencies for global and sliding layers.
    fn rope_bases(&self, family: Family) -> Result<(f32, f32)> {
        let gemma = family == Family::Gemma3;
        let global_default = if gemma { 1_000_000.0 } else { 10_000.0 };
        let local = || -> Result<Option<f32>> {
            Ok(if gemma {
                Some(self.float("rope_local_base_freq", 10_000.0)?)
            } else {
                None
            })
        };
        let Some(params) = self.field("rope_parameters") else {
            if let Some(scaling) = self.field("rope_scaling") {
                rope_base(scaling, "rope_scaling", 0.0)?;
            }
            let global = self.float("rope_theta", global_default)?;
            return Ok((global, local()?.unwrap_or(global)));
        };
        let (full, sliding) = (
            params.get("full_attention"),
            params.get("sliding_attention"),
        );
        if gemma && (full.is_some() || sliding.is_some()) {
            let base = |p: Option<&serde_json::Value>, k: &str, default: f64| match p {
                Some(p) => rope_base(p, &format!("rope_parameters.{k}"), default),
                None => Ok(default as f32),
            };
            return Ok((
                base(full, "full_attention", global_default)?,
                base(sliding, "sliding_attention", 10_000.0)?,
            ));
        }
        let global = rope_base(params, "rope_parameters", global_default)?;
        Ok((global, local()?.unwrap_or(global)))
    }

    /// Every how many layers one attends globally: Gemma 3's `layer_types`
    /// (which must repeat sliding layers closed by one full layer), else
    /// `sliding_window_pattern` (default 6). `None` for Llama, whose layers
    /// must all be full.
    fn global_every(&self, family: Family, n_layer: usize) -> Result<Option<usize>> {
        const FULL: &str = "full_attention";
        const SLIDING: &str = "sliding_attention";
        let Some(list) = self.field("layer_types") else {
            return Ok(match family {
                Family::Llama => None,
                Family::Gemma3 => Some(
                    match ["sliding_window_pattern", "_sliding_window_pattern"]
                        .into_iter()
                        .find(|k| self.field(k).is_some())
                    {
                        Some(k) => self.int(k)?,
                        None => 6,
                    },
                ),
            });
        };
        let types: Vec<&str> = list
            .as_array()
            .map(|a| a.iter().filter_map(|t| t.as_str()).collect())
            .unwrap_or_default();
        if types.len() != n_layer {
            return Err(Error::Invalid(format!(
                "'layer_types' should list {n_layer} layer types ('{FULL}' or '{SLIDING}')"
            )));
        }
        let allowed: &[&str] = match family {
            Family::Llama => &[FULL],
            Family::Gemma3 => &[FULL, SLIDING],
        };
        if let Some(t) = types.iter().find(|t| !allowed.contains(t)) {
            return Err(Error::Invalid(format!(
                "'layer_types' holds '{t}'; seer runs {allowed:?} here"
            )));
        }
        if family == Family::Llama {
            return Ok(None);
        }
        let every = types
            .iter()
            .position(|t| *t == FULL)
            .map_or(n_layer + 1, |i| i + 1);
        let regular = types
            .iter()
            .enumerate()
            .all(|(i, t)| (*t == FULL) == (i + 1).is_multiple_of(every));
        if !regular {
            return Err(Error::Invalid(
                "'layer_types' is not a repeating pattern of sliding layers each closed by \
                 one full layer, which is what seer runs"
                    .into(),
            ));
        }
        Ok(Some(every))
    }
}

/// The base frequency of one set of RoPE parameters (`rope_theta`, else
/// `default`); scaled RoPE (anything but `default`, or `linear` by 1) is
/// refused.
fn rope_base(params: &serde_json::Value, name: &str, default: f64) -> Result<f32> {
    if !params.is_object() {
        return Err(Error::Invalid(format!("'{name}' should be an object")));
    }
    let kind = params
        .get("rope_type")
        .or_else(|| params.get("type"))
        .and_then(|t| t.as_str())
        .unwrap_or("default");
    let factor = params.get("factor").and_then(|f| f.as_f64());
    let unscaled = kind == "default" || (kind == "linear" && factor.unwrap_or(1.0) == 1.0);
    if !unscaled {
        return Err(Error::Invalid(format!(
            "'{name}' has rope_type '{kind}' (factor {}); seer runs unscaled RoPE ('default')",
            factor.map_or("none".into(), |f| f.to_string())
        )));
    }
    match params.get("rope_theta").filter(|v| !v.is_null()) {
        None => Ok(default as f32),
        Some(v) => v
            .as_f64()
            .map(|f| f as f32)
            .ok_or_else(|| Error::Invalid(format!("'{name}.rope_theta' should be a number"))),
    }
}

fn to_usize(v: u64, key: &str) -> Result<usize> {
    usize::try_from(v).map_err(|_| Error::Invalid(format!("'{key}' is too large ({v})")))
}
