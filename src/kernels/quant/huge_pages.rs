//! Memory for the regrouped weights: anonymous mappings advised for
//! transparent huge pages, so that streaming a matrix costs a TLB miss per
//! 2 MiB rather than per 4 KiB. Matrices are placed back to back in shared
//! chunks, so that small ones (a 135M model's are under a megabyte each)
//! get huge pages too and no huge page is left mostly empty; a chunk is
//! unmapped when the last matrix in it is dropped. Keeping the weights out
//! of the allocator also lets it leave its own memory in small pages.

use std::ops::Range;
use std::sync::{Arc, Mutex, Weak};

/// Bytes mapped at a time (only the pages written become resident).
const CHUNK_BYTES: usize = 64 << 20;

/// A transparent huge page.
const HUGE_PAGE: usize = 2 << 20;

/// Where each matrix starts: a cache line.
const ALIGN: usize = 64;

/// One anonymous mapping, shared by the matrices placed in it.
struct Chunk {
    map: memmap2::MmapRaw,
}

/// The chunk new matrices go into, and how much of it is taken.
static CURRENT: Mutex<Option<(Weak<Chunk>, usize)>> = Mutex::new(None);

/// Bytes of a shared huge-page chunk, written once when made and read-only after.
#[derive(Clone)]
pub struct HugeBytes {
    chunk: Arc<Chunk>,
    range: Range<usize>,
}

impl std::fmt::Debug for HugeBytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "HugeBytes({} bytes)", self.range.len())
    }
}

impl HugeBytes {
    /// `len` bytes written by `fill` (which is given them zeroed); `None`
    /// when no memory could be mapped (the caller keeps another layout).
    pub fn filled(len: usize, fill: impl FnOnce(&mut [u8])) -> Option<Self> {
        let (chunk, start) = place(len)?;
        let range = start..start + len;
        // SAFETY: `place` hands out each range of a chunk once, so this is
        // the only reference to these bytes until `fill` returns; the
        // mapping lives as long as `chunk`, which outlives the slice.
        let bytes =
            unsafe { std::slice::from_raw_parts_mut(chunk.map.as_mut_ptr().add(start), len) };
        fill(bytes);
        Some(Self { chunk, range })
    }

    /// The bytes.
    pub fn bytes(&self) -> &[u8] {
        // SAFETY: the range lies inside the mapping (`place`), and after
        // `filled` nothing writes to it.
        unsafe {
            std::slice::from_raw_parts(
                self.chunk.map.as_ptr().add(self.range.start),
                self.range.len(),
            )
        }
    }
}

/// A chunk with `len` free bytes and where they start: the current chunk
/// when it has room, else a new one.
fn place(len: usize) -> Option<(Arc<Chunk>, usize)> {
    let mut current = CURRENT.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((weak, used)) = current.as_mut() {
        if let Some(chunk) = weak.upgrade() {
            let start = used.next_multiple_of(ALIGN);
            if start + len <= chunk.map.len() {
                *used = start + len;
                return Some((chunk, start));
            }
        }
    }
    let size = len.max(CHUNK_BYTES).next_multiple_of(HUGE_PAGE);
    let map = memmap2::MmapMut::map_anon(size).ok()?;
    #[cfg(target_os = "linux")]
    // Only advice: without transparent huge pages the chunk keeps small ones.
    let _ = map.advise(memmap2::Advice::HugePage);
    let chunk = Arc::new(Chunk { map: map.into() });
    *current = Some((Arc::downgrade(&chunk), len));
    Some((chunk, 0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matrices_share_chunks_and_keep_their_bytes() {
        let a = HugeBytes::filled(1000, |b| b.fill(1)).unwrap();
        let b = HugeBytes::filled(3000, |b| b.fill(2)).unwrap();
        assert!(a.bytes().iter().all(|&x| x == 1) && a.bytes().len() == 1000);
        assert!(b.bytes().iter().all(|&x| x == 2) && b.bytes().len() == 3000);
        let big = HugeBytes::filled(CHUNK_BYTES + 5, |b| b[CHUNK_BYTES + 4] = 7).unwrap();
        assert_eq!(big.bytes()[CHUNK_BYTES + 4], 7);
        assert_eq!(big.bytes()[0], 0, "mapped zeroed");
        drop((a, b));
        let c = HugeBytes::filled(10, |b| b.fill(3)).unwrap();
        assert_eq!(c.bytes(), &[3; 10]);
    }
}
