//! Writing models as GGUF files in a chosen tensor type (`seer quantize`):
//! a GGUF file requantized, a Hugging Face Llama or Gemma 3 folder
//! converted as llama.cpp's `convert_hf_to_gguf.py` converts it, or a
//! seer/GPT-2 checkpoint converted to llama.cpp's `gpt2` architecture.
//!
//! A [`TensorSource`] says what the output holds (metadata, tensor names and
//! shapes in GGML order) and hands out any tensor's rows as f32; [`plan`]
//! picks each tensor's type; [`write_gguf`] streams the tensors one at a
//! time, rows quantized in parallel, through the [`GgufWriter`].
//!
//! Which tensors are quantized follows llama-quantize (`llama-quant.cpp`):
//! weights of two or more dimensions, except norms, position embeddings,
//! token types and MoE router inputs, which keep their stored type. Every
//! quantized tensor gets the target type, as `llama-quantize --pure` does
//! (no K-quant mixtures; `token_embd` and `output` included), unless its
//! rows are not whole blocks of it: then llama.cpp's fallback (q4_K → q5_0)
//! or, where that does not fit either, f16.

mod gguf_source;
mod gpt2;
mod hf;
mod vocab;

pub use gguf_source::GgufSource;
pub use gpt2::GptSource;
pub use hf::HfSource;

use crate::formats::{GgufWriter, Metadata, TensorInfo, Value};
use crate::kernels::quant::{can_quantize, dequantize_row, quantize_row, supported, GgmlType};
use crate::{Error, Result};
use rayon::prelude::*;
use std::ops::Range;
use std::path::Path;

/// One tensor a source holds.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceTensor {
    /// Its GGUF name (`blk.0.attn_q.weight`).
    pub name: String,
    /// GGML dimensions: `dims[0]` is the row length.
    pub dims: Vec<u64>,
    /// The type it is stored in.
    pub ty: GgmlType,
}

impl SourceTensor {
    /// The row length and the number of rows.
    pub fn row_len_and_rows(&self) -> (usize, usize) {
        let len = self.dims[0] as usize;
        let elements: u64 = self.dims.iter().product();
        (len, (elements / self.dims[0]) as usize)
    }
}

/// Where the tensors of a GGUF file to be written come from.
pub trait TensorSource: Sync {
    /// The source's path, for messages.
    fn path(&self) -> &Path;

    /// The output's metadata (`general.file_type` and
    /// `general.quantization_version` are set by [`write_gguf`]).
    fn metadata(&self) -> &Metadata;

    /// The tensors, in the order they are written.
    fn tensors(&self) -> &[SourceTensor];

    /// Rows `rows` of tensor `index` as f32, one after another, into `out`
    /// (`rows.len()` times the row length).
    fn read_rows(&self, index: usize, rows: Range<usize>, out: &mut [f32]) -> Result<()>;

    /// Tensor `index`'s bytes in its stored type, where the source holds
    /// them (they are copied unchanged when the plan keeps that type).
    fn stored_bytes(&self, index: usize) -> Option<&[u8]>;
}

/// The types `seer quantize --type` writes, with llama.cpp's names.
pub const TARGETS: [GgmlType; 8] = [
    GgmlType::F32,
    GgmlType::F16,
    GgmlType::BF16,
    GgmlType::Q8_0,
    GgmlType::Q5_0,
    GgmlType::Q4_1,
    GgmlType::Q4_0,
    GgmlType::Q4K,
];

/// The target type named `name` (`q8_0`, `Q4_K`, `f16`, ... any case).
pub fn parse_target(name: &str) -> Result<GgmlType> {
    TARGETS
        .into_iter()
        .find(|t| t.name().eq_ignore_ascii_case(name))
        .ok_or_else(|| {
            let names: Vec<&str> = TARGETS.iter().map(|t| t.name()).collect();
            Error::Invalid(format!("--type {name}: seer writes {}", names.join(", ")))
        })
}

/// llama.cpp's `general.file_type` (`LLAMA_FTYPE_*`) for a file of mostly
/// `ty` tensors (q4_K: `MOSTLY_Q4_K_S`, the pure one).
pub fn file_type(ty: GgmlType) -> Option<u32> {
    Some(match ty {
        GgmlType::F32 => 0,
        GgmlType::F16 => 1,
        GgmlType::Q4_0 => 2,
        GgmlType::Q4_1 => 3,
        GgmlType::Q8_0 => 7,
        GgmlType::Q5_0 => 8,
        GgmlType::Q5_1 => 9,
        GgmlType::Q4K => 14,
        GgmlType::Q6K => 18,
        GgmlType::BF16 => 32,
        _ => return None,
    })
}

/// The quantization version llama.cpp writes (`GGML_QNT_VERSION`).
pub const QUANTIZATION_VERSION: u32 = 2;

/// What happens to one tensor.
#[derive(Debug, Clone, PartialEq)]
pub struct Planned {
    /// The tensor's name.
    pub name: String,
    /// Its GGML dimensions.
    pub dims: Vec<u64>,
    /// The type it is stored in.
    pub from: GgmlType,
    /// The type it is written in.
    pub to: GgmlType,
    /// Why `to` is not the target type, for a weight that could not take it.
    pub note: Option<String>,
}

impl Planned {
    /// Whether the stored bytes are written unchanged.
    pub fn copied(&self) -> bool {
        self.from == self.to
    }
}

/// Whether llama-quantize quantizes a tensor (`llama-quant.cpp`): weights
/// of two or more dimensions that are not norms, position embeddings,
/// token types, MoE router inputs or a few small special matrices.
pub fn is_quantized(name: &str, dims: &[u64]) -> bool {
    const KEPT: [&str; 4] = [
        "_norm.weight",
        "ffn_gate_inp.weight",
        "ssm_conv1d.weight",
        "attn_rel_b.weight",
    ];
    name.ends_with("weight")
        && dims.len() >= 2
        && !KEPT.iter().any(|k| name.contains(k))
        && name != "position_embd.weight"
        && name != "token_types.weight"
}

/// The type each tensor is written in for target `target`.
pub fn plan(tensors: &[SourceTensor], target: GgmlType) -> Vec<Planned> {
    tensors
        .iter()
        .map(|t| {
            let (to, note) = if is_quantized(&t.name, &t.dims) {
                choose(t.dims[0], target)
            } else {
                (t.ty, None)
            };
            Planned {
                name: t.name.clone(),
                dims: t.dims.clone(),
                from: t.ty,
                to,
                note,
            }
        })
        .collect()
}

/// `target`, or llama.cpp's fallback when rows of `row_len` are not whole
/// blocks of it.
fn choose(row_len: u64, target: GgmlType) -> (GgmlType, Option<String>) {
    let fits = |ty: GgmlType| row_len.is_multiple_of(ty.block_len() as u64);
    if fits(target) {
        return (target, None);
    }
    let fallback = [GgmlType::Q5_0, GgmlType::F16]
        .into_iter()
        .filter(|&ty| target == GgmlType::Q4K || ty == GgmlType::F16)
        .find(|&ty| fits(ty))
        .unwrap_or(GgmlType::F32);
    let note = format!(
        "rows of {row_len} are not whole {target} blocks of {}: {fallback} instead",
        target.block_len()
    );
    (fallback, Some(note))
}

/// Writes `source` as a GGUF file at `out` with its weights in `target`
/// (see [`plan`]), atomically; `on_tensor` hears of each tensor before it
/// is written. Returns the plan that was carried out.
pub fn write_gguf(
    source: &dyn TensorSource,
    target: GgmlType,
    out: &Path,
    mut on_tensor: impl FnMut(usize, &Planned),
) -> Result<Vec<Planned>> {
    let ftype = file_type(target)
        .filter(|_| can_quantize(target))
        .ok_or_else(|| Error::Invalid(format!("seer cannot write {target} files")))?;
    let planned = plan(source.tensors(), target);
    for (i, p) in planned.iter().enumerate() {
        let readable = if p.copied() {
            source.stored_bytes(i).is_some() || supported(p.from)
        } else {
            supported(p.from)
        };
        if !readable {
            return Err(Error::bad_file(
                source.path(),
                format!(
                    "tensor '{}' is {}, which seer cannot read (it reads f32, f16, bf16, q8_0, q4_0, q4_1, q5_0, q4_K, q5_K, q6_K)",
                    p.name, p.from
                ),
            ));
        }
    }
    let mut metadata = source.metadata().clone();
    metadata.set("general.file_type", Value::U32(ftype));
    metadata.set(
        "general.quantization_version",
        Value::U32(QUANTIZATION_VERSION),
    );
    let mut writer = GgufWriter::new(metadata)?;
    for p in &planned {
        writer.add_tensor(&p.name, &p.dims, p.to)?;
    }
    writer.write(out, |i, info, sink| {
        on_tensor(i, &planned[i]);
        match source.stored_bytes(i).filter(|_| planned[i].copied()) {
            Some(bytes) => sink.write_all(bytes).map_err(Error::io(out)),
            None => convert(source, i, info, sink, out),
        }
    })?;
    Ok(planned)
}

/// Writes tensor `index` of `source` as `info.ty`, a slab of rows at a time,
/// the rows of a slab read and quantized in parallel.
fn convert(
    source: &dyn TensorSource,
    index: usize,
    info: &TensorInfo,
    sink: &mut dyn std::io::Write,
    out: &Path,
) -> Result<()> {
    let (len, rows) = source.tensors()[index].row_len_and_rows();
    let row_bytes = info.ty.row_bytes(len as u64).expect("planned whole blocks") as usize;
    // About 16 MiB of f32 per slab, in groups of rows per task.
    let slab = ((4 << 20) / len).clamp(1, rows.max(1));
    let group = (65_536 / len).clamp(1, slab);
    let mut bytes = vec![0u8; slab * row_bytes];
    for start in (0..rows).step_by(slab) {
        let n = slab.min(rows - start);
        let bytes = &mut bytes[..n * row_bytes];
        bytes
            .par_chunks_mut(group * row_bytes)
            .enumerate()
            .try_for_each(|(g, chunk)| -> Result<()> {
                let first = start + g * group;
                let count = chunk.len() / row_bytes;
                let mut x = vec![0f32; count * len];
                source.read_rows(index, first..first + count, &mut x)?;
                for (row, q) in x.chunks_exact(len).zip(chunk.chunks_exact_mut(row_bytes)) {
                    quantize_row(info.ty, row, q)?;
                }
                Ok(())
            })?;
        sink.write_all(bytes).map_err(Error::io(out))?;
    }
    Ok(())
}

/// Reads rows `rows` of a tensor stored as `ty` in `bytes` (rows of `len`)
/// into `out` as f32: the [`TensorSource::read_rows`] of sources that hold
/// GGML bytes.
pub fn dequantize_rows(
    ty: GgmlType,
    bytes: &[u8],
    len: usize,
    rows: Range<usize>,
    out: &mut [f32],
) -> Result<()> {
    let row_bytes = ty
        .row_bytes(len as u64)
        .ok_or_else(|| Error::Invalid(format!("rows of {len} are not whole {ty} blocks")))?
        as usize;
    let src = bytes
        .get(rows.start * row_bytes..rows.end * row_bytes)
        .ok_or_else(|| Error::Invalid(format!("rows {rows:?} lie outside the tensor")))?;
    for (b, o) in src.chunks_exact(row_bytes).zip(out.chunks_exact_mut(len)) {
        dequantize_row(ty, b, o)?;
    }
    Ok(())
}

/// The name of the folder `dir` (after resolving `.` and links), for `general.name`.
fn folder_name(dir: &Path) -> Option<String> {
    let dir = dir.canonicalize().ok()?;
    Some(dir.file_name()?.to_string_lossy().into_owned())
}

/// `tokenizer` in the `tokenizers` library's JSON form.
fn tokenizer_json(tokenizer: &crate::tokenize::Tokenizer) -> Result<serde_json::Value> {
    let text = tokenizer
        .inner()
        .to_string(false)
        .map_err(|e| Error::Tokenizer(e.to_string()))?;
    serde_json::from_str(&text).map_err(|e| Error::Tokenizer(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(name: &str, dims: &[u64], ty: GgmlType) -> SourceTensor {
        SourceTensor {
            name: name.into(),
            dims: dims.to_vec(),
            ty,
        }
    }

    #[test]
    fn the_plan_follows_llama_quantize() {
        let tensors = [
            t("token_embd.weight", &[256, 300], GgmlType::F32),
            t("position_embd.weight", &[256, 64], GgmlType::F32),
            t("blk.0.attn_norm.weight", &[256], GgmlType::F32),
            t("blk.0.attn_qkv.bias", &[768], GgmlType::F32),
            t("blk.0.ffn_down.weight", &[640, 256], GgmlType::Q8_0),
            t("blk.0.ffn_up.weight", &[48, 256], GgmlType::F32),
            t("blk.0.ffn_gate.weight", &[256, 640], GgmlType::Q4K),
        ];
        let p = plan(&tensors, GgmlType::Q4K);
        let to: Vec<GgmlType> = p.iter().map(|p| p.to).collect();
        use GgmlType::*;
        assert_eq!(to, [Q4K, F32, F32, F32, Q5_0, F16, Q4K]);
        assert!(p[4].note.as_ref().unwrap().contains("q5_0 instead"));
        assert!(p[0].note.is_none() && !p[0].copied() && p[6].copied());
        let to: Vec<GgmlType> = plan(&tensors, Q4_0).iter().map(|p| p.to).collect();
        assert_eq!(to, [Q4_0, F32, F32, F32, Q4_0, F16, Q4_0]);
        assert_eq!(plan(&tensors[5..6], Q8_0)[0].to, F16);
        assert_eq!(plan(&[t("w.weight", &[3, 2], F32)], Q8_0)[0].to, F16);
        assert_eq!(parse_target("Q4_K").unwrap(), Q4K);
        assert!(parse_target("q3_k")
            .unwrap_err()
            .to_string()
            .contains("q8_0"));
    }
}
