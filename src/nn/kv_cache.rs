//! The KV cache: every layer's keys and values for the positions processed
//! so far, so that generation feeds one new token per step instead of the
//! whole context. Batch 1, f32.

use crate::{Error, Result};

/// Keys and values of one attention layer, `len × dim` each.
#[derive(Debug, Clone, Default)]
pub struct LayerCache {
    /// Keys, one row of `dim` per position.
    pub keys: Vec<f32>,
    /// Values, one row of `dim` per position.
    pub values: Vec<f32>,
}

/// Every layer's cache, for a model with `capacity` positions.
#[derive(Debug, Clone)]
pub struct KvCache {
    layers: Vec<LayerCache>,
    len: usize,
    capacity: usize,
}

impl KvCache {
    /// An empty cache for `n_layer` layers of width `dim` and a context of `capacity` positions.
    pub fn new(n_layer: usize, dim: usize, capacity: usize) -> Self {
        let layer = LayerCache {
            keys: Vec::with_capacity(capacity * dim),
            values: Vec::with_capacity(capacity * dim),
        };
        Self {
            layers: vec![layer; n_layer],
            len: 0,
            capacity,
        }
    }

    /// Positions cached.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Forgets every position.
    pub fn clear(&mut self) {
        for layer in &mut self.layers {
            layer.keys.clear();
            layer.values.clear();
        }
        self.len = 0;
    }

    /// Makes room for `new` positions; errors if the context would overflow.
    pub fn reserve(&self, new: usize) -> Result<usize> {
        if self.len + new > self.capacity {
            return Err(Error::Invalid(format!(
                "{} cached plus {new} new tokens pass the model's context of {}",
                self.len, self.capacity
            )));
        }
        Ok(self.len)
    }

    /// Layer `i`'s cache.
    pub fn layer_mut(&mut self, i: usize) -> &mut LayerCache {
        &mut self.layers[i]
    }

    /// Records that `new` positions were appended to every layer.
    pub fn advance(&mut self, new: usize) {
        self.len += new;
    }
}
