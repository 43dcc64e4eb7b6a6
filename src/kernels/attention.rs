//! Multi-head self-attention as one op on the fused `[q | k | v]` projection
//! (and grouped-query attention, where query heads share key/value heads).
//!
//! Input `[batch, seq, 3·dim]` (GPT-2's `c_attn` output), output
//! `[batch, seq, dim]` with the heads side by side, ready for `c_proj`: no
//! transposes or copies around it. Each (batch, head) pair is one parallel
//! task that walks the queries in tiles of `TILE` rows: scores for a tile
//! (`TILE × seq`, never the whole `seq × seq` matrix), softmax, then the
//! weighted values, with matrix products done by `gemm`. The backward pass
//! recomputes the tile's probabilities from the saved log-sum-exp of each
//! row, as flash attention does. Dropout on the attention weights uses a
//! counter-based hash of (seed, position), so the backward pass regenerates
//! the same mask without storing it.

use super::math::{self, dropout_params, keep};
use super::{contiguous, gemm, par_zeroed, tensor_from, with_float, with_slice, Float, SharedMut};
use candle_core::backend::BackendStorage;
use candle_core::WithDType;
use candle_core::{CpuStorage, CustomOp1, Layout, Shape, Tensor};
use rayon::prelude::*;
use std::sync::Mutex;

/// Query rows per tile.
const TILE: usize = 64;

/// What an attention call computes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AttentionSpec {
    /// Number of heads; the head size is `dim / n_head`.
    pub n_head: usize,
    /// Whether position `i` may only attend to positions `≤ i`.
    pub causal: bool,
    /// Dropout probability on the attention weights (0 in inference).
    pub dropout: f64,
    /// Seed of the dropout mask.
    pub seed: u64,
}

/// Self-attention of `qkv` (`[batch, seq, 3·dim]`) into `[batch, seq, dim]`.
pub fn attention(qkv: &Tensor, spec: AttentionSpec) -> candle_core::Result<Tensor> {
    attention_padded(qkv, spec, &[])
}

/// Self-attention over right-padded sequences: item `b` of the batch has
/// `lengths[b]` real positions and every query sees only those keys (the
/// outputs at padding positions are computed but mean nothing). An empty
/// `lengths` means no padding.
pub fn attention_padded(
    qkv: &Tensor,
    spec: AttentionSpec,
    lengths: &[usize],
) -> candle_core::Result<Tensor> {
    let (b, t, three_c) = qkv.dims3()?;
    if three_c % 3 != 0 || (three_c / 3) % spec.n_head != 0 {
        candle_core::bail!(
            "attention: last dimension {three_c} is not 3 × a multiple of {} heads",
            spec.n_head
        );
    }
    if !lengths.is_empty() && (lengths.len() != b || lengths.iter().any(|&n| n == 0 || n > t)) {
        candle_core::bail!("attention: lengths {lengths:?} do not fit a batch of {b} × {t}");
    }
    qkv.contiguous()?.apply_op1(SelfAttention {
        spec,
        lengths: lengths.to_vec(),
        lse: Mutex::new(Vec::new()),
    })
}

/// Causal grouped-query self-attention of packed `qkv` rows
/// (`[batch, seq, (n_head + 2·n_kv_head)·head_dim]`: queries, then keys,
/// then values), query heads `g·k .. g·(k+1)` sharing key/value head `k`
/// (`g = n_head / n_kv_head`). Returns `[batch, seq, n_head·head_dim]`.
pub fn grouped_attention(
    qkv: &Tensor,
    n_head: usize,
    n_kv_head: usize,
) -> candle_core::Result<Tensor> {
    let (_, _, width) = qkv.dims3()?;
    let heads = n_head + 2 * n_kv_head;
    if n_kv_head == 0
        || !n_head.is_multiple_of(n_kv_head)
        || width == 0
        || !width.is_multiple_of(heads)
    {
        candle_core::bail!(
            "grouped_attention: rows {width} wide do not hold {n_head} query and 2 × {n_kv_head} key/value heads"
        );
    }
    qkv.contiguous()?.apply_op1(GroupedAttention {
        n_head,
        n_kv_head,
        lse: Mutex::new(Vec::new()),
    })
}

struct GroupedAttention {
    n_head: usize,
    n_kv_head: usize,
    /// Log-sum-exp of every score row, saved by the forward pass.
    lse: Mutex<Vec<f64>>,
}

impl GroupedAttention {
    /// (sizes, query width, key/value width) for packed rows of `shape`.
    fn dims(&self, shape: &Shape) -> candle_core::Result<(Dims, usize, usize)> {
        let (b, t, width) = shape.dims3()?;
        let d = width / (self.n_head + 2 * self.n_kv_head);
        let dims = Dims::grouped(b, t, self.n_head, self.n_kv_head, d);
        Ok((dims, self.n_head * d, self.n_kv_head * d))
    }

    fn spec(&self) -> AttentionSpec {
        AttentionSpec {
            n_head: self.n_head,
            causal: true,
            dropout: 0.0,
            seed: 0,
        }
    }
}

impl CustomOp1 for GroupedAttention {
    fn name(&self) -> &'static str {
        "seer-grouped-attention"
    }

    fn cpu_fwd(
        &self,
        storage: &CpuStorage,
        layout: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let (dims, qw, kvw) = self.dims(layout.shape())?;
        with_float!(storage.dtype(), "grouped_attention", T => {
            let qkv = contiguous::<T>(storage, layout, "grouped_attention")?;
            let (y, lse) = forward(Sources::packed(qkv, qw, kvw), dims, self.spec(), &[]);
            *self.lse.lock().expect("attention state") = lse;
            Ok((T::to_cpu_storage_owned(y), Shape::from((dims.b, dims.t, qw))))
        })
    }

    fn bwd(
        &self,
        arg: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<Option<Tensor>> {
        let (dims, qw, kvw) = self.dims(arg.shape())?;
        let lse = self.lse.lock().expect("attention state");
        with_float!(arg.dtype(), "grouped_attention", T => {
            with_slice::<T, _>(arg, "grouped_attention", |qkv| {
                with_slice::<T, _>(grad, "grouped_attention", |dy| {
                    let mut dqkv = par_zeroed(qkv.len());
                    let out = GradTargets::packed(&mut dqkv, qw, kvw);
                    let src = Sources::packed(qkv, qw, kvw);
                    backward(&src, dy, &lse, dims, self.spec(), &[], &out);
                    tensor_from(dqkv, arg.shape().clone()).map(Some)
                })
            })
        })
    }
}

/// Cross-attention: queries `q` (`[batch, n, dim]`) attend to the keys and
/// values of a context, `kv` (`[batch, l, 2·dim]`, keys then values, as one
/// projection makes them); item `b` sees only its first `lengths[b]` context
/// positions (all when empty). Returns `[batch, n, dim]`.
pub fn cross_attention(
    q: &Tensor,
    kv: &Tensor,
    n_head: usize,
    lengths: &[usize],
) -> candle_core::Result<Tensor> {
    let (b, _, c) = q.dims3()?;
    let (bk, l, two_c) = kv.dims3()?;
    if bk != b || two_c != 2 * c || n_head == 0 || c % n_head != 0 {
        candle_core::bail!(
            "cross_attention: q {:?} and kv {:?} do not fit {n_head} heads",
            q.dims(),
            kv.dims()
        );
    }
    if !lengths.is_empty() && (lengths.len() != b || lengths.iter().any(|&n| n == 0 || n > l)) {
        candle_core::bail!("cross_attention: lengths {lengths:?} do not fit a batch of {b} × {l}");
    }
    q.contiguous()?.apply_op2(
        &kv.contiguous()?,
        CrossAttention {
            n_head,
            lengths: lengths.to_vec(),
            lse: Mutex::new(Vec::new()),
        },
    )
}

struct CrossAttention {
    n_head: usize,
    lengths: Vec<usize>,
    lse: Mutex<Vec<f64>>,
}

impl CrossAttention {
    fn dims(&self, q: &Shape, kv: &Shape) -> candle_core::Result<Dims> {
        let (b, t, c) = q.dims3()?;
        Ok(Dims::cross(b, t, kv.dims3()?.1, c, self.n_head))
    }

    fn spec(&self) -> AttentionSpec {
        AttentionSpec {
            n_head: self.n_head,
            causal: false,
            dropout: 0.0,
            seed: 0,
        }
    }
}

impl<T> Sources<T> {
    /// Queries in their own `[.., c]` rows; keys and values in `[k | v]` rows.
    pub(super) fn split(q: &[T], kv: &[T], c: usize) -> Self {
        let kv_base = kv.as_ptr() as *mut T;
        Self {
            q: SharedMut(q.as_ptr() as *mut T),
            k: SharedMut(kv_base),
            // SAFETY: an offset within the first row of a `[.., 2·c]` buffer.
            v: SharedMut(unsafe { kv_base.add(c) }),
            q_stride: c,
            kv_stride: 2 * c,
        }
    }
}

impl candle_core::CustomOp2 for CrossAttention {
    fn name(&self) -> &'static str {
        "seer-cross-attention"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let dims = self.dims(l1.shape(), l2.shape())?;
        with_float!(s1.dtype(), "cross_attention", T => {
            let q = contiguous::<T>(s1, l1, "cross_attention")?;
            let kv = contiguous::<T>(s2, l2, "cross_attention")?;
            let (y, lse) = forward(Sources::split(q, kv, dims.c), dims, self.spec(), &self.lengths);
            *self.lse.lock().expect("attention state") = lse;
            Ok((T::to_cpu_storage_owned(y), l1.shape().clone()))
        })
    }

    fn bwd(
        &self,
        q: &Tensor,
        kv: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>)> {
        let dims = self.dims(q.shape(), kv.shape())?;
        let lse = self.lse.lock().expect("attention state");
        with_float!(q.dtype(), "cross_attention", T => {
            with_slice::<T, _>(q, "cross_attention", |qs| {
                with_slice::<T, _>(kv, "cross_attention", |kvs| {
                    with_slice::<T, _>(grad, "cross_attention", |dy| {
                        let mut dq: Vec<T> = par_zeroed(qs.len());
                        let mut dkv: Vec<T> = par_zeroed(kvs.len());
                        let out = GradTargets::split(&mut dq, &mut dkv, dims.c);
                        let src = Sources::split(qs, kvs, dims.c);
                        backward(&src, dy, &lse, dims, self.spec(), &self.lengths, &out);
                        Ok((
                            Some(tensor_from(dq, q.shape().clone())?),
                            Some(tensor_from(dkv, kv.shape().clone())?),
                        ))
                    })
                })
            })
        })
    }
}

/// Attention of new queries against a KV cache, for generation (f32, batch
/// 1, no backward pass): `qkv` holds the new tokens' fused projection
/// `[1, t, 3·dim]`; `keys` and `values` hold `tk` rows of `dim` for every
/// position so far, the new tokens' last. Query `i` sits at position
/// `tk − t + i`. Returns `[1, t, dim]`.
pub fn attention_cached(
    qkv: &Tensor,
    keys: &[f32],
    values: &[f32],
    spec: AttentionSpec,
) -> candle_core::Result<Tensor> {
    let (b, t, three_c) = qkv.dims3()?;
    let c = three_c / 3;
    let tk = keys.len() / c.max(1);
    if b != 1
        || three_c != 3 * c
        || c % spec.n_head != 0
        || keys.len() != tk * c
        || values.len() != keys.len()
        || tk < t
    {
        candle_core::bail!(
            "attention_cached: qkv {:?} and a cache of {} keys, {} values do not fit {} heads",
            qkv.dims(),
            keys.len(),
            values.len(),
            spec.n_head
        );
    }
    let dims = Dims {
        b,
        t,
        tk,
        offset: tk - t,
        c,
        h: spec.n_head,
        kv_h: spec.n_head,
        d: c / spec.n_head,
    };
    let spec = AttentionSpec {
        dropout: 0.0,
        ..spec
    };
    with_slice::<f32, _>(qkv, "attention_cached", |q| {
        let src = Sources {
            q: SharedMut(q.as_ptr() as *mut f32),
            k: SharedMut(keys.as_ptr() as *mut f32),
            v: SharedMut(values.as_ptr() as *mut f32),
            q_stride: 3 * c,
            kv_stride: c,
        };
        let (y, _) = forward(src, dims, spec, &[]);
        tensor_from(y, (b, t, c))
    })
}

struct SelfAttention {
    spec: AttentionSpec,
    /// Real positions of each batch item (empty: all of them).
    lengths: Vec<usize>,
    /// Log-sum-exp of every score row, `[batch, head, seq]`, saved by the forward pass.
    lse: Mutex<Vec<f64>>,
}

/// Sizes of one call: `t` queries against `tk` keys, query `i` sitting at
/// position `offset + i` of the keys (0 except with a KV cache); `h` query
/// heads share `kv_h` key/value heads, `h / kv_h` consecutive query heads
/// each (grouped-query attention; `kv_h = h` otherwise).
#[derive(Clone, Copy)]
pub(super) struct Dims {
    b: usize,
    t: usize,
    tk: usize,
    offset: usize,
    c: usize,
    h: usize,
    kv_h: usize,
    d: usize,
}

impl Dims {
    pub(super) fn of(shape: &Shape, n_head: usize) -> candle_core::Result<Self> {
        let (b, t, three_c) = shape.dims3()?;
        let c = three_c / 3;
        Ok(Self {
            b,
            t,
            tk: t,
            offset: 0,
            c,
            h: n_head,
            kv_h: n_head,
            d: c / n_head,
        })
    }

    /// Sizes of causal or bidirectional self-attention over `t` positions
    /// with `h` query heads sharing `kv_h` key/value heads, each `d` wide
    /// (`kv_h` must divide `h`).
    pub(super) fn grouped(b: usize, t: usize, h: usize, kv_h: usize, d: usize) -> Self {
        Self {
            b,
            t,
            tk: t,
            offset: 0,
            c: h * d,
            h,
            kv_h,
            d,
        }
    }

    /// Query heads per key/value head.
    fn group(&self) -> usize {
        self.h / self.kv_h
    }

    /// Sizes of `t` queries per item (`c` wide) against a context of `tk`
    /// keys: cross-attention.
    pub(super) fn cross(b: usize, t: usize, tk: usize, c: usize, n_head: usize) -> Self {
        Self {
            b,
            t,
            tk,
            offset: 0,
            c,
            h: n_head,
            kv_h: n_head,
            d: c / n_head,
        }
    }

    /// Keys query `i` may see, of the `n` computed for its tile.
    fn valid_keys(&self, causal: bool, i: usize, n: usize) -> usize {
        if causal {
            (self.offset + i + 1).min(n)
        } else {
            n
        }
    }

    /// Keys visible to the rows of the tile starting at `i0` with `tq` rows,
    /// when only the first `limit` keys are real.
    fn keys(&self, causal: bool, i0: usize, tq: usize, limit: usize) -> usize {
        if causal {
            (self.offset + i0 + tq).min(limit)
        } else {
            limit
        }
    }
}

impl CustomOp1 for SelfAttention {
    fn name(&self) -> &'static str {
        "seer-attention"
    }

    fn cpu_fwd(
        &self,
        storage: &CpuStorage,
        layout: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let dims = Dims::of(layout.shape(), self.spec.n_head)?;
        with_float!(storage.dtype(), "attention", T => {
            let qkv = contiguous::<T>(storage, layout, "attention")?;
            let (y, lse) = forward(Sources::fused(qkv, dims.c), dims, self.spec, &self.lengths);
            *self.lse.lock().expect("attention state") = lse;
            Ok((T::to_cpu_storage_owned(y), Shape::from((dims.b, dims.t, dims.c))))
        })
    }

    fn bwd(
        &self,
        arg: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<Option<Tensor>> {
        let dims = Dims::of(arg.shape(), self.spec.n_head)?;
        let lse = self.lse.lock().expect("attention state");
        with_float!(arg.dtype(), "attention", T => {
            with_slice::<T, _>(arg, "attention", |qkv| {
                with_slice::<T, _>(grad, "attention", |dy| {
                    let mut dqkv = par_zeroed(qkv.len());
                    let out = GradTargets::fused(&mut dqkv, dims.c);
                    let src = Sources::fused(qkv, dims.c);
                    backward(&src, dy, &lse, dims, self.spec, &self.lengths, &out);
                    tensor_from(dqkv, arg.shape().clone()).map(Some)
                })
            })
        })
    }
}

/// Queries, keys and values of one call: each a pointer to batch 0, head 0,
/// position 0, with its row stride (the batch stride is rows × row stride).
pub(super) struct Sources<T> {
    q: SharedMut<T>,
    k: SharedMut<T>,
    v: SharedMut<T>,
    q_stride: usize,
    kv_stride: usize,
}

impl<T> Sources<T> {
    /// The queries, keys and values inside GPT-2's fused `[q | k | v]` rows.
    pub(super) fn fused(qkv: &[T], c: usize) -> Self {
        Self::packed(qkv, c, c)
    }

    /// The queries (`q_width` wide), keys and values (`kv_width` wide each)
    /// inside packed `[q | k | v]` rows (a grouped-query projection).
    pub(super) fn packed(qkv: &[T], q_width: usize, kv_width: usize) -> Self {
        let base = qkv.as_ptr() as *mut T;
        let stride = q_width + 2 * kv_width;
        // SAFETY: offsets within the first row of a `[.., stride]` buffer.
        let (k, v) = unsafe { (base.add(q_width), base.add(q_width + kv_width)) };
        Self {
            q: SharedMut(base),
            k: SharedMut(k),
            v: SharedMut(v),
            q_stride: stride,
            kv_stride: stride,
        }
    }

    /// Pointers for batch `bi`, query head `hi`: (q, k, v), the keys and
    /// values those of the head's group.
    ///
    /// # Safety
    /// `dims` must describe the buffers behind `self`.
    unsafe fn head(&self, dims: Dims, bi: usize, hi: usize) -> (*const T, *const T, *const T) {
        let q = self.q.ptr().add(bi * dims.t * self.q_stride + hi * dims.d);
        let kv = bi * dims.tk * self.kv_stride + (hi / dims.group()) * dims.d;
        (q, self.k.ptr().add(kv), self.v.ptr().add(kv))
    }
}

/// `out (tq × n) = scale · Q[i0..i0+tq] · K[0..n]ᵀ` for one (batch, head).
///
/// # Safety
/// `q` and `k` must point to that head's queries and keys in `src`'s layout,
/// and `out` to `tq · n` writable elements.
#[allow(clippy::too_many_arguments)]
unsafe fn tile_scores<T: Float>(
    dims: Dims,
    src: &Sources<T>,
    q: *const T,
    k: *const T,
    i0: usize,
    tq: usize,
    n: usize,
    scale: T,
    out: *mut T,
) {
    let (qs, ks) = (src.q_stride, src.kv_stride);
    gemm(
        tq,
        n,
        dims.d,
        (out, n, 1),
        false,
        (q.add(i0 * qs), qs, 1),
        (k, 1, ks),
        scale,
        1,
    );
}

/// The attention output `[batch, t, dim]` and the log-sum-exp of every score
/// row; batch item `b` sees only its first `lengths[b]` keys (all when empty).
pub(super) fn forward<T: Float>(
    src: Sources<T>,
    dims: Dims,
    spec: AttentionSpec,
    lengths: &[usize],
) -> (Vec<T>, Vec<f64>) {
    let Dims { b, t, c, h, d, .. } = dims;
    let mut y: Vec<T> = par_zeroed(b * t * c);
    let mut lse = vec![0.0f64; b * h * t];
    let (y_ptr, lse_ptr) = (SharedMut(y.as_mut_ptr()), SharedMut(lse.as_mut_ptr()));
    let scale = T::from_f64(1.0 / (d as f64).sqrt());
    let (keep_scale, threshold) = dropout_params::<T>(spec.dropout);
    (0..b * h)
        .into_par_iter()
        .for_each_init(Vec::new, |scores: &mut Vec<T>, bh| {
            let (bi, hi) = (bh / h, bh % h);
            scores.resize(TILE.min(t) * dims.tk, T::zero());
            // SAFETY: task (bi, hi) writes only rows of batch bi, columns of head hi.
            unsafe {
                let (q, k, v) = src.head(dims, bi, hi);
                let y = y_ptr.ptr().add(bi * t * c + hi * d);
                for i0 in (0..t).step_by(TILE) {
                    let tq = TILE.min(t - i0);
                    let limit = lengths.get(bi).copied().unwrap_or(dims.tk);
                    let n = dims.keys(spec.causal, i0, tq, limit);
                    let s = scores.as_mut_ptr();
                    tile_scores(dims, &src, q, k, i0, tq, n, scale, s);
                    for r in 0..tq {
                        let i = i0 + r;
                        let row = &mut scores[r * n..(r + 1) * n];
                        let valid = dims.valid_keys(spec.causal, i, n);
                        let max = row[..valid].iter().copied().fold(T::NEG_INFINITY, T::max);
                        row[..valid].iter_mut().for_each(|x| *x = (*x - max).exp());
                        let sum = math::sum(&row[..valid]);
                        let inv = T::one() / sum;
                        row[..valid].iter_mut().for_each(|x| *x *= inv);
                        row[valid..].iter_mut().for_each(|x| *x = T::zero());
                        *lse_ptr.ptr().add(bh * t + i) = max.to_f64() + sum.to_f64().ln();
                        if spec.dropout > 0.0 {
                            let base = ((bh * t + i) * dims.tk) as u64;
                            for (j, x) in row[..valid].iter_mut().enumerate() {
                                *x = if keep(spec.seed, base + j as u64, threshold) {
                                    *x * keep_scale
                                } else {
                                    T::zero()
                                };
                            }
                        }
                    }
                    gemm(
                        tq,
                        d,
                        n,
                        (y.add(i0 * c), c, 1),
                        false,
                        (s, n, 1),
                        (v, src.kv_stride, 1),
                        T::one(),
                        1,
                    );
                }
            }
        });
    (y, lse)
}

/// Where the backward pass writes: pointers to batch 0, head 0, position 0
/// of the query, key and value gradients, with their row strides.
pub(super) struct GradTargets<T> {
    dq: SharedMut<T>,
    dk: SharedMut<T>,
    dv: SharedMut<T>,
    q_stride: usize,
    kv_stride: usize,
}

impl<T> GradTargets<T> {
    /// The gradient of GPT-2's fused `[q | k | v]` rows, in `dqkv`.
    pub(super) fn fused(dqkv: &mut [T], c: usize) -> Self {
        Self::packed(dqkv, c, c)
    }

    /// The gradient of packed `[q | k | v]` rows (queries `q_width` wide,
    /// keys and values `kv_width` wide each), in `dqkv`.
    pub(super) fn packed(dqkv: &mut [T], q_width: usize, kv_width: usize) -> Self {
        let base = dqkv.as_mut_ptr();
        let stride = q_width + 2 * kv_width;
        // SAFETY: offsets within the first row of a `[.., stride]` buffer.
        let (dk, dv) = unsafe { (base.add(q_width), base.add(q_width + kv_width)) };
        Self {
            dq: SharedMut(base),
            dk: SharedMut(dk),
            dv: SharedMut(dv),
            q_stride: stride,
            kv_stride: stride,
        }
    }

    /// The gradients of queries in their own `[.., c]` rows (`dq`) and of
    /// keys and values in `[k | v]` rows (`dkv`).
    pub(super) fn split(dq: &mut [T], dkv: &mut [T], c: usize) -> Self {
        let base = dkv.as_mut_ptr();
        Self {
            dq: SharedMut(dq.as_mut_ptr()),
            dk: SharedMut(base),
            // SAFETY: an offset within the first row of a `[.., 2·c]` buffer.
            dv: SharedMut(unsafe { base.add(c) }),
            q_stride: c,
            kv_stride: 2 * c,
        }
    }
}

/// Accumulates the gradients of attention into `out`, given the upstream
/// gradient `dy` (`[batch, t, dim]`) and the forward pass's log-sum-exp.
#[allow(clippy::too_many_arguments)]
pub(super) fn backward<T: Float>(
    src: &Sources<T>,
    dy: &[T],
    lse: &[f64],
    dims: Dims,
    spec: AttentionSpec,
    lengths: &[usize],
    out: &GradTargets<T>,
) {
    let Dims {
        b, t, tk, c, h, d, ..
    } = dims;
    let (qs, ks) = (src.q_stride, src.kv_stride);
    let (dqs, dks) = (out.q_stride, out.kv_stride);
    let scale = T::from_f64(1.0 / (d as f64).sqrt());
    let (keep_scale, threshold) = dropout_params::<T>(spec.dropout);
    let dropout = spec.dropout > 0.0;
    let (kv_h, group) = (dims.kv_h, dims.group());
    let init = || (Vec::new(), Vec::new(), Vec::new());
    // One task per (batch, key/value head): the query heads of a group add
    // into the same key and value gradients, one after another.
    (0..b * kv_h)
        .into_par_iter()
        .for_each_init(init, |(probs, grads, dropped), bg| {
            let (bi, gi) = (bg / kv_h, bg % kv_h);
            let len = TILE.min(t) * tk;
            probs.resize(len, T::zero());
            grads.resize(len, T::zero());
            if dropout {
                dropped.resize(len, T::zero());
            }
            for hi in gi * group..(gi + 1) * group {
                let bh = bi * h + hi;
                // SAFETY: task (bi, gi) writes only rows of batch bi, columns of
                // group gi's key/value head and of its query heads.
                unsafe {
                    let (q, k, v) = src.head(dims, bi, hi);
                    let dq = out.dq.ptr().add(bi * t * dqs + hi * d);
                    let dk = out.dk.ptr().add(bi * tk * dks + gi * d);
                    let dv = out.dv.ptr().add(bi * tk * dks + gi * d);
                    let dy = dy.as_ptr().add(bi * t * c + hi * d);
                    for i0 in (0..t).step_by(TILE) {
                        let tq = TILE.min(t - i0);
                        let limit = lengths.get(bi).copied().unwrap_or(tk);
                        let n = dims.keys(spec.causal, i0, tq, limit);
                        let (p, g) = (probs.as_mut_ptr(), grads.as_mut_ptr());
                        // Probabilities of the tile, from the saved log-sum-exp.
                        tile_scores(dims, src, q, k, i0, tq, n, scale, p);
                        for r in 0..tq {
                            let i = i0 + r;
                            let valid = dims.valid_keys(spec.causal, i, n);
                            let row_lse = T::from_f64(lse[bh * t + i]);
                            let row = &mut probs[r * n..(r + 1) * n];
                            row[..valid]
                                .iter_mut()
                                .for_each(|x| *x = (*x - row_lse).exp());
                            row[valid..].iter_mut().for_each(|x| *x = T::zero());
                        }
                        // Gradient with respect to the (dropped-out) weights.
                        gemm(
                            tq,
                            n,
                            d,
                            (g, n, 1),
                            false,
                            (dy.add(i0 * c), c, 1),
                            (v, 1, ks),
                            T::one(),
                            1,
                        );
                        let weights = if dropout {
                            for r in 0..tq {
                                let base = ((bh * t + i0 + r) * tk) as u64;
                                for j in 0..n {
                                    let f = if keep(spec.seed, base + j as u64, threshold) {
                                        keep_scale
                                    } else {
                                        T::zero()
                                    };
                                    dropped[r * n + j] = probs[r * n + j] * f;
                                    grads[r * n + j] *= f;
                                }
                            }
                            dropped.as_ptr()
                        } else {
                            probs.as_ptr()
                        };
                        gemm(
                            n,
                            d,
                            tq,
                            (dv, dks, 1),
                            true,
                            (weights, 1, n),
                            (dy.add(i0 * c), c, 1),
                            T::one(),
                            1,
                        );
                        // Softmax backward: dS = P ∘ (dP − rowsum(P ∘ dP)).
                        for r in 0..tq {
                            let (pr, gr) =
                                (&probs[r * n..(r + 1) * n], &mut grads[r * n..(r + 1) * n]);
                            let dot = math::dot(pr, gr);
                            gr.iter_mut()
                                .zip(pr)
                                .for_each(|(g, &p)| *g = p * (*g - dot));
                        }
                        gemm(
                            tq,
                            d,
                            n,
                            (dq.add(i0 * dqs), dqs, 1),
                            false,
                            (g, n, 1),
                            (k, ks, 1),
                            scale,
                            1,
                        );
                        gemm(
                            n,
                            d,
                            tq,
                            (dk, dks, 1),
                            true,
                            (g, 1, n),
                            (q.add(i0 * qs), qs, 1),
                            scale,
                            1,
                        );
                    }
                }
            }
        });
}
