//! LayerNorm over the last dimension with weight and bias, one pass forward
//! and one backward (rows in parallel), the row statistics kept in between.
//! The weight and bias are shared by every row (`[dim]`), or given per batch
//! item (`[batch, dim]`): DiT's adaptive LayerNorm, `norm(x)·(1 + scale) +
//! shift` with a scale and shift for each picture, is then one op.

use super::{
    contiguous, math, par_written, par_zeroed, tensor_from, with_float, with_slice, Float,
    SharedMut,
};
use candle_core::backend::BackendStorage;
use candle_core::WithDType;
use candle_core::{CpuStorage, CustomOp3, Layout, Shape, Tensor};
use rayon::prelude::*;
use std::sync::Mutex;

/// Rows per parallel task.
const ROWS: usize = 16;

/// `(x − mean) / sqrt(var + eps) · weight + bias` over the last dimension of
/// `x`; `weight` and `bias` are `[dim]`, or `[batch, dim]` for one per item
/// of `x`'s first dimension.
pub fn layer_norm(
    x: &Tensor,
    weight: &Tensor,
    bias: &Tensor,
    eps: f64,
) -> candle_core::Result<Tensor> {
    let dim = x.dim(candle_core::D::Minus1)?;
    let shared = weight.dims() == [dim] && bias.dims() == [dim];
    let per_item = x.rank() >= 2 && {
        let b = x.dim(0)?;
        weight.dims() == [b, dim] && bias.dims() == [b, dim]
    };
    if !shared && !per_item {
        candle_core::bail!(
            "layer_norm: weight {:?} and bias {:?} must be [{dim}] or [batch, {dim}] for x {:?}",
            weight.dims(),
            bias.dims(),
            x.dims()
        );
    }
    x.contiguous()?.apply_op3(
        &weight.contiguous()?,
        &bias.contiguous()?,
        LayerNorm {
            eps,
            stats: Mutex::new(Vec::new()),
        },
    )
}

struct LayerNorm {
    eps: f64,
    /// (mean, 1/std) of every row, saved by the forward pass.
    stats: Mutex<Vec<(f64, f64)>>,
}

impl CustomOp3 for LayerNorm {
    fn name(&self) -> &'static str {
        "seer-layer-norm"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        with_float!(s1.dtype(), "layer_norm", T => {
            let x = contiguous::<T>(s1, l1, "layer_norm")?;
            let (w, b) = (contiguous::<T>(s2, l2, "layer_norm")?, contiguous::<T>(s3, l3, "layer_norm")?);
            let c = l1.shape().dims().last().copied().unwrap_or(1);
            let (y, stats) = forward(x, w, b, c, self.eps);
            *self.stats.lock().expect("layer_norm state") = stats;
            Ok((T::to_cpu_storage_owned(y), l1.shape().clone()))
        })
    }

    fn bwd(
        &self,
        x: &Tensor,
        weight: &Tensor,
        _bias: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let stats = self.stats.lock().expect("layer_norm state");
        with_float!(x.dtype(), "layer_norm", T => {
            with_slice::<T, _>(x, "layer_norm", |xs| {
                with_slice::<T, _>(weight, "layer_norm", |w| {
                    with_slice::<T, _>(grad, "layer_norm", |dy| {
                        let c = x.dim(candle_core::D::Minus1)?;
                        let (dx, dw, db) = backward(xs, w, c, dy, &stats, None);
                        Ok((
                            Some(tensor_from(dx, x.shape().clone())?),
                            Some(tensor_from(dw, weight.shape().clone())?),
                            Some(tensor_from(db, weight.shape().clone())?),
                        ))
                    })
                })
            })
        })
    }
}

/// Rows split evenly into groups that share a weight and bias row.
#[derive(Clone, Copy)]
struct Groups {
    rows_per_group: usize,
}

impl Groups {
    fn of(rows: usize, groups: usize) -> Self {
        Self {
            rows_per_group: rows / groups.max(1),
        }
    }

    fn of_row(&self, row: usize) -> usize {
        row / self.rows_per_group.max(1)
    }
}

/// `(y, stats)`: the normalised rows of `x` (`c` wide) and each row's
/// (mean, 1/std); `w` and `b` hold one or more rows of `c` (one per group
/// of rows).
pub(super) fn forward<T: Float>(
    x: &[T],
    w: &[T],
    b: &[T],
    c: usize,
    eps: f64,
) -> (Vec<T>, Vec<(f64, f64)>) {
    let groups = Groups::of(x.len() / c, w.len() / c);
    let eps = T::from_f64(eps);
    let mut stats = vec![(0.0, 0.0); x.len() / c];
    let stats_ptr = SharedMut(stats.as_mut_ptr());
    // SAFETY: every part is whole rows, each written in full; each task
    // writes the statistics of its own rows only.
    let y: Vec<T> = unsafe {
        par_written(x.len(), ROWS * c, |start, y| {
            let mut centred = vec![T::zero(); c];
            for (r, y) in y.chunks_mut(c).enumerate() {
                let row = start / c + r;
                let x = &x[row * c..][..c];
                let g = groups.of_row(row);
                let (w, b) = (&w[g * c..(g + 1) * c], &b[g * c..(g + 1) * c]);
                let n = T::from_f64(c as f64);
                let mean = math::sum(x) / n;
                centred.iter_mut().zip(x).for_each(|(y, &v)| *y = v - mean);
                let rstd = T::one() / (math::dot(&centred, &centred) / n + eps).sqrt();
                for (((y, &u), &w), &b) in y.iter_mut().zip(&centred).zip(w).zip(b) {
                    y.write(u * rstd * w + b);
                }
                *stats_ptr.ptr().add(row) = (mean.to_f64(), rstd.to_f64());
            }
        })
    };
    (y, stats)
}

/// One group's weight and bias gradient, summed over some of its rows.
type GroupSums<T> = (usize, Vec<T>, Vec<T>);

/// `(dx, dweight, dbias)`; `w` holds one or more rows of `c` (one per group
/// of rows). With `residual`, `dx` has it added (the gradient that reaches
/// a residual stream's input by the skip connection), in the same pass.
pub(super) fn backward<T: Float>(
    x: &[T],
    w: &[T],
    c: usize,
    dy: &[T],
    stats: &[(f64, f64)],
    residual: Option<&[T]>,
) -> (Vec<T>, Vec<T>, Vec<T>) {
    let rows = x.len() / c;
    let groups = Groups::of(rows, w.len() / c);
    let mut dx = par_zeroed(x.len());
    // Each task returns the weight and bias gradients of the groups its rows
    // belong to (one, or a few where it crosses a group boundary).
    let partial: Vec<Vec<GroupSums<T>>> = dx
        .par_chunks_mut(ROWS * c)
        .zip(x.par_chunks(ROWS * c))
        .zip(dy.par_chunks(ROWS * c))
        .zip(stats.par_chunks(ROWS))
        .enumerate()
        .map(|(task, (((dx, x), dy), stats))| {
            let n = T::from_f64(c as f64);
            let mut sums: Vec<GroupSums<T>> = Vec::new();
            let mut g = vec![T::zero(); c];
            for (r, (((dx, x), dy), &(mean, rstd))) in dx
                .chunks_mut(c)
                .zip(x.chunks(c))
                .zip(dy.chunks(c))
                .zip(stats)
                .enumerate()
            {
                let group = groups.of_row(task * ROWS + r);
                if sums.last().is_none_or(|(g, _, _)| *g != group) {
                    sums.push((group, vec![T::zero(); c], vec![T::zero(); c]));
                }
                let (_, dw, db) = sums.last_mut().expect("just pushed");
                let w = &w[group * c..(group + 1) * c];
                let (mean, rstd) = (T::from_f64(mean), T::from_f64(rstd));
                // dx holds x̂ first, g the gradient with respect to x̂.
                dx.iter_mut()
                    .zip(x)
                    .for_each(|(d, &v)| *d = (v - mean) * rstd);
                g.iter_mut()
                    .zip(dy)
                    .zip(w)
                    .for_each(|((g, &dy), &w)| *g = dy * w);
                dw.iter_mut()
                    .zip(dy)
                    .zip(dx.iter())
                    .for_each(|((dw, &dy), &xh)| *dw += dy * xh);
                db.iter_mut().zip(dy).for_each(|(db, &dy)| *db += dy);
                let (mean_g, mean_gx) = (math::sum(&g) / n, math::dot(&g, dx) / n);
                dx.iter_mut()
                    .zip(&g)
                    .for_each(|(d, &g)| *d = (g - mean_g - *d * mean_gx) * rstd);
                if let Some(residual) = residual {
                    let row = (task * ROWS + r) * c;
                    dx.iter_mut()
                        .zip(&residual[row..row + c])
                        .for_each(|(d, &s)| *d += s);
                }
            }
            sums
        })
        .collect();
    let (mut dw, mut db) = (vec![T::zero(); w.len()], vec![T::zero(); w.len()]);
    for (group, pw, pb) in partial.into_iter().flatten() {
        let range = group * c..(group + 1) * c;
        dw[range.clone()]
            .iter_mut()
            .zip(pw)
            .for_each(|(a, b)| *a += b);
        db[range].iter_mut().zip(pb).for_each(|(a, b)| *a += b);
    }
    (dx, dw, db)
}
