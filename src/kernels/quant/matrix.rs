//! `QMatrix`: a row-major weight matrix kept in its GGML encoding, and its
//! products with activations (one token for generation, several for a
//! prompt), split across rayon's threads in coarse blocks of rows.

use super::activations::Activations;
use super::dequant::{dequantize_blocks, supported};
use super::interleaved::{group_block_bytes, Interleaved, Row, GROUP};
use super::path::KernelPath;
use super::{portable, GgmlType, WeightBytes};
use crate::{Error, Result};
use rayon::prelude::*;
use std::sync::Arc;

/// Weight bytes a parallel task reads at least: below this the hand-off
/// between threads costs more than the work it shares.
const MIN_TASK_BYTES: usize = 24 << 10;

/// Tasks per thread at most: enough to even out the threads' speeds.
const TASKS_PER_THREAD: usize = 2;

/// Weight bytes a task multiplies by every activation row before moving
/// on, so that they are read from memory once (half of a 32 KiB L1 cache).
const L1_BYTES: usize = 16 << 10;

/// Weight bytes of regrouped rows a task multiplies by every activation
/// row before moving on (a quarter of a 512 KiB L2 cache).
const L2_BYTES: usize = 128 << 10;

/// Rows the SIMD kernels take at once; tasks hold a multiple of this.
const ROW_GROUP: usize = GROUP;

/// Activation rows the regrouped kernels take at once.
const TOKEN_GROUP: usize = 4;

/// One parallel task of a product: rows `first ..` of `matrix` (as many as
/// each of `outs` holds) times every activation row.
struct Task<'a> {
    matrix: &'a QMatrix,
    first: usize,
    outs: Vec<&'a mut [f32]>,
}

/// A `rows × cols` matrix of `ty` elements, row by row, each row
/// `ty.row_bytes(cols)` bytes (a GGUF tensor of dimensions `[cols, rows]`).
#[derive(Clone, Debug)]
pub struct QMatrix {
    ty: GgmlType,
    rows: usize,
    cols: usize,
    row_bytes: usize,
    bytes: WeightBytes,
    /// The rows regrouped for the SIMD kernels, where this CPU runs them.
    interleaved: Option<Arc<Interleaved>>,
}

impl QMatrix {
    /// The matrix stored in `bytes`, which must be exactly `rows` rows of
    /// `cols` elements of a type the kernels handle.
    pub fn new(ty: GgmlType, rows: usize, cols: usize, bytes: WeightBytes) -> Result<Self> {
        if !supported(ty) {
            return Err(Error::Invalid(format!(
                "{ty} weights are not supported (supported: f32, f16, bf16, q8_0, q4_0, q4_1, q5_0, q4_K, q5_K, q6_K)"
            )));
        }
        if rows == 0 || cols == 0 {
            return Err(Error::Invalid(format!(
                "a {ty} weight matrix of {rows}×{cols} is empty"
            )));
        }
        let row_bytes = ty.row_bytes(cols as u64).ok_or_else(|| {
            Error::Invalid(format!(
                "a {ty} matrix's rows hold whole blocks of {} elements; {cols} columns is not a multiple",
                ty.block_len()
            ))
        })?;
        let total = row_bytes.checked_mul(rows as u64);
        if total != Some(bytes.len() as u64) {
            return Err(Error::Invalid(format!(
                "a {ty} matrix of {rows}×{cols} takes {} bytes, but {} were given",
                total.map_or("more than 2^64".to_string(), |t| t.to_string()),
                bytes.len()
            )));
        }
        // Regrouped only where this process runs the SIMD kernels.
        let interleaved = if KernelPath::detect().is_ok_and(KernelPath::is_simd) {
            Interleaved::new(ty, rows, cols, row_bytes as usize, &bytes).map(Arc::new)
        } else {
            None
        };
        Ok(Self {
            ty,
            rows,
            cols,
            row_bytes: row_bytes as usize,
            bytes,
            interleaved,
        })
    }

    /// The element type.
    pub fn ty(&self) -> GgmlType {
        self.ty
    }

    /// Number of rows (outputs of a product).
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Number of columns (inputs of a product).
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// The encoded weights.
    pub fn bytes(&self) -> &WeightBytes {
        &self.bytes
    }

    /// Row `r` expanded into `out` (`cols` elements), as for an embedding lookup.
    pub fn dequantize_row(&self, r: usize, out: &mut [f32]) -> Result<()> {
        if r >= self.rows || out.len() != self.cols {
            return Err(Error::Invalid(format!(
                "row {r} of a {}×{} matrix into {} values: the row must exist and the output hold {} values",
                self.rows,
                self.cols,
                out.len(),
                self.cols
            )));
        }
        match &self.interleaved {
            // Read from the regrouped copy: the source's pages were released.
            Some(packed) => {
                let mut row = vec![0u8; self.row_bytes];
                packed.original_row(r, &mut row);
                dequantize_blocks(self.ty, &row, out);
            }
            None => dequantize_blocks(self.ty, self.row(r), out),
        }
        Ok(())
    }

    /// The whole matrix in f32, row-major.
    pub fn to_f32(&self) -> Vec<f32> {
        let mut out = vec![0f32; self.rows * self.cols];
        out.par_chunks_mut(self.cols)
            .enumerate()
            .for_each(|(r, o)| dequantize_blocks(self.ty, self.row(r), o));
        out
    }

    /// `y = W·x` (`x`: `cols` values, `y`: `rows`), on the kernel path this
    /// process uses (`KernelPath::detect`).
    pub fn matvec(&self, x: &[f32], y: &mut [f32]) -> Result<()> {
        self.matvec_with(KernelPath::detect()?, x, y)
    }

    /// `matvec` on kernel path `path`.
    pub fn matvec_with(&self, path: KernelPath, x: &[f32], y: &mut [f32]) -> Result<()> {
        self.matmul_with(path, x, 1, y)
    }

    /// `y = x·Wᵀ` for `n` activation rows: `x` is `n × cols` and `y`
    /// `n × rows`, both row-major (a prompt's tokens at once).
    pub fn matmul(&self, x: &[f32], n: usize, y: &mut [f32]) -> Result<()> {
        self.matmul_with(KernelPath::detect()?, x, n, y)
    }

    /// `matmul` on kernel path `path`.
    pub fn matmul_with(&self, path: KernelPath, x: &[f32], n: usize, y: &mut [f32]) -> Result<()> {
        Self::matmul_each(path, x, n, &mut [(self, y)])
    }

    /// `yᵢ = x·Wᵢᵀ` for every `(Wᵢ, yᵢ)` of `products`, all of the same
    /// input width, as one parallel pass: `x` (`n` rows) is prepared once
    /// for all of them (as the attention's queries, keys and values, or the
    /// MLP's gate and up projections, share their input), and the tasks of
    /// every product share the threads.
    pub fn matmul_each(
        path: KernelPath,
        x: &[f32],
        n: usize,
        products: &mut [(&QMatrix, &mut [f32])],
    ) -> Result<()> {
        if !path.available() {
            return Err(Error::Invalid(format!(
                "this CPU cannot run the {path} kernels"
            )));
        }
        for (m, y) in products.iter() {
            if Some(x.len()) != n.checked_mul(m.cols) || Some(y.len()) != n.checked_mul(m.rows) {
                return Err(Error::Invalid(format!(
                    "a product of a {}×{} matrix with {n} rows takes {n}×{} inputs and {n}×{} outputs, not {} and {}",
                    m.rows,
                    m.cols,
                    m.cols,
                    m.rows,
                    x.len(),
                    y.len()
                )));
            }
        }
        if n == 0 || products.is_empty() {
            return Ok(());
        }
        let cols = products[0].0.cols;
        // The activations in each form the weight types take, made once.
        let mut forms: Vec<(usize, Vec<Activations<'_>>)> = Vec::new();
        for (m, _) in products.iter() {
            let kind = m.ty.block_len();
            if !forms.iter().any(|(k, _)| *k == kind) {
                let rows: Vec<Activations<'_>> = x
                    .par_chunks_exact(cols)
                    .with_min_len(16)
                    .map(|x| Activations::new(m.ty, x))
                    .collect();
                forms.push((kind, rows));
            }
        }
        // Each regrouped product's activation rows, by weight kind.
        let rows_of = |kind: usize| -> Vec<Row<'_>> {
            forms
                .iter()
                .find(|(k, _)| *k == kind)
                .map(|(_, rows)| {
                    rows.iter()
                        .map(|a| match a {
                            Activations::Q8(blocks) => Row::Q8(blocks),
                            Activations::F32(values) => Row::F32(values),
                            Activations::Q8K(_) => unreachable!("K-quants are not regrouped"),
                        })
                        .collect()
                })
                .unwrap_or_default()
        };
        let (q8_rows, f32_rows) = (rows_of(super::blocks::QK), rows_of(1));
        let tasks: Vec<Task<'_>> = products
            .iter_mut()
            .flat_map(|(m, y)| m.tasks(n, y))
            .collect();
        tasks.into_par_iter().for_each(|task| {
            let m = task.matrix;
            match m.interleaved.as_deref().filter(|_| path.is_simd()) {
                Some(packed) => {
                    let rows = if m.ty.block_len() == 1 {
                        &f32_rows
                    } else {
                        &q8_rows
                    };
                    dot_interleaved(packed, task.first, rows, task.outs)
                }
                None => {
                    let acts = &forms
                        .iter()
                        .find(|(kind, _)| *kind == m.ty.block_len())
                        .expect("prepared above")
                        .1;
                    m.dot_blocks(path, acts, task.first, task.outs)
                }
            }
        });
        Ok(())
    }

    /// The parallel tasks of a product with `n` activation rows: blocks of
    /// whole row groups, each writing its part of every output row of `y`.
    fn tasks<'a>(&'a self, n: usize, y: &'a mut [f32]) -> Vec<Task<'a>> {
        let chunk = self.task_rows(n).min(self.rows);
        let count = self.rows.div_ceil(chunk);
        let mut tasks: Vec<Task<'a>> = (0..count)
            .map(|t| Task {
                matrix: self,
                first: t * chunk,
                outs: Vec::with_capacity(n),
            })
            .collect();
        for out in y.chunks_exact_mut(self.rows) {
            for (task, o) in tasks.iter_mut().zip(out.chunks_mut(chunk)) {
                task.outs.push(o);
            }
        }
        tasks
    }

    /// Rows `first ..` (as many as each of `outs` holds) times every
    /// activation row, a cache-sized block of rows at a time, on `path`.
    fn dot_blocks(
        &self,
        path: KernelPath,
        acts: &[Activations<'_>],
        first: usize,
        mut outs: Vec<&mut [f32]>,
    ) {
        let block = (L1_BYTES / self.row_bytes)
            .max(1)
            .next_multiple_of(ROW_GROUP);
        let len = outs.first().map_or(0, |o| o.len());
        for start in (0..len).step_by(block) {
            let end = (start + block).min(len);
            let w = &self.bytes.bytes()
                [(first + start) * self.row_bytes..(first + end) * self.row_bytes];
            for (x, out) in acts.iter().zip(outs.iter_mut()) {
                dot_rows(path, self.ty, w, self.row_bytes, x, &mut out[start..end]);
            }
        }
    }

    /// The bytes of row `r`.
    fn row(&self, r: usize) -> &[u8] {
        &self.bytes.bytes()[r * self.row_bytes..][..self.row_bytes]
    }

    /// Rows per parallel task for a product with `n` activation rows.
    fn task_rows(&self, n: usize) -> usize {
        let work = self.rows * self.row_bytes * n;
        let threads = rayon::current_num_threads();
        let tasks = (work / MIN_TASK_BYTES).clamp(1, threads * TASKS_PER_THREAD);
        self.rows.div_ceil(tasks).next_multiple_of(ROW_GROUP)
    }
}

/// Regrouped rows `first ..` (as many as each of `outs` holds, whole
/// groups) times every activation row in `x`: a cache-sized block of groups
/// at a time, four activation rows at a time.
fn dot_interleaved(packed: &Interleaved, first: usize, x: &[Row<'_>], mut outs: Vec<&mut [f32]>) {
    let len = outs.first().map_or(0, |o| o.len());
    let (first, groups) = (first / GROUP, len / GROUP);
    let per_group = packed.blocks() * group_block_bytes(packed.ty());
    let step = (L2_BYTES / per_group).max(1);
    for start in (0..groups).step_by(step) {
        let end = (start + step).min(groups);
        let w = packed.groups(first + start..first + end);
        for (x, outs) in x.chunks(TOKEN_GROUP).zip(outs.chunks_mut(TOKEN_GROUP)) {
            let mut outs = outs.iter_mut().map(|o| &mut o[start * GROUP..end * GROUP]);
            macro_rules! tokens {
                ($t:literal) => {{
                    let x: [Row<'_>; $t] = std::array::from_fn(|i| x[i]);
                    let out: [&mut [f32]; $t] =
                        std::array::from_fn(|_| outs.next().expect("one output per row"));
                    // SAFETY: regrouped weights exist only where the CPU runs AVX2, FMA and F16C.
                    unsafe {
                        super::interleaved::dot_groups::<$t>(
                            packed.ty(),
                            w,
                            packed.blocks(),
                            x,
                            out,
                        )
                    }
                }};
            }
            match x.len() {
                4 => tokens!(4),
                3 => tokens!(3),
                2 => tokens!(2),
                _ => tokens!(1),
            }
        }
    }
}

/// `out[i] = row i · x` for the rows back to back in `w`, on `path` (which
/// the caller has checked this CPU runs).
fn dot_rows(
    path: KernelPath,
    ty: GgmlType,
    w: &[u8],
    row_bytes: usize,
    x: &Activations<'_>,
    out: &mut [f32],
) {
    match path {
        KernelPath::Portable => portable::dot_rows(ty, w, row_bytes, x, out),
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `matmul_with` checked that the CPU has AVX2, FMA and F16C.
        KernelPath::Avx2 | KernelPath::Avx512 => unsafe {
            super::avx2::dot_rows(ty, w, row_bytes, x, out)
        },
        #[cfg(not(target_arch = "x86_64"))]
        KernelPath::Avx2 | KernelPath::Avx512 => unreachable!("no x86 path is available here"),
    }
}
