//! seer's fused CPU kernels, each a candle custom op with its own backward
//! pass: one allocation and one (parallel) pass where candle's composite ops
//! take several of each.
//!
//! - `attention`: multi-head self-attention on the fused `[q | k | v]`
//!   projection, causal or bidirectional, tiled so that the T×T score matrix
//!   is never stored, with dropout masks regenerated in the backward pass;
//!   over right-padded batches; causal grouped-query attention (query
//!   heads sharing key/value heads); and cross-attention to a separate context.
//! - `block`: a whole pre-LayerNorm Transformer block (LayerNorm, attention,
//!   projection, residual, LayerNorm, GELU MLP, residual) as one op, built
//!   from the passes of the kernels below.
//! - `dit_block`: the diffusion Transformer's whole block (adaLN-Zero
//!   modulation, self-attention, cross-attention to a caption, GELU MLP,
//!   gated residuals) as one op, built from the same passes (for
//!   inspection, also with its cross-attention weights).
//! - `llama_block`: a whole Llama decoder layer (RMSNorm, q/k/v
//!   projections, RoPE, causal grouped-query attention, output projection,
//!   residual, RMSNorm, SwiGLU MLP, residual) as one op, for training.
//! - `layer_norm`: LayerNorm with weight and optional bias.
//! - `rms_norm`: RMSNorm with a weight; `rope`: rotary position embeddings
//!   (`rotate_half`); `swiglu`: `silu(gate) ⊙ up`; each also a pass of the
//!   Llama block.
//! - `linear`: `x·W + b` with the bias add fused into the product, and
//!   optionally GELU (tanh) fused after it, for the MLP's first layer.
//! - `dropout`: dropout with a regenerated (never stored) mask.
//! - `gated_residual`: adaLN-Zero's `x + gate ⊙ y`, a gate per item.
//! - `cross_entropy`: softmax cross-entropy over the vocabulary, and the
//!   log-probability of given tokens.
//! - `adamw`: the sum of squares for global-norm clipping, and the AdamW
//!   update of a parameter and its moments, in place.
//!
//! Kernels run on contiguous f32 or f64 CPU tensors (the linear kernel also
//! reads bf16 weights with f32 inputs, for inference); `tests/kernels.rs`
//! checks each against candle's composite ops and finite differences.

mod adamw;
mod attention;
mod bf16_gemv;
mod block;
mod cross_entropy;
mod dit_block;
mod dropout;
mod gated_residual;
mod layer_norm;
mod linear;
mod llama_block;
mod math;
pub mod quant;
mod rms_norm;
mod rope;
mod swiglu;

pub use adamw::{adamw_update, sum_of_squares, AdamWStep};
pub use attention::{
    attention, attention_cached, attention_padded, cross_attention, grouped_attention,
    AttentionSpec,
};
pub use block::{matrix_sizes, transformer_block, vector_sizes, BlockSpec};
pub use cross_entropy::{cross_entropy, token_log_probs};
pub use dit_block::{
    dit_block, dit_block_with_cross_attention, dit_conditioning_width, dit_param_sizes,
    DitBlockSpec,
};
pub use dropout::dropout;
pub use gated_residual::gated_residual;
pub use layer_norm::layer_norm;
pub use linear::{linear, WeightLayout};
pub use llama_block::{llama_block, llama_block_sizes, LlamaBlockSpec};
pub use rms_norm::rms_norm;
pub use rope::rope;
pub use swiglu::swiglu;

use candle_core::{CpuStorage, Layout, Shape, Storage, Tensor, WithDType};
use rayon::prelude::*;
use std::mem::MaybeUninit;

/// The float types the kernels run on (f32, and f64 for gradient checks).
pub trait Float: WithDType + std::iter::Sum + std::ops::Neg<Output = Self> {
    /// Negative infinity.
    const NEG_INFINITY: Self;
    /// e^self: for f32 a branch-free polynomial (within 2 ulp) that the
    /// compiler vectorises; for f64 the standard library's.
    fn exp(self) -> Self;
    /// Natural logarithm.
    fn ln(self) -> Self;
    /// Square root.
    fn sqrt(self) -> Self;
    /// The mutable slice of `storage`, if it holds this type.
    fn slice_mut(storage: &mut CpuStorage) -> Option<&mut [Self]>;
}

/// `Float` for a primitive float type and its `CpuStorage` variant; `exp`
/// is given separately (f32 uses seer's vectorisable polynomial).
macro_rules! impl_float {
    ($t:ty, $variant:ident, $exp:expr) => {
        impl Float for $t {
            const NEG_INFINITY: Self = <$t>::NEG_INFINITY;
            #[inline(always)]
            fn exp(self) -> Self {
                $exp(self)
            }
            fn ln(self) -> Self {
                <$t>::ln(self)
            }
            fn sqrt(self) -> Self {
                <$t>::sqrt(self)
            }
            fn slice_mut(storage: &mut CpuStorage) -> Option<&mut [Self]> {
                match storage {
                    CpuStorage::$variant(v) => Some(v),
                    _ => None,
                }
            }
        }
    };
}
impl_float!(f32, F32, math::exp_f32);
impl_float!(f64, F64, f64::exp);

/// The contiguous elements `layout` selects in `storage`.
fn contiguous<'a, T: WithDType>(
    storage: &'a CpuStorage,
    layout: &Layout,
    op: &str,
) -> candle_core::Result<&'a [T]> {
    let (start, end) = layout
        .contiguous_offsets()
        .ok_or_else(|| candle_core::Error::Msg(format!("{op}: input must be contiguous")))?;
    Ok(&T::cpu_storage_as_slice(storage)?[start..end])
}

/// The contiguous elements `layout` selects in `storage`, for writing.
fn contiguous_mut<'a, T: Float>(
    storage: &'a mut CpuStorage,
    layout: &Layout,
    op: &str,
) -> candle_core::Result<&'a mut [T]> {
    let (start, end) = layout
        .contiguous_offsets()
        .ok_or_else(|| candle_core::Error::Msg(format!("{op}: output must be contiguous")))?;
    let dtype = candle_core::backend::BackendStorage::dtype(storage);
    let slice = T::slice_mut(storage)
        .ok_or_else(|| candle_core::Error::Msg(format!("{op}: unsupported dtype {dtype:?}")))?;
    Ok(&mut slice[start..end])
}

/// Runs `f` on the contiguous CPU elements of `t` (used in backward passes).
fn with_slice<T: Float, R>(
    t: &Tensor,
    op: &str,
    f: impl FnOnce(&[T]) -> candle_core::Result<R>,
) -> candle_core::Result<R> {
    let t = t.contiguous()?;
    let (storage, layout) = t.storage_and_layout();
    match &*storage {
        Storage::Cpu(cpu) => f(contiguous(cpu, layout, op)?),
        _ => Err(candle_core::Error::Msg(format!(
            "{op}: seer's kernels run on the CPU"
        ))),
    }
}

/// A vector of `len` elements written in parallel, `chunk` elements a task:
/// `fill(start, part)` is given the part that begins at element `start`
/// (no zeroing first, which would be a single-threaded pass of its own).
///
/// # Safety
/// `fill` must write every element of each part it is given.
unsafe fn par_written<T: Float>(
    len: usize,
    chunk: usize,
    fill: impl Fn(usize, &mut [MaybeUninit<T>]) + Sync,
) -> Vec<T> {
    let mut v = Vec::with_capacity(len);
    v.spare_capacity_mut()[..len]
        .par_chunks_mut(chunk.max(1))
        .enumerate()
        .for_each(|(i, part)| fill(i * chunk.max(1), part));
    v.set_len(len);
    v
}

/// `len` zeros, written in parallel (`vec![0; len]` zeroes on one thread
/// while the other cores wait).
fn par_zeroed<T: Float>(len: usize) -> Vec<T> {
    // SAFETY: every element of every part is written.
    unsafe {
        par_written(len, 1 << 15, |_, part| {
            part.iter_mut().for_each(|o| {
                o.write(T::zero());
            })
        })
    }
}

/// A tensor of `shape` on the CPU holding `values`.
fn tensor_from<T: Float>(values: Vec<T>, shape: impl Into<Shape>) -> candle_core::Result<Tensor> {
    Tensor::from_vec(values, shape, &candle_core::Device::Cpu)
}

/// Dispatches `$body` with `$t` bound to the Rust float type of `$dtype`.
macro_rules! with_float {
    ($dtype:expr, $op:expr, $t:ident => $body:expr) => {
        match $dtype {
            candle_core::DType::F32 => {
                type $t = f32;
                $body
            }
            candle_core::DType::F64 => {
                type $t = f64;
                $body
            }
            other => Err(candle_core::Error::Msg(format!(
                "{}: unsupported dtype {other:?}",
                $op
            ))),
        }
    };
}
use with_float;

/// Dispatches `$body` over the contiguous slices of a weighted op's three
/// inputs (the input, its weights, the rest: bias or vectors), bound to
/// `$x`, `$w` and `$r`: all f32 or all f64, or bf16 weights with the other
/// two in f32 (inference with narrow weights).
macro_rules! with_float_weights {
    ($op:expr, ($s1:expr, $l1:expr), ($s2:expr, $l2:expr), ($s3:expr, $l3:expr), |$x:ident, $w:ident, $r:ident| $body:expr) => {
        if $s2.dtype() == candle_core::DType::BF16 {
            if $s1.dtype() != candle_core::DType::F32 || $s3.dtype() != candle_core::DType::F32 {
                candle_core::bail!(
                    "{}: bf16 weights take their other inputs in f32, not {:?} and {:?}",
                    $op,
                    $s1.dtype(),
                    $s3.dtype()
                );
            }
            let $x = contiguous::<f32>($s1, $l1, $op)?;
            let $w = contiguous::<half::bf16>($s2, $l2, $op)?;
            let $r = contiguous::<f32>($s3, $l3, $op)?;
            $body
        } else {
            with_float!($s1.dtype(), $op, T => {
                let $x = contiguous::<T>($s1, $l1, $op)?;
                let $w = contiguous::<T>($s2, $l2, $op)?;
                let $r = contiguous::<T>($s3, $l3, $op)?;
                $body
            })
        }
    };
}
use with_float_weights;

/// A raw pointer that parallel tasks may share because each writes a
/// disjoint part of the buffer behind it.
struct SharedMut<T>(*mut T);

impl<T> Clone for SharedMut<T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T> Copy for SharedMut<T> {}

impl<T> SharedMut<T> {
    /// The pointer (a method, so that closures capture the whole `Sync` wrapper).
    fn ptr(&self) -> *mut T {
        self.0
    }
}
// SAFETY: users guarantee that concurrent tasks touch disjoint elements.
unsafe impl<T> Send for SharedMut<T> {}
unsafe impl<T> Sync for SharedMut<T> {}

/// `dst (m×n) = [dst +] beta·lhs (m×k) · rhs (k×n)`, `dst` split into at
/// most `parts` blocks of rows (or, when there are few rows, as in
/// generation, of columns), each block a single-threaded `gemm` (one part: a
/// single `gemm` on the calling thread). With a part per thread, at the
/// sizes of a training step, this runs about twice as fast on two cores as
/// `gemm`'s own parallelism, which barely beats one thread there. Every
/// matrix is given by its pointer, row stride and column stride.
///
/// # Safety
/// As for `gemm`.
#[allow(clippy::too_many_arguments)]
unsafe fn gemm_split<T: Float>(
    parts: usize,
    m: usize,
    n: usize,
    k: usize,
    dst: (*mut T, usize, usize),
    accumulate: bool,
    lhs: (*const T, usize, usize),
    rhs: (*const T, usize, usize),
    beta: T,
) {
    const MIN_BLOCK: usize = 32;
    let by_rows = m >= n;
    let extent = if by_rows { m } else { n };
    let blocks = parts.min(extent.div_ceil(MIN_BLOCK)).max(1);
    let size = extent.div_ceil(blocks);
    let (dst_ptr, lhs_ptr, rhs_ptr) = (
        SharedMut(dst.0),
        SharedMut(lhs.0 as *mut T),
        SharedMut(rhs.0 as *mut T),
    );
    (0..blocks).into_par_iter().for_each(|i| {
        let start = i * size;
        let count = size.min(extent - start);
        // SAFETY: blocks write disjoint rows (or columns) of dst; the caller vouches for the rest.
        unsafe {
            if by_rows {
                gemm(
                    count,
                    n,
                    k,
                    (dst_ptr.ptr().add(start * dst.1), dst.1, dst.2),
                    accumulate,
                    (lhs_ptr.ptr().add(start * lhs.1), lhs.1, lhs.2),
                    (rhs_ptr.ptr(), rhs.1, rhs.2),
                    beta,
                    1,
                )
            } else {
                gemm(
                    m,
                    count,
                    k,
                    (dst_ptr.ptr().add(start * dst.2), dst.1, dst.2),
                    accumulate,
                    (lhs_ptr.ptr(), lhs.1, lhs.2),
                    (rhs_ptr.ptr().add(start * rhs.2), rhs.1, rhs.2),
                    beta,
                    1,
                )
            }
        }
    });
}

/// `dst (m×n) = [dst +] beta·lhs (m×k) · rhs (k×n)` on `threads` threads;
/// every matrix is given by its pointer, row stride and column stride.
///
/// # Safety
/// The pointers and strides must describe valid matrices of those shapes, and
/// `dst` must not overlap `lhs` or `rhs`.
#[allow(clippy::too_many_arguments)]
unsafe fn gemm<T: Float>(
    m: usize,
    n: usize,
    k: usize,
    dst: (*mut T, usize, usize),
    accumulate: bool,
    lhs: (*const T, usize, usize),
    rhs: (*const T, usize, usize),
    beta: T,
    threads: usize,
) {
    let parallelism = if threads > 1 {
        gemm::Parallelism::Rayon(threads)
    } else {
        gemm::Parallelism::None
    };
    gemm::gemm(
        m,
        n,
        k,
        dst.0,
        dst.2 as isize,
        dst.1 as isize,
        accumulate,
        lhs.0,
        lhs.2 as isize,
        lhs.1 as isize,
        rhs.0,
        rhs.2 as isize,
        rhs.1 as isize,
        T::one(),
        beta,
        false,
        false,
        false,
        parallelism,
    )
}
