//! Random training batches drawn from token shards, as nanoGPT draws them:
//! `batch` windows of `block + 1` tokens at random offsets, inputs and
//! next-token targets. The offsets depend only on (seed, split, step,
//! micro-step), so a resumed run sees exactly the batches it would have seen.

use super::TokenShard;
use crate::{Error, Result};
use rand::{Rng, SeedableRng};
use std::path::Path;

/// Inputs and targets of one batch, row-major `[batch, block]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Batch {
    /// Input token ids.
    pub inputs: Vec<u32>,
    /// Target token ids: the inputs shifted by one.
    pub targets: Vec<u32>,
    /// Rows.
    pub batch: usize,
    /// Tokens per row.
    pub block: usize,
}

/// Which shard to draw from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Split {
    /// `train.bin`.
    Train,
    /// `val.bin`.
    Val,
}

/// Draws reproducible random batches from the train and val shards.
pub struct BatchSampler {
    train: TokenShard,
    val: TokenShard,
    batch: usize,
    block: usize,
    seed: u64,
}

impl BatchSampler {
    /// Opens `train.bin` and `val.bin` in `dir`; each must hold more than one block.
    pub fn open(dir: &Path, batch: usize, block: usize, seed: u64) -> Result<Self> {
        let open = |name: &str| -> Result<TokenShard> {
            let path = dir.join(name);
            let shard = TokenShard::open(&path)?;
            if shard.len() <= block {
                return Err(Error::bad_file(
                    &path,
                    format!(
                        "holds {} tokens, fewer than one block of {} + 1; use a larger corpus, \
                         a smaller --block-size or a different --val-fraction",
                        shard.len(),
                        block
                    ),
                ));
            }
            Ok(shard)
        };
        Ok(Self {
            train: open("train.bin")?,
            val: open("val.bin")?,
            batch,
            block,
            seed,
        })
    }

    /// The batch for `(split, step, micro)`; the same arguments give the same batch.
    pub fn batch(&self, split: Split, step: u64, micro: u64) -> Batch {
        let shard = match split {
            Split::Train => &self.train,
            Split::Val => &self.val,
        };
        let stream = match split {
            Split::Train => 0x7261_696e,
            Split::Val => 0x0076_616c,
        };
        let mut rng = rand::rngs::StdRng::seed_from_u64(mix(&[self.seed, stream, step, micro]));
        let mut window = Vec::with_capacity(self.block + 1);
        let mut inputs = Vec::with_capacity(self.batch * self.block);
        let mut targets = Vec::with_capacity(self.batch * self.block);
        for _ in 0..self.batch {
            let start = rng.random_range(0..shard.len() - self.block);
            window.clear();
            shard.extend_range(start, self.block + 1, &mut window);
            inputs.extend_from_slice(&window[..self.block]);
            targets.extend_from_slice(&window[1..]);
        }
        Batch {
            inputs,
            targets,
            batch: self.batch,
            block: self.block,
        }
    }
}

/// Mixes several numbers into one RNG seed (SplitMix64 steps).
pub fn mix(values: &[u64]) -> u64 {
    let mut h = 0x9e37_79b9_7f4a_7c15u64;
    for &v in values {
        h ^= v;
        h = h.wrapping_add(0x9e37_79b9_7f4a_7c15);
        h = (h ^ (h >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        h = (h ^ (h >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        h ^= h >> 31;
    }
    h
}
