//! seer's fused CPU kernels, each a candle custom op with its own backward
//! pass: one allocation and one (parallel) pass where candle's composite ops
//! take several of each.
//!
//! - `attention`: multi-head self-attention on the fused `[q | k | v]`
//!   projection, causal or bidirectional, tiled so that the T×T score matrix
//!   is never stored, with dropout masks regenerated in the backward pass.
//! - `layer_norm`: LayerNorm with weight and optional bias.
//! - `bias_gelu`: bias add and GELU (tanh) in one pass.
//! - `cross_entropy`: softmax cross-entropy over the vocabulary.
//! - `adamw`: global-norm clipping and the AdamW update, in place.
//!
//! Kernels run on contiguous f32 or f64 CPU tensors; `tests/kernels.rs`
//! checks each against candle's composite ops and finite differences.

mod attention;
mod bias_gelu;
mod cross_entropy;
mod layer_norm;

pub use attention::{attention, AttentionSpec};
pub use bias_gelu::bias_gelu;
pub use cross_entropy::cross_entropy;
pub use layer_norm::layer_norm;

use candle_core::{CpuStorage, Layout, Shape, Storage, Tensor, WithDType};

/// The float types the kernels run on (f32, and f64 for gradient checks).
pub trait Float: WithDType + std::iter::Sum {
    /// Negative infinity.
    const NEG_INFINITY: Self;
    /// e^self.
    fn exp(self) -> Self;
    /// Natural logarithm.
    fn ln(self) -> Self;
    /// Hyperbolic tangent.
    fn tanh(self) -> Self;
    /// Square root.
    fn sqrt(self) -> Self;
}

macro_rules! float_impl {
    ($t:ty) => {
        impl Float for $t {
            const NEG_INFINITY: Self = <$t>::NEG_INFINITY;
            fn exp(self) -> Self {
                <$t>::exp(self)
            }
            fn ln(self) -> Self {
                <$t>::ln(self)
            }
            fn tanh(self) -> Self {
                <$t>::tanh(self)
            }
            fn sqrt(self) -> Self {
                <$t>::sqrt(self)
            }
        }
    };
}
float_impl!(f32);
float_impl!(f64);

/// The contiguous elements `layout` selects in `storage`.
fn contiguous<'a, T: Float>(
    storage: &'a CpuStorage,
    layout: &Layout,
    op: &str,
) -> candle_core::Result<&'a [T]> {
    let (start, end) = layout
        .contiguous_offsets()
        .ok_or_else(|| candle_core::Error::Msg(format!("{op}: input must be contiguous")))?;
    Ok(&T::cpu_storage_as_slice(storage)?[start..end])
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

/// A raw pointer that parallel tasks may share because each writes a
/// disjoint part of the buffer behind it.
#[derive(Clone, Copy)]
struct SharedMut<T>(*mut T);

impl<T> SharedMut<T> {
    /// The pointer (a method, so that closures capture the whole `Sync` wrapper).
    fn ptr(self) -> *mut T {
        self.0
    }
}
// SAFETY: users guarantee that concurrent tasks touch disjoint elements.
unsafe impl<T> Send for SharedMut<T> {}
unsafe impl<T> Sync for SharedMut<T> {}

/// `dst (m×n) = alpha·dst + beta·lhs (m×k) · rhs (k×n)` on one thread; every
/// matrix is given by its pointer, row stride and column stride.
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
) {
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
        gemm::Parallelism::None,
    )
}
