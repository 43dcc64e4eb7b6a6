//! Weight bytes shared without copying: a range of a memory-mapped file (or
//! of any other buffer), cheap to clone and to hand to several matrices.

use std::ops::Range;
use std::sync::Arc;

/// A byte range of a shared buffer (typically a memory-mapped GGUF file).
#[derive(Clone)]
pub struct WeightBytes {
    source: Arc<dyn AsRef<[u8]> + Send + Sync>,
    range: Range<usize>,
}

impl WeightBytes {
    /// The whole of `buffer`.
    pub fn new(buffer: impl AsRef<[u8]> + Send + Sync + 'static) -> Self {
        let len = buffer.as_ref().len();
        Self {
            source: Arc::new(buffer),
            range: 0..len,
        }
    }

    /// Bytes `range` of this view, or `None` when the range is out of bounds.
    pub fn slice(&self, range: Range<usize>) -> Option<Self> {
        if range.start > range.end || range.end > self.range.len() {
            return None;
        }
        Some(Self {
            source: Arc::clone(&self.source),
            range: self.range.start + range.start..self.range.start + range.end,
        })
    }

    /// The bytes.
    pub fn bytes(&self) -> &[u8] {
        &(*self.source).as_ref()[self.range.clone()]
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
