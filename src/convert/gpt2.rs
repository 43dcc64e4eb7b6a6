//! A seer GPT (or Hugging Face GPT-2) model folder as the source of a GGUF
//! file in llama.cpp's `gpt2` architecture, laid out as llama.cpp's
//! `convert_hf_to_gguf.py` (`GPT2Model`) writes it:
//!
//! - metadata `gpt2.{context_length, embedding_length, feed_forward_length,
//!   block_count, attention.head_count, attention.layer_norm_epsilon}`;
//! - tensors `token_embd`, `position_embd`, per block `attn_norm`,
//!   `attn_qkv`, `attn_output`, `ffn_norm`, `ffn_up`, `ffn_down` (weights
//!   and biases), `output_norm` and `output` (a copy of `token_embd`, which
//!   GPT-2 ties it to). GPT-2's `Conv1D` weights are stored `[in, out]`; the
//!   GGUF's rows are outputs (`[out, in]` row-major, GGML dims `[in, out]`),
//!   so they are transposed. A model trained without biases gets zero ones
//!   (llama.cpp's `gpt2` requires them);
//! - the tokenizer as `tokenizer.ggml.model = gpt2` (byte-level BPE, see
//!   `vocab`; seer's own are GPT-2's split, `tokenizer.ggml.pre = gpt-2` as
//!   llama.cpp spells it): the tokens in id order, their types (special
//!   tokens CONTROL), the merges, `<|endoftext|>` as BOS and EOS, and no BOS
//!   added to prompts (seer's GPT adds none). A character-level tokenizer has
//!   no llama.cpp equivalent and is refused.

use super::vocab::Vocabulary;
use super::{folder_name, tokenizer_json, SourceTensor, TensorSource};
use crate::formats::{Metadata, Value};
use crate::kernels::quant::GgmlType;
use crate::model::{GptConfig, LAYER_NORM_EPS};
use crate::nn::load_tensors;
use crate::tokenize::{Tokenizer, TokenizerKind};
use crate::{Error, Result};
use candle_core::{DType, Device, Tensor};
use serde_json::Value as Json;
use std::collections::HashMap;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A GPT model folder's weights (f32, in memory) and GGUF metadata.
pub struct GptSource {
    dir: PathBuf,
    metadata: Metadata,
    tensors: Vec<SourceTensor>,
    /// Each tensor's values (`output` shares `token_embd`'s).
    data: Vec<Arc<[f32]>>,
}

impl GptSource {
    /// Whether `dir` is meant as a GPT model folder: it has a `config.json`
    /// whose `model_type` is `gpt2` or absent (or that does not parse, so
    /// that [`GptSource::open`] names the fault).
    pub fn is_gpt_folder(dir: &Path) -> bool {
        let Ok(text) = std::fs::read_to_string(dir.join("config.json")) else {
            return false;
        };
        serde_json::from_str::<Json>(&text).map_or(true, |v| {
            v["model_type"].as_str().is_none_or(|t| t == "gpt2")
        })
    }

    /// Reads the model folder `dir`: `config.json`, `model.safetensors` and
    /// its tokenizer (`tokenizer.json`, or `vocab.json` + `merges.txt`).
    pub fn open(dir: &Path) -> Result<Self> {
        let config = GptConfig::from_hf_json(&dir.join("config.json"))?;
        let tokenizer = Tokenizer::load_model_dir(dir)?;
        let tokenizer_path = if dir.join("tokenizer.json").exists() {
            dir.join("tokenizer.json")
        } else {
            dir.join("vocab.json")
        };
        let vocab = vocabulary(&tokenizer, config.vocab_size)
            .map_err(|e| Error::bad_file(&tokenizer_path, e.to_string()))?;
        let name = folder_name(dir).unwrap_or_else(|| "seer-gpt".into());
        let metadata = metadata(&config, &name, vocab, tokenizer.end_of_text());
        let (tensors, data) = weights(&config, &dir.join("model.safetensors"))?;
        Ok(Self {
            dir: dir.to_path_buf(),
            metadata,
            tensors,
            data,
        })
    }
}

impl TensorSource for GptSource {
    fn path(&self) -> &Path {
        &self.dir
    }

    fn metadata(&self) -> &Metadata {
        &self.metadata
    }

    fn tensors(&self) -> &[SourceTensor] {
        &self.tensors
    }

    fn read_rows(&self, index: usize, rows: Range<usize>, out: &mut [f32]) -> Result<()> {
        let len = self.tensors[index].dims[0] as usize;
        let src = self.data[index]
            .get(rows.start * len..rows.end * len)
            .ok_or_else(|| Error::Invalid(format!("rows {rows:?} lie outside the tensor")))?;
        out.copy_from_slice(src);
        Ok(())
    }

    fn stored_bytes(&self, _index: usize) -> Option<&[u8]> {
        None
    }
}

/// `tokenizer` as llama.cpp's `gpt2` tokenizer for a model of `vocab_size`
/// tokens (ids the tokenizer lacks become unused `[PADn]` tokens, as
/// convert_hf_to_gguf.py writes them).
fn vocabulary(tokenizer: &Tokenizer, vocab_size: usize) -> Result<Vocabulary> {
    if tokenizer.kind() == TokenizerKind::Char {
        return Err(Error::Invalid(
            "a character-level tokenizer cannot be written to GGUF: llama.cpp's tokenizers \
             (GPT-2's byte-level BPE, SentencePiece) have no equivalent. Train the model on \
             `seer prepare --tokenizer bpe` data to run it in llama.cpp"
                .into(),
        ));
    }
    let size = tokenizer.vocab_size();
    if size > vocab_size {
        return Err(Error::Invalid(format!(
            "the tokenizer has {size} tokens, more than the model's vocab_size {vocab_size}"
        )));
    }
    Vocabulary::byte_level(&tokenizer_json(tokenizer)?, vocab_size)
}

fn metadata(
    config: &GptConfig,
    name: &str,
    vocab: Vocabulary,
    end_of_text: Option<u32>,
) -> Metadata {
    let u32_of = |n: usize| Value::U32(n as u32);
    let mut entries = vec![
        ("general.architecture", Value::String("gpt2".into())),
        ("general.type", Value::String("model".into())),
        ("general.name", Value::String(name.into())),
        ("gpt2.block_count", u32_of(config.n_layer)),
        ("gpt2.context_length", u32_of(config.block_size)),
        ("gpt2.embedding_length", u32_of(config.n_embd)),
        ("gpt2.feed_forward_length", u32_of(4 * config.n_embd)),
        ("gpt2.attention.head_count", u32_of(config.n_head)),
        (
            "gpt2.attention.layer_norm_epsilon",
            Value::F32(LAYER_NORM_EPS as f32),
        ),
    ];
    entries.extend(vocab.entries());
    if let Some(id) = end_of_text {
        entries.push(("tokenizer.ggml.bos_token_id", Value::U32(id)));
        entries.push(("tokenizer.ggml.eos_token_id", Value::U32(id)));
    }
    entries.push(("tokenizer.ggml.add_bos_token", Value::Bool(false)));
    Metadata::new(
        entries
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect(),
    )
}

/// GGUF tensors and their values, in order.
type Tensors = (Vec<SourceTensor>, Vec<Arc<[f32]>>);

/// The GGUF tensors of the checkpoint at `path`, as f32.
fn weights(config: &GptConfig, path: &Path) -> Result<Tensors> {
    let (loaded, _) = load_tensors(path, &Device::Cpu)?;
    let named: HashMap<&str, &Tensor> = loaded
        .iter()
        .map(|(k, t)| (k.strip_prefix("transformer.").unwrap_or(k), t))
        .collect();
    let (c, v, ctx) = (config.n_embd, config.vocab_size, config.block_size);
    let mut tensors = Vec::new();
    let mut data: Vec<Arc<[f32]>> = Vec::new();
    // `hf` of shape `shape` (or zeros, for a bias the model was trained
    // without) as GGUF tensor `name`, transposed from `[in, out]` if asked.
    let mut add = |name: String, hf: String, shape: &[usize], transpose: bool| -> Result<()> {
        let values = match named.get(hf.as_str()) {
            Some(t) => {
                if t.dims() != shape {
                    return Err(Error::bad_file(
                        path,
                        format!(
                            "tensor '{hf}' has shape {:?}; config.json implies {shape:?}",
                            t.dims()
                        ),
                    ));
                }
                let t = t.to_dtype(DType::F32)?;
                let t = if transpose { t.t()?.contiguous()? } else { t };
                t.flatten_all()?.to_vec1::<f32>()?
            }
            None if hf.ends_with(".bias") && !config.bias => vec![0.0; shape.iter().product()],
            None => {
                return Err(Error::bad_file(path, format!("has no tensor '{hf}'")));
            }
        };
        // GGML dims: the row length first.
        let mut dims: Vec<u64> = shape.iter().rev().map(|&d| d as u64).collect();
        if transpose {
            dims.reverse();
        }
        tensors.push(SourceTensor {
            name,
            dims,
            ty: GgmlType::F32,
        });
        data.push(Arc::from(values));
        Ok(())
    };
    add(
        "token_embd.weight".into(),
        "wte.weight".into(),
        &[v, c],
        false,
    )?;
    add(
        "position_embd.weight".into(),
        "wpe.weight".into(),
        &[ctx, c],
        false,
    )?;
    for i in 0..config.n_layer {
        let blk = |s: &str| format!("blk.{i}.{s}");
        let h = |s: &str| format!("h.{i}.{s}");
        for (gguf, hf, shape, transpose) in [
            ("attn_norm.weight", "ln_1.weight", vec![c], false),
            ("attn_norm.bias", "ln_1.bias", vec![c], false),
            (
                "attn_qkv.weight",
                "attn.c_attn.weight",
                vec![c, 3 * c],
                true,
            ),
            ("attn_qkv.bias", "attn.c_attn.bias", vec![3 * c], false),
            ("attn_output.weight", "attn.c_proj.weight", vec![c, c], true),
            ("attn_output.bias", "attn.c_proj.bias", vec![c], false),
            ("ffn_norm.weight", "ln_2.weight", vec![c], false),
            ("ffn_norm.bias", "ln_2.bias", vec![c], false),
            ("ffn_up.weight", "mlp.c_fc.weight", vec![c, 4 * c], true),
            ("ffn_up.bias", "mlp.c_fc.bias", vec![4 * c], false),
            ("ffn_down.weight", "mlp.c_proj.weight", vec![4 * c, c], true),
            ("ffn_down.bias", "mlp.c_proj.bias", vec![c], false),
        ] {
            add(blk(gguf), h(hf), &shape, transpose)?;
        }
    }
    add(
        "output_norm.weight".into(),
        "ln_f.weight".into(),
        &[c],
        false,
    )?;
    add("output_norm.bias".into(), "ln_f.bias".into(), &[c], false)?;
    // GPT-2's output layer is its token embedding, written twice as
    // convert_hf_to_gguf.py does.
    tensors.push(SourceTensor {
        name: "output.weight".into(),
        ..tensors[0].clone()
    });
    data.push(data[0].clone());
    Ok((tensors, data))
}
