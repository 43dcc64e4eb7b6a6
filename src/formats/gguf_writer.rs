//! The GGUF writer (version 3): metadata, tensor infos and the tensor data,
//! each tensor's data starting at a multiple of the alignment (32, or the
//! metadata's `general.alignment`), as gguf-py and llama.cpp lay files out.
//!
//! The data is streamed: the caller hands over one tensor at a time, so a
//! whole model is never held in memory. The file is written beside its
//! target and renamed into place when complete ([`AtomicFile`]): a failed or
//! interrupted write never leaves a partial file at the target.

use super::gguf::{DEFAULT_ALIGNMENT, MAGIC, MAX_DIMS};
use super::{Metadata, TensorInfo, Value};
use crate::atomic::AtomicFile;
use crate::kernels::quant::GgmlType;
use crate::{Error, Result};
use std::collections::HashSet;
use std::io::Write;
use std::path::Path;

/// The GGUF version written.
pub const VERSION: u32 = 3;

/// llama.cpp's limit on a tensor name's bytes (`GGML_MAX_NAME`, with its
/// terminating zero).
pub const MAX_NAME_BYTES: usize = 63;

/// A GGUF file being assembled: its metadata and tensor infos, then the data.
#[derive(Debug, Clone)]
pub struct GgufWriter {
    metadata: Metadata,
    tensors: Vec<TensorInfo>,
    names: HashSet<String>,
    alignment: u64,
    data_len: u64,
}

impl GgufWriter {
    /// A file with `metadata` (written in its order). Every value must be
    /// writable: arrays of one scalar or string type, no arrays of arrays;
    /// `general.alignment`, if present, a u32 power of two.
    pub fn new(metadata: Metadata) -> Result<Self> {
        let mut keys = HashSet::new();
        for (key, value) in metadata.entries() {
            if key.is_empty() {
                return Err(Error::Invalid("GGUF metadata keys cannot be empty".into()));
            }
            if !keys.insert(key.as_str()) {
                return Err(Error::Invalid(format!(
                    "GGUF metadata '{key}' appears twice"
                )));
            }
            if let Value::Array(items) = value {
                let first = items.first().map(Value::type_name);
                if items
                    .iter()
                    .any(|v| matches!(v, Value::Array(_)) || Some(v.type_name()) != first)
                {
                    return Err(Error::Invalid(format!(
                        "GGUF metadata '{key}': an array must hold values of one type, and no arrays"
                    )));
                }
            }
        }
        let alignment = match metadata.get("general.alignment") {
            None => DEFAULT_ALIGNMENT,
            Some(Value::U32(a)) if a.is_power_of_two() => u64::from(*a),
            Some(other) => {
                return Err(Error::Invalid(format!(
                    "GGUF metadata 'general.alignment' must be a u32 power of two, not {other:?}"
                )))
            }
        };
        Ok(Self {
            metadata,
            tensors: Vec::new(),
            names: HashSet::new(),
            alignment,
            data_len: 0,
        })
    }

    /// Adds a tensor of type `ty` with GGML dimensions `dims` (`dims[0]` is
    /// the row length, a whole number of `ty` blocks) after those added so far.
    pub fn add_tensor(&mut self, name: &str, dims: &[u64], ty: GgmlType) -> Result<&TensorInfo> {
        let bad = |why: String| Error::Invalid(format!("tensor '{name}': {why}"));
        if name.is_empty() || name.len() > MAX_NAME_BYTES {
            return Err(bad(format!("a name must have 1 to {MAX_NAME_BYTES} bytes")));
        }
        if self.names.contains(name) {
            return Err(bad("added twice".into()));
        }
        if dims.is_empty() || dims.len() > MAX_DIMS as usize || dims.contains(&0) {
            return Err(bad(format!(
                "dimensions {dims:?}: GGUF takes 1 to {MAX_DIMS} dimensions, none of them 0"
            )));
        }
        let elements = dims
            .iter()
            .try_fold(1u64, |n, &d| n.checked_mul(d))
            .ok_or_else(|| bad(format!("the element count of {dims:?} overflows")))?;
        if !dims[0].is_multiple_of(ty.block_len() as u64) {
            return Err(bad(format!(
                "rows of {} elements are not whole {ty} blocks of {}",
                dims[0],
                ty.block_len()
            )));
        }
        let size = ty
            .row_bytes(elements)
            .ok_or_else(|| bad("its byte size overflows".into()))?;
        let offset = self.data_len;
        self.data_len = offset
            .checked_add(size)
            .map(|end| end.next_multiple_of(self.alignment))
            .ok_or_else(|| bad("the file's size overflows".into()))?;
        self.names.insert(name.to_string());
        self.tensors.push(TensorInfo {
            name: name.to_string(),
            dims: dims.to_vec(),
            ty,
            offset,
            size,
        });
        Ok(self.tensors.last().expect("just pushed"))
    }

    /// The tensors added so far, with their offsets and sizes.
    pub fn tensors(&self) -> &[TensorInfo] {
        &self.tensors
    }

    /// The bytes before the tensor data: header, metadata, tensor infos and
    /// the padding up to the alignment.
    pub fn header(&self) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend(MAGIC);
        out.extend(VERSION.to_le_bytes());
        out.extend((self.tensors.len() as u64).to_le_bytes());
        out.extend((self.metadata.entries().len() as u64).to_le_bytes());
        for (key, value) in self.metadata.entries() {
            put_string(&mut out, key);
            out.extend(type_id(value).to_le_bytes());
            put_value(&mut out, value);
        }
        for t in &self.tensors {
            put_string(&mut out, &t.name);
            out.extend((t.dims.len() as u32).to_le_bytes());
            for d in &t.dims {
                out.extend(d.to_le_bytes());
            }
            out.extend(t.ty.id().to_le_bytes());
            out.extend(t.offset.to_le_bytes());
        }
        out.resize(out.len().next_multiple_of(self.alignment as usize), 0);
        out
    }

    /// The size of the whole file.
    pub fn file_len(&self) -> u64 {
        self.header().len() as u64 + self.data_len
    }

    /// Writes the file to `path` atomically. `data` is called once per
    /// tensor, in order, with its index and info, and must write exactly
    /// `info.size` bytes to the sink it is given; an error from it (or a
    /// wrong byte count) abandons the file, leaving `path` as it was.
    pub fn write(
        &self,
        path: &Path,
        mut data: impl FnMut(usize, &TensorInfo, &mut dyn Write) -> Result<()>,
    ) -> Result<()> {
        let mut file = AtomicFile::create(path)?;
        let tmp = file.tmp_path().to_path_buf();
        let header = self.header();
        file.write_all(&header).map_err(Error::io(&tmp))?;
        let mut at = 0u64;
        for (i, t) in self.tensors.iter().enumerate() {
            debug_assert_eq!(at, t.offset);
            let mut sink = Counting {
                inner: &mut file,
                written: 0,
            };
            data(i, t, &mut sink)?;
            if sink.written != t.size {
                return Err(Error::Invalid(format!(
                    "tensor '{}': {} bytes were written for its {} bytes of data",
                    t.name, sink.written, t.size
                )));
            }
            let end = (t.offset + t.size).next_multiple_of(self.alignment);
            let padding = vec![0u8; (end - t.offset - t.size) as usize];
            file.write_all(&padding).map_err(Error::io(&tmp))?;
            at = end;
        }
        file.commit()
    }
}

/// A writer that counts the bytes passing through.
struct Counting<'a> {
    inner: &'a mut dyn Write,
    written: u64,
}

impl Write for Counting<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.written += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

fn put_string(out: &mut Vec<u8>, s: &str) {
    out.extend((s.len() as u64).to_le_bytes());
    out.extend(s.as_bytes());
}

/// The GGUF value type id of `value` (an empty array is written as an
/// array of strings: the reader keeps no item type for it).
fn type_id(value: &Value) -> u32 {
    match value {
        Value::U8(_) => 0,
        Value::I8(_) => 1,
        Value::U16(_) => 2,
        Value::I16(_) => 3,
        Value::U32(_) => 4,
        Value::I32(_) => 5,
        Value::F32(_) => 6,
        Value::Bool(_) => 7,
        Value::String(_) => 8,
        Value::Array(_) => 9,
        Value::U64(_) => 10,
        Value::I64(_) => 11,
        Value::F64(_) => 12,
    }
}

fn put_value(out: &mut Vec<u8>, value: &Value) {
    match value {
        Value::U8(v) => out.extend(v.to_le_bytes()),
        Value::I8(v) => out.extend(v.to_le_bytes()),
        Value::U16(v) => out.extend(v.to_le_bytes()),
        Value::I16(v) => out.extend(v.to_le_bytes()),
        Value::U32(v) => out.extend(v.to_le_bytes()),
        Value::I32(v) => out.extend(v.to_le_bytes()),
        Value::U64(v) => out.extend(v.to_le_bytes()),
        Value::I64(v) => out.extend(v.to_le_bytes()),
        Value::F32(v) => out.extend(v.to_le_bytes()),
        Value::F64(v) => out.extend(v.to_le_bytes()),
        Value::Bool(v) => out.push(u8::from(*v)),
        Value::String(s) => put_string(out, s),
        Value::Array(items) => {
            let item_type = items.first().map_or(8, type_id);
            out.extend(item_type.to_le_bytes());
            out.extend((items.len() as u64).to_le_bytes());
            for item in items {
                put_value(out, item);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::formats::Gguf;
    use crate::kernels::quant::{quantize, WeightBytes};

    fn every_kind_of_value() -> Metadata {
        Metadata::new(vec![
            ("general.architecture".into(), Value::String("llama".into())),
            ("u8".into(), Value::U8(200)),
            ("i8".into(), Value::I8(-3)),
            ("u16".into(), Value::U16(60000)),
            ("i16".into(), Value::I16(-30000)),
            ("u32".into(), Value::U32(4_000_000_000)),
            ("i32".into(), Value::I32(-2_000_000_000)),
            ("u64".into(), Value::U64(u64::MAX)),
            ("i64".into(), Value::I64(i64::MIN)),
            ("f32".into(), Value::F32(1e-5)),
            ("f64".into(), Value::F64(-0.1)),
            ("bool".into(), Value::Bool(true)),
            ("utf8".into(), Value::String("Ġthe ▁ 日本".into())),
            (
                "strings".into(),
                Value::Array(vec![Value::String("a b".into()), Value::String("".into())]),
            ),
            (
                "ints".into(),
                Value::Array(vec![Value::I32(1), Value::I32(-3)]),
            ),
            ("empty".into(), Value::Array(vec![])),
        ])
    }

    #[test]
    fn what_is_written_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.gguf");
        let mut w = GgufWriter::new(every_kind_of_value()).unwrap();
        let x: Vec<f32> = (0..64).map(|i| (i as f32 - 30.0) / 7.0).collect();
        w.add_tensor("norm", &[5], GgmlType::F32).unwrap();
        w.add_tensor("q", &[32, 2], GgmlType::Q8_0).unwrap();
        w.add_tensor("h", &[4, 2, 2, 2], GgmlType::F16).unwrap();
        let blobs = [
            quantize(GgmlType::F32, &x[..5]).unwrap(),
            quantize(GgmlType::Q8_0, &x).unwrap(),
            quantize(GgmlType::F16, &x[..32]).unwrap(),
        ];
        w.write(&path, |i, _, sink| {
            sink.write_all(&blobs[i]).map_err(Error::io("sink"))
        })
        .unwrap();
        let g = Gguf::open(&path).unwrap();
        assert_eq!(g.version(), 3);
        let mut expected = every_kind_of_value();
        // The empty array comes back as an empty array.
        assert_eq!(g.metadata(), &expected);
        expected.set("extra", Value::Bool(false));
        assert_ne!(g.metadata(), &expected);
        for (t, blob) in g.tensors().iter().zip(&blobs) {
            assert_eq!(t.offset % 32, 0);
            assert_eq!(g.tensor_bytes(t).unwrap().bytes(), &blob[..], "{}", t.name);
        }
        assert_eq!(g.require_tensor("h").unwrap().dims, vec![4, 2, 2, 2]);
        assert_eq!(std::fs::metadata(&path).unwrap().len(), w.file_len());
        assert_eq!(std::fs::metadata(&path).unwrap().len() % 32, 0);
        // The same bytes parse from memory too.
        let bytes = std::fs::read(&path).unwrap();
        Gguf::parse(WeightBytes::new(bytes), &path).unwrap();
    }

    #[test]
    fn bad_tensors_and_metadata_are_refused() {
        let mut w = GgufWriter::new(Metadata::default()).unwrap();
        w.add_tensor("a", &[32], GgmlType::Q4_0).unwrap();
        let err = |r: Result<&TensorInfo>| r.unwrap_err().to_string();
        assert!(err(w.add_tensor("a", &[4], GgmlType::F32)).contains("twice"));
        assert!(err(w.add_tensor("b", &[33], GgmlType::Q4_0)).contains("whole q4_0 blocks"));
        assert!(err(w.add_tensor("b", &[0], GgmlType::F32)).contains("dimensions"));
        assert!(err(w.add_tensor("b", &[1, 1, 1, 1, 1], GgmlType::F32)).contains("dimensions"));
        assert!(err(w.add_tensor(&"x".repeat(64), &[1], GgmlType::F32)).contains("name"));
        let mixed = Metadata::new(vec![(
            "m".into(),
            Value::Array(vec![Value::U8(1), Value::I8(1)]),
        )]);
        assert!(GgufWriter::new(mixed).is_err());
        let nested = Metadata::new(vec![("m".into(), Value::Array(vec![Value::Array(vec![])]))]);
        assert!(GgufWriter::new(nested).is_err());
        let align = |a| Metadata::new(vec![("general.alignment".into(), a)]);
        assert!(GgufWriter::new(align(Value::U32(3))).is_err());
        assert!(GgufWriter::new(align(Value::U64(64))).is_err());
        let w = GgufWriter::new(align(Value::U32(64))).unwrap();
        assert_eq!(w.header().len() % 64, 0);
    }

    #[test]
    fn a_failed_write_leaves_no_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.gguf");
        let mut w = GgufWriter::new(Metadata::default()).unwrap();
        w.add_tensor("a", &[4], GgmlType::F32).unwrap();
        w.add_tensor("b", &[4], GgmlType::F32).unwrap();
        // Too few bytes for a tensor.
        let e = w
            .write(&path, |_, _, sink| {
                sink.write_all(&[0; 12]).map_err(Error::io("sink"))
            })
            .unwrap_err();
        assert!(e.to_string().contains("'a'"), "{e}");
        // The data source fails half way.
        let e = w
            .write(&path, |i, _, sink| {
                if i == 1 {
                    return Err(Error::Invalid("source broke".into()));
                }
                sink.write_all(&[0; 16]).map_err(Error::io("sink"))
            })
            .unwrap_err();
        assert!(e.to_string().contains("source broke"));
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
        // A missing folder is named.
        let missing = dir.path().join("no/such/dir/out.gguf");
        let e = w.write(&missing, |_, _, _| Ok(())).unwrap_err();
        assert!(e.to_string().contains("no/such/dir"), "{e}");
    }
}
