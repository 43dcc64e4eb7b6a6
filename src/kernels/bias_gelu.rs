//! `gelu(h + bias)` in one pass, GELU with the tanh approximation (GPT-2's
//! `gelu_new`), for the MLP's first layer; the backward pass gives the
//! gradients of `h` and of the bias.

use super::{contiguous, tensor_from, with_float, with_slice, Float};
use candle_core::backend::BackendStorage;
use candle_core::WithDType;
use candle_core::{CpuStorage, CustomOp2, Layout, Shape, Tensor};
use num_traits::{One, Zero};
use rayon::prelude::*;

/// Elements per parallel task.
const CHUNK: usize = 1 << 14;
const SQRT_2_OVER_PI: f64 = 0.797_884_560_802_865_4;
const CUBIC: f64 = 0.044_715;

/// `gelu(h + bias)` with `bias` broadcast over the last dimension of `h`.
pub fn bias_gelu(h: &Tensor, bias: &Tensor) -> candle_core::Result<Tensor> {
    let dim = h.dim(candle_core::D::Minus1)?;
    if bias.dims() != [dim] {
        candle_core::bail!("bias_gelu: bias {:?} must be [{dim}]", bias.dims());
    }
    h.contiguous()?.apply_op2(bias, BiasGelu)
}

struct BiasGelu;

/// Rows per task such that a task holds about `CHUNK` elements.
fn rows_per_task(width: usize) -> usize {
    (CHUNK / width).max(1)
}

impl CustomOp2 for BiasGelu {
    fn name(&self) -> &'static str {
        "seer-bias-gelu"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        with_float!(s1.dtype(), "bias_gelu", T => {
            let h = contiguous::<T>(s1, l1, "bias_gelu")?;
            let bias = contiguous::<T>(s2, l2, "bias_gelu")?;
            let f = bias.len();
            let (a, k, half) = (T::from_f64(SQRT_2_OVER_PI), T::from_f64(CUBIC), T::from_f64(0.5));
            let mut y = vec![T::zero(); h.len()];
            let rows = rows_per_task(f) * f;
            y.par_chunks_mut(rows).zip(h.par_chunks(rows)).for_each(|(y, h)| {
                for (y, h) in y.chunks_mut(f).zip(h.chunks(f)) {
                    for i in 0..f {
                        let u = h[i] + bias[i];
                        y[i] = half * u * (T::one() + (a * (u + k * u * u * u)).tanh());
                    }
                }
            });
            Ok((T::to_cpu_storage_owned(y), l1.shape().clone()))
        })
    }

    fn bwd(
        &self,
        h: &Tensor,
        bias: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>)> {
        with_float!(h.dtype(), "bias_gelu", T => {
            with_slice::<T, _>(h, "bias_gelu", |hs| {
                with_slice::<T, _>(bias, "bias_gelu", |b| {
                    with_slice::<T, _>(grad, "bias_gelu", |dy| {
                        let (dh, db) = backward(hs, b, dy);
                        Ok((Some(tensor_from(dh, h.shape().clone())?), Some(tensor_from(db, b.len())?)))
                    })
                })
            })
        })
    }
}

fn backward<T: Float>(h: &[T], bias: &[T], dy: &[T]) -> (Vec<T>, Vec<T>) {
    let f = bias.len();
    let (a, k, half) = (
        T::from_f64(SQRT_2_OVER_PI),
        T::from_f64(CUBIC),
        T::from_f64(0.5),
    );
    let three_k = k + k + k;
    let mut dh = vec![T::zero(); h.len()];
    let rows = rows_per_task(f) * f;
    let db = dh
        .par_chunks_mut(rows)
        .zip(h.par_chunks(rows))
        .zip(dy.par_chunks(rows))
        .fold(
            || vec![T::zero(); f],
            |mut db, ((dh, h), dy)| {
                for ((dh, h), dy) in dh.chunks_mut(f).zip(h.chunks(f)).zip(dy.chunks(f)) {
                    for i in 0..f {
                        let u = h[i] + bias[i];
                        let t = (a * (u + k * u * u * u)).tanh();
                        let slope = half * (T::one() + t)
                            + half * u * (T::one() - t * t) * a * (T::one() + three_k * u * u);
                        dh[i] = dy[i] * slope;
                        db[i] += dh[i];
                    }
                }
                db
            },
        )
        .reduce(
            || vec![T::zero(); f],
            |mut a, b| {
                a.iter_mut().zip(b).for_each(|(a, b)| *a += b);
                a
            },
        );
    (dh, db)
}
