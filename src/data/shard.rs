//! Token shards: `train.bin` and `val.bin`.
//!
//! Layout, little-endian: 8-byte magic `SEERTOKS`, u32 format version, u32
//! token width in bytes (2 or 4), u64 token count, then the tokens. Reading is
//! memory-mapped, so a shard larger than memory still trains.

use crate::{Error, Result};
use std::path::Path;

/// The first bytes of every shard.
pub const SHARD_MAGIC: &[u8; 8] = b"SEERTOKS";
/// The shard format version this build reads and writes.
pub const SHARD_VERSION: u32 = 1;
const HEADER_LEN: usize = 24;

/// Writes `tokens` to `path` as a shard, u16 when every id fits, else u32.
pub fn write_shard(path: &Path, tokens: &[u32], vocab_size: usize) -> Result<()> {
    let width: u32 = if vocab_size <= 1 << 16 { 2 } else { 4 };
    let mut bytes = Vec::with_capacity(HEADER_LEN + tokens.len() * width as usize);
    bytes.extend_from_slice(SHARD_MAGIC);
    bytes.extend_from_slice(&SHARD_VERSION.to_le_bytes());
    bytes.extend_from_slice(&width.to_le_bytes());
    bytes.extend_from_slice(&(tokens.len() as u64).to_le_bytes());
    for &t in tokens {
        if width == 2 {
            bytes.extend_from_slice(&(t as u16).to_le_bytes());
        } else {
            bytes.extend_from_slice(&t.to_le_bytes());
        }
    }
    crate::atomic::write_atomic(path, &bytes)
}

/// A memory-mapped, validated token shard.
pub struct TokenShard {
    map: memmap2::Mmap,
    width: usize,
    len: usize,
}

impl TokenShard {
    /// Opens and validates a shard: magic, version, width and exact length.
    pub fn open(path: &Path) -> Result<Self> {
        let file = std::fs::File::open(path).map_err(Error::io(path))?;
        // SAFETY: the map is read-only; seer never writes a shard in place
        // (writes go to a temporary file that is renamed over it).
        let map = unsafe { memmap2::Mmap::map(&file) }.map_err(Error::io(path))?;
        if map.len() < HEADER_LEN || &map[..8] != SHARD_MAGIC {
            return Err(Error::bad_file(
                path,
                "not a seer token shard (bad magic); make shards with `seer prepare`",
            ));
        }
        let word = |at: usize| u32::from_le_bytes(map[at..at + 4].try_into().unwrap());
        let version = word(8);
        if version != SHARD_VERSION {
            return Err(Error::bad_file(
                path,
                format!("shard format version {version}, this seer reads {SHARD_VERSION}"),
            ));
        }
        let width = word(12) as usize;
        if width != 2 && width != 4 {
            return Err(Error::bad_file(path, format!("bad token width {width}")));
        }
        let len = u64::from_le_bytes(map[16..24].try_into().unwrap()) as usize;
        let expected = len
            .checked_mul(width)
            .and_then(|n| n.checked_add(HEADER_LEN));
        if expected != Some(map.len()) {
            return Err(Error::bad_file(
                path,
                format!(
                    "header says {len} tokens but the file has {} bytes of tokens (truncated or corrupt); \
                     run `seer prepare` again",
                    map.len() - HEADER_LEN
                ),
            ));
        }
        Ok(Self { map, width, len })
    }

    /// Number of tokens.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the shard holds no tokens.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The token at `index`.
    pub fn get(&self, index: usize) -> u32 {
        let at = HEADER_LEN + index * self.width;
        let b = &self.map[at..at + self.width];
        if self.width == 2 {
            u16::from_le_bytes([b[0], b[1]]) as u32
        } else {
            u32::from_le_bytes([b[0], b[1], b[2], b[3]])
        }
    }

    /// Appends tokens `start..start + count` to `out`.
    pub fn extend_range(&self, start: usize, count: usize, out: &mut Vec<u32>) {
        out.extend((start..start + count).map(|i| self.get(i)));
    }
}
