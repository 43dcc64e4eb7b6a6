//! A Hugging Face folder of a Llama-family (`LlamaForCausalLM`) or Gemma 3
//! (`Gemma3ForCausalLM`) model as the source of a GGUF file, laid out as
//! llama.cpp's `convert_hf_to_gguf.py` writes it (`LlamaModel`,
//! `Gemma3Model`):
//!
//! - metadata `general.{architecture, type, name}` and, for `llama`,
//!   `llama.{context_length, embedding_length, block_count,
//!   feed_forward_length, attention.head_count, attention.head_count_kv,
//!   rope.freq_base, attention.layer_norm_rms_epsilon, vocab_size,
//!   rope.dimension_count}` (plus `attention.key_length`/`value_length`
//!   where heads are not `embedding_length / head_count` wide); for
//!   `gemma3`, `gemma3.{context_length, embedding_length, block_count,
//!   feed_forward_length, attention.head_count,
//!   attention.layer_norm_rms_epsilon, attention.key_length,
//!   attention.value_length, rope.freq_base, attention.sliding_window,
//!   attention.head_count_kv}`;
//! - the tensors as the folder is read for inference (`model::Llama`, which
//!   maps transformers' names and checks every shape), under llama.cpp's
//!   names: Llama's q/k rows permuted as `LlamaModel.permute` does, for
//!   GGML's RoPE on adjacent pairs (GGUF row `h·d + 2i + s` is the folder's
//!   row `h·d + s·d/2 + i`); Gemma 3's norms as `1 + w` and its q/k as they
//!   are; no `output` where the embeddings are tied. Norms stay f32;
//! - the tokenizer (see `vocab`) with the folder's special tokens, whether
//!   BOS/EOS are added, and its chat template (`HfTokenizer`).
//!
//! The written file must describe the same model: its metadata, read back
//! as seer reads GGUF files, must give the folder's config (a Gemma 3 whose
//! `query_pre_attn_scalar` is not its head width, for one, has no GGUF
//! form), and its tokenizer must encode a set of probe texts (digits,
//! whitespace runs, accents, emoji, CJK) to the folder's ids.

use super::vocab::Vocabulary;
use super::{folder_name, tokenizer_json, SourceTensor, TensorSource};
use crate::formats::{GgufTokenizer, HfTokenizer, Metadata, Value};
use crate::kernels::quant::QMatrix;
use crate::model::{Family, Llama, LlamaConfig, RopeStyle};
use crate::tokenize::Tokenizer;
use crate::{Error, Result};
use std::ops::Range;
use std::path::{Path, PathBuf};

/// Texts whose ids the written tokenizer must share with the folder's:
/// convert_hf_to_gguf.py's pre-tokenizer probe, and a few more.
const PROBES: [&str; 5] = [
    "\n \n\n \n\n\n \t \t\t \t\n  \n   \n    \n     \n🚀 (normal) 😶\u{200d}🌫️ (multiple emojis \
     concatenated) ✅ 🦙🦙 3 33 333 3333 33333 333333 3333333 33333333 3.3 3..3 3...3 \
     កាន់តែពិសេសអាច😁 ?我想在apple工作1314151天～ ------======= нещо на Български \
     ''''''```````\"\"\"\"......!!!!!!?????? I've been 'told he's there, 'RE you sure? \
     'M not sure I'll make it, 'D you like some tea? We'Ve a'lL",
    "ROMEO: What, 12 men?\n  The sea, and then",
    "Ça va? Naïve café, Ωμέγα, straße ẞ, résumé",
    "emoji 👍🏽 🇫🇷 and 日本語のテキスト, 中文, 한국어",
    "  two  spaces\tand a tab, trailing space ",
];

/// A Hugging Face Llama or Gemma 3 folder's weights (mapped), as GGUF
/// tensors, and the GGUF metadata.
pub struct HfSource {
    dir: PathBuf,
    metadata: Metadata,
    tensors: Vec<SourceTensor>,
    matrices: Vec<QMatrix>,
    /// The head width of tensors whose rows are permuted (Llama's q and k).
    permuted: Vec<Option<usize>>,
}

impl HfSource {
    /// Reads the model folder `dir`: `config.json`, the safetensors
    /// weights and the tokenizer files, as `seer chat -m DIR` reads them.
    pub fn open(dir: &Path) -> Result<Self> {
        let model = Llama::open_hf_dir(dir, None)?;
        let config = model.config().clone();
        let folder_tokenizer = HfTokenizer::from_dir(dir, config.vocab_size)?;
        let tokenizer_path = dir.join("tokenizer.json");
        let in_tokenizer = |e: Error| Error::bad_file(&tokenizer_path, e.to_string());
        let vocab = tokenizer_json(folder_tokenizer.tokenizer())
            .and_then(|json| Vocabulary::new(&json, config.vocab_size))
            .map_err(in_tokenizer)?;
        let name = folder_name(dir).unwrap_or_else(|| "model".into());
        let mut entries = model_entries(&config, &name);
        entries.extend(vocab.entries().into_iter().map(|(k, v)| (k.to_string(), v)));
        entries.extend(special_entries(&folder_tokenizer));
        let metadata = Metadata::new(entries);
        check_config(&config, &metadata)
            .map_err(|e| Error::bad_file(dir.join("config.json"), e.to_string()))?;
        check_tokenizer(&metadata, folder_tokenizer.tokenizer()).map_err(in_tokenizer)?;

        // llama.cpp's `llama` pairs adjacent q/k outputs in RoPE; a model
        // that pairs halves is permuted into that order.
        let permute = config.family == Family::Llama && config.rope_style == RopeStyle::Halves;
        let mut tensors = Vec::new();
        let mut matrices = Vec::new();
        let mut permuted = Vec::new();
        for (name, dims, matrix) in model.gguf_tensors()? {
            let rotated = name.ends_with("attn_q.weight") || name.ends_with("attn_k.weight");
            permuted.push((permute && rotated).then_some(config.head_dim));
            tensors.push(SourceTensor {
                name,
                dims,
                ty: matrix.ty(),
            });
            matrices.push(matrix);
        }
        Ok(Self {
            dir: dir.to_path_buf(),
            metadata,
            tensors,
            matrices,
            permuted,
        })
    }
}

impl TensorSource for HfSource {
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
        let matrix = &self.matrices[index];
        let len = matrix.cols();
        if rows.end > matrix.rows() || out.len() != rows.len() * len {
            return Err(Error::Invalid(format!(
                "rows {rows:?} lie outside tensor '{}'",
                self.tensors[index].name
            )));
        }
        let head_dim = self.permuted[index];
        for (r, row) in rows.zip(out.chunks_exact_mut(len)) {
            matrix.dequantize_row(head_dim.map_or(r, |d| unpermuted_row(r, d)), row)?;
        }
        Ok(())
    }

    /// None: every tensor goes through f32, which F32, F16 and BF16
    /// weights make exactly (and q/k rows must be reordered anyway).
    fn stored_bytes(&self, _index: usize) -> Option<&[u8]> {
        None
    }
}

/// The folder's row that `LlamaModel.permute` puts at GGUF row `row` of a
/// q/k matrix with heads `head_dim` wide: it reshapes each head's rows
/// `(2, d/2)` and swaps the two axes.
fn unpermuted_row(row: usize, head_dim: usize) -> usize {
    let (head, within) = (row / head_dim, row % head_dim);
    head * head_dim + (within % 2) * (head_dim / 2) + within / 2
}

/// The architecture's metadata for `config`, as convert_hf_to_gguf.py
/// writes it.
fn model_entries(config: &LlamaConfig, name: &str) -> Vec<(String, Value)> {
    let arch = match config.family {
        Family::Llama => "llama",
        Family::Gemma3 => "gemma3",
    };
    let u32_of = |n: usize| Value::U32(n as u32);
    let mut entries = vec![
        ("general.architecture".into(), Value::String(arch.into())),
        ("general.type".into(), Value::String("model".into())),
        ("general.name".into(), Value::String(name.into())),
    ];
    let mut add = |key: &str, value: Value| entries.push((format!("{arch}.{key}"), value));
    add("context_length", u32_of(config.context_length));
    add("embedding_length", u32_of(config.n_embd));
    add("block_count", u32_of(config.n_layer));
    add("feed_forward_length", u32_of(config.n_ff));
    add("attention.head_count", u32_of(config.n_head));
    add("attention.head_count_kv", u32_of(config.n_kv_head));
    add("rope.freq_base", Value::F32(config.rope_theta));
    add(
        "attention.layer_norm_rms_epsilon",
        Value::F32(config.rms_eps),
    );
    let gemma = config.family == Family::Gemma3;
    if gemma || config.head_dim * config.n_head != config.n_embd {
        add("attention.key_length", u32_of(config.head_dim));
        add("attention.value_length", u32_of(config.head_dim));
    }
    match config.sliding_window {
        Some(window) if gemma => add("attention.sliding_window", u32_of(window)),
        _ => {
            add("vocab_size", u32_of(config.vocab_size));
            add("rope.dimension_count", u32_of(config.head_dim));
        }
    }
    entries
}

/// The special tokens, what prompts add, and the chat template.
fn special_entries(folder: &HfTokenizer) -> Vec<(String, Value)> {
    let special = folder.special();
    let ids = [
        ("bos_token_id", special.bos),
        ("eos_token_id", special.eos),
        ("unknown_token_id", special.unk),
        ("padding_token_id", special.pad),
    ];
    let mut entries: Vec<(String, Value)> = ids
        .into_iter()
        .filter_map(|(key, id)| Some((format!("tokenizer.ggml.{key}"), Value::U32(id?))))
        .collect();
    entries.push((
        "tokenizer.ggml.add_bos_token".into(),
        Value::Bool(special.add_bos),
    ));
    entries.push((
        "tokenizer.ggml.add_eos_token".into(),
        Value::Bool(special.add_eos),
    ));
    if let Some(template) = folder.chat_template_source() {
        entries.push((
            "tokenizer.chat_template".into(),
            Value::String(template.into()),
        ));
    }
    entries
}

/// Refuses a model whose GGUF metadata would describe another one: what
/// llama.cpp fixes for the architecture (Gemma 3's attention scale
/// `1/√key_length`, a global layer every 6, RoPE base 10000 on sliding
/// layers) must be what `config` says.
fn check_config(config: &LlamaConfig, metadata: &Metadata) -> Result<()> {
    let written = LlamaConfig::from_gguf(metadata)?;
    let wanted = LlamaConfig {
        rope_style: written.rope_style,
        ..config.clone()
    };
    if written == wanted {
        return Ok(());
    }
    // The fields llama.cpp fixes for an architecture, as config.json names them.
    let fields = [
        (
            "the attention scale (1/√query_pre_attn_scalar; llama.cpp's is 1/√key_length)",
            wanted.attention_scale.to_string(),
            written.attention_scale.to_string(),
        ),
        (
            "the RoPE base of sliding-window layers",
            wanted.rope_local_theta.to_string(),
            written.rope_local_theta.to_string(),
        ),
        (
            "the period of global layers (layer_types)",
            format!("{:?}", wanted.global_every),
            format!("{:?}", written.global_every),
        ),
    ];
    let differences: Vec<String> = fields
        .iter()
        .filter(|(_, ours, theirs)| ours != theirs)
        .map(|(what, ours, theirs)| format!("{what} is {ours}, where llama.cpp takes {theirs}"))
        .collect();
    let arch = metadata.string("general.architecture")?;
    Err(Error::Invalid(if differences.is_empty() {
        format!("describes a model that no '{arch}' GGUF file holds: {wanted:?} would read back as {written:?}")
    } else {
        format!(
            "describes a model that no '{arch}' GGUF file holds: {}",
            differences.join("; ")
        )
    }))
}

/// Refuses a vocabulary whose GGUF form encodes a probe text otherwise
/// than the folder's tokenizer does.
fn check_tokenizer(metadata: &Metadata, folder: &Tokenizer) -> Result<()> {
    let written = GgufTokenizer::from_metadata(metadata)?;
    for text in PROBES {
        let (want, got) = (folder.encode(text)?, written.encode(text, false)?);
        let Some(at) = (0..want.len().max(got.len())).find(|&i| want.get(i) != got.get(i)) else {
            continue;
        };
        let around = |ids: &[u32]| ids[at.min(ids.len())..(at + 6).min(ids.len())].to_vec();
        return Err(Error::Invalid(format!(
            "written to GGUF (tokenizer.ggml.model '{}', pre '{}'), it would tokenize \
             {:?} otherwise: ids {:?} from token {at} on, where the folder's tokenizer gives {:?}",
            metadata.string("tokenizer.ggml.model")?,
            metadata.string("tokenizer.ggml.pre")?,
            folder.decode(&around(&want))?,
            around(&got),
            around(&want),
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_are_permuted_as_llama_model_permute_does() {
        // One head of 8: HF rows 0..4 are the first halves, 4..8 the
        // second; GGUF interleaves them. Two heads repeat the pattern.
        let order: Vec<usize> = (0..16).map(|r| unpermuted_row(r, 8)).collect();
        assert_eq!(
            order,
            [0, 4, 1, 5, 2, 6, 3, 7, 8, 12, 9, 13, 10, 14, 11, 15]
        );
    }
}
