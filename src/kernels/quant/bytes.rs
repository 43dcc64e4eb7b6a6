//! Weight bytes shared without copying: a range of a memory-mapped file (or
//! of any other buffer), cheap to clone and to hand to several matrices.

use std::ops::Range;
use std::sync::Arc;

/// A byte range of a shared buffer (typically a memory-mapped GGUF file).
#[derive(Clone)]
pub struct WeightBytes {
    source: Source,
    range: Range<usize>,
}

/// Where the bytes live.
#[derive(Clone)]
enum Source {
    /// A read-only map of a file, whose pages the OS can drop and read again.
    Map(Arc<memmap2::Mmap>),
    /// Any other buffer.
    Buffer(Arc<dyn AsRef<[u8]> + Send + Sync>),
}

impl WeightBytes {
    /// The whole of `buffer`.
    pub fn new(buffer: impl AsRef<[u8]> + Send + Sync + 'static) -> Self {
        let len = buffer.as_ref().len();
        Self {
            source: Source::Buffer(Arc::new(buffer)),
            range: 0..len,
        }
    }

    /// The whole of a file's read-only memory map.
    pub fn mapped(map: memmap2::Mmap) -> Self {
        let len = map.len();
        Self {
            source: Source::Map(Arc::new(map)),
            range: 0..len,
        }
    }

    /// Lets the OS drop these bytes from memory, when they are a mapped
    /// file's (it reads them from the file again if they are used): for
    /// weights a kernel keeps in another layout. Other buffers stay.
    pub fn release(&self) {
        #[cfg(unix)]
        if let Source::Map(map) = &self.source {
            // SAFETY: the map is read-only and private: dropped pages read
            // back as the same file bytes, so no reference sees a change.
            // Failure only leaves the pages in memory.
            let _ = unsafe {
                map.unchecked_advise_range(
                    memmap2::UncheckedAdvice::DontNeed,
                    self.range.start,
                    self.range.len(),
                )
            };
        }
    }

    /// Bytes `range` of this view, or `None` when the range is out of bounds.
    pub fn slice(&self, range: Range<usize>) -> Option<Self> {
        if range.start > range.end || range.end > self.range.len() {
            return None;
        }
        Some(Self {
            source: self.source.clone(),
            range: self.range.start + range.start..self.range.start + range.end,
        })
    }

    /// The bytes.
    pub fn bytes(&self) -> &[u8] {
        let all: &[u8] = match &self.source {
            Source::Map(map) => map,
            Source::Buffer(buffer) => (**buffer).as_ref(),
        };
        &all[self.range.clone()]
    }

    /// Number of bytes.
    pub fn len(&self) -> usize {
        self.range.len()
    }

    /// Whether the view is empty.
    pub fn is_empty(&self) -> bool {
        self.range.is_empty()
    }
}

impl std::fmt::Debug for WeightBytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "WeightBytes({} bytes)", self.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slices_nest_and_refuse_out_of_bounds() {
        let all = WeightBytes::new((0u8..100).collect::<Vec<_>>());
        let mid = all.slice(10..50).unwrap();
        assert_eq!(mid.bytes()[0], 10);
        let inner = mid.slice(5..8).unwrap();
        assert_eq!(inner.bytes(), &[15, 16, 17]);
        assert!(mid.slice(30..41).is_none());
        assert!(all.slice(0..101).is_none());
    }
}
