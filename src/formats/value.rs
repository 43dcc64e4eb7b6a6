//! GGUF metadata values: the typed key-value pairs a GGUF file opens with
//! (`general.architecture`, `llama.block_count`, `tokenizer.ggml.tokens`, ...).

use crate::{Error, Result};

/// One metadata value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// `u8`.
    U8(u8),
    /// `i8`.
    I8(i8),
    /// `u16`.
    U16(u16),
    /// `i16`.
    I16(i16),
    /// `u32`.
    U32(u32),
    /// `i32`.
    I32(i32),
    /// `u64`.
    U64(u64),
    /// `i64`.
    I64(i64),
    /// `f32`.
    F32(f32),
    /// `f64`.
    F64(f64),
    /// `bool`.
    Bool(bool),
    /// A UTF-8 string.
    String(String),
    /// An array of values of one type.
    Array(Vec<Value>),
}

impl Value {
    /// The GGUF name of the value's type, for error messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::U8(_) => "u8",
            Value::I8(_) => "i8",
            Value::U16(_) => "u16",
            Value::I16(_) => "i16",
            Value::U32(_) => "u32",
            Value::I32(_) => "i32",
            Value::U64(_) => "u64",
            Value::I64(_) => "i64",
            Value::F32(_) => "f32",
            Value::F64(_) => "f64",
            Value::Bool(_) => "bool",
            Value::String(_) => "string",
            Value::Array(_) => "array",
        }
    }

    /// The value as a non-negative integer, if it is an integer that fits.
    pub fn as_u64(&self) -> Option<u64> {
        match *self {
            Value::U8(v) => Some(v.into()),
            Value::U16(v) => Some(v.into()),
            Value::U32(v) => Some(v.into()),
            Value::U64(v) => Some(v),
            Value::I8(v) => u64::try_from(v).ok(),
            Value::I16(v) => u64::try_from(v).ok(),
            Value::I32(v) => u64::try_from(v).ok(),
            Value::I64(v) => u64::try_from(v).ok(),
            _ => None,
        }
    }

    /// The value as a float, if it is a number.
    pub fn as_f64(&self) -> Option<f64> {
        match *self {
            Value::F32(v) => Some(v.into()),
            Value::F64(v) => Some(v),
            Value::I8(v) => Some(v.into()),
            Value::I16(v) => Some(v.into()),
            Value::I32(v) => Some(v.into()),
            Value::I64(v) => Some(v as f64),
            _ => self.as_u64().map(|v| v as f64),
        }
    }
}

/// A GGUF file's metadata, in file order, looked up by key.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Metadata {
    entries: Vec<(String, Value)>,
}

impl Metadata {
    /// Metadata from key-value pairs (later duplicates are refused by the reader, not here).
    pub fn new(entries: Vec<(String, Value)>) -> Self {
        Self { entries }
    }

    /// Every pair, in file order.
    pub fn entries(&self) -> &[(String, Value)] {
        &self.entries
    }

    /// Sets `key` to `value`: in place where the key is present (so the
    /// order stays), else appended.
    pub fn set(&mut self, key: &str, value: Value) {
        match self.entries.iter_mut().find(|(k, _)| k == key) {
            Some((_, v)) => *v = value,
            None => self.entries.push((key.to_string(), value)),
        }
    }

    /// Drops every entry whose key starts with `prefix` (the vocabulary's
    /// arrays, say, once a tokenizer holds them).
    pub fn remove_prefixed(&mut self, prefix: &str) {
        self.entries.retain(|(k, _)| !k.starts_with(prefix));
    }

    /// The value of `key`, if present.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.entries.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// A string value; an error names the key when it is missing or not a string.
    pub fn string(&self, key: &str) -> Result<&str> {
        match self.require(key)? {
            Value::String(s) => Ok(s),
            other => Err(wrong_type(key, "a string", other)),
        }
    }

    /// An optional string value (an error only when present with another type).
    pub fn opt_string(&self, key: &str) -> Result<Option<&str>> {
        self.get(key).map(|_| self.string(key)).transpose()
    }

    /// A non-negative integer value.
    pub fn u64(&self, key: &str) -> Result<u64> {
        let v = self.require(key)?;
        v.as_u64()
            .ok_or_else(|| wrong_type(key, "a non-negative integer", v))
    }

    /// An optional non-negative integer value.
    pub fn opt_u64(&self, key: &str) -> Result<Option<u64>> {
        self.get(key).map(|_| self.u64(key)).transpose()
    }

    /// A number value, as f64.
    pub fn f64(&self, key: &str) -> Result<f64> {
        let v = self.require(key)?;
        v.as_f64().ok_or_else(|| wrong_type(key, "a number", v))
    }

    /// An optional number value.
    pub fn opt_f64(&self, key: &str) -> Result<Option<f64>> {
        self.get(key).map(|_| self.f64(key)).transpose()
    }

    /// An optional boolean value.
    pub fn opt_bool(&self, key: &str) -> Result<Option<bool>> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(other) => Err(wrong_type(key, "a bool", other)),
        }
    }

    /// An array value.
    pub fn array(&self, key: &str) -> Result<&[Value]> {
        match self.require(key)? {
            Value::Array(items) => Ok(items),
            other => Err(wrong_type(key, "an array", other)),
        }
    }

    /// An optional array value.
    pub fn opt_array(&self, key: &str) -> Result<Option<&[Value]>> {
        self.get(key).map(|_| self.array(key)).transpose()
    }

    fn require(&self, key: &str) -> Result<&Value> {
        self.get(key)
            .ok_or_else(|| Error::Invalid(format!("GGUF metadata has no '{key}'")))
    }
}

fn wrong_type(key: &str, wanted: &str, got: &Value) -> Error {
    Error::Invalid(format!(
        "GGUF metadata '{key}' should be {wanted}, not {}",
        got.type_name()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typed_lookups_name_the_key() {
        let m = Metadata::new(vec![
            ("a".into(), Value::U32(7)),
            ("b".into(), Value::String("x".into())),
            ("c".into(), Value::I32(-1)),
        ]);
        assert_eq!(m.u64("a").unwrap(), 7);
        assert_eq!(m.string("b").unwrap(), "x");
        assert!(m.u64("c").unwrap_err().to_string().contains("'c'"));
        assert!(m.string("zz").unwrap_err().to_string().contains("'zz'"));
        assert_eq!(m.opt_u64("zz").unwrap(), None);
        assert!(m.opt_bool("a").is_err());
    }
}
