//! The linear layer as one op: `y = x·W + b`, optionally followed by GELU
//! (the MLP's first layer), for `x` of any rank `[..., in]`.
//!
//! The bias is written into the output first and the product accumulated on
//! top by `gemm`, so the bias add costs no pass of its own; GELU then
//! writes a second buffer, the pre-activation being kept for the backward
//! pass. The backward pass gives `dx = du·Wᵀ`, `dW = xᵀ·du` and
//! `db = Σ du` with two `gemm` calls side by side and one reduction, where
//! `du` is `dy` times GELU's slope at the saved pre-activation. The passes
//! are also used one after another by the whole-block op (`block.rs`).

use super::math::{gelu, gelu_grad, Weight};
use super::{
    contiguous, gemm_split, par_written, tensor_from, with_float, with_float_weights, with_slice,
    Float, SharedMut,
};
use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, CustomOp3, DType, Layout, Shape, Tensor, WithDType};
use num_traits::Zero;
use rayon::prelude::*;
use std::mem::MaybeUninit;
use std::sync::Mutex;

/// How the weight matrix is laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WeightLayout {
    /// `[in, out]`: GPT-2's `Conv1D`.
    InOut,
    /// `[out, in]`: a token embedding used as the output layer.
    OutIn,
}

/// `x·W + b` (then GELU if `gelu`) over the last dimension of `x`.
pub fn linear(
    x: &Tensor,
    weight: &Tensor,
    bias: &Tensor,
    layout: WeightLayout,
    gelu: bool,
) -> candle_core::Result<Tensor> {
    let d_in = x.dim(candle_core::D::Minus1)?;
    let (rows, cols) = weight.dims2()?;
    let (w_in, w_out) = match layout {
        WeightLayout::InOut => (rows, cols),
        WeightLayout::OutIn => (cols, rows),
    };
    if w_in != d_in || bias.dims() != [w_out] {
        candle_core::bail!(
            "linear: input [.., {d_in}], weight {:?} ({layout:?}) and bias {:?} do not fit",
            weight.dims(),
            bias.dims()
        );
    }
    let op = Linear {
        layout,
        gelu,
        pre_activation: Mutex::new(None),
    };
    x.contiguous()?.apply_op3(&weight.contiguous()?, bias, op)
}

struct Linear {
    layout: WeightLayout,
    gelu: bool,
    /// `x·W + b` before GELU, saved by the forward pass when `gelu`.
    pre_activation: Mutex<Option<CpuStorage>>,
}

/// Rows per parallel task for element-wise passes over `width`-wide rows.
fn rows_per_task(width: usize) -> usize {
    ((1 << 14) / width.max(1)).max(1)
}

impl Linear {
    /// `x·W + b` (then GELU) for `x` of `shape`, with W's elements widened to
    /// `T` as they are read.
    fn forward<T: Float, W: Weight<T>>(
        &self,
        x: &[T],
        w: &[W],
        b: &[T],
        shape: &Shape,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let (d_out, d_in) = (b.len(), shape.dims()[shape.rank() - 1]);
        let y = product(x, w, self.layout, d_in, d_out, start_at(b));
        let y = if self.gelu {
            let out = gelu_rows(&y, d_out);
            // y holds the pre-activation, kept for the backward pass.
            *self.pre_activation.lock().expect("linear state") = Some(T::to_cpu_storage_owned(y));
            out
        } else {
            y
        };
        let mut dims = shape.dims().to_vec();
        *dims.last_mut().expect("rank >= 1") = d_out;
        Ok((T::to_cpu_storage_owned(y), Shape::from(dims)))
    }
}

/// `(row stride, column stride)` of W seen as `[in, out]`, and of Wᵀ seen as
/// `[out, in]`.
fn strides(layout: WeightLayout, d_in: usize, d_out: usize) -> ((usize, usize), (usize, usize)) {
    match layout {
        WeightLayout::InOut => ((d_out, 1), (1, d_out)),
        WeightLayout::OutIn => ((1, d_in), (d_in, 1)),
    }
}

/// `start + x·W` for the rows of `x` (`[n, d_in]`), where `start(row, out)`
/// first writes every element of output row `row` (the bias, or the bias
/// plus a residual), in parallel; the product is then accumulated on top,
/// so the start costs no pass of its own.
pub(super) fn product<T: Float, W: Weight<T>>(
    x: &[T],
    w: &[W],
    layout: WeightLayout,
    d_in: usize,
    d_out: usize,
    start: impl Fn(usize, &mut [MaybeUninit<T>]) + Sync,
) -> Vec<T> {
    let n = x.len() / d_in;
    let rows = rows_per_task(d_out);
    // SAFETY: every part is whole rows, each written in full by `start`.
    let mut y: Vec<T> = unsafe {
        par_written(n * d_out, rows * d_out, |first, part| {
            for (r, row) in part.chunks_mut(d_out).enumerate() {
                start(first / d_out + r, row);
            }
        })
    };
    if n <= GEMV_ROWS {
        match layout {
            WeightLayout::OutIn => gemv_out_in(x, w, d_in, &mut y),
            WeightLayout::InOut => gemv_in_out(x, w, d_in, &mut y),
        }
    } else {
        let w = W::widen_all(w);
        let (w_strides, _) = strides(layout, d_in, d_out);
        // SAFETY: x is [n, d_in], W [d_in, d_out] by the strides, y [n, d_out]
        // and does not overlap either.
        unsafe {
            gemm_split(
                rayon::current_num_threads(),
                n,
                d_out,
                d_in,
                (y.as_mut_ptr(), d_out, 1),
                true,
                (x.as_ptr(), d_in, 1),
                (w.as_ptr(), w_strides.0, w_strides.1),
                T::one(),
            );
        }
    }
    y
}

/// A `start` for [`product`] that writes `b` into every row: the bias.
pub(super) fn start_at<T: Float>(b: &[T]) -> impl Fn(usize, &mut [MaybeUninit<T>]) + Sync + '_ {
    move |_, row| {
        for (o, &b) in row.iter_mut().zip(b) {
            o.write(b);
        }
    }
}

/// GELU of every element of `u` (rows of `width`), into a fresh buffer.
pub(super) fn gelu_rows<T: Float>(u: &[T], width: usize) -> Vec<T> {
    // SAFETY: each part is written element by element.
    unsafe {
        par_written(u.len(), rows_per_task(width) * width, |start, part| {
            for (o, &u) in part.iter_mut().zip(&u[start..]) {
                o.write(gelu(u));
            }
        })
    }
}

/// `dy` times GELU's slope at the pre-activation `u`: the gradient with
/// respect to `u` (rows of `width`).
pub(super) fn gelu_backward<T: Float>(dy: &[T], u: &[T], width: usize) -> Vec<T> {
    // SAFETY: each part is written element by element.
    unsafe {
        par_written(dy.len(), rows_per_task(width) * width, |start, g| {
            for ((g, &dy), &u) in g.iter_mut().zip(&dy[start..]).zip(&u[start..]) {
                g.write(dy * gelu_grad(u));
            }
        })
    }
}

impl CustomOp3 for Linear {
    fn name(&self) -> &'static str {
        "seer-linear"
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
        with_float_weights!("linear", (s1, l1), (s2, l2), (s3, l3), |x, w, b| self
            .forward(x, w, b, l1.shape()))
    }

    fn bwd(
        &self,
        x: &Tensor,
        weight: &Tensor,
        bias: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        if weight.dtype() == DType::BF16 {
            candle_core::bail!(
                "linear: bf16 weights are for inference only; load the model in f32 to train it"
            );
        }
        let saved = self.pre_activation.lock().expect("linear state");
        with_float!(x.dtype(), "linear", T => {
            with_slice::<T, _>(x, "linear", |xs| {
                with_slice::<T, _>(weight, "linear", |w| {
                    with_slice::<T, _>(grad, "linear", |dy| {
                        let d_out = bias.dims1()?;
                        let pre = match saved.as_ref() {
                            Some(s) => Some(T::cpu_storage_as_slice(s)?),
                            None => None,
                        };
                        let gated = pre.map(|u| gelu_backward(dy, u, d_out));
                        let du = gated.as_deref().unwrap_or(dy);
                        let mut db = vec![T::zero(); d_out];
                        let (mut dx, mut dw) = (Vec::with_capacity(xs.len()), Vec::with_capacity(w.len()));
                        // SAFETY: both buffers have room for their gradients,
                        // which write every element before they are read.
                        unsafe {
                            backward_into(xs, w, du, self.layout, Some(dx.as_mut_ptr()), dw.as_mut_ptr(), &mut db);
                            dx.set_len(xs.len());
                            dw.set_len(w.len());
                        }
                        Ok((
                            Some(tensor_from(dx, x.shape().clone())?),
                            Some(tensor_from(dw, weight.shape().clone())?),
                            Some(tensor_from(db, d_out)?),
                        ))
                    })
                })
            })
        })
    }
}

/// Inputs with at most this many rows (generation: one token at a time)
/// stream the weights once (`gemv_in_out`, `gemv_out_in`) instead of going
/// through `gemm`, which packs them first.
const GEMV_ROWS: usize = 4;

/// Rows of W that `gemv_in_out` takes through every input row before moving
/// on (a multiple of four, and at most a few hundred KB: it stays in L2).
const GEMV_SLICE: usize = 64;

/// Outputs per parallel task in `gemv_out_in`.
const GEMV_COLUMNS: usize = 256;

/// `y += x · Wᵀ` for a few rows `x` (`rows × d_in`) and W laid out
/// `[out, in]` (the output layer): each output is a dot product with a
/// contiguous row of W, so the weights stream through once.
fn gemv_out_in<T: Float, W: Weight<T>>(x: &[T], w: &[W], d_in: usize, y: &mut [T]) {
    let rows = x.len() / d_in;
    let d_out = y.len() / rows;
    let inputs: Vec<_> = x.chunks(d_in).map(W::kernel_order).collect();
    let mut dots = vec![T::zero(); d_out * rows];
    dots.par_chunks_mut(GEMV_COLUMNS * rows)
        .enumerate()
        .for_each(|(blk, chunk)| {
            for (j, out) in chunk.chunks_mut(rows).enumerate() {
                let o = blk * GEMV_COLUMNS + j;
                let w_row = &w[o * d_in..(o + 1) * d_in];
                for (v, input) in out.iter_mut().zip(&inputs) {
                    *v = W::dot_ordered(w_row, input);
                }
            }
        });
    for (o, values) in dots.chunks(rows).enumerate() {
        for (r, &v) in values.iter().enumerate() {
            y[r * d_out + o] += v;
        }
    }
}

/// `y += x · W` for a few rows `x` (`rows × d_in`) and W laid out
/// `[in, out]`: each thread streams a contiguous band of W's rows into its
/// own partial sums of the whole output, and the bands are added at the end.
fn gemv_in_out<T: Float, W: Weight<T>>(x: &[T], w: &[W], d_in: usize, y: &mut [T]) {
    let rows = x.len() / d_in;
    let d_out = y.len() / rows;
    let bands = rayon::current_num_threads().min(d_in).max(1);
    let band = d_in.div_ceil(bands);
    let partials: Vec<Vec<T>> = (0..bands)
        .into_par_iter()
        .map(|b| {
            let (start, end) = (b * band, ((b + 1) * band).min(d_in));
            let w_rows: Vec<&[W]> = (start..end)
                .map(|i| &w[i * d_out..(i + 1) * d_out])
                .collect();
            let mut acc = vec![T::zero(); rows * d_out];
            // A few input rows share each slice of W while it is in cache.
            for (c, slice) in w_rows.chunks(GEMV_SLICE).enumerate() {
                let first = start + c * GEMV_SLICE;
                for (r, sums) in acc.chunks_mut(d_out).enumerate() {
                    let inputs = &x[r * d_in + first..r * d_in + first + slice.len()];
                    W::accumulate_rows(sums, slice, inputs);
                }
            }
            acc
        })
        .collect();
    for partial in partials {
        for (sums, out) in partial.chunks(d_out).zip(y.chunks_mut(d_out)) {
            W::add_from_kernel_order(sums, out);
        }
    }
}

/// The gradients of `y = x·W + b` (`x`: `[n, d_in]`) given `du` (`[n,
/// d_out]`), written over `dx` (`[n, d_in]`, when wanted), `dw` (W's layout)
/// and `db` (`[d_out]`). The two products take the same number of FLOPs, so
/// they run side by side, each on half the threads (on two cores: one whole
/// `gemm` each, one parallel region for the lot), the bias's column sum
/// beside the input gradient.
///
/// # Safety
/// `dx` must point to `x.len()` and `dw` to `w.len()` writable elements
/// (initialised or not) that overlap no input.
pub(super) unsafe fn backward_into<T: Float>(
    x: &[T],
    w: &[T],
    du: &[T],
    layout: WeightLayout,
    dx: Option<*mut T>,
    dw: *mut T,
    db: &mut [T],
) {
    let d_out = db.len();
    let d_in = w.len() / d_out;
    let n = x.len() / d_in;
    assert!(du.len() == n * d_out, "linear: gradient shapes");
    let half = (rayon::current_num_threads() / 2).max(1);
    let (_, wt) = strides(layout, d_in, d_out);
    let (dx, dw) = (dx.map(SharedMut), SharedMut(dw));
    let input_side = || {
        db.copy_from_slice(&column_sums(du, d_out));
        if let Some(dx) = dx {
            // SAFETY: the caller vouches for dx; du is [n, d_out], Wᵀ [d_out, d_in].
            unsafe {
                gemm_split(
                    half,
                    n,
                    d_in,
                    d_out,
                    (dx.ptr(), d_in, 1),
                    false,
                    (du.as_ptr(), d_out, 1),
                    (w.as_ptr(), wt.0, wt.1),
                    T::one(),
                )
            };
        }
    };
    // SAFETY: the caller vouches for dw; xᵀ is [d_in, n], du [n, d_out].
    let weight_side = || unsafe {
        match layout {
            WeightLayout::InOut => gemm_split(
                half,
                d_in,
                d_out,
                n,
                (dw.ptr(), d_out, 1),
                false,
                (x.as_ptr(), 1, d_in),
                (du.as_ptr(), d_out, 1),
                T::one(),
            ),
            WeightLayout::OutIn => gemm_split(
                half,
                d_out,
                d_in,
                n,
                (dw.ptr(), d_in, 1),
                false,
                (du.as_ptr(), 1, d_out),
                (x.as_ptr(), d_in, 1),
                T::one(),
            ),
        }
    };
    rayon::join(input_side, weight_side);
}

/// The sums of the columns of `rows` (`width` wide), on the calling thread.
fn column_sums<T: Float>(rows: &[T], width: usize) -> Vec<T> {
    let mut sums = vec![T::zero(); width];
    for row in rows.chunks(width) {
        sums.iter_mut().zip(row).for_each(|(a, &b)| *a += b);
    }
    sums
}
