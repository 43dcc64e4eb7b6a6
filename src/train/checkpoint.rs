//! Checkpoints that survive a kill.
//!
//! A run folder is a model folder (`config.json`, `model.safetensors`,
//! `tokenizer.json`) plus `optimizer.safetensors` and `trainer_state.json`.
//! A checkpoint is first written whole into `.checkpoint/` inside the run
//! folder, `trainer_state.json` last; only then are its files moved into
//! place. A kill before `trainer_state.json` exists in `.checkpoint/` leaves the
//! previous checkpoint untouched; a kill during the moves is finished on the
//! next load. Either way the folder holds one whole checkpoint.

use super::{AdamW, TrainConfig};
use crate::model::Gpt;
use crate::tokenize::Tokenizer;
use crate::{Error, Result};
use candle_core::{DType, Device};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

const STAGING: &str = ".checkpoint";
const STATE_FILE: &str = "trainer_state.json";
const FILES: [&str; 5] = [
    "config.json",
    "model.safetensors",
    "tokenizer.json",
    "optimizer.safetensors",
    STATE_FILE,
];

/// `trainer_state.json`: where a run stands.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainerState {
    /// Optimizer steps completed.
    pub step: u64,
    /// Best validation loss so far.
    pub best_val_loss: Option<f64>,
    /// Step of the latest evaluation.
    pub last_eval_step: Option<u64>,
    /// Training tokens consumed.
    pub tokens_seen: u64,
    /// Seconds spent training.
    pub elapsed_s: f64,
    /// The run's settings.
    pub config: TrainConfig,
    /// The data folder trained on.
    pub data: PathBuf,
}

/// A loaded checkpoint.
pub struct Checkpoint {
    /// The model.
    pub model: Gpt,
    /// The optimizer with its moments.
    pub optimizer: AdamW,
    /// The run's state.
    pub state: TrainerState,
}

impl Checkpoint {
    /// Writes a checkpoint of `model`, `optimizer` and `state` into `dir`.
    pub fn save(
        dir: &Path,
        model: &Gpt,
        optimizer: &AdamW,
        tokenizer: &Tokenizer,
        state: &TrainerState,
    ) -> Result<()> {
        let staging = dir.join(STAGING);
        std::fs::create_dir_all(&staging).map_err(Error::io(&staging))?;
        model.save(&staging, Some(tokenizer))?;
        optimizer.save(&staging.join("optimizer.safetensors"), &HashMap::new())?;
        let json = serde_json::to_string_pretty(state).expect("state serialises");
        crate::atomic::write_atomic(&staging.join(STATE_FILE), json.as_bytes())?;
        commit(dir)
    }

    /// Whether `dir` holds a checkpoint (or a finished staging one).
    pub fn exists(dir: &Path) -> bool {
        dir.join(STATE_FILE).exists() || dir.join(STAGING).join(STATE_FILE).exists()
    }

    /// Reads `trainer_state.json` in `dir`, first finishing an interrupted save.
    pub fn read_state(dir: &Path) -> Result<TrainerState> {
        recover(dir)?;
        let state_path = dir.join(STATE_FILE);
        let text = std::fs::read_to_string(&state_path).map_err(Error::io(&state_path))?;
        serde_json::from_str(&text)
            .map_err(|e| Error::bad_file(&state_path, format!("invalid trainer state: {e}")))
    }

    /// Loads the checkpoint in `dir`, first finishing an interrupted save.
    pub fn load(dir: &Path, device: &Device) -> Result<Self> {
        let state = Self::read_state(dir)?;
        let model = Gpt::load(dir, DType::F32, device)?;
        let config = &state.config;
        let mut optimizer = AdamW::new(
            model.params(),
            config.beta1,
            config.beta2,
            config.weight_decay,
        )?;
        let opt_path = dir.join("optimizer.safetensors");
        optimizer.load(&opt_path)?;
        if optimizer.steps_taken() != state.step {
            return Err(Error::bad_file(
                &opt_path,
                format!(
                    "holds step {} but trainer_state.json says {}",
                    optimizer.steps_taken(),
                    state.step
                ),
            ));
        }
        Ok(Self {
            model,
            optimizer,
            state,
        })
    }
}

/// Moves a complete staged checkpoint into place.
fn commit(dir: &Path) -> Result<()> {
    let staging = dir.join(STAGING);
    for name in FILES {
        let from = staging.join(name);
        if from.exists() {
            let to = dir.join(name);
            std::fs::rename(&from, &to).map_err(Error::io(&to))?;
        }
    }
    std::fs::remove_dir_all(&staging).map_err(Error::io(&staging))
}

/// Finishes a save that was killed while moving files, or discards one that
/// was killed before it was complete.
fn recover(dir: &Path) -> Result<()> {
    let staging = dir.join(STAGING);
    if !staging.exists() {
        return Ok(());
    }
    if staging.join(STATE_FILE).exists() {
        commit(dir)
    } else {
        std::fs::remove_dir_all(&staging).map_err(Error::io(&staging))
    }
}
