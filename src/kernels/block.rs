//! A whole pre-LayerNorm Transformer block as one op, as llm.c writes it:
//! `x₁ = x + drop(attn(ln₁(x))·W_proj + b_proj)`, then
//! `y = x₁ + drop(gelu(ln₂(x₁)·W_fc + b_fc)·W_mlp + b_mlp)`.
//!
//! The block's parameters come in two flat tensors, its four matrices and
//! its eight vectors ([`matrix_sizes`], [`vector_sizes`]), so candle's
//! autograd sees one node per block where the composed ops made about
//! fifteen: the activations' gradients inside the block never pass through
//! candle's gradient store, which adds each one into fresh zeros. Each stage
//! is one of the other kernels' slice-level passes, so the block computes
//! what those ops compose to (`tests/kernels.rs` checks it against them and
//! against finite differences), with the residual adds fused in: the
//! residual is the starting value of each projection's product, and the
//! skip connection's gradient is added inside LayerNorm's backward pass.

use super::attention::{self, AttentionSpec, Dims, GradTargets, Sources};
use super::dropout::apply_mask;
use super::layer_norm;
use super::linear::{backward_into, gelu_backward, gelu_rows, product, start_at, WeightLayout};
use super::math::{dropout_params, keep, Weight};
use super::{
    contiguous, par_written, par_zeroed, tensor_from, with_float, with_float_weights, with_slice,
    Float,
};
use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, CustomOp3, DType, Layout, Shape, Tensor};
use std::any::Any;
use std::borrow::Cow;
use std::sync::Mutex;

/// Elements per parallel task of the dropout-and-residual pass.
const CHUNK: usize = 1 << 14;

/// What a block computes besides its parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BlockSpec {
    /// Attention heads; the head size is `dim / n_head`.
    pub n_head: usize,
    /// Whether position `i` attends only to positions `≤ i`.
    pub causal: bool,
    /// LayerNorm's epsilon.
    pub eps: f64,
    /// Dropout probability on the attention weights and on both branches'
    /// outputs (0 in inference).
    pub dropout: f64,
    /// Dropout seeds: the attention weights, the attention branch's output,
    /// the MLP branch's output.
    pub seeds: [u64; 3],
    /// Whether the linear layers and LayerNorms have biases.
    pub bias: bool,
}

/// Elements of the block's matrices as they follow one another in
/// `matrices`: `attn.c_attn` `[dim, 3·dim]`, `attn.c_proj` `[dim, dim]`,
/// `mlp.c_fc` `[dim, 4·dim]` and `mlp.c_proj` `[4·dim, dim]`, each laid out
/// `[in, out]` (GPT-2's `Conv1D`).
pub fn matrix_sizes(dim: usize) -> [usize; 4] {
    let square = dim * dim;
    [3 * square, square, 4 * square, 4 * square]
}

/// Elements of the block's vectors as they follow one another in
/// `vectors`: `ln_1` weight and bias, `attn.c_attn` bias, `attn.c_proj`
/// bias, `ln_2` weight and bias, `mlp.c_fc` bias, `mlp.c_proj` bias; without
/// biases, the two LayerNorm weights only.
pub fn vector_sizes(dim: usize, bias: bool) -> Vec<usize> {
    if bias {
        all_vector_sizes(dim).to_vec()
    } else {
        vec![dim, dim]
    }
}

/// The sizes of all eight vectors, biases included.
fn all_vector_sizes(dim: usize) -> [usize; 8] {
    [dim, dim, 3 * dim, dim, dim, dim, 4 * dim, dim]
}

/// All eight vectors of a block `c` wide, as one buffer in
/// [`all_vector_sizes`]' order: `v` itself with biases, else `v`'s two
/// LayerNorm weights with zeros for the biases.
fn all_vectors<T: Float>(v: &[T], c: usize, bias: bool) -> Cow<'_, [T]> {
    if bias {
        return Cow::Borrowed(v);
    }
    let mut all = vec![T::zero(); all_vector_sizes(c).iter().sum()];
    all[..c].copy_from_slice(&v[..c]);
    let ln2 = 6 * c;
    all[ln2..ln2 + c].copy_from_slice(&v[c..2 * c]);
    Cow::Owned(all)
}

/// The block applied to `x` (`[batch, seq, dim]`), with its parameters
/// packed as [`matrix_sizes`] and [`vector_sizes`] say; item `b` of the
/// batch attends only to its first `lengths[b]` positions (all when empty).
/// `matrices` may be bf16 for an f32 `x` (inference only).
pub fn transformer_block(
    x: &Tensor,
    matrices: &Tensor,
    vectors: &Tensor,
    spec: BlockSpec,
    lengths: &[usize],
) -> candle_core::Result<Tensor> {
    let (b, t, c) = x.dims3()?;
    let (m, v): (usize, usize) = (
        matrix_sizes(c).iter().sum(),
        vector_sizes(c, spec.bias).iter().sum(),
    );
    if matrices.dims() != [m] || vectors.dims() != [v] {
        candle_core::bail!(
            "transformer_block: a block {c} wide takes [{m}] matrix and [{v}] vector elements, not {:?} and {:?}",
            matrices.dims(),
            vectors.dims()
        );
    }
    if spec.n_head == 0 || !c.is_multiple_of(spec.n_head) {
        candle_core::bail!(
            "transformer_block: width {c} is not a multiple of {} heads",
            spec.n_head
        );
    }
    if !(0.0..1.0).contains(&spec.dropout) {
        candle_core::bail!(
            "transformer_block: dropout {} is not in [0, 1)",
            spec.dropout
        );
    }
    if !lengths.is_empty() && (lengths.len() != b || lengths.iter().any(|&n| n == 0 || n > t)) {
        candle_core::bail!(
            "transformer_block: lengths {lengths:?} do not fit a batch of {b} × {t}"
        );
    }
    x.contiguous()?.apply_op3(
        &matrices.contiguous()?,
        &vectors.contiguous()?,
        Block {
            spec,
            lengths: lengths.to_vec(),
            saved: Mutex::new(None),
        },
    )
}

struct Block {
    spec: BlockSpec,
    lengths: Vec<usize>,
    /// The forward pass's activations (a `Saved<T>`), kept for the backward pass.
    saved: Mutex<Option<Box<dyn Any + Send>>>,
}

/// What the backward pass needs from the forward pass.
struct Saved<T> {
    /// `ln₁(x)` and its rows' (mean, 1/std).
    xn1: Vec<T>,
    ln1: Vec<(f64, f64)>,
    /// The fused `[q | k | v]` projection and each score row's log-sum-exp.
    qkv: Vec<T>,
    lse: Vec<f64>,
    /// The attention output, before its projection.
    att: Vec<T>,
    /// The residual stream after the attention branch.
    x1: Vec<T>,
    /// `ln₂(x₁)` and its rows' statistics.
    xn2: Vec<T>,
    ln2: Vec<(f64, f64)>,
    /// The MLP's pre-activation and its GELU.
    u: Vec<T>,
    h: Vec<T>,
}

/// `all` cut into consecutive parts of `N` sizes.
pub(super) fn parts<T, const N: usize>(all: &[T], sizes: [usize; N]) -> [&[T]; N] {
    let mut rest = all;
    sizes.map(|n| {
        let (part, tail) = rest.split_at(n);
        rest = tail;
        part
    })
}

/// `all` cut into consecutive mutable parts of `N` sizes.
pub(super) fn parts_mut<T, const N: usize>(all: &mut [T], sizes: [usize; N]) -> [&mut [T]; N] {
    let mut rest = all;
    sizes.map(|n| {
        let (part, tail) = std::mem::take(&mut rest).split_at_mut(n);
        rest = tail;
        part
    })
}

/// `residual + drop(input·W + b)`: with no dropout the product starts from
/// `residual + b`, so the residual add costs no pass; with dropout the mask
/// of (`p`, `seed`) is applied, element `i` of the product as the dropout
/// kernel would, in the pass that adds the residual.
#[allow(clippy::too_many_arguments)]
pub(super) fn residual_product<T: Float, W: Weight<T>>(
    residual: &[T],
    input: &[T],
    w: &[W],
    b: &[T],
    d_in: usize,
    p: f64,
    seed: u64,
) -> Vec<T> {
    let d_out = b.len();
    if p == 0.0 {
        return product(input, w, WeightLayout::InOut, d_in, d_out, |row, out| {
            let residual = &residual[row * d_out..(row + 1) * d_out];
            for ((o, &r), &b) in out.iter_mut().zip(residual).zip(b) {
                o.write(r + b);
            }
        });
    }
    let branch = product(input, w, WeightLayout::InOut, d_in, d_out, start_at(b));
    let (scale, threshold) = dropout_params::<T>(p);
    // SAFETY: each part is written element by element.
    unsafe {
        par_written(branch.len(), CHUNK, |start, out| {
            for (i, o) in out.iter_mut().enumerate() {
                let at = start + i;
                let kept = if keep(seed, at as u64, threshold) {
                    branch[at] * scale
                } else {
                    T::zero()
                };
                o.write(residual[at] + kept);
            }
        })
    }
}

impl Block {
    fn attention_spec(&self) -> AttentionSpec {
        AttentionSpec {
            n_head: self.spec.n_head,
            causal: self.spec.causal,
            dropout: self.spec.dropout,
            seed: self.spec.seeds[0],
        }
    }

    /// The block's output for `x` of `shape`, and what the backward pass needs.
    fn forward<T: Float, W: Weight<T>>(
        &self,
        x: &[T],
        m: &[W],
        v: &[T],
        shape: &Shape,
    ) -> candle_core::Result<(Vec<T>, Saved<T>)> {
        let (b, t, c) = shape.dims3()?;
        let [w_attn, w_proj, w_fc, w_mlp] = parts(m, matrix_sizes(c));
        let v = all_vectors(v, c, self.spec.bias);
        let [ln1_w, ln1_b, b_attn, b_proj, ln2_w, ln2_b, b_fc, b_mlp] =
            parts(&v, all_vector_sizes(c));
        let (p, eps, seeds) = (self.spec.dropout, self.spec.eps, self.spec.seeds);
        let (xn1, ln1) = layer_norm::forward(x, ln1_w, ln1_b, c, eps);
        let qkv = product(
            &xn1,
            w_attn,
            WeightLayout::InOut,
            c,
            3 * c,
            start_at(b_attn),
        );
        let dims = Dims::of(&Shape::from((b, t, 3 * c)), self.spec.n_head)?;
        let (att, lse) = attention::forward(
            Sources::fused(&qkv, c),
            dims,
            self.attention_spec(),
            &self.lengths,
        );
        let x1 = residual_product(x, &att, w_proj, b_proj, c, p, seeds[1]);
        let (xn2, ln2) = layer_norm::forward(&x1, ln2_w, ln2_b, c, eps);
        let u = product(&xn2, w_fc, WeightLayout::InOut, c, 4 * c, start_at(b_fc));
        let h = gelu_rows(&u, 4 * c);
        let y = residual_product(&x1, &h, w_mlp, b_mlp, 4 * c, p, seeds[2]);
        let saved = Saved {
            xn1,
            ln1,
            qkv,
            lse,
            att,
            x1,
            xn2,
            ln2,
            u,
            h,
        };
        Ok((y, saved))
    }

    /// `(dx, dmatrices, dvectors)` for the upstream gradient `dy`.
    fn backward<T: Float>(
        &self,
        x: &[T],
        m: &[T],
        v: &[T],
        dy: &[T],
        s: &Saved<T>,
        shape: &Shape,
    ) -> candle_core::Result<(Vec<T>, Vec<T>, Vec<T>)> {
        let (b, t, c) = shape.dims3()?;
        let n = b * t;
        let [w_attn, w_proj, w_fc, w_mlp] = parts(m, matrix_sizes(c));
        let (ln1_w, ln2_w) = if self.spec.bias {
            (&v[..c], &v[6 * c..7 * c])
        } else {
            (&v[..c], &v[c..2 * c])
        };
        let (p, seeds) = (self.spec.dropout, self.spec.seeds);
        let mut dm: Vec<T> = Vec::with_capacity(m.len());
        let [dw_attn, dw_proj, dw_fc, dw_mlp] = {
            let base = dm.as_mut_ptr();
            let mut offset = 0;
            // SAFETY: the offsets stay within the capacity of `dm`.
            matrix_sizes(c).map(|len| unsafe {
                let at = base.add(offset);
                offset += len;
                at
            })
        };
        let mut dv = vec![T::zero(); all_vector_sizes(c).iter().sum()];
        let [dln1_w, dln1_b, db_attn, db_proj, dln2_w, dln2_b, db_fc, db_mlp] =
            parts_mut(&mut dv, all_vector_sizes(c));
        let fresh = |len: usize| -> Vec<T> { Vec::with_capacity(len) };

        // The MLP branch.
        let d_mlp: Cow<[T]> = if p > 0.0 {
            Cow::Owned(apply_mask(dy, p, seeds[2]))
        } else {
            Cow::Borrowed(dy)
        };
        let mut dh = fresh(n * 4 * c);
        // SAFETY (each `backward_into` below): `dm`'s parts and the fresh
        // buffers have room for the gradients, which write every element;
        // nothing is read before it is written.
        unsafe {
            backward_into(
                &s.h,
                w_mlp,
                &d_mlp,
                WeightLayout::InOut,
                Some(dh.as_mut_ptr()),
                dw_mlp,
                db_mlp,
            );
            dh.set_len(n * 4 * c);
        }
        let du = gelu_backward(&dh, &s.u, 4 * c);
        drop(dh);
        let mut dxn2 = fresh(n * c);
        unsafe {
            backward_into(
                &s.xn2,
                w_fc,
                &du,
                WeightLayout::InOut,
                Some(dxn2.as_mut_ptr()),
                dw_fc,
                db_fc,
            );
            dxn2.set_len(n * c);
        }
        let (dx1, dw, db) = layer_norm::backward(&s.x1, ln2_w, c, &dxn2, &s.ln2, Some(dy));
        dln2_w.copy_from_slice(&dw);
        dln2_b.copy_from_slice(&db);

        // The attention branch.
        let d_att_out: Cow<[T]> = if p > 0.0 {
            Cow::Owned(apply_mask(&dx1, p, seeds[1]))
        } else {
            Cow::Borrowed(&dx1)
        };
        let mut d_att = fresh(n * c);
        unsafe {
            backward_into(
                &s.att,
                w_proj,
                &d_att_out,
                WeightLayout::InOut,
                Some(d_att.as_mut_ptr()),
                dw_proj,
                db_proj,
            );
            d_att.set_len(n * c);
        }
        let mut dqkv = par_zeroed(n * 3 * c);
        let dims = Dims::of(&Shape::from((b, t, 3 * c)), self.spec.n_head)?;
        attention::backward(
            &Sources::fused(&s.qkv, c),
            &d_att,
            &s.lse,
            dims,
            self.attention_spec(),
            &self.lengths,
            &GradTargets::fused(&mut dqkv, c),
        );
        let mut dxn1 = fresh(n * c);
        unsafe {
            backward_into(
                &s.xn1,
                w_attn,
                &dqkv,
                WeightLayout::InOut,
                Some(dxn1.as_mut_ptr()),
                dw_attn,
                db_attn,
            );
            dxn1.set_len(n * c);
        }
        let (dx, dw, db) = layer_norm::backward(x, ln1_w, c, &dxn1, &s.ln1, Some(&dx1));
        dln1_w.copy_from_slice(&dw);
        dln1_b.copy_from_slice(&db);
        // SAFETY: the four products above wrote all of `dm`.
        unsafe { dm.set_len(m.len()) };
        if !self.spec.bias {
            // Only the LayerNorm weights are parameters.
            dv = [&dv[..c], &dv[6 * c..7 * c]].concat();
        }
        Ok((dx, dm, dv))
    }

    /// Runs the forward pass and keeps its activations.
    fn run<T: Float, W: Weight<T>>(
        &self,
        x: &[T],
        m: &[W],
        v: &[T],
        shape: &Shape,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let (y, saved) = self.forward(x, m, v, shape)?;
        *self.saved.lock().expect("block state") = Some(Box::new(saved));
        Ok((T::to_cpu_storage_owned(y), shape.clone()))
    }
}

impl CustomOp3 for Block {
    fn name(&self) -> &'static str {
        "seer-transformer-block"
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
        with_float_weights!(
            "transformer_block",
            (s1, l1),
            (s2, l2),
            (s3, l3),
            |x, m, v| self.run(x, m, v, l1.shape())
        )
    }

    fn bwd(
        &self,
        x: &Tensor,
        matrices: &Tensor,
        vectors: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        const OP: &str = "transformer_block";
        if matrices.dtype() == DType::BF16 {
            candle_core::bail!(
                "{OP}: bf16 weights are for inference only; load the model in f32 to train it"
            );
        }
        let saved = self.saved.lock().expect("block state");
        with_float!(x.dtype(), OP, T => {
            let saved = saved
                .as_ref()
                .and_then(|s| s.downcast_ref::<Saved<T>>())
                .ok_or_else(|| candle_core::Error::Msg(format!("{OP}: no forward pass to differentiate")))?;
            with_slice::<T, _>(x, OP, |xs| {
                with_slice::<T, _>(matrices, OP, |m| {
                    with_slice::<T, _>(vectors, OP, |v| {
                        with_slice::<T, _>(grad, OP, |dy| {
                            let (dx, dm, dv) = self.backward(xs, m, v, dy, saved, x.shape())?;
                            Ok((
                                Some(tensor_from(dx, x.shape().clone())?),
                                Some(tensor_from(dm, matrices.shape().clone())?),
                                Some(tensor_from(dv, vectors.shape().clone())?),
                            ))
                        })
                    })
                })
            })
        })
    }
}
