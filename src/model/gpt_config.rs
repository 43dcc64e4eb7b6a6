//! The GPT's hyper-parameters, and their `config.json` in Hugging Face GPT-2 form.

use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// Shape and regularisation of a GPT.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GptConfig {
    /// Token ids `0..vocab_size`.
    pub vocab_size: usize,
    /// Context length: positions `0..block_size`.
    pub block_size: usize,
    /// Transformer blocks.
    pub n_layer: usize,
    /// Attention heads per block.
    pub n_head: usize,
    /// Width of the residual stream.
    pub n_embd: usize,
    /// Dropout probability (embeddings, attention weights, residuals).
    pub dropout: f64,
    /// Whether linear layers and LayerNorms have biases (GPT-2: yes).
    pub bias: bool,
}

/// LayerNorm epsilon of GPT-2.
pub const LAYER_NORM_EPS: f64 = 1e-5;

impl GptConfig {
    /// Checks that the numbers describe a buildable model; errors name the field.
    pub fn validate(&self) -> Result<()> {
        let positive = [
            ("vocab_size", self.vocab_size),
            ("block_size", self.block_size),
            ("n_layer", self.n_layer),
            ("n_head", self.n_head),
            ("n_embd", self.n_embd),
        ];
        for (name, value) in positive {
            if value == 0 {
                return Err(Error::Invalid(format!("{name} must be positive")));
            }
        }
        if !self.n_embd.is_multiple_of(self.n_head) {
            return Err(Error::Invalid(format!(
                "n_embd {} is not divisible by n_head {}: pick n_embd a multiple of n_head",
                self.n_embd, self.n_head
            )));
        }
        if !(0.0..1.0).contains(&self.dropout) {
            return Err(Error::Invalid(format!(
                "dropout {} must be in [0, 1)",
                self.dropout
            )));
        }
        Ok(())
    }

    /// The `config.json` a Hugging Face `GPT2LMHeadModel` reads.
    pub fn to_hf_json(&self) -> serde_json::Value {
        serde_json::json!({
            "architectures": ["GPT2LMHeadModel"],
            "model_type": "gpt2",
            "vocab_size": self.vocab_size,
            "n_positions": self.block_size,
            "n_ctx": self.block_size,
            "n_embd": self.n_embd,
            "n_layer": self.n_layer,
            "n_head": self.n_head,
            "n_inner": null,
            "activation_function": "gelu_new",
            "resid_pdrop": self.dropout,
            "embd_pdrop": self.dropout,
            "attn_pdrop": self.dropout,
            "layer_norm_epsilon": LAYER_NORM_EPS,
            "initializer_range": 0.02,
            "scale_attn_weights": true,
            "scale_attn_by_inverse_layer_idx": false,
            "reorder_and_upcast_attn": false,
            "add_cross_attention": false,
            "tie_word_embeddings": true,
            "use_cache": true,
            "seer_bias": self.bias,
        })
    }

    /// Reads a Hugging Face GPT-2 `config.json`; values seer's GPT cannot run
    /// are refused, naming the field.
    pub fn from_hf_json(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(Error::io(path))?;
        let v: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| Error::bad_file(path, format!("invalid JSON: {e}")))?;
        let bad =
            |field: &str, why: String| Error::bad_file(path, format!("field '{field}': {why}"));
        let int = |field: &str| -> Result<usize> {
            v[field]
                .as_u64()
                .map(|n| n as usize)
                .ok_or_else(|| bad(field, "missing or not a positive integer".into()))
        };
        if let Some(t) = v["model_type"].as_str() {
            if t != "gpt2" {
                return Err(bad(
                    "model_type",
                    format!("'{t}' is not supported; seer runs 'gpt2'"),
                ));
            }
        }
        let n_embd = int("n_embd")?;
        if let Some(inner) = v["n_inner"].as_u64() {
            if inner as usize != 4 * n_embd {
                return Err(bad(
                    "n_inner",
                    format!("{inner} is not 4 × n_embd ({})", 4 * n_embd),
                ));
            }
        }
        let activation = v["activation_function"].as_str().unwrap_or("gelu_new");
        if !matches!(activation, "gelu_new" | "gelu_pytorch_tanh") {
            return Err(bad(
                "activation_function",
                format!("'{activation}' is not supported; seer's GPT uses GELU with the tanh approximation (gelu_new)"),
            ));
        }
        for flag in [
            "add_cross_attention",
            "scale_attn_by_inverse_layer_idx",
            "reorder_and_upcast_attn",
        ] {
            if v[flag].as_bool() == Some(true) {
                return Err(bad(flag, "true is not supported".into()));
            }
        }
        if v["scale_attn_weights"].as_bool() == Some(false) {
            return Err(bad("scale_attn_weights", "false is not supported".into()));
        }
        if let Some(eps) = v["layer_norm_epsilon"].as_f64() {
            if (eps - LAYER_NORM_EPS).abs() > 1e-12 {
                return Err(bad(
                    "layer_norm_epsilon",
                    format!("{eps} is not supported; seer uses {LAYER_NORM_EPS}"),
                ));
            }
        }
        let config = Self {
            vocab_size: int("vocab_size")?,
            block_size: int("n_positions")?,
            n_layer: int("n_layer")?,
            n_head: int("n_head")?,
            n_embd,
            dropout: v["resid_pdrop"].as_f64().unwrap_or(0.0),
            bias: v["seer_bias"].as_bool().unwrap_or(true),
        };
        config
            .validate()
            .map_err(|e| Error::bad_file(path, e.to_string()))?;
        Ok(config)
    }
}
