//! Rotary position embeddings in Hugging Face's `rotate_half` layout: in a
//! head `d` wide, dimensions `i` and `i + d/2` rotate together by the angle
//! `position · θ^(−2i/d)`. The rotation is applied in place to the query and
//! key heads of packed `[q | k | v]` rows (the Llama layer's pass); its
//! backward pass is the inverse rotation (the transpose of an orthogonal
//! map), also in place. [`rope`] is the same rotation as an op of its own.

use super::{contiguous, tensor_from, with_float, with_slice, Float};
use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, CustomOp1, Layout, Shape, Tensor, WithDType};
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

/// RoPE (`rotate_half` layout, base `theta`) on every head of `x`
/// (`[batch, seq, heads·head_dim]`), row `t` of each item at position `t`.
pub fn rope(x: &Tensor, head_dim: usize, theta: f64) -> candle_core::Result<Tensor> {
    let (_, _, width) = x.dims3()?;
    if head_dim == 0 || !head_dim.is_multiple_of(2) || !width.is_multiple_of(head_dim) {
        candle_core::bail!("rope: rows {width} wide do not hold heads of an even width {head_dim}");
    }
    x.contiguous()?.apply_op1(Rope { head_dim, theta })
}

struct Rope {
    head_dim: usize,
    theta: f64,
}

impl Rope {
    /// `x` (`[batch, seq, width]`) rotated forward, or back (`inverse`).
    fn rotated<T: Float>(
        &self,
        x: &[T],
        shape: &Shape,
        inverse: bool,
    ) -> candle_core::Result<Vec<T>> {
        let (_, t, width) = shape.dims3()?;
        let mut y = x.to_vec();
        RopeTable::new(t, self.head_dim, self.theta).rotate(&mut y, width, width, inverse);
        Ok(y)
    }
}

impl CustomOp1 for Rope {
    fn name(&self) -> &'static str {
        "seer-rope"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        with_float!(s.dtype(), "rope", T => {
            let x = contiguous::<T>(s, l, "rope")?;
            Ok((T::to_cpu_storage_owned(self.rotated(x, l.shape(), false)?), l.shape().clone()))
        })
    }

    fn bwd(
        &self,
        arg: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<Option<Tensor>> {
        with_float!(arg.dtype(), "rope", T => {
            with_slice::<T, _>(grad, "rope", |dy| {
                tensor_from(self.rotated(dy, arg.shape(), true)?, arg.shape().clone()).map(Some)
            })
        })
    }
}
