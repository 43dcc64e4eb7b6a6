//! The GGUF reader (versions 2 and 3): header, metadata, tensor infos and the
//! memory-mapped tensor data, never copied.
//!
//! A GGUF file is untrusted input. Every count, length, dimension, type id,
//! offset and alignment is checked before it is used, so that a malformed
//! file ends in a one-line error naming the field, never a panic and never
//! an allocation larger than the file: counts are bounded by the bytes left
//! to read, element counts and byte sizes are multiplied with overflow
//! checks, tensors must lie inside the data section without overlapping, and
//! the alignment must be a power of two. (The checks follow llama.cpp's
//! `gguf.cpp` and the advisories it was hardened against.)

use super::{Metadata, Value};
use crate::kernels::quant::{GgmlType, WeightBytes};
use crate::{Error, Result};
use std::collections::HashSet;
use std::path::{Path, PathBuf};

/// The four bytes every GGUF file starts with.
pub const MAGIC: &[u8; 4] = b"GGUF";
/// The alignment of tensor data when `general.alignment` is absent.
pub const DEFAULT_ALIGNMENT: u64 = 32;
/// At most this many dimensions per tensor (GGML's limit).
pub const MAX_DIMS: u32 = 4;

/// One tensor's entry in the file.
#[derive(Debug, Clone, PartialEq)]
pub struct TensorInfo {
    /// Its name (`blk.0.attn_q.weight`).
    pub name: String,
    /// Its dimensions in GGML's order: `dims[0]` is the length of a row.
    pub dims: Vec<u64>,
    /// Its element type.
    pub ty: GgmlType,
    /// Where its data starts, from the start of the data section.
    pub offset: u64,
    /// How many bytes its data takes.
    pub size: u64,
}

impl TensorInfo {
    /// Number of elements.
    pub fn elements(&self) -> u64 {
        self.dims.iter().product()
    }

    /// The length of a row (`dims[0]`) and the number of rows (the product
    /// of the other dimensions).
    pub fn rows_and_cols(&self) -> (u64, u64) {
        let cols = self.dims.first().copied().unwrap_or(1);
        (self.elements() / cols.max(1), cols)
    }
}

/// An opened GGUF file.
pub struct Gguf {
    path: PathBuf,
    version: u32,
    metadata: Metadata,
    tensors: Vec<TensorInfo>,
    alignment: u64,
    data: WeightBytes,
}

impl std::fmt::Debug for Gguf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gguf")
            .field("path", &self.path)
            .field("version", &self.version)
            .field("metadata", &self.metadata.entries().len())
            .field("tensors", &self.tensors.len())
            .finish()
    }
}

impl Gguf {
    /// Opens and checks `path`, mapping it into memory.
    pub fn open(path: &Path) -> Result<Self> {
        let file = std::fs::File::open(path).map_err(Error::io(path))?;
        // SAFETY: the map is read-only. Like every reader of memory-mapped
        // model files (llama.cpp, candle, safetensors), seer assumes the file
        // is not truncated or rewritten while it is open.
        let map = unsafe { memmap2::Mmap::map(&file) }.map_err(Error::io(path))?;
        Self::parse(WeightBytes::mapped(map), path)
    }

    /// Checks and indexes the GGUF file held in `bytes`; `path` names it in errors.
    pub fn parse(bytes: WeightBytes, path: &Path) -> Result<Self> {
        let bad = |reason: String| Error::bad_file(path, reason);
        let mut reader = Reader {
            bytes: bytes.bytes(),
            at: 0,
        };
        let magic = reader.take(4, "the magic number").map_err(bad)?;
        if magic != MAGIC {
            return Err(bad(
                "not a GGUF file (it does not start with 'GGUF')".to_string()
            ));
        }
        let version = reader.u32("the version").map_err(bad)?;
        if !(2..=3).contains(&version) {
            return Err(bad(format!(
                "GGUF version {version} is not supported (seer reads versions 2 and 3)"
            )));
        }
        let tensor_count = reader.u64("the tensor count").map_err(bad)?;
        let metadata_count = reader.u64("the metadata count").map_err(bad)?;
        let metadata = read_metadata(&mut reader, metadata_count).map_err(bad)?;
        let alignment = match metadata.get("general.alignment") {
            None => DEFAULT_ALIGNMENT,
            Some(Value::U32(a)) if a.is_power_of_two() => u64::from(*a),
            Some(Value::U32(a)) => {
                return Err(bad(format!(
                    "metadata 'general.alignment' is {a}: it must be a power of two"
                )))
            }
            Some(other) => {
                return Err(bad(format!(
                    "metadata 'general.alignment' should be a u32, not {}",
                    other.type_name()
                )))
            }
        };
        let mut tensors = read_tensor_infos(&mut reader, tensor_count).map_err(bad)?;
        let data_start = reader.at.next_multiple_of(alignment as usize);
        if data_start > reader.bytes.len() && !tensors.is_empty() {
            return Err(bad(
                "the file ends before its tensor data starts (truncated?)".to_string(),
            ));
        }
        let data_len = reader.bytes.len().saturating_sub(data_start) as u64;
        check_tensor_placement(&mut tensors, alignment, data_len).map_err(bad)?;
        let data = bytes
            .slice(data_start.min(bytes.len())..bytes.len())
            .ok_or_else(|| bad("the tensor data lies outside the file".to_string()))?;
        // The metadata and tensor infos are copied: a mapped file's header
        // pages need not stay in memory.
        if let Some(header) = bytes.slice(0..data_start.min(bytes.len())) {
            header.release();
        }
        Ok(Self {
            path: path.to_path_buf(),
            version,
            metadata,
            tensors,
            alignment,
            data,
        })
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The GGUF version (2 or 3).
    pub fn version(&self) -> u32 {
        self.version
    }

    /// The metadata, in file order.
    pub fn metadata(&self) -> &Metadata {
        &self.metadata
    }

    /// Drops the metadata of the vocabulary (`tokenizer.ggml.*`: tokens,
    /// scores, types, merges), which a loaded tokenizer has copied: for a
    /// 262k-token vocabulary tens of megabytes that need not stay in memory
    /// while the weights load.
    pub fn forget_vocabulary(&mut self) {
        self.metadata.remove_prefixed("tokenizer.ggml.");
    }

    /// The tensors, in file order.
    pub fn tensors(&self) -> &[TensorInfo] {
        &self.tensors
    }

    /// The alignment of the tensor data.
    pub fn alignment(&self) -> u64 {
        self.alignment
    }

    /// The tensor called `name`, if there is one.
    pub fn tensor(&self, name: &str) -> Option<&TensorInfo> {
        self.tensors.iter().find(|t| t.name == name)
    }

    /// The tensor called `name`, or an error naming it and the file.
    pub fn require_tensor(&self, name: &str) -> Result<&TensorInfo> {
        self.tensor(name)
            .ok_or_else(|| Error::bad_file(&self.path, format!("has no tensor '{name}'")))
    }

    /// The bytes of `info`'s data (a view of the mapped file, no copy).
    pub fn tensor_bytes(&self, info: &TensorInfo) -> Result<WeightBytes> {
        let range = usize::try_from(info.offset)
            .ok()
            .zip(usize::try_from(info.size).ok())
            .and_then(|(start, size)| Some(start..start.checked_add(size)?));
        range
            .and_then(|range| self.data.slice(range))
            .ok_or_else(|| {
                Error::bad_file(
                    &self.path,
                    format!("tensor '{}' lies outside the tensor data", info.name),
                )
            })
    }

    /// `general.architecture` (`llama`, `gemma3`, ...).
    pub fn architecture(&self) -> Result<&str> {
        self.metadata
            .string("general.architecture")
            .map_err(|e| Error::bad_file(&self.path, e.to_string()))
    }
}

/// A cursor over the file's bytes; every read is bounds-checked and a
/// failure says what was being read.
struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn remaining(&self) -> usize {
        self.bytes.len() - self.at
    }

    fn take(&mut self, n: usize, what: &str) -> std::result::Result<&'a [u8], String> {
        if n > self.remaining() {
            return Err(format!(
                "the file ends while reading {what} at byte {} (truncated?)",
                self.at
            ));
        }
        let out = &self.bytes[self.at..self.at + n];
        self.at += n;
        Ok(out)
    }

    fn array<const N: usize>(&mut self, what: &str) -> std::result::Result<[u8; N], String> {
        let bytes = self.take(N, what)?;
        let mut out = [0; N];
        out.copy_from_slice(bytes);
        Ok(out)
    }

    fn u32(&mut self, what: &str) -> std::result::Result<u32, String> {
        self.array(what).map(u32::from_le_bytes)
    }

    fn u64(&mut self, what: &str) -> std::result::Result<u64, String> {
        self.array(what).map(u64::from_le_bytes)
    }

    /// A count of items of at least `min_item_bytes` each, refused when the
    /// rest of the file could not hold that many.
    fn count(&mut self, min_item_bytes: usize, what: &str) -> std::result::Result<usize, String> {
        let n = self.u64(what)?;
        self.bounded(n, min_item_bytes, what)
    }

    /// `n` items of at least `min_item_bytes` each, refused when the rest
    /// of the file could not hold that many.
    fn bounded(
        &self,
        n: u64,
        min_item_bytes: usize,
        what: &str,
    ) -> std::result::Result<usize, String> {
        let fits = usize::try_from(n)
            .ok()
            .and_then(|n| n.checked_mul(min_item_bytes.max(1)))
            .is_some_and(|bytes| bytes <= self.remaining());
        if !fits {
            return Err(format!(
                "{what} is {n}, more than the {} bytes left in the file can hold",
                self.remaining()
            ));
        }
        Ok(n as usize)
    }

    fn string(&mut self, what: &str) -> std::result::Result<String, String> {
        let len = self.count(1, &format!("the length of {what}"))?;
        let bytes = self.take(len, what)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| format!("{what} is not valid UTF-8"))
    }

    /// A value of GGUF type `ty` (arrays hold scalars or strings only).
    fn value(&mut self, ty: u32, what: &str, nested: bool) -> std::result::Result<Value, String> {
        Ok(match ty {
            0 => Value::U8(u8::from_le_bytes(self.array(what)?)),
            1 => Value::I8(i8::from_le_bytes(self.array(what)?)),
            2 => Value::U16(u16::from_le_bytes(self.array(what)?)),
            3 => Value::I16(i16::from_le_bytes(self.array(what)?)),
            4 => Value::U32(u32::from_le_bytes(self.array(what)?)),
            5 => Value::I32(i32::from_le_bytes(self.array(what)?)),
            6 => Value::F32(f32::from_le_bytes(self.array(what)?)),
            7 => match self.array::<1>(what)?[0] {
                0 => Value::Bool(false),
                1 => Value::Bool(true),
                b => return Err(format!("{what} is a bool with the byte {b} (not 0 or 1)")),
            },
            8 => Value::String(self.string(what)?),
            9 if nested => {
                return Err(format!(
                    "{what} is an array of arrays, which seer does not read"
                ))
            }
            9 => {
                let item_ty = self.u32(&format!("the item type of {what}"))?;
                let item_bytes = scalar_bytes(item_ty)
                    .ok_or_else(|| format!("{what} has the unknown item type {item_ty}"))?;
                let n = self.count(item_bytes, &format!("the length of {what}"))?;
                let mut items = Vec::with_capacity(n);
                for _ in 0..n {
                    items.push(self.value(item_ty, what, true)?);
                }
                Value::Array(items)
            }
            10 => Value::U64(u64::from_le_bytes(self.array(what)?)),
            11 => Value::I64(i64::from_le_bytes(self.array(what)?)),
            12 => Value::F64(f64::from_le_bytes(self.array(what)?)),
            other => return Err(format!("{what} has the unknown value type {other}")),
        })
    }
}

/// The fewest bytes a value of GGUF type `ty` takes (strings: their length
/// field; arrays: their type and length fields), or `None` for an unknown type.
fn scalar_bytes(ty: u32) -> Option<usize> {
    Some(match ty {
        0 | 1 | 7 => 1,
        2 | 3 => 2,
        4..=6 => 4,
        8 | 10..=12 => 8,
        9 => 12,
        _ => return None,
    })
}

fn read_metadata(reader: &mut Reader, count: u64) -> std::result::Result<Metadata, String> {
    // A key-value pair takes at least 8 (key length) + 4 (type) + 1 bytes.
    let count = reader.bounded(count, 13, "the metadata count")?;
    let mut entries = Vec::with_capacity(count);
    let mut seen = HashSet::with_capacity(count);
    for i in 0..count {
        let key = reader.string(&format!("metadata key {i}"))?;
        let ty = reader.u32(&format!("the type of metadata '{key}'"))?;
        let value = reader.value(ty, &format!("metadata '{key}'"), false)?;
        if !seen.insert(key.clone()) {
            return Err(format!("metadata '{key}' appears twice"));
        }
        entries.push((key, value));
    }
    Ok(Metadata::new(entries))
}

fn read_tensor_infos(
    reader: &mut Reader,
    count: u64,
) -> std::result::Result<Vec<TensorInfo>, String> {
    // A tensor info takes at least 8 (name length) + 4 (dims) + 4 (type) + 8 (offset) bytes.
    let count = reader.bounded(count, 24, "the tensor count")?;
    let mut tensors = Vec::with_capacity(count);
    let mut seen = HashSet::with_capacity(count);
    for i in 0..count {
        let name = reader.string(&format!("the name of tensor {i}"))?;
        let what = format!("tensor '{name}'");
        let n_dims = reader.u32(&format!("the dimension count of {what}"))?;
        if n_dims == 0 || n_dims > MAX_DIMS {
            return Err(format!(
                "{what} has {n_dims} dimensions (GGUF allows 1 to {MAX_DIMS})"
            ));
        }
        let mut dims = Vec::with_capacity(n_dims as usize);
        for d in 0..n_dims {
            let dim = reader.u64(&format!("dimension {d} of {what}"))?;
            if dim == 0 || dim > i64::MAX as u64 {
                return Err(format!("{what} has dimension {d} of size {dim}"));
            }
            dims.push(dim);
        }
        let type_id = reader.u32(&format!("the type of {what}"))?;
        let ty = GgmlType::from_id(type_id).map_err(|e| format!("{what}: {e}"))?;
        let offset = reader.u64(&format!("the offset of {what}"))?;
        let elements = dims
            .iter()
            .try_fold(1u64, |acc, &d| acc.checked_mul(d))
            .filter(|&n| n <= i64::MAX as u64)
            .ok_or_else(|| format!("{what}: the element count of {dims:?} overflows"))?;
        if dims[0] % ty.block_len() as u64 != 0 {
            return Err(format!(
                "{what}: its rows of {} elements are not whole {ty} blocks of {}",
                dims[0],
                ty.block_len()
            ));
        }
        let size = ty
            .row_bytes(elements)
            .ok_or_else(|| format!("{what}: its byte size overflows"))?;
        if !seen.insert(name.clone()) {
            return Err(format!("{what} appears twice"));
        }
        tensors.push(TensorInfo {
            name,
            dims,
            ty,
            offset,
            size,
        });
    }
    Ok(tensors)
}

/// Every tensor's data must start at an aligned offset and end inside the
/// data section, and no two may overlap.
fn check_tensor_placement(
    tensors: &mut [TensorInfo],
    alignment: u64,
    data_len: u64,
) -> std::result::Result<(), String> {
    for t in tensors.iter() {
        if t.offset % alignment != 0 {
            return Err(format!(
                "tensor '{}' starts at offset {}, not a multiple of the alignment {alignment}",
                t.name, t.offset
            ));
        }
        let end = t.offset.checked_add(t.size);
        if end.is_none_or(|end| end > data_len) {
            return Err(format!(
                "tensor '{}' ({} bytes at offset {}) runs past the end of the data ({data_len} bytes; truncated?)",
                t.name, t.size, t.offset
            ));
        }
    }
    let mut order: Vec<&TensorInfo> = tensors.iter().collect();
    order.sort_by_key(|t| t.offset);
    for pair in order.windows(2) {
        if pair[0].offset + pair[0].size > pair[1].offset {
            return Err(format!(
                "tensors '{}' and '{}' overlap",
                pair[0].name, pair[1].name
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small valid GGUF v3 file: two metadata pairs and two F32 tensors.
    fn sample() -> Vec<u8> {
        let mut out = Vec::new();
        out.extend(MAGIC);
        out.extend(3u32.to_le_bytes());
        out.extend(2u64.to_le_bytes());
        out.extend(2u64.to_le_bytes());
        let string = |out: &mut Vec<u8>, s: &str| {
            out.extend((s.len() as u64).to_le_bytes());
            out.extend(s.as_bytes());
        };
        string(&mut out, "general.architecture");
        out.extend(8u32.to_le_bytes());
        string(&mut out, "llama");
        string(&mut out, "xs");
        out.extend(9u32.to_le_bytes());
        out.extend(4u32.to_le_bytes());
        out.extend(3u64.to_le_bytes());
        for v in [1u32, 2, 3] {
            out.extend(v.to_le_bytes());
        }
        for (name, offset) in [("a", 0u64), ("b", 32)] {
            string(&mut out, name);
            out.extend(2u32.to_le_bytes());
            out.extend(4u64.to_le_bytes());
            out.extend(2u64.to_le_bytes());
            out.extend(0u32.to_le_bytes());
            out.extend(offset.to_le_bytes());
        }
        while out.len() % 32 != 0 {
            out.push(0);
        }
        for i in 0..16 {
            out.extend((i as f32).to_le_bytes());
        }
        out
    }

    fn parse(bytes: Vec<u8>) -> Result<Gguf> {
        Gguf::parse(WeightBytes::new(bytes), Path::new("test.gguf"))
    }

    #[test]
    fn a_valid_file_reads_back() {
        let g = parse(sample()).unwrap();
        assert_eq!(g.version(), 3);
        assert_eq!(g.architecture().unwrap(), "llama");
        assert_eq!(
            g.metadata().array("xs").unwrap(),
            &[Value::U32(1), Value::U32(2), Value::U32(3)]
        );
        let b = g.require_tensor("b").unwrap();
        assert_eq!(
            (b.dims.clone(), b.size, b.rows_and_cols()),
            (vec![4, 2], 32, (2, 4))
        );
        let bytes = g.tensor_bytes(b).unwrap();
        assert_eq!(&bytes.bytes()[..4], &8f32.to_le_bytes());
        assert!(g
            .require_tensor("c")
            .unwrap_err()
            .to_string()
            .contains("'c'"));
    }

    #[test]
    fn every_truncation_is_an_error_not_a_panic() {
        let full = sample();
        for len in 0..full.len() - 1 {
            assert!(parse(full[..len].to_vec()).is_err(), "truncated at {len}");
        }
    }

    #[test]
    fn every_single_byte_change_is_survived() {
        let full = sample();
        for i in 0..full.len() {
            for v in [0u8, 1, 0x7f, 0x80, 0xff] {
                let mut bytes = full.clone();
                bytes[i] = v;
                let _ = parse(bytes);
            }
        }
    }

    /// Offsets of fields in `sample()`.
    const FIRST_TENSOR: usize = 4 + 4 + 8 + 8 + (8 + 20 + 4 + 8 + 5) + (8 + 2 + 4 + 4 + 8 + 12);

    fn with(mut bytes: Vec<u8>, at: usize, value: &[u8]) -> Vec<u8> {
        bytes[at..at + value.len()].copy_from_slice(value);
        bytes
    }

    fn error(bytes: Vec<u8>) -> String {
        parse(bytes).unwrap_err().to_string()
    }

    #[test]
    fn hostile_fields_are_named() {
        let s = sample();
        assert!(error(with(s.clone(), 0, b"GGUx")).contains("not a GGUF"));
        assert!(error(with(s.clone(), 4, &1u32.to_le_bytes())).contains("version 1"));
        assert!(error(with(s.clone(), 8, &u64::MAX.to_le_bytes())).contains("tensor count"));
        assert!(error(with(s.clone(), 16, &(1u64 << 40).to_le_bytes())).contains("metadata count"));
        // The first key's length.
        assert!(error(with(s.clone(), 24, &u64::MAX.to_le_bytes()))
            .contains("length of metadata key 0"));
        // The array's item count.
        let array_len = 24 + 8 + 20 + 4 + 8 + 5 + 8 + 2 + 4 + 4;
        assert!(
            error(with(s.clone(), array_len, &(1u64 << 62).to_le_bytes()))
                .contains("length of metadata 'xs'")
        );
        // The array's item type.
        assert!(error(with(s.clone(), array_len - 4, &99u32.to_le_bytes()))
            .contains("unknown item type"));
        let n_dims = FIRST_TENSOR + 8 + 1;
        assert!(error(with(s.clone(), n_dims, &5u32.to_le_bytes())).contains("5 dimensions"));
        assert!(error(with(s.clone(), n_dims + 4, &0u64.to_le_bytes()))
            .contains("dimension 0 of size 0"));
        let huge = with(s.clone(), n_dims + 4, &(1u64 << 62).to_le_bytes());
        assert!(error(with(huge, n_dims + 12, &(1u64 << 62).to_le_bytes())).contains("overflows"));
        let ty = n_dims + 4 + 16;
        assert!(error(with(s.clone(), ty, &4u32.to_le_bytes()))
            .contains("unknown GGML tensor type id 4"));
        // Q4_0 rows of 4 elements are not whole blocks.
        assert!(error(with(s.clone(), ty, &2u32.to_le_bytes())).contains("not whole q4_0 blocks"));
        let offset = ty + 4;
        assert!(error(with(s.clone(), offset, &3u64.to_le_bytes())).contains("alignment"));
        assert!(error(with(s.clone(), offset, &64u64.to_le_bytes())).contains("past the end"));
        assert!(error(with(s.clone(), offset, &u64::MAX.to_le_bytes())).contains("tensor 'a'"));
        // The second tensor placed on the first.
        let second_offset = offset + 8 + 8 + 1 + 4 + 16 + 4;
        assert!(error(with(s.clone(), second_offset, &0u64.to_le_bytes())).contains("overlap"));
        // The second tensor renamed to the first.
        assert!(error(with(s.clone(), offset + 8 + 8, b"a")).contains("appears twice"));
    }

    #[test]
    fn alignment_must_be_a_power_of_two() {
        for (alignment, ok) in [(0u32, false), (3, false), (16, true), (64, true)] {
            let mut bytes = Vec::new();
            bytes.extend(MAGIC);
            bytes.extend(3u32.to_le_bytes());
            bytes.extend(0u64.to_le_bytes());
            bytes.extend(1u64.to_le_bytes());
            bytes.extend(17u64.to_le_bytes());
            bytes.extend(b"general.alignment");
            bytes.extend(4u32.to_le_bytes());
            bytes.extend(alignment.to_le_bytes());
            match parse(bytes) {
                Ok(g) => assert!(ok && g.alignment() == u64::from(alignment)),
                Err(e) => assert!(!ok && e.to_string().contains("power of two"), "{e}"),
            }
        }
    }
}
