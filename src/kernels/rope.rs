//! Rotary position embeddings in Hugging Face's `rotate_half` layout: in a
//! head `d` wide, dimensions `i` and `i + d/2` rotate together by the angle
//! `position · θ^(−2i/d)`. The rotation is applied in place to the query and
//! key heads of packed `[q | k | v]` rows; its backward pass is the inverse
//! rotation (the transpose of an orthogonal map), also in place.

use super::Float;
use rayon::prelude::*;

/// Rows per parallel task.
const ROWS: usize = 16;

/// The cosines and sines of every position and frequency: `[t, d/2]` each.
pub(super) struct RopeTable<T> {
    cos: Vec<T>,
    sin: Vec<T>,
    half: usize,
    t: usize,
}

impl<T: Float> RopeTable<T> {
    /// The table for positions `0..t` of heads `head_dim` wide, base `theta`.
    pub(super) fn new(t: usize, head_dim: usize, theta: f64) -> Self {
        let half = head_dim / 2;
        let (mut cos, mut sin) = (Vec::with_capacity(t * half), Vec::with_capacity(t * half));
        for pos in 0..t {
            for i in 0..half {
                let inv_freq = theta.powf(-2.0 * i as f64 / head_dim as f64);
                let (s, c) = (pos as f64 * inv_freq).sin_cos();
                cos.push(T::from_f64(c));
                sin.push(T::from_f64(s));
            }
        }
        Self { cos, sin, half, t }
    }

    /// Rotates, in place, the heads that fill the first `width` elements of
    /// every row of `rows` (rows `stride` wide; row `r` is at position
    /// `r mod t`): forward, or back by the same angle (`inverse`, the
    /// backward pass).
    pub(super) fn rotate(&self, rows: &mut [T], stride: usize, width: usize, inverse: bool) {
        let (half, t) = (self.half, self.t);
        rows.par_chunks_mut(ROWS * stride)
            .enumerate()
            .for_each(|(task, part)| {
                for (r, row) in part.chunks_mut(stride).enumerate() {
                    let pos = (task * ROWS + r) % t;
                    let (cos, sin) = (
                        &self.cos[pos * half..(pos + 1) * half],
                        &self.sin[pos * half..(pos + 1) * half],
                    );
                    for head in row[..width].chunks_exact_mut(2 * half) {
                        let (a, b) = head.split_at_mut(half);
                        for (((a, b), &c), &s) in a.iter_mut().zip(b).zip(cos).zip(sin) {
                            let (x, y) = (*a, *b);
                            if inverse {
                                *a = x * c + y * s;
                                *b = y * c - x * s;
                            } else {
                                *a = x * c - y * s;
                                *b = y * c + x * s;
                            }
                        }
                    }
                }
            });
    }
}
