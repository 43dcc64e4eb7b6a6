//! Dropout as one op: each element kept with probability `1 − p` and scaled
//! by `1/(1 − p)`, the mask a hash of (seed, element index), so the backward
//! pass regenerates it and nothing is stored.

use super::math::{dropout_params, keep};
use super::{contiguous, par_written, tensor_from, with_float, with_slice, Float};
use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, CustomOp1, Layout, Shape, Tensor, WithDType};

/// Elements per parallel task.
const CHUNK: usize = 1 << 14;

/// `x` with each element zeroed with probability `p` (mask drawn from `seed`)
/// and the others scaled by `1/(1 − p)`.
pub fn dropout(x: &Tensor, p: f64, seed: u64) -> candle_core::Result<Tensor> {
    if !(0.0..1.0).contains(&p) {
        candle_core::bail!("dropout: probability {p} is not in [0, 1)");
    }
    x.contiguous()?.apply_op1(Dropout { p, seed })
}

struct Dropout {
    p: f64,
    seed: u64,
}

/// `out[i] = x[i] · mask(i)` for the mask of (`p`, `seed`).
pub(super) fn apply_mask<T: Float>(x: &[T], p: f64, seed: u64) -> Vec<T> {
    let (scale, threshold) = dropout_params::<T>(p);
    // SAFETY: each part is written element by element.
    unsafe {
        par_written(x.len(), CHUNK, |start, o| {
            for (i, (o, &x)) in o.iter_mut().zip(&x[start..]).enumerate() {
                o.write(if keep(seed, (start + i) as u64, threshold) {
                    x * scale
                } else {
                    T::zero()
                });
            }
        })
    }
}

impl CustomOp1 for Dropout {
    fn name(&self) -> &'static str {
        "seer-dropout"
    }

    fn cpu_fwd(
        &self,
        storage: &CpuStorage,
        layout: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        with_float!(storage.dtype(), "dropout", T => {
            let x = contiguous::<T>(storage, layout, "dropout")?;
            Ok((T::to_cpu_storage_owned(apply_mask(x, self.p, self.seed)), layout.shape().clone()))
        })
    }

    fn bwd(
        &self,
        arg: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<Option<Tensor>> {
        with_float!(arg.dtype(), "dropout", T => {
            with_slice::<T, _>(grad, "dropout", |dy| tensor_from(apply_mask(dy, self.p, self.seed), arg.shape().clone()).map(Some))
        })
    }
}
