//! A training run's settings: built-in presets, a TOML file and flags that
//! override both, in that order.

use crate::model::GptConfig;
use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// Everything that defines a training run except the data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainConfig {
    /// Transformer blocks.
    pub n_layer: usize,
    /// Attention heads.
    pub n_head: usize,
    /// Residual stream width.
    pub n_embd: usize,
    /// Context length in tokens.
    pub block_size: usize,
    /// Dropout probability.
    pub dropout: f64,
    /// Biases in linear layers and LayerNorms.
    pub bias: bool,
    /// Sequences per micro-batch.
    pub batch_size: usize,
    /// Micro-batches per optimizer step (gradient accumulation).
    pub grad_accum: usize,
    /// Optimizer steps.
    pub max_iters: u64,
    /// Peak learning rate.
    pub lr: f64,
    /// Learning rate at the end of the cosine decay.
    pub min_lr: f64,
    /// Steps of linear warm-up.
    pub warmup_iters: u64,
    /// Step at which the cosine decay reaches `min_lr`.
    pub lr_decay_iters: u64,
    /// AdamW weight decay, applied to matrices only.
    pub weight_decay: f64,
    /// AdamW beta1.
    pub beta1: f64,
    /// AdamW beta2.
    pub beta2: f64,
    /// Clip the global gradient norm to this (0 disables).
    pub grad_clip: f64,
    /// Evaluate every this many steps.
    pub eval_interval: u64,
    /// Batches averaged per evaluation.
    pub eval_iters: u64,
    /// Save a checkpoint every this many steps (also after every evaluation).
    pub checkpoint_interval: u64,
    /// Record the training loss every this many steps.
    pub log_interval: u64,
    /// Seed of initialisation, batch order and dropout.
    pub seed: u64,
}

/// Names of the built-in presets, with what they are.
pub const PRESETS: [(&str, &str); 4] = [
    ("shakespeare-char-cpu", "nanoGPT's CPU run: 4 layers, 4 heads, 128 wide, block 64, batch 12, 2000 steps"),
    ("shakespeare-char", "nanoGPT's GPU run: 6 layers, 6 heads, 384 wide, block 256, batch 64, 5000 steps, dropout 0.2"),
    ("gpt2-small", "GPT-2 124M: 12 layers, 12 heads, 768 wide, block 1024, ~0.5M tokens a step"),
    ("tiny", "a seconds-long run for tests and smoke checks: 2 layers, 2 heads, 32 wide, block 32"),
];

impl TrainConfig {
    /// The built-in preset `name`.
    pub fn preset(name: &str) -> Result<Self> {
        let cpu = Self {
            n_layer: 4,
            n_head: 4,
            n_embd: 128,
            block_size: 64,
            dropout: 0.0,
            bias: true,
            batch_size: 12,
            grad_accum: 1,
            max_iters: 2000,
            lr: 1e-3,
            min_lr: 1e-4,
            warmup_iters: 100,
            lr_decay_iters: 2000,
            weight_decay: 0.1,
            beta1: 0.9,
            beta2: 0.99,
            grad_clip: 1.0,
            eval_interval: 250,
            eval_iters: 20,
            checkpoint_interval: 250,
            log_interval: 10,
            seed: 1337,
        };
        Ok(match name {
            "shakespeare-char-cpu" => cpu,
            "shakespeare-char" => Self {
                n_layer: 6,
                n_head: 6,
                n_embd: 384,
                block_size: 256,
                dropout: 0.2,
                batch_size: 64,
                max_iters: 5000,
                lr_decay_iters: 5000,
                eval_iters: 200,
                ..cpu
            },
            "gpt2-small" => Self {
                n_layer: 12,
                n_head: 12,
                n_embd: 768,
                block_size: 1024,
                batch_size: 12,
                grad_accum: 40,
                max_iters: 600_000,
                lr: 6e-4,
                min_lr: 6e-5,
                warmup_iters: 2000,
                lr_decay_iters: 600_000,
                beta2: 0.95,
                eval_interval: 1000,
                eval_iters: 200,
                checkpoint_interval: 1000,
                ..cpu
            },
            "tiny" => Self {
                n_layer: 2,
                n_head: 2,
                n_embd: 32,
                block_size: 32,
                batch_size: 4,
                max_iters: 20,
                warmup_iters: 2,
                lr_decay_iters: 20,
                eval_interval: 10,
                eval_iters: 2,
                checkpoint_interval: 10,
                log_interval: 1,
                ..cpu
            },
            other => {
                let names: Vec<_> = PRESETS.iter().map(|(n, _)| *n).collect();
                return Err(Error::Invalid(format!(
                    "unknown preset '{other}'; the presets are: {}",
                    names.join(", ")
                )));
            }
        })
    }

    /// This config with the keys of the TOML file at `path` replacing its own.
    pub fn with_toml_file(&self, path: &Path) -> Result<Self> {
        with_toml_file(self, path)
    }

    /// The GPT this run trains, for a vocabulary of `vocab_size`.
    pub fn model(&self, vocab_size: usize) -> GptConfig {
        GptConfig {
            vocab_size,
            block_size: self.block_size,
            n_layer: self.n_layer,
            n_head: self.n_head,
            n_embd: self.n_embd,
            dropout: self.dropout,
            bias: self.bias,
        }
    }

    /// Checks the run's settings; errors name the field.
    pub fn validate(&self) -> Result<()> {
        self.model(1).validate()?;
        let positive = [
            ("batch_size", self.batch_size as u64),
            ("grad_accum", self.grad_accum as u64),
            ("eval_interval", self.eval_interval),
            ("eval_iters", self.eval_iters),
            ("log_interval", self.log_interval),
        ];
        for (name, value) in positive {
            if value == 0 {
                return Err(Error::Invalid(format!("{name} must be positive")));
            }
        }
        if !(self.lr > 0.0 && self.min_lr >= 0.0 && self.min_lr <= self.lr) {
            return Err(Error::Invalid(format!(
                "lr {} and min_lr {} must satisfy 0 <= min_lr <= lr, lr > 0",
                self.lr, self.min_lr
            )));
        }
        for (name, beta) in [("beta1", self.beta1), ("beta2", self.beta2)] {
            if !(0.0..1.0).contains(&beta) {
                return Err(Error::Invalid(format!("{name} {beta} must be in [0, 1)")));
            }
        }
        Ok(())
    }

    /// The first setting in which `other` differs, other than `max_iters`
    /// (which a resumed run may extend), as `(name, ours, theirs)`.
    pub fn first_difference(&self, other: &Self) -> Option<(String, String, String)> {
        let ours = toml::Table::try_from(self).expect("config serialises");
        let theirs = toml::Table::try_from(other).expect("config serialises");
        ours.iter()
            .filter(|(key, _)| key.as_str() != "max_iters")
            .find(|(key, value)| theirs.get(key.as_str()) != Some(value))
            .map(|(key, value)| {
                let other = theirs
                    .get(key.as_str())
                    .map(|v| v.to_string())
                    .unwrap_or_default();
                (key.clone(), value.to_string(), other)
            })
    }
}

/// `config` with the keys of the TOML file at `path` replacing its own
/// (nested tables key by key); an unknown key is an error naming it.
pub(crate) fn with_toml_file<C: Serialize + serde::de::DeserializeOwned>(
    config: &C,
    path: &Path,
) -> Result<C> {
    let text = std::fs::read_to_string(path).map_err(Error::io(path))?;
    let overrides: toml::Table = text
        .parse()
        .map_err(|e| Error::bad_file(path, format!("invalid TOML: {e}")))?;
    let mut table = toml::Table::try_from(config).expect("config serialises");
    merge_toml(&mut table, overrides, "", path)?;
    table
        .try_into()
        .map_err(|e| Error::bad_file(path, format!("{e}")))
}

/// Replaces the keys of `base` with those of `overrides`, table by table
/// (`[denoiser] width = 192` changes one field of a nested table). A key
/// `base` lacks is an error naming it.
fn merge_toml(
    base: &mut toml::Table,
    overrides: toml::Table,
    prefix: &str,
    path: &Path,
) -> Result<()> {
    for (key, value) in overrides {
        let name = format!("{prefix}{key}");
        match (base.get_mut(&key), value) {
            (None, _) => {
                return Err(Error::bad_file(path, format!("unknown setting '{name}'")));
            }
            (Some(toml::Value::Table(inner)), toml::Value::Table(value)) => {
                merge_toml(inner, value, &format!("{name}."), path)?;
            }
            (Some(slot), value) => *slot = value,
        }
    }
    Ok(())
}
