//! A whole Llama decoder layer as one op, for training:
//! `x₁ = x + W_o · attn(rope(W_q·n₁), rope(W_k·n₁), W_v·n₁)`, `n₁ = rms(x)`,
//! then `y = x₁ + W_down · (silu(W_gate·n₂) ⊙ W_up·n₂)`, `n₂ = rms(x₁)`,
//! with causal grouped-query attention and RoPE in `rotate_half` layout.
//!
//! The layer's parameters come in one flat tensor ([`llama_block_sizes`]),
//! each matrix in Hugging Face's `[out, in]` layout, so candle's autograd
//! sees one node per layer. q, k and v follow one another, so together they
//! are one `[q | k | v]` projection, and gate and up one `[gate | up]`
//! projection. Each stage is a slice-level pass of the other kernels
//! (`rms_norm`, `linear`, `rope`, `attention`, `swiglu`), with the residual
//! adds fused in as in the GPT block (`block.rs`); `tests/llama_train.rs`
//! checks the op against candle's composite ops and finite differences.

use super::attention::{self, AttentionSpec, Dims, GradTargets, Sources};
use super::block::{parts, parts_mut};
use super::linear::{backward_into, product, WeightLayout};
use super::rope::RopeTable;
use super::{contiguous, rms_norm, swiglu, tensor_from, with_float, with_slice, Float};
use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, CustomOp2, Layout, Shape, Tensor, WithDType};
use std::any::Any;
use std::mem::MaybeUninit;
use std::sync::Mutex;

/// The shape of a Llama layer besides its width (the input's last dimension).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LlamaBlockSpec {
    /// Query heads.
    pub n_head: usize,
    /// Key/value heads (`n_head` a multiple of it: grouped-query attention).
    pub n_kv_head: usize,
    /// Width of one head (even, for RoPE).
    pub head_dim: usize,
    /// Width of the MLP's hidden layer.
    pub n_ff: usize,
    /// RMSNorm's epsilon.
    pub eps: f64,
    /// RoPE's base frequency θ.
    pub rope_theta: f64,
}

/// Elements of a layer's parameters as they follow one another in the flat
/// tensor, for a residual stream `dim` wide: `q_proj` `[n_head·head_dim,
/// dim]`, `k_proj` and `v_proj` `[n_kv_head·head_dim, dim]`, `o_proj` `[dim,
/// n_head·head_dim]`, `gate_proj` and `up_proj` `[n_ff, dim]`, `down_proj`
/// `[dim, n_ff]`, `input_layernorm` and `post_attention_layernorm` `[dim]`.
pub fn llama_block_sizes(dim: usize, spec: &LlamaBlockSpec) -> [usize; 9] {
    let (q, kv, f) = (
        spec.n_head * spec.head_dim,
        spec.n_kv_head * spec.head_dim,
        spec.n_ff,
    );
    [
        q * dim,
        kv * dim,
        kv * dim,
        dim * q,
        f * dim,
        f * dim,
        dim * f,
        dim,
        dim,
    ]
}

/// The layer applied to `x` (`[batch, seq, dim]`, f32 or f64), every item
/// of the batch at positions `0..seq`, with its parameters packed as
/// [`llama_block_sizes`] says.
pub fn llama_block(
    x: &Tensor,
    params: &Tensor,
    spec: LlamaBlockSpec,
) -> candle_core::Result<Tensor> {
    if spec.n_kv_head == 0 || !spec.n_head.is_multiple_of(spec.n_kv_head) {
        candle_core::bail!(
            "llama_block: {} query heads cannot share {} key/value heads",
            spec.n_head,
            spec.n_kv_head
        );
    }
    if spec.head_dim == 0 || !spec.head_dim.is_multiple_of(2) {
        candle_core::bail!(
            "llama_block: head width {} is not even (RoPE rotates pairs)",
            spec.head_dim
        );
    }
    let (_, _, c) = x.dims3()?;
    let total: usize = llama_block_sizes(c, &spec).iter().sum();
    if params.dims() != [total] {
        candle_core::bail!(
            "llama_block: a layer {c} wide takes [{total}] parameters, not {:?}",
            params.dims()
        );
    }
    x.contiguous()?.apply_op2(
        &params.contiguous()?,
        LlamaBlock {
            spec,
            saved: Mutex::new(None),
        },
    )
}

struct LlamaBlock {
    spec: LlamaBlockSpec,
    /// The forward pass's activations (a `Saved<T>`), kept for the backward pass.
    saved: Mutex<Option<Box<dyn Any + Send>>>,
}

/// What the backward pass needs from the forward pass.
struct Saved<T> {
    /// `rms₁(x)` and its rows' `1/rms`.
    xn1: Vec<T>,
    rstd1: Vec<f64>,
    /// The `[q | k | v]` projection, q and k rotated, and each score row's
    /// log-sum-exp.
    qkv: Vec<T>,
    lse: Vec<f64>,
    /// The attention output, before `o_proj`.
    att: Vec<T>,
    /// The residual stream after the attention branch.
    x1: Vec<T>,
    /// `rms₂(x₁)` and its rows' `1/rms`.
    xn2: Vec<T>,
    rstd2: Vec<f64>,
    /// The `[gate | up]` projection and `silu(gate) ⊙ up`.
    gate_up: Vec<T>,
    h: Vec<T>,
}

/// A `start` for [`product`] that writes each row of `residual` (rows as
/// wide as the output) into the output: the skip connection.
fn start_from<T: Float>(residual: &[T]) -> impl Fn(usize, &mut [MaybeUninit<T>]) + Sync + '_ {
    move |row, out| {
        let width = out.len();
        for (o, &r) in out
            .iter_mut()
            .zip(&residual[row * width..(row + 1) * width])
        {
            o.write(r);
        }
    }
}

/// A `start` for [`product`] that zeroes the output.
fn zeros<T: Float>(_: usize, out: &mut [MaybeUninit<T>]) {
    for o in out {
        o.write(T::zero());
    }
}

impl LlamaBlock {
    fn attention_spec(&self) -> AttentionSpec {
        AttentionSpec {
            n_head: self.spec.n_head,
            causal: true,
            dropout: 0.0,
            seed: 0,
        }
    }

    /// (query width, key/value width, MLP width).
    fn widths(&self) -> (usize, usize, usize) {
        let s = &self.spec;
        (s.n_head * s.head_dim, s.n_kv_head * s.head_dim, s.n_ff)
    }

    fn dims(&self, b: usize, t: usize) -> Dims {
        let s = &self.spec;
        Dims::grouped(b, t, s.n_head, s.n_kv_head, s.head_dim)
    }

    /// The layer's output for `x` of `shape`, and what the backward pass needs.
    fn forward<T: Float>(
        &self,
        x: &[T],
        p: &[T],
        shape: &Shape,
    ) -> candle_core::Result<(Vec<T>, Saved<T>)> {
        let (b, t, c) = shape.dims3()?;
        let (qw, kvw, f) = self.widths();
        let sizes = llama_block_sizes(c, &self.spec);
        let qkv_len = sizes[0] + sizes[1] + sizes[2];
        let [w_qkv, w_o, w_gate_up, w_down, norm1, norm2] =
            parts(p, [qkv_len, sizes[3], sizes[4] + sizes[5], sizes[6], c, c]);
        let width = qw + 2 * kvw;
        let (xn1, rstd1) = rms_norm::forward(x, norm1, self.spec.eps);
        let mut qkv = product(&xn1, w_qkv, WeightLayout::OutIn, c, width, zeros);
        let rope = RopeTable::new(t, self.spec.head_dim, self.spec.rope_theta);
        rope.rotate(&mut qkv, width, qw + kvw, false);
        let (att, lse) = attention::forward(
            Sources::packed(&qkv, qw, kvw),
            self.dims(b, t),
            self.attention_spec(),
            &[],
        );
        let x1 = product(&att, w_o, WeightLayout::OutIn, qw, c, start_from(x));
        let (xn2, rstd2) = rms_norm::forward(&x1, norm2, self.spec.eps);
        let gate_up = product(&xn2, w_gate_up, WeightLayout::OutIn, c, 2 * f, zeros);
        let h = swiglu::forward(&gate_up, f);
        let y = product(&h, w_down, WeightLayout::OutIn, f, c, start_from(&x1));
        let saved = Saved {
            xn1,
            rstd1,
            qkv,
            lse,
            att,
            x1,
            xn2,
            rstd2,
            gate_up,
            h,
        };
        Ok((y, saved))
    }

    /// `(dx, dparams)` for the upstream gradient `dy`.
    fn backward<T: Float>(
        &self,
        x: &[T],
        p: &[T],
        dy: &[T],
        s: &Saved<T>,
        shape: &Shape,
    ) -> candle_core::Result<(Vec<T>, Vec<T>)> {
        let (b, t, c) = shape.dims3()?;
        let n = b * t;
        let (qw, kvw, f) = self.widths();
        let width = qw + 2 * kvw;
        let sizes = llama_block_sizes(c, &self.spec);
        let layout = [
            sizes[0] + sizes[1] + sizes[2],
            sizes[3],
            sizes[4] + sizes[5],
            sizes[6],
            c,
            c,
        ];
        let [w_qkv, w_o, w_gate_up, w_down, norm1, norm2] = parts(p, layout);
        let mut dp = vec![T::zero(); p.len()];
        let [dw_qkv, dw_o, dw_gate_up, dw_down, dnorm1, dnorm2] = parts_mut(&mut dp, layout);
        // The products' bias gradients (the layer has no biases).
        let mut unused = vec![T::zero(); width.max(2 * f).max(c)];

        // The MLP branch.
        let mut dh = vec![T::zero(); n * f];
        // SAFETY (each `backward_into` below): the gradient buffers are as
        // long as the inputs and weights they belong to, and overlap nothing.
        unsafe {
            backward_into(
                &s.h,
                w_down,
                dy,
                WeightLayout::OutIn,
                Some(dh.as_mut_ptr()),
                dw_down.as_mut_ptr(),
                &mut unused[..c],
            );
        }
        let d_gate_up = swiglu::backward(&dh, &s.gate_up, f);
        drop(dh);
        let mut dxn2 = vec![T::zero(); n * c];
        unsafe {
            backward_into(
                &s.xn2,
                w_gate_up,
                &d_gate_up,
                WeightLayout::OutIn,
                Some(dxn2.as_mut_ptr()),
                dw_gate_up.as_mut_ptr(),
                &mut unused[..2 * f],
            );
        }
        let (dx1, dw) = rms_norm::backward(&s.x1, norm2, &dxn2, &s.rstd2, Some(dy));
        dnorm2.copy_from_slice(&dw);

        // The attention branch.
        let mut d_att = vec![T::zero(); n * qw];
        unsafe {
            backward_into(
                &s.att,
                w_o,
                &dx1,
                WeightLayout::OutIn,
                Some(d_att.as_mut_ptr()),
                dw_o.as_mut_ptr(),
                &mut unused[..c],
            );
        }
        let mut dqkv = vec![T::zero(); n * width];
        attention::backward(
            &Sources::packed(&s.qkv, qw, kvw),
            &d_att,
            &s.lse,
            self.dims(b, t),
            self.attention_spec(),
            &[],
            &GradTargets::packed(&mut dqkv, qw, kvw),
        );
        let rope = RopeTable::new(t, self.spec.head_dim, self.spec.rope_theta);
        rope.rotate(&mut dqkv, width, qw + kvw, true);
        let mut dxn1 = vec![T::zero(); n * c];
        unsafe {
            backward_into(
                &s.xn1,
                w_qkv,
                &dqkv,
                WeightLayout::OutIn,
                Some(dxn1.as_mut_ptr()),
                dw_qkv.as_mut_ptr(),
                &mut unused[..width],
            );
        }
        let (dx, dw) = rms_norm::backward(x, norm1, &dxn1, &s.rstd1, Some(&dx1));
        dnorm1.copy_from_slice(&dw);
        Ok((dx, dp))
    }
}

impl CustomOp2 for LlamaBlock {
    fn name(&self) -> &'static str {
        "seer-llama-block"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        with_float!(s1.dtype(), "llama_block", T => {
            let x = contiguous::<T>(s1, l1, "llama_block")?;
            let p = contiguous::<T>(s2, l2, "llama_block")?;
            let (y, saved) = self.forward(x, p, l1.shape())?;
            *self.saved.lock().expect("llama block state") = Some(Box::new(saved));
            Ok((T::to_cpu_storage_owned(y), l1.shape().clone()))
        })
    }

    fn bwd(
        &self,
        x: &Tensor,
        params: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>)> {
        const OP: &str = "llama_block";
        let saved = self.saved.lock().expect("llama block state");
        with_float!(x.dtype(), OP, T => {
            let saved = saved
                .as_ref()
                .and_then(|s| s.downcast_ref::<Saved<T>>())
                .ok_or_else(|| candle_core::Error::Msg(format!("{OP}: no forward pass to differentiate")))?;
            with_slice::<T, _>(x, OP, |xs| {
                with_slice::<T, _>(params, OP, |p| {
                    with_slice::<T, _>(grad, OP, |dy| {
                        let (dx, dp) = self.backward(xs, p, dy, saved, x.shape())?;
                        Ok((
                            Some(tensor_from(dx, x.shape().clone())?),
                            Some(tensor_from(dp, params.shape().clone())?),
                        ))
                    })
                })
            })
        })
    }
}
