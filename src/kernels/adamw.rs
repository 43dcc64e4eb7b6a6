//! The AdamW step, in place: one pass updates a parameter's two moments from
//! its (clipped) gradient and the parameter from them; no tensor is
//! allocated. The moments live in one `[2, n]` tensor (m, then v).

use super::{contiguous, contiguous_mut, with_float, with_slice, Float, SharedMut};
use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, InplaceOp1, InplaceOp2, Layout, Tensor, WithDType};
use rayon::prelude::*;

/// Elements per parallel task.
const CHUNK: usize = 1 << 15;

/// The numbers of one AdamW step for one parameter.
#[derive(Debug, Clone, Copy)]
pub struct AdamWStep {
    /// Learning rate.
    pub lr: f64,
    /// First-moment decay.
    pub beta1: f64,
    /// Second-moment decay.
    pub beta2: f64,
    /// Denominator epsilon.
    pub eps: f64,
    /// Decoupled weight decay.
    pub weight_decay: f64,
    /// Elements, from the first, that the weight decay applies to: all of
    /// a matrix, none of a vector, a pack's leading matrices.
    pub decayed: usize,
    /// Optimizer steps taken, this one included (for the bias corrections).
    pub step: u64,
    /// Factor on the gradient (global-norm clipping).
    pub grad_scale: f64,
}

/// Σ x² over `t`, in f64.
pub fn sum_of_squares(t: &Tensor) -> candle_core::Result<f64> {
    with_float!(t.dtype(), "sum_of_squares", T => {
        with_slice::<T, _>(t, "sum_of_squares", |x| {
            Ok(x.par_chunks(CHUNK).map(|c| c.iter().map(|&v| v.to_f64() * v.to_f64()).sum::<f64>()).sum())
        })
    })
}

/// Updates `param` and its `moments` (`[2, n]`: m, then v) in place from
/// `grad`, in one pass: each element's gradient, moments and value are read
/// and written once.
pub fn adamw_update(
    param: &Tensor,
    moments: &Tensor,
    grad: &Tensor,
    step: &AdamWStep,
) -> candle_core::Result<()> {
    let n = param.elem_count();
    if grad.elem_count() != n || moments.dims() != [2, n] {
        candle_core::bail!(
            "adamw: parameter {:?}, gradient {:?} and moments {:?} do not fit",
            param.dims(),
            grad.dims(),
            moments.dims()
        );
    }
    if param.dtype() != moments.dtype() {
        candle_core::bail!(
            "adamw: parameter {:?} and moments {:?} differ in dtype",
            param.dtype(),
            moments.dtype()
        );
    }
    moments.inplace_op2(&grad.contiguous()?, &Moments { param, step: *step })
}

/// The in-place op on the moments; while it holds them it runs [`Update`]
/// on the parameter, which writes both.
struct Moments<'a> {
    param: &'a Tensor,
    step: AdamWStep,
}

impl InplaceOp2 for Moments<'_> {
    fn name(&self) -> &'static str {
        "seer-adamw"
    }

    fn cpu_fwd(
        &self,
        s1: &mut CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<()> {
        with_float!(s2.dtype(), "adamw", T => {
            let g = contiguous::<T>(s2, l2, "adamw")?;
            let (m, v) = contiguous_mut::<T>(s1, l1, "adamw")?.split_at_mut(g.len());
            self.param.inplace_op1(&Update {
                m: SharedMut(m.as_mut_ptr()),
                v: SharedMut(v.as_mut_ptr()),
                g: SharedMut(g.as_ptr() as *mut T),
                len: g.len(),
                step: self.step,
            })
        })
    }
}

/// `m ← β1·m + (1−β1)·g`, `v ← β2·v + (1−β2)·g²` with `g` scaled, then
/// `p ← p·(1 − lr·wd) − lr · m̂ / (sqrt(v̂) + eps)` (without the decay past
/// the `decayed` elements), as PyTorch's AdamW, over
/// the parameter and the moments and gradient that [`Moments`] holds.
struct Update<T> {
    m: SharedMut<T>,
    v: SharedMut<T>,
    g: SharedMut<T>,
    len: usize,
    step: AdamWStep,
}

impl<T: Float> InplaceOp1 for Update<T> {
    fn name(&self) -> &'static str {
        "seer-adamw"
    }

    fn cpu_fwd(&self, storage: &mut CpuStorage, layout: &Layout) -> candle_core::Result<()> {
        let s = self.step;
        let p = contiguous_mut::<T>(storage, layout, "adamw")?;
        if p.len() != self.len {
            candle_core::bail!("adamw: {} parameters for {} moments", p.len(), self.len);
        }
        // SAFETY: `Moments` holds the moments and gradient, `len` long each,
        // for as long as this op runs, and touches them in no other way.
        let (m, v, g) = unsafe {
            (
                std::slice::from_raw_parts_mut(self.m.ptr(), self.len),
                std::slice::from_raw_parts_mut(self.v.ptr(), self.len),
                std::slice::from_raw_parts(self.g.ptr() as *const T, self.len),
            )
        };
        let t = s.step as i32;
        let (b1, b2, scale) = (
            T::from_f64(s.beta1),
            T::from_f64(s.beta2),
            T::from_f64(s.grad_scale),
        );
        let (c1, c2) = (T::from_f64(1.0 - s.beta1), T::from_f64(1.0 - s.beta2));
        let decay = T::from_f64(1.0 - s.lr * s.weight_decay);
        let step_size = T::from_f64(s.lr / (1.0 - s.beta1.powi(t)));
        let inv_bias2 = T::from_f64(1.0 / (1.0 - s.beta2.powi(t)));
        let eps = T::from_f64(s.eps);
        let update = |p: &mut [T], m: &mut [T], v: &mut [T], g: &[T], decay: T| {
            for i in 0..p.len() {
                let g = g[i] * scale;
                m[i] = b1 * m[i] + c1 * g;
                v[i] = b2 * v[i] + c2 * g * g;
                p[i] = p[i] * decay - step_size * m[i] / ((v[i] * inv_bias2).sqrt() + eps);
            }
        };
        p.par_chunks_mut(CHUNK)
            .zip(m.par_chunks_mut(CHUNK))
            .zip(v.par_chunks_mut(CHUNK))
            .zip(g.par_chunks(CHUNK))
            .enumerate()
            .for_each(|(k, (((p, m), v), g))| {
                // This chunk's first `cut` elements decay, the rest do not.
                let cut = s.decayed.saturating_sub(k * CHUNK).min(p.len());
                let ((p0, p1), (m0, m1)) = (p.split_at_mut(cut), m.split_at_mut(cut));
                let ((v0, v1), (g0, g1)) = (v.split_at_mut(cut), g.split_at(cut));
                update(p0, m0, v0, g0, decay);
                update(p1, m1, v1, g1, T::one());
            });
        Ok(())
    }
}
