//! The diffusion Transformer's whole block as one op: DiT's adaLN-Zero block
//! with a cross-attention sub-layer (as in PixArt-α), given the
//! conditioning vector `s = silu(c)` and the caption's token states:
//!
//! ```text
//! [shift₁ scale₁ gate₁ shift₂ scale₂ gate₂] = s·W_ada + b_ada
//! x₁ = x  + gate₁ ⊙ (attn(norm(x)·(1 + scale₁) + shift₁)·W_proj + b_proj)
//! x₂ = x₁ + cross(ln_cross(x₁), context·W_kv + b_kv)·W_cproj + b_cproj
//! y  = x₂ + gate₂ ⊙ (gelu((norm(x₂)·(1 + scale₂) + shift₂)·W_fc + b_fc)·W_out + b_out)
//! ```
//!
//! The block's parameters come in one flat tensor, its matrices first and
//! then its vectors ([`dit_param_sizes`]); the conditioning vector and the
//! caption's states come in another ([`dit_conditioning_width`]). Candle's
//! autograd then sees one node per block where the composed ops made about
//! twenty, so the activations' gradients inside the block never pass
//! through candle's gradient store (which adds each one into fresh zeros).
//! Each stage is one of the other kernels' slice-level passes, so the block
//! computes what those ops compose to (`tests/kernels.rs` checks it against
//! them and against finite differences), with the cross-attention's
//! residual add fused into its projection and every skip connection's
//! gradient added inside a LayerNorm's backward pass.

use super::attention::{self, AttentionSpec, Dims, GradTargets, Sources};
use super::block::{parts, parts_mut, residual_product};
use super::gated_residual::{gate_grad, gated_rows};
use super::layer_norm;
use super::linear::{backward_into, gelu_backward, gelu_rows, product, start_at, WeightLayout};
use super::{contiguous, par_zeroed, tensor_from, with_float, with_slice, Float};
use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, CustomOp3, Layout, Shape, Tensor, WithDType};
use std::any::Any;
use std::sync::Mutex;

/// What a DiT block computes besides its parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DitBlockSpec {
    /// Attention heads (self- and cross-attention); the head size is `dim / n_head`.
    pub n_head: usize,
    /// Width of the caption's token states.
    pub context_dim: usize,
    /// Epsilon of the block's three LayerNorms.
    pub eps: f64,
}

/// The parameters' parts in the order [`dit_param_sizes`] gives them.
const PARTS: usize = 18;

/// Elements of a block's parameters as they follow one another in its flat
/// tensor, for a block `dim` wide reading states `context_dim` wide: first
/// the matrices, each laid out `[in, out]`: `adaln` `[dim, 6·dim]`,
/// `attn.c_attn` `[dim, 3·dim]`, `attn.c_proj`, `cross.q` (`[dim, dim]`
/// each), `cross.kv` `[context_dim, 2·dim]`, `cross.c_proj` `[dim, dim]`,
/// `mlp.c_fc` `[dim, 4·dim]`, `mlp.c_proj` `[4·dim, dim]`; then the vectors:
/// the same layers' biases in the same order with `ln_cross`'s weight and
/// bias before `cross.q`'s.
pub fn dit_param_sizes(dim: usize, context_dim: usize) -> [usize; PARTS] {
    let (c, sq) = (dim, dim * dim);
    [
        6 * sq,
        3 * sq,
        sq,
        sq,
        2 * context_dim * c,
        sq,
        4 * sq,
        4 * sq,
        6 * c,
        3 * c,
        c,
        c,
        c,
        c,
        2 * c,
        c,
        4 * c,
        c,
    ]
}

/// Width of one item's row of the conditioning tensor: the conditioning
/// vector (`dim`), then the caption's `tokens` states of `context_dim`.
pub fn dit_conditioning_width(dim: usize, context_dim: usize, tokens: usize) -> usize {
    dim + tokens * context_dim
}

/// The block applied to patch tokens `x` (`[batch, n, dim]`), given
/// `conditioning` (`[batch, dit_conditioning_width(..)]`: each item's
/// `silu(c)`, then its caption's states) and `params` laid out as
/// [`dit_param_sizes`] says; item `b` cross-attends only to its first
/// `lengths[b]` caption tokens (all when empty).
pub fn dit_block(
    x: &Tensor,
    conditioning: &Tensor,
    params: &Tensor,
    spec: DitBlockSpec,
    lengths: &[usize],
) -> candle_core::Result<Tensor> {
    let op = checked_op(x, conditioning, params, spec, lengths)?;
    x.contiguous()?
        .apply_op3(&conditioning.contiguous()?, &params.contiguous()?, op)
}

/// The block applied as [`dit_block`] applies it, in inference (no
/// gradient), together with its cross-attention weights: `(y, weights)`,
/// `weights` `[batch, n_head, n, l]` saying how much each patch (row) of
/// each head attends to each of the `l` caption tokens, zero past an item's
/// length, each row summing to 1. The weights come from the forward pass's
/// own queries, keys and log-sum-exps, so only inspection pays for them.
pub fn dit_block_with_cross_attention(
    x: &Tensor,
    conditioning: &Tensor,
    params: &Tensor,
    spec: DitBlockSpec,
    lengths: &[usize],
) -> candle_core::Result<(Tensor, Tensor)> {
    const OP: &str = "dit_block";
    let op = checked_op(x, conditioning, params, spec, lengths)?;
    let sizes = Sizes::of(x.shape(), conditioning.dim(1)?, spec.context_dim)?;
    with_float!(x.dtype(), OP, T => {
        with_slice::<T, _>(x, OP, |xs| {
            with_slice::<T, _>(conditioning, OP, |cond| {
                with_slice::<T, _>(params, OP, |p| {
                    let (y, saved) = op.forward(xs, cond, p, sizes)?;
                    let weights = cross_weights(&saved, sizes, spec.n_head, lengths);
                    Ok((
                        tensor_from(y, x.shape().clone())?,
                        tensor_from(weights, (sizes.b, spec.n_head, sizes.n, sizes.l))?,
                    ))
                })
            })
        })
    })
}

/// The block's op for these inputs, once they are checked to fit.
fn checked_op(
    x: &Tensor,
    conditioning: &Tensor,
    params: &Tensor,
    spec: DitBlockSpec,
    lengths: &[usize],
) -> candle_core::Result<DitBlockOp> {
    const OP: &str = "dit_block";
    let (b, _, c) = x.dims3()?;
    let (bc, width) = conditioning.dims2()?;
    let ctx = spec.context_dim;
    if spec.n_head == 0 || !c.is_multiple_of(spec.n_head) {
        candle_core::bail!("{OP}: width {c} is not a multiple of {} heads", spec.n_head);
    }
    if bc != b || ctx == 0 || width <= c || !(width - c).is_multiple_of(ctx) {
        candle_core::bail!(
            "{OP}: conditioning {:?} does not fit {b} items of width {c} with states {ctx} wide",
            conditioning.dims()
        );
    }
    let tokens = (width - c) / ctx;
    let total: usize = dit_param_sizes(c, ctx).iter().sum();
    if params.dims() != [total] {
        candle_core::bail!(
            "{OP}: a block {c} wide reading states {ctx} wide takes [{total}] parameters, not {:?}",
            params.dims()
        );
    }
    if !lengths.is_empty() && (lengths.len() != b || lengths.iter().any(|&n| n == 0 || n > tokens))
    {
        candle_core::bail!("{OP}: lengths {lengths:?} do not fit a batch of {b} × {tokens}");
    }
    if conditioning.dtype() != x.dtype() || params.dtype() != x.dtype() {
        candle_core::bail!(
            "{OP}: x, conditioning and parameters must share a dtype, not {:?}, {:?} and {:?}",
            x.dtype(),
            conditioning.dtype(),
            params.dtype()
        );
    }
    Ok(DitBlockOp {
        spec,
        lengths: lengths.to_vec(),
        saved: Mutex::new(None),
    })
}

struct DitBlockOp {
    spec: DitBlockSpec,
    lengths: Vec<usize>,
    /// The forward pass's activations (a `Saved<T>`), kept for the backward pass.
    saved: Mutex<Option<Box<dyn Any + Send>>>,
}

/// A block's sizes: `b` items of `n` tokens `c` wide, `l` caption tokens
/// `ctx` wide.
#[derive(Clone, Copy)]
struct Sizes {
    b: usize,
    n: usize,
    c: usize,
    l: usize,
    ctx: usize,
}

impl Sizes {
    fn of(x: &Shape, conditioning_width: usize, ctx: usize) -> candle_core::Result<Self> {
        let (b, n, c) = x.dims3()?;
        Ok(Self {
            b,
            n,
            c,
            l: (conditioning_width - c) / ctx,
            ctx,
        })
    }

    fn width(&self) -> usize {
        dit_conditioning_width(self.c, self.ctx, self.l)
    }
}

/// The conditioning tensor's two parts, each contiguous: the vectors
/// `[b, c]` and the caption states `[b·l, ctx]`.
fn split_conditioning<T: Float>(cond: &[T], s: Sizes) -> (Vec<T>, Vec<T>) {
    let mut vector = Vec::with_capacity(s.b * s.c);
    let mut states = Vec::with_capacity(s.b * s.l * s.ctx);
    for row in cond.chunks(s.width()) {
        vector.extend_from_slice(&row[..s.c]);
        states.extend_from_slice(&row[s.c..]);
    }
    (vector, states)
}

/// Column block `k` (`c` wide) of the rows of `m` (each `6·c`), plus `add`:
/// one modulation vector per item, `[b, c]`.
fn modulation<T: Float>(m: &[T], c: usize, k: usize, add: T) -> Vec<T> {
    m.chunks(6 * c)
        .flat_map(|row| row[k * c..(k + 1) * c].iter().map(move |&v| v + add))
        .collect()
}

/// The six modulation vectors of every item, `[b, c]` each: shift₁,
/// 1 + scale₁, gate₁, shift₂, 1 + scale₂, gate₂.
struct Modulation<T> {
    shift1: Vec<T>,
    scale1: Vec<T>,
    gate1: Vec<T>,
    shift2: Vec<T>,
    scale2: Vec<T>,
    gate2: Vec<T>,
}

impl<T: Float> Modulation<T> {
    fn of(m: &[T], c: usize) -> Self {
        Self {
            shift1: modulation(m, c, 0, T::zero()),
            scale1: modulation(m, c, 1, T::one()),
            gate1: modulation(m, c, 2, T::zero()),
            shift2: modulation(m, c, 3, T::zero()),
            scale2: modulation(m, c, 4, T::one()),
            gate2: modulation(m, c, 5, T::zero()),
        }
    }
}

/// What the backward pass needs from the forward pass.
struct Saved<T> {
    /// The conditioning's two parts (see [`split_conditioning`]) and the
    /// modulation made from the first.
    vector: Vec<T>,
    states: Vec<T>,
    modulation: Modulation<T>,
    /// The first modulated norm, its rows' (mean, 1/std), the `[q | k | v]`
    /// projection, each score row's log-sum-exp and the attention output.
    h1: Vec<T>,
    ln1: Vec<(f64, f64)>,
    qkv: Vec<T>,
    lse1: Vec<f64>,
    att: Vec<T>,
    /// The attention branch before its gate, and the stream after it.
    branch1: Vec<T>,
    x1: Vec<T>,
    /// `ln_cross(x₁)`, its statistics, the queries, the context's keys and
    /// values, the log-sum-exps and the cross-attention output.
    h2: Vec<T>,
    ln2: Vec<(f64, f64)>,
    q: Vec<T>,
    kv: Vec<T>,
    lse2: Vec<f64>,
    cross: Vec<T>,
    /// The stream after cross-attention.
    x2: Vec<T>,
    /// The second modulated norm and its statistics, the MLP's
    /// pre-activation, its GELU, and the MLP branch before its gate.
    h3: Vec<T>,
    ln3: Vec<(f64, f64)>,
    u: Vec<T>,
    g: Vec<T>,
    branch2: Vec<T>,
}

/// The cross-attention probabilities of a forward pass, `[b, heads, n, l]`:
/// `exp(scale · q·k − lse)` for the keys an item sees, 0 past its length.
fn cross_weights<T: Float>(sv: &Saved<T>, s: Sizes, h: usize, lengths: &[usize]) -> Vec<T> {
    let Sizes {
        b, n: t, c, l: tk, ..
    } = s;
    let d = c / h;
    let scale = 1.0 / (d as f64).sqrt();
    let mut weights = vec![T::zero(); b * h * t * tk];
    for (row, w) in weights.chunks_mut(tk).enumerate() {
        let (bh, i) = (row / t, row % t);
        let (bi, hi) = (bh / h, bh % h);
        let q = &sv.q[(bi * t + i) * c + hi * d..][..d];
        let lse = sv.lse2[row];
        let seen = lengths.get(bi).copied().unwrap_or(tk);
        for (j, w) in w[..seen].iter_mut().enumerate() {
            let k = &sv.kv[(bi * tk + j) * 2 * c + hi * d..][..d];
            let score: f64 = q.iter().zip(k).map(|(a, b)| a.to_f64() * b.to_f64()).sum();
            *w = T::from_f64((scale * score - lse).exp());
        }
    }
    weights
}

/// The gradients of `y = x·W + b` (`x`: `[n, d_in]`), from `du`: `dx` as a
/// fresh vector, `dw` and `db` written into their parts of the parameters'
/// gradient.
fn linear_backward<T: Float>(x: &[T], w: &[T], du: &[T], dw: &mut [T], db: &mut [T]) -> Vec<T> {
    let mut dx = Vec::with_capacity(x.len());
    // SAFETY: `dx` has room for `x.len()` elements and `dw` is `w.len()`
    // long; the product writes every element of both.
    unsafe {
        backward_into(
            x,
            w,
            du,
            WeightLayout::InOut,
            Some(dx.as_mut_ptr()),
            dw.as_mut_ptr(),
            db,
        );
        dx.set_len(x.len());
    }
    dx
}

impl DitBlockOp {
    fn attention_spec(&self) -> AttentionSpec {
        AttentionSpec {
            n_head: self.spec.n_head,
            causal: false,
            dropout: 0.0,
            seed: 0,
        }
    }

    fn self_dims(&self, s: Sizes) -> candle_core::Result<Dims> {
        Dims::of(&Shape::from((s.b, s.n, 3 * s.c)), self.spec.n_head)
    }

    fn cross_dims(&self, s: Sizes) -> Dims {
        Dims::cross(s.b, s.n, s.l, s.c, self.spec.n_head)
    }

    /// The block's output, and what the backward pass needs.
    fn forward<T: Float>(
        &self,
        x: &[T],
        cond: &[T],
        p: &[T],
        s: Sizes,
    ) -> candle_core::Result<(Vec<T>, Saved<T>)> {
        let (c, ctx, eps) = (s.c, s.ctx, self.spec.eps);
        let [w_ada, w_qkv, w_proj, w_q, w_kv, w_cproj, w_fc, w_out, b_ada, b_qkv, b_proj, lnc_w, lnc_b, b_q, b_kv, b_cproj, b_fc, b_out] =
            parts(p, dit_param_sizes(c, ctx));
        let (vector, states) = split_conditioning(cond, s);
        let layout = WeightLayout::InOut;
        let m = product(&vector, w_ada, layout, c, 6 * c, start_at(b_ada));
        let modulation = Modulation::of(&m, c);
        let kv = product(&states, w_kv, layout, ctx, 2 * c, start_at(b_kv));

        let (h1, ln1) = layer_norm::forward(x, &modulation.scale1, &modulation.shift1, c, eps);
        let qkv = product(&h1, w_qkv, layout, c, 3 * c, start_at(b_qkv));
        let (att, lse1) = attention::forward(
            Sources::fused(&qkv, c),
            self.self_dims(s)?,
            self.attention_spec(),
            &[],
        );
        let branch1 = product(&att, w_proj, layout, c, c, start_at(b_proj));
        let x1 = gated_rows(Some(x), &branch1, &modulation.gate1, c, s.n);

        let (h2, ln2) = layer_norm::forward(&x1, lnc_w, lnc_b, c, eps);
        let q = product(&h2, w_q, layout, c, c, start_at(b_q));
        let (cross, lse2) = attention::forward(
            Sources::split(&q, &kv, c),
            self.cross_dims(s),
            self.attention_spec(),
            &self.lengths,
        );
        let x2 = residual_product(&x1, &cross, w_cproj, b_cproj, c, 0.0, 0);

        let (h3, ln3) = layer_norm::forward(&x2, &modulation.scale2, &modulation.shift2, c, eps);
        let u = product(&h3, w_fc, layout, c, 4 * c, start_at(b_fc));
        let g = gelu_rows(&u, 4 * c);
        let branch2 = product(&g, w_out, layout, 4 * c, c, start_at(b_out));
        let y = gated_rows(Some(&x2), &branch2, &modulation.gate2, c, s.n);
        let saved = Saved {
            vector,
            states,
            modulation,
            h1,
            ln1,
            qkv,
            lse1,
            att,
            branch1,
            x1,
            h2,
            ln2,
            q,
            kv,
            lse2,
            cross,
            x2,
            h3,
            ln3,
            u,
            g,
            branch2,
        };
        Ok((y, saved))
    }

    /// `(dx, dconditioning, dparams)` for the upstream gradient `dy`.
    fn backward<T: Float>(
        &self,
        x: &[T],
        p: &[T],
        dy: &[T],
        sv: &Saved<T>,
        s: Sizes,
    ) -> candle_core::Result<(Vec<T>, Vec<T>, Vec<T>)> {
        let (c, ctx, n) = (s.c, s.ctx, s.n);
        let sizes = dit_param_sizes(c, ctx);
        let [w_ada, w_qkv, w_proj, w_q, w_kv, w_cproj, w_fc, w_out, _, _, _, lnc_w, ..] =
            parts(p, sizes);
        let mut dp = par_zeroed(p.len());
        let [dw_ada, dw_qkv, dw_proj, dw_q, dw_kv, dw_cproj, dw_fc, dw_out, db_ada, db_qkv, db_proj, dlnc_w, dlnc_b, db_q, db_kv, db_cproj, db_fc, db_out] =
            parts_mut(&mut dp, sizes);
        let md = &sv.modulation;

        // The MLP branch.
        let d_branch2 = gated_rows(None, dy, &md.gate2, c, n);
        let dgate2 = gate_grad(dy, &sv.branch2, s.b, c);
        let dg = linear_backward(&sv.g, w_out, &d_branch2, dw_out, db_out);
        drop(d_branch2);
        let du = gelu_backward(&dg, &sv.u, 4 * c);
        drop(dg);
        let dh3 = linear_backward(&sv.h3, w_fc, &du, dw_fc, db_fc);
        drop(du);
        let (dx2, dscale2, dshift2) =
            layer_norm::backward(&sv.x2, &md.scale2, c, &dh3, &sv.ln3, Some(dy));
        drop(dh3);

        // The cross-attention branch.
        let d_cross = linear_backward(&sv.cross, w_cproj, &dx2, dw_cproj, db_cproj);
        let (mut dq, mut dkv) = (par_zeroed(sv.q.len()), par_zeroed(sv.kv.len()));
        attention::backward(
            &Sources::split(&sv.q, &sv.kv, c),
            &d_cross,
            &sv.lse2,
            self.cross_dims(s),
            self.attention_spec(),
            &self.lengths,
            &GradTargets::split(&mut dq, &mut dkv, c),
        );
        drop(d_cross);
        let dstates = linear_backward(&sv.states, w_kv, &dkv, dw_kv, db_kv);
        let dh2 = linear_backward(&sv.h2, w_q, &dq, dw_q, db_q);
        let (dx1, dw, db) = layer_norm::backward(&sv.x1, lnc_w, c, &dh2, &sv.ln2, Some(&dx2));
        dlnc_w.copy_from_slice(&dw);
        dlnc_b.copy_from_slice(&db);
        drop((dx2, dh2));

        // The attention branch.
        let d_branch1 = gated_rows(None, &dx1, &md.gate1, c, n);
        let dgate1 = gate_grad(&dx1, &sv.branch1, s.b, c);
        let d_att = linear_backward(&sv.att, w_proj, &d_branch1, dw_proj, db_proj);
        drop(d_branch1);
        let mut dqkv = par_zeroed(sv.qkv.len());
        attention::backward(
            &Sources::fused(&sv.qkv, c),
            &d_att,
            &sv.lse1,
            self.self_dims(s)?,
            self.attention_spec(),
            &[],
            &GradTargets::fused(&mut dqkv, c),
        );
        drop(d_att);
        let dh1 = linear_backward(&sv.h1, w_qkv, &dqkv, dw_qkv, db_qkv);
        let (dx, dscale1, dshift1) =
            layer_norm::backward(x, &md.scale1, c, &dh1, &sv.ln1, Some(&dx1));

        // The modulation, from the conditioning vector.
        let mut dm = Vec::with_capacity(s.b * 6 * c);
        for i in 0..s.b {
            for part in [&dshift1, &dscale1, &dgate1, &dshift2, &dscale2, &dgate2] {
                dm.extend_from_slice(&part[i * c..(i + 1) * c]);
            }
        }
        let dvector = linear_backward(&sv.vector, w_ada, &dm, dw_ada, db_ada);
        let mut dcond = Vec::with_capacity(s.b * s.width());
        for (v, st) in dvector.chunks(c).zip(dstates.chunks(s.l * ctx)) {
            dcond.extend_from_slice(v);
            dcond.extend_from_slice(st);
        }
        Ok((dx, dcond, dp))
    }
}

impl CustomOp3 for DitBlockOp {
    fn name(&self) -> &'static str {
        "seer-dit-block"
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
        const OP: &str = "dit_block";
        let sizes = Sizes::of(l1.shape(), l2.shape().dims2()?.1, self.spec.context_dim)?;
        with_float!(s1.dtype(), OP, T => {
            let x = contiguous::<T>(s1, l1, OP)?;
            let cond = contiguous::<T>(s2, l2, OP)?;
            let p = contiguous::<T>(s3, l3, OP)?;
            let (y, saved) = self.forward(x, cond, p, sizes)?;
            *self.saved.lock().expect("dit block state") = Some(Box::new(saved));
            Ok((T::to_cpu_storage_owned(y), l1.shape().clone()))
        })
    }

    fn bwd(
        &self,
        x: &Tensor,
        conditioning: &Tensor,
        params: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        const OP: &str = "dit_block";
        let sizes = Sizes::of(x.shape(), conditioning.dim(1)?, self.spec.context_dim)?;
        let saved = self.saved.lock().expect("dit block state");
        with_float!(x.dtype(), OP, T => {
            let saved = saved
                .as_ref()
                .and_then(|s| s.downcast_ref::<Saved<T>>())
                .ok_or_else(|| candle_core::Error::Msg(format!("{OP}: no forward pass to differentiate")))?;
            with_slice::<T, _>(x, OP, |xs| {
                with_slice::<T, _>(params, OP, |p| {
                    with_slice::<T, _>(grad, OP, |dy| {
                        let (dx, dcond, dp) = self.backward(xs, p, dy, saved, sizes)?;
                        Ok((
                            Some(tensor_from(dx, x.shape().clone())?),
                            Some(tensor_from(dcond, conditioning.shape().clone())?),
                            Some(tensor_from(dp, params.shape().clone())?),
                        ))
                    })
                })
            })
        })
    }
}
