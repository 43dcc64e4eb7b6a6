//! adaLN-Zero's gated residual as one op: `x + gate ⊙ y` for `x` and `y` of
//! `[batch, n, dim]` and one `gate` of `[batch, dim]` per item. Candle's
//! composite (a broadcast multiply, then an add) makes two passes forward,
//! and backward a broadcast multiply, a product and a reduction; here each
//! direction is one parallel pass: `dx = g`, `dy = g ⊙ gate`,
//! `dgate = Σₙ g ⊙ y`.

use super::{contiguous, par_written, tensor_from, with_float, with_slice, Float};
use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, CustomOp3, Layout, Shape, Tensor, WithDType};
use rayon::prelude::*;

/// Rows of `dim` per parallel task.
const ROWS: usize = 64;

/// `x + gate ⊙ y`, the gate broadcast over the `n` positions of each item.
pub fn gated_residual(x: &Tensor, y: &Tensor, gate: &Tensor) -> candle_core::Result<Tensor> {
    let (b, _, d) = x.dims3()?;
    if y.dims() != x.dims() || gate.dims() != [b, d] {
        candle_core::bail!(
            "gated_residual: x {:?}, y {:?} and gate {:?} do not fit",
            x.dims(),
            y.dims(),
            gate.dims()
        );
    }
    x.contiguous()?
        .apply_op3(&y.contiguous()?, &gate.contiguous()?, GatedResidual)
}

struct GatedResidual;

/// `base[r] + gate[item of r] ⊙ a[r]` (or without `base`) over the rows of
/// `a`, each `d = gate row` long, `n` rows per item.
pub(super) fn gated_rows<T: Float>(
    base: Option<&[T]>,
    a: &[T],
    gate: &[T],
    d: usize,
    n: usize,
) -> Vec<T> {
    // SAFETY: every part is whole rows, each written in full.
    unsafe {
        par_written(a.len(), ROWS * d, |start, out| {
            for (k, o) in out.chunks_mut(d).enumerate() {
                let row = start / d + k;
                let (g, a) = (&gate[row / n * d..][..d], &a[row * d..][..d]);
                match base {
                    Some(base) => {
                        let x = &base[row * d..][..d];
                        for j in 0..d {
                            o[j].write(x[j] + g[j] * a[j]);
                        }
                    }
                    None => {
                        for j in 0..d {
                            o[j].write(g[j] * a[j]);
                        }
                    }
                }
            }
        })
    }
}

/// `Σₙ g ⊙ y` per item: `[batch, d]`.
pub(super) fn gate_grad<T: Float>(g: &[T], y: &[T], batch: usize, d: usize) -> Vec<T> {
    let item = g.len() / batch.max(1);
    let mut out = vec![T::zero(); batch * d];
    out.par_chunks_mut(d)
        .zip(g.par_chunks(item).zip(y.par_chunks(item)))
        .for_each(|(o, (g, y))| {
            for (g, y) in g.chunks(d).zip(y.chunks(d)) {
                for j in 0..d {
                    o[j] += g[j] * y[j];
                }
            }
        });
    out
}

impl CustomOp3 for GatedResidual {
    fn name(&self) -> &'static str {
        "seer-gated-residual"
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
        let (_, n, d) = l1.shape().dims3()?;
        with_float!(s1.dtype(), "gated_residual", T => {
            let x = contiguous::<T>(s1, l1, "gated_residual")?;
            let y = contiguous::<T>(s2, l2, "gated_residual")?;
            let gate = contiguous::<T>(s3, l3, "gated_residual")?;
            let out = gated_rows(Some(x), y, gate, d, n);
            Ok((T::to_cpu_storage_owned(out), l1.shape().clone()))
        })
    }

    fn bwd(
        &self,
        _x: &Tensor,
        y: &Tensor,
        gate: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let (b, n, d) = y.dims3()?;
        with_float!(y.dtype(), "gated_residual", T => {
            with_slice::<T, _>(grad, "gated_residual", |g| {
                let (dy, dgate) = with_slice::<T, _>(y, "gated_residual", |y| {
                    with_slice::<T, _>(gate, "gated_residual", |gate| {
                        Ok((gated_rows(None, g, gate, d, n), gate_grad(g, y, b, d)))
                    })
                })?;
                Ok((
                    Some(grad.clone()),
                    Some(tensor_from(dy, y.shape().clone())?),
                    Some(tensor_from(dgate, gate.shape().clone())?),
                ))
            })
        })
    }
}
