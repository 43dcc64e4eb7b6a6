//! One part of an image model on disk: a folder with `config.json` and
//! `model.safetensors`, as each sub-folder of a diffusers pipeline is.

use crate::nn::{load_tensors, ParamSource, Params};
use crate::{Error, Result};
use candle_core::{DType, Device};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::collections::HashMap;
use std::path::Path;

/// Writes `dir/config.json` and `dir/model.safetensors`, each atomically.
pub fn save_component(dir: &Path, config: &impl Serialize, params: &Params) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(Error::io(dir))?;
    let json = serde_json::to_string_pretty(config).expect("configs serialise");
    crate::atomic::write_atomic(&dir.join("config.json"), json.as_bytes())?;
    let metadata = HashMap::from([("format".to_string(), "pt".to_string())]);
    params.save(&dir.join("model.safetensors"), &metadata)
}

/// Reads `dir/config.json` and a parameter source over `dir/model.safetensors`.
pub fn load_component<C: DeserializeOwned>(
    dir: &Path,
    dtype: DType,
    device: &Device,
) -> Result<(C, ParamSource)> {
    let config_path = dir.join("config.json");
    let text = std::fs::read_to_string(&config_path).map_err(Error::io(&config_path))?;
    let config = serde_json::from_str(&text)
        .map_err(|e| Error::bad_file(&config_path, format!("invalid config: {e}")))?;
    let weights = dir.join("model.safetensors");
    let (tensors, _) = load_tensors(&weights, device)?;
    Ok((config, ParamSource::load(tensors, &weights, dtype, device)))
}
