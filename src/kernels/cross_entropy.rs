//! Mean softmax cross-entropy of logits `[..., vocab]` against target ids `[...]`,
//! one pass forward (rows in parallel) and one backward; the backward pass
//! writes `(softmax − one_hot) / n` straight from the saved log-sum-exp.
//! And the log-probability of each row's target (`[...]`), from which a
//! masked loss, or the summed log-probabilities DPO and GRPO compare, are
//! taken: its backward pass writes `g · (one_hot − softmax)` per row, and
//! exact zeros for a row whose gradient `g` is zero (a masked token).

use super::{contiguous, par_written, tensor_from, with_float, with_slice, Float};
use candle_core::backend::BackendStorage;
use candle_core::WithDType;
use candle_core::{CpuStorage, CustomOp2, Layout, Shape, Tensor};
use rayon::prelude::*;
use std::sync::Mutex;

/// Mean cross-entropy (a scalar tensor) of `logits` (`[..., vocab]`) against
/// `targets` (`[...]`, u32): no reshape, so no extra node in the autograd graph.
pub fn cross_entropy(logits: &Tensor, targets: &Tensor) -> candle_core::Result<Tensor> {
    let dims = logits.dims();
    let rows = &dims[..dims.len().saturating_sub(1)];
    if dims.is_empty() || targets.dims() != rows || targets.dtype() != candle_core::DType::U32 {
        candle_core::bail!(
            "cross_entropy: targets must be u32 {rows:?}, got {:?} {:?}",
            targets.dtype(),
            targets.dims()
        );
    }
    logits.contiguous()?.apply_op2(
        &targets.contiguous()?,
        CrossEntropy {
            saved: Mutex::new((Vec::new(), Vec::new())),
        },
    )
}

/// The checked targets of `logits`: u32, one per row, inside the vocabulary.
fn targets_of(
    op: &str,
    l1: &Layout,
    s2: &CpuStorage,
    l2: &Layout,
) -> candle_core::Result<(usize, Vec<u32>)> {
    let vocab = l1.shape().dims().last().copied().unwrap_or(1);
    let targets: Vec<u32> = match s2 {
        CpuStorage::U32(t) => {
            let (start, end) = l2.contiguous_offsets().ok_or_else(|| {
                candle_core::Error::Msg(format!("{op}: targets must be contiguous"))
            })?;
            t[start..end].to_vec()
        }
        _ => candle_core::bail!("{op}: targets must be u32"),
    };
    if let Some(bad) = targets.iter().find(|&&t| t as usize >= vocab) {
        candle_core::bail!("{op}: target {bad} is outside the vocabulary of {vocab}");
    }
    Ok((vocab, targets))
}

/// The log-sum-exp of every row of `logits`, `vocab` wide.
fn row_lse<T: Float>(logits: &[T], vocab: usize) -> Vec<f64> {
    logits
        .par_chunks(vocab)
        .map(|row| {
            let max = row.iter().copied().fold(T::NEG_INFINITY, T::max);
            let sum: T = row.iter().map(|&x| (x - max).exp()).sum();
            (max + sum.ln()).to_f64()
        })
        .collect()
}

/// `log softmax(logits)[target]` for every row of `logits` (`[..., vocab]`)
/// and its target (`targets`, u32 `[...]`): a tensor shaped as `targets`.
pub fn token_log_probs(logits: &Tensor, targets: &Tensor) -> candle_core::Result<Tensor> {
    let dims = logits.dims();
    let rows = &dims[..dims.len().saturating_sub(1)];
    if dims.is_empty() || targets.dims() != rows || targets.dtype() != candle_core::DType::U32 {
        candle_core::bail!(
            "token_log_probs: targets must be u32 {rows:?}, got {:?} {:?}",
            targets.dtype(),
            targets.dims()
        );
    }
    logits.contiguous()?.apply_op2(
        &targets.contiguous()?,
        LogProbs {
            saved: Mutex::new((Vec::new(), Vec::new())),
        },
    )
}

struct LogProbs {
    /// Targets and the log-sum-exp of every row, saved by the forward pass.
    saved: Mutex<(Vec<u32>, Vec<f64>)>,
}

impl CustomOp2 for LogProbs {
    fn name(&self) -> &'static str {
        "seer-token-log-probs"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let (vocab, targets) = targets_of("token_log_probs", l1, s2, l2)?;
        with_float!(s1.dtype(), "token_log_probs", T => {
            let logits = contiguous::<T>(s1, l1, "token_log_probs")?;
            let lse = row_lse(logits, vocab);
            let out: Vec<T> = logits
                .chunks(vocab)
                .zip(&lse)
                .zip(&targets)
                .map(|((row, &lse), &t)| T::from_f64(row[t as usize].to_f64() - lse))
                .collect();
            *self.saved.lock().expect("token_log_probs state") = (targets, lse);
            Ok((T::to_cpu_storage_owned(out), l2.shape().clone()))
        })
    }

    fn bwd(
        &self,
        logits: &Tensor,
        _targets: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>)> {
        let vocab = logits.dim(candle_core::D::Minus1)?;
        let saved = self.saved.lock().expect("token_log_probs state");
        let (targets, lse) = (&saved.0, &saved.1);
        with_float!(logits.dtype(), "token_log_probs", T => {
            with_slice::<T, _>(logits, "token_log_probs", |x| {
                with_slice::<T, _>(grad, "token_log_probs", |g| {
                    // SAFETY: each part is one row, every element of it written
                    // before the target's is read back.
                    let dx: Vec<T> = unsafe {
                        par_written(x.len(), vocab, |start, dx| {
                            let r = start / vocab;
                            let g = g[r];
                            if g == T::from_f64(0.0) {
                                dx.iter_mut().for_each(|d| {
                                    d.write(T::from_f64(0.0));
                                });
                                return;
                            }
                            let lse = T::from_f64(lse[r]);
                            for (d, &v) in dx.iter_mut().zip(&x[start..]) {
                                d.write(-(v - lse).exp() * g);
                            }
                            let target = &mut dx[targets[r] as usize];
                            target.write(target.assume_init_read() + g);
                        })
                    };
                    Ok((Some(tensor_from(dx, logits.shape().clone())?), None))
                })
            })
        })
    }
}

struct CrossEntropy {
    /// Targets and the log-sum-exp of every row, saved by the forward pass.
    saved: Mutex<(Vec<u32>, Vec<f64>)>,
}

impl CustomOp2 for CrossEntropy {
    fn name(&self) -> &'static str {
        "seer-cross-entropy"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let (vocab, targets) = targets_of("cross_entropy", l1, s2, l2)?;
        let n = l1.shape().elem_count() / vocab;
        with_float!(s1.dtype(), "cross_entropy", T => {
            let logits = contiguous::<T>(s1, l1, "cross_entropy")?;
            let lse = row_lse(logits, vocab);
            let total: f64 = lse
                .iter()
                .zip(logits.chunks(vocab))
                .zip(&targets)
                .map(|((&lse, row), &t)| lse - row[t as usize].to_f64())
                .sum();
            *self.saved.lock().expect("cross_entropy state") = (targets, lse);
            Ok((T::to_cpu_storage_owned(vec![T::from_f64(total / n as f64)]), Shape::from(())))
        })
    }

    fn bwd(
        &self,
        logits: &Tensor,
        _targets: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>)> {
        let vocab = logits.dim(candle_core::D::Minus1)?;
        let n = logits.elem_count() / vocab;
        let saved = self.saved.lock().expect("cross_entropy state");
        let (targets, lse) = (&saved.0, &saved.1);
        with_float!(logits.dtype(), "cross_entropy", T => {
            let g = grad.to_dtype(candle_core::DType::F64)?.to_scalar::<f64>()? / n as f64;
            with_slice::<T, _>(logits, "cross_entropy", |x| {
                // SAFETY: each part is one row, every element of it written
                // before the target's is read back.
                let dx: Vec<T> = unsafe {
                    par_written(x.len(), vocab, |start, dx| {
                        let r = start / vocab;
                        let (lse, g) = (T::from_f64(lse[r]), T::from_f64(g));
                        for (d, &v) in dx.iter_mut().zip(&x[start..]) {
                            d.write((v - lse).exp() * g);
                        }
                        let target = &mut dx[targets[r] as usize];
                        target.write(target.assume_init_read() - g);
                    })
                };
                Ok((Some(tensor_from(dx, logits.shape().clone())?), None))
            })
        })
    }
}
