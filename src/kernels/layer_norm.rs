//! LayerNorm over the last dimension with weight and bias, one pass forward
//! and one backward (rows in parallel), the row statistics kept in between.

use super::{contiguous, tensor_from, with_float, with_slice, Float};
use candle_core::backend::BackendStorage;
use candle_core::WithDType;
use candle_core::{CpuStorage, CustomOp3, Layout, Shape, Tensor};
use num_traits::{One, Zero};
use rayon::prelude::*;
use std::sync::Mutex;

/// Rows per parallel task.
const ROWS: usize = 16;

/// `(x − mean) / sqrt(var + eps) · weight + bias` over the last dimension of `x`.
pub fn layer_norm(
    x: &Tensor,
    weight: &Tensor,
    bias: &Tensor,
    eps: f64,
) -> candle_core::Result<Tensor> {
    let dim = x.dim(candle_core::D::Minus1)?;
    if weight.dims() != [dim] || bias.dims() != [dim] {
        candle_core::bail!(
            "layer_norm: weight {:?} and bias {:?} must be [{dim}]",
            weight.dims(),
            bias.dims()
        );
    }
    x.contiguous()?.apply_op3(
        weight,
        bias,
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
            let c = w.len();
            let eps = T::from_f64(self.eps);
            let mut y = vec![T::zero(); x.len()];
            let mut stats = vec![(0.0, 0.0); x.len() / c];
            y.par_chunks_mut(ROWS * c)
                .zip(x.par_chunks(ROWS * c))
                .zip(stats.par_chunks_mut(ROWS))
                .for_each(|((y, x), stats)| {
                    for ((y, x), stat) in y.chunks_mut(c).zip(x.chunks(c)).zip(stats) {
                        let n = T::from_f64(c as f64);
                        let mean = x.iter().copied().sum::<T>() / n;
                        let var = x.iter().map(|&v| (v - mean) * (v - mean)).sum::<T>() / n;
                        let rstd = T::one() / (var + eps).sqrt();
                        for i in 0..c {
                            y[i] = (x[i] - mean) * rstd * w[i] + b[i];
                        }
                        *stat = (mean.to_f64(), rstd.to_f64());
                    }
                });
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
                        let (dx, dw, db) = backward(xs, w, dy, &stats);
                        let c = w.len();
                        Ok((
                            Some(tensor_from(dx, x.shape().clone())?),
                            Some(tensor_from(dw, c)?),
                            Some(tensor_from(db, c)?),
                        ))
                    })
                })
            })
        })
    }
}

fn backward<T: Float>(
    x: &[T],
    w: &[T],
    dy: &[T],
    stats: &[(f64, f64)],
) -> (Vec<T>, Vec<T>, Vec<T>) {
    let c = w.len();
    let mut dx = vec![T::zero(); x.len()];
    let (dw, db) = dx
        .par_chunks_mut(ROWS * c)
        .zip(x.par_chunks(ROWS * c))
        .zip(dy.par_chunks(ROWS * c))
        .zip(stats.par_chunks(ROWS))
        .fold(
            || (vec![T::zero(); c], vec![T::zero(); c]),
            |(mut dw, mut db), (((dx, x), dy), stats)| {
                let n = T::from_f64(c as f64);
                for (((dx, x), dy), &(mean, rstd)) in dx
                    .chunks_mut(c)
                    .zip(x.chunks(c))
                    .zip(dy.chunks(c))
                    .zip(stats)
                {
                    let (mean, rstd) = (T::from_f64(mean), T::from_f64(rstd));
                    let mut sum_g = T::zero();
                    let mut sum_gx = T::zero();
                    for i in 0..c {
                        let xhat = (x[i] - mean) * rstd;
                        let g = dy[i] * w[i];
                        sum_g += g;
                        sum_gx += g * xhat;
                        dw[i] += dy[i] * xhat;
                        db[i] += dy[i];
                    }
                    let (mean_g, mean_gx) = (sum_g / n, sum_gx / n);
                    for i in 0..c {
                        let xhat = (x[i] - mean) * rstd;
                        dx[i] = (dy[i] * w[i] - mean_g - xhat * mean_gx) * rstd;
                    }
                }
                (dw, db)
            },
        )
        .reduce(
            || (vec![T::zero(); c], vec![T::zero(); c]),
            |(mut aw, mut ab), (bw, bb)| {
                aw.iter_mut().zip(bw).for_each(|(a, b)| *a += b);
                ab.iter_mut().zip(bb).for_each(|(a, b)| *a += b);
                (aw, ab)
            },
        );
    (dx, dw, db)
}
