//! SwiGLU's gate: `silu(gate) ⊙ up` from packed `[gate | up]` rows (one
//! product makes both), and its backward pass back to those rows: the Llama
//! layer's passes, and [`swiglu`], the same as an op of its own.

use super::{contiguous, par_written, tensor_from, with_float, with_slice, Float};
use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, CustomOp1, Layout, Shape, Tensor, WithDType};

/// Rows per parallel task.
const ROWS: usize = 16;

/// The logistic sigmoid.
fn sigmoid<T: Float>(x: T) -> T {
    T::one() / (T::one() + (-x).exp())
}

/// `silu(gate) ⊙ up` for packed rows `[gate | up]` (`2·f` wide): `[n, f]`.
pub(super) fn forward<T: Float>(gate_up: &[T], f: usize) -> Vec<T> {
    let n = gate_up.len() / (2 * f);
    // SAFETY: each part is whole rows, every element written.
    unsafe {
        par_written(n * f, ROWS * f, |start, out| {
            for (r, out) in out.chunks_mut(f).enumerate() {
                let row = &gate_up[(start / f + r) * 2 * f..][..2 * f];
                let (gate, up) = row.split_at(f);
                for ((o, &g), &u) in out.iter_mut().zip(gate).zip(up) {
                    o.write(g * sigmoid(g) * u);
                }
            }
        })
    }
}

/// The gradient with respect to the packed `[gate | up]` rows, given the
/// gradient `dh` (`[n, f]`) of the output.
pub(super) fn backward<T: Float>(dh: &[T], gate_up: &[T], f: usize) -> Vec<T> {
    // SAFETY: each part is whole rows, every element written.
    unsafe {
        par_written(gate_up.len(), ROWS * 2 * f, |start, out| {
            for (r, out) in out.chunks_mut(2 * f).enumerate() {
                let row = start / (2 * f) + r;
                let (gate, up) = gate_up[row * 2 * f..][..2 * f].split_at(f);
                let dh = &dh[row * f..][..f];
                let (d_gate, d_up) = out.split_at_mut(f);
                for i in 0..f {
                    let (g, u) = (gate[i], up[i]);
                    let s = sigmoid(g);
                    let silu = g * s;
                    d_up[i].write(dh[i] * silu);
                    d_gate[i].write(dh[i] * u * s * (T::one() + g * (T::one() - s)));
                }
            }
        })
    }
}

/// `silu(gate) ⊙ up` for `gate_up` (`[..., 2·f]`, the gate's `f` columns
/// first): `[..., f]`.
pub fn swiglu(gate_up: &Tensor) -> candle_core::Result<Tensor> {
    let width = gate_up.dim(candle_core::D::Minus1)?;
    if width == 0 || !width.is_multiple_of(2) {
        candle_core::bail!(
            "swiglu: the last dimension {width} is not [gate | up], two equal halves"
        );
    }
    gate_up.contiguous()?.apply_op1(SwiGlu)
}

struct SwiGlu;

impl CustomOp1 for SwiGlu {
    fn name(&self) -> &'static str {
        "seer-swiglu"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let mut dims = l.shape().dims().to_vec();
        let f = dims.last().copied().unwrap_or(0) / 2;
        *dims.last_mut().expect("rank >= 1") = f;
        with_float!(s.dtype(), "swiglu", T => {
            let x = contiguous::<T>(s, l, "swiglu")?;
            Ok((T::to_cpu_storage_owned(forward(x, f)), Shape::from(dims)))
        })
    }

    fn bwd(
        &self,
        arg: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<Option<Tensor>> {
        let f = arg.dim(candle_core::D::Minus1)? / 2;
        with_float!(arg.dtype(), "swiglu", T => {
            with_slice::<T, _>(arg, "swiglu", |x| {
                with_slice::<T, _>(grad, "swiglu", |dh| {
                    tensor_from(backward(dh, x, f), arg.shape().clone()).map(Some)
                })
            })
        })
    }
}
