//! RMSNorm over the last dimension, `x / sqrt(mean(x²) + eps) · weight`
//! (Llama's, as transformers' `LlamaRMSNorm` computes it), one pass forward
//! and one backward (rows in parallel), each row's `1/rms` kept in between.
//! The passes are also used one after another by the Llama block
//! (`llama_block.rs`), with the residual stream's gradient added in the
//! backward pass.

use super::{contiguous, math, par_written, tensor_from, with_float, with_slice, Float, SharedMut};
use candle_core::backend::BackendStorage;
use candle_core::WithDType;
use candle_core::{CpuStorage, CustomOp2, Layout, Shape, Tensor};
use rayon::prelude::*;
use std::sync::Mutex;

/// Rows per parallel task.
const ROWS: usize = 16;

/// RMSNorm of the rows of `x` (`[..., dim]`) with `weight` (`[dim]`).
pub fn rms_norm(x: &Tensor, weight: &Tensor, eps: f64) -> candle_core::Result<Tensor> {
    let dim = x.dim(candle_core::D::Minus1)?;
    if weight.dims() != [dim] {
        candle_core::bail!(
            "rms_norm: weight {:?} must be [{dim}] for x {:?}",
            weight.dims(),
            x.dims()
        );
    }
    x.contiguous()?.apply_op2(
        &weight.contiguous()?,
        RmsNorm {
            eps,
            rstd: Mutex::new(Vec::new()),
        },
    )
}

struct RmsNorm {
    eps: f64,
    /// `1/rms` of every row, saved by the forward pass.
    rstd: Mutex<Vec<f64>>,
}

impl CustomOp2 for RmsNorm {
    fn name(&self) -> &'static str {
        "seer-rms-norm"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        with_float!(s1.dtype(), "rms_norm", T => {
            let x = contiguous::<T>(s1, l1, "rms_norm")?;
            let w = contiguous::<T>(s2, l2, "rms_norm")?;
            let (y, rstd) = forward(x, w, self.eps);
            *self.rstd.lock().expect("rms_norm state") = rstd;
            Ok((T::to_cpu_storage_owned(y), l1.shape().clone()))
        })
    }

    fn bwd(
        &self,
        x: &Tensor,
        weight: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>)> {
        let rstd = self.rstd.lock().expect("rms_norm state");
        with_float!(x.dtype(), "rms_norm", T => {
            with_slice::<T, _>(x, "rms_norm", |xs| {
                with_slice::<T, _>(weight, "rms_norm", |w| {
                    with_slice::<T, _>(grad, "rms_norm", |dy| {
                        let (dx, dw) = backward(xs, w, dy, &rstd, None);
                        Ok((
                            Some(tensor_from(dx, x.shape().clone())?),
                            Some(tensor_from(dw, weight.shape().clone())?),
                        ))
                    })
                })
            })
        })
    }
}

/// `(y, rstd)`: the normalised rows of `x` (as wide as `w`) and each row's
/// `1 / sqrt(mean(x²) + eps)`.
pub(super) fn forward<T: Float>(x: &[T], w: &[T], eps: f64) -> (Vec<T>, Vec<f64>) {
    let c = w.len();
    let mut rstd = vec![0.0; x.len() / c];
    let rstd_ptr = SharedMut(rstd.as_mut_ptr());
    let (n, eps) = (T::from_f64(c as f64), T::from_f64(eps));
    // SAFETY: every part is whole rows, each written in full; each task
    // writes the statistics of its own rows only.
    let y: Vec<T> = unsafe {
        par_written(x.len(), ROWS * c, |start, y| {
            for (r, y) in y.chunks_mut(c).enumerate() {
                let row = start / c + r;
                let x = &x[row * c..][..c];
                let inv = T::one() / (math::dot(x, x) / n + eps).sqrt();
                for ((y, &v), &w) in y.iter_mut().zip(x).zip(w) {
                    y.write(v * inv * w);
                }
                *rstd_ptr.ptr().add(row) = inv.to_f64();
            }
        })
    };
    (y, rstd)
}

/// `(dx, dweight)` for the upstream gradient `dy`; with `residual`, `dx`
/// has it added (the gradient that reaches a residual stream's input by the
/// skip connection), in the same pass.
pub(super) fn backward<T: Float>(
    x: &[T],
    w: &[T],
    dy: &[T],
    rstd: &[f64],
    residual: Option<&[T]>,
) -> (Vec<T>, Vec<T>) {
    let c = w.len();
    let n = T::from_f64(c as f64);
    let mut dx = vec![T::zero(); x.len()];
    let partial: Vec<Vec<T>> = dx
        .par_chunks_mut(ROWS * c)
        .zip(x.par_chunks(ROWS * c))
        .zip(dy.par_chunks(ROWS * c))
        .zip(rstd.par_chunks(ROWS))
        .enumerate()
        .map(|(task, (((dx, x), dy), rstd))| {
            let mut dw = vec![T::zero(); c];
            let mut g = vec![T::zero(); c];
            for (r, (((dx, x), dy), &inv)) in dx
                .chunks_mut(c)
                .zip(x.chunks(c))
                .zip(dy.chunks(c))
                .zip(rstd)
                .enumerate()
            {
                let inv = T::from_f64(inv);
                // dx holds x̂ first, g the gradient with respect to x̂.
                dx.iter_mut().zip(x).for_each(|(d, &v)| *d = v * inv);
                g.iter_mut()
                    .zip(dy)
                    .zip(w)
                    .for_each(|((g, &dy), &w)| *g = dy * w);
                dw.iter_mut()
                    .zip(dy)
                    .zip(dx.iter())
                    .for_each(|((dw, &dy), &xh)| *dw += dy * xh);
                let mean_gx = math::dot(&g, dx) / n;
                dx.iter_mut()
                    .zip(&g)
                    .for_each(|(d, &g)| *d = (g - *d * mean_gx) * inv);
                if let Some(residual) = residual {
                    let row = (task * ROWS + r) * c;
                    dx.iter_mut()
                        .zip(&residual[row..row + c])
                        .for_each(|(d, &s)| *d += s);
                }
            }
            dw
        })
        .collect();
    let mut dw = vec![T::zero(); c];
    for part in partial {
        dw.iter_mut().zip(part).for_each(|(a, b)| *a += b);
    }
    (dx, dw)
}
