//! A Hugging Face model folder's weights: `model.safetensors`, or the shards
//! that `model.safetensors.index.json` lists, memory-mapped, with tensors by
//! transformers' names (`model.layers.N.self_attn.q_proj.weight`, ...).
//!
//! F32, F16 and BF16 matrices stay in their type as views of the map (no
//! copy); norms are read into f32. Two differences from GGUF files:
//! - q/k rows are in Hugging Face's order, not permuted for llama.cpp's
//!   adjacent-pair RoPE; `LlamaConfig::from_hf` pairs halves instead.
//! - Gemma 3's norms store `w` and the model multiplies by `1 + w` (the GGUF
//!   stores `1 + w`), so 1 is added to every Gemma norm here.

use super::config::{Family, LlamaConfig};
use super::weights::{check_dims, vector_of, LayerTensor, Tensor, TensorSource};
use crate::kernels::quant::{GgmlType, QMatrix, WeightBytes};
use crate::{Error, Result};
use safetensors::tensor::{Metadata, TensorInfo};
use safetensors::{Dtype, SafeTensors};
use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

/// The weights file of a folder that holds them in one piece.
const SINGLE: &str = "model.safetensors";
/// The index of a folder that holds them in shards.
const INDEX: &str = "model.safetensors.index.json";

/// The `config.json` of the model folder `dir`, parsed.
pub(super) fn read_config(dir: &Path) -> Result<(PathBuf, serde_json::Value)> {
    let path = dir.join("config.json");
    let text = std::fs::read_to_string(&path).map_err(Error::io(&path))?;
    let json = serde_json::from_str(&text)
        .map_err(|e| Error::bad_file(&path, format!("invalid JSON: {e}")))?;
    Ok((path, json))
}

/// The safetensors files of a model folder, mapped, and which holds each tensor.
pub(super) struct HfTensors {
    shards: Vec<Shard>,
    /// Tensor name → index into `shards`.
    by_name: HashMap<String, usize>,
    /// Where a missing tensor is reported: the single file or the index.
    listing: PathBuf,
    family: Family,
    tied: bool,
}

/// One mapped safetensors file.
struct Shard {
    path: PathBuf,
    metadata: Metadata,
    /// The data section (after the header), which tensor offsets count from.
    data: WeightBytes,
}

impl HfTensors {
    /// Maps the weights in `dir` for a model of `config` whose output layer
    /// is its token embedding when `tied`.
    pub(super) fn open(dir: &Path, config: &LlamaConfig, tied: bool) -> Result<Self> {
        let (listing, files) = weight_files(dir)?;
        let mut shards = Vec::with_capacity(files.len());
        let mut by_name = HashMap::new();
        for path in files {
            let shard = Shard::open(path)?;
            for name in shard.metadata.tensors().into_keys() {
                by_name.insert(name, shards.len());
            }
            shards.push(shard);
        }
        let tensors = Self {
            shards,
            by_name,
            listing,
            family: config.family,
            tied,
        };
        if !tied && !tensors.by_name.contains_key(&tensors.name(Tensor::Output)) {
            return Err(Error::bad_file(
                &tensors.listing,
                "has no 'lm_head.weight', and config.json's 'tie_word_embeddings' is false",
            ));
        }
        Ok(tensors)
    }

    /// transformers' name for `tensor`.
    fn name(&self, tensor: Tensor) -> String {
        use LayerTensor::*;
        let gemma = self.family == Family::Gemma3;
        let (l, part) = match tensor {
            Tensor::Embeddings => return "model.embed_tokens.weight".into(),
            Tensor::Output => return "lm_head.weight".into(),
            Tensor::OutputNorm => return "model.norm.weight".into(),
            Tensor::Layer(l, part) => (l, part),
        };
        let part = match part {
            AttnNorm => "input_layernorm",
            Query => "self_attn.q_proj",
            Key => "self_attn.k_proj",
            Value => "self_attn.v_proj",
            AttnOutput => "self_attn.o_proj",
            QueryNorm => "self_attn.q_norm",
            KeyNorm => "self_attn.k_norm",
            PostAttnNorm => "post_attention_layernorm",
            // Llama's norm after attention is the one before the MLP.
            FfnNorm if gemma => "pre_feedforward_layernorm",
            FfnNorm => "post_attention_layernorm",
            Gate => "mlp.gate_proj",
            Up => "mlp.up_proj",
            Down => "mlp.down_proj",
            PostFfnNorm => "post_feedforward_layernorm",
        };
        format!("model.layers.{l}.{part}.weight")
    }

    /// Tensor `name` of `shape`, as a `rows × cols` matrix in its own type.
    fn load(&self, name: &str, shape: &[usize], rows: usize, cols: usize) -> Result<QMatrix> {
        let shard = self
            .by_name
            .get(name)
            .map(|&i| &self.shards[i])
            .ok_or_else(|| Error::bad_file(&self.listing, format!("has no tensor '{name}'")))?;
        let info = shard.info(name)?;
        let wide = |dims: &[usize]| dims.iter().map(|&d| d as u64).collect::<Vec<_>>();
        check_dims(&shard.path, name, &wide(&info.shape), &wide(shape))?;
        let ty = match info.dtype {
            Dtype::F32 => GgmlType::F32,
            Dtype::F16 => GgmlType::F16,
            Dtype::BF16 => GgmlType::BF16,
            other => {
                return Err(Error::bad_file(
                    &shard.path,
                    format!("tensor '{name}' is {other:?}; seer reads F32, F16 and BF16 weights"),
                ))
            }
        };
        let (start, end) = info.data_offsets;
        let bytes = shard.data.slice(start..end).ok_or_else(|| {
            Error::bad_file(
                &shard.path,
                format!("tensor '{name}' lies past the file's end"),
            )
        })?;
        QMatrix::new(ty, rows, cols, bytes)
            .map_err(|e| Error::bad_file(&shard.path, format!("tensor '{name}': {e}")))
    }
}

impl TensorSource for HfTensors {
    fn matrix(&self, tensor: Tensor, rows: usize, cols: usize) -> Result<QMatrix> {
        self.load(&self.name(tensor), &[rows, cols], rows, cols)
    }

    fn norm(&self, tensor: Tensor, len: usize) -> Result<Vec<f32>> {
        let mut w = vector_of(self.load(&self.name(tensor), &[len], 1, len)?, len)?;
        if self.family == Family::Gemma3 {
            w.iter_mut().for_each(|v| *v += 1.0);
        }
        Ok(w)
    }

    fn has_output(&self) -> Result<bool> {
        // `open` made sure an untied model has its output layer; a tied one
        // uses the embeddings even where the folder also stores lm_head.
        Ok(!self.tied)
    }
}

impl Shard {
    fn open(path: PathBuf) -> Result<Self> {
        let file = std::fs::File::open(&path).map_err(Error::io(&path))?;
        // SAFETY: the map is read-only; as for GGUF files, seer assumes that
        // nobody truncates or rewrites a model file while it runs.
        let map = unsafe { memmap2::Mmap::map(&file) }.map_err(Error::io(&path))?;
        let (header, metadata) = SafeTensors::read_metadata(&map)
            .map_err(|e| Error::bad_file(&path, format!("not a valid safetensors file: {e}")))?;
        let all = WeightBytes::mapped(map);
        let data = 8usize
            .checked_add(header)
            .and_then(|start| all.slice(start..all.len()))
            .ok_or_else(|| Error::bad_file(&path, "its header runs past the file's end"))?;
        Ok(Self {
            path,
            metadata,
            data,
        })
    }

    fn info(&self, name: &str) -> Result<&TensorInfo> {
        self.metadata
            .info(name)
            .ok_or_else(|| Error::bad_file(&self.path, format!("has no tensor '{name}'")))
    }
}

/// The file to name for a missing tensor, and the safetensors files of the
/// folder: `model.safetensors`, else the shards `model.safetensors.index.json`
/// lists in its `weight_map`.
fn weight_files(dir: &Path) -> Result<(PathBuf, Vec<PathBuf>)> {
    let single = dir.join(SINGLE);
    if single.is_file() {
        return Ok((single.clone(), vec![single]));
    }
    let index = dir.join(INDEX);
    if !index.is_file() {
        return Err(Error::bad_file(
            dir,
            format!("holds no weights: neither {SINGLE} nor {INDEX}"),
        ));
    }
    let text = std::fs::read_to_string(&index).map_err(Error::io(&index))?;
    let json: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| Error::bad_file(&index, format!("invalid JSON: {e}")))?;
    let bad = || Error::bad_file(&index, "'weight_map' should map tensor names to file names");
    let map = json
        .get("weight_map")
        .and_then(|m| m.as_object())
        .ok_or_else(bad)?;
    let mut files = BTreeSet::new();
    for file in map.values() {
        let file = file.as_str().ok_or_else(bad)?;
        // Shards lie beside the index; a name that climbs out is refused.
        let plain = Path::new(file)
            .components()
            .all(|c| matches!(c, std::path::Component::Normal(_)));
        if !plain {
            return Err(Error::bad_file(
                &index,
                format!("'weight_map' names '{file}', which is not a file in the folder"),
            ));
        }
        files.insert(file.to_owned());
    }
    Ok((index, files.into_iter().map(|f| dir.join(f)).collect()))
}
