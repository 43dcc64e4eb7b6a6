//! The element-wise and attention steps of the Llama-family forward pass, on
//! plain f32 rows: RMSNorm, RoPE, the gated MLP activation, and causal
//! grouped-query attention over the KV cache (with an optional sliding
//! window).

use super::config::{Activation, RopeStyle};
use rayon::prelude::*;

/// `x ← x / rms(x) · w` for every row of `x` (rows of `w.len()`).
pub fn rms_norm(x: &mut [f32], w: &[f32], eps: f32) {
    for row in x.chunks_exact_mut(w.len()) {
        let mean_square = row.iter().map(|v| v * v).sum::<f32>() / w.len() as f32;
        let scale = 1.0 / (mean_square + eps).sqrt();
        for (v, &g) in row.iter_mut().zip(w) {
            *v *= scale * g;
        }
    }
}

/// `out ← x / rms(x) · w`, row by row, leaving `x` as it is.
pub fn rms_norm_into(x: &[f32], w: &[f32], eps: f32, out: &mut [f32]) {
    out.copy_from_slice(x);
    rms_norm(out, w, eps);
}

/// The cosines and sines of RoPE for one head width and base frequency,
/// computed for positions as they are needed.
#[derive(Debug, Clone)]
pub struct Rope {
    inv_freq: Vec<f32>,
    style: RopeStyle,
}

impl Rope {
    /// RoPE for heads `head_dim` wide with base frequency `theta`.
    pub fn new(head_dim: usize, theta: f32, style: RopeStyle) -> Self {
        let inv_freq = (0..head_dim / 2)
            .map(|i| (theta as f64).powf(-2.0 * i as f64 / head_dim as f64) as f32)
            .collect();
        Self { inv_freq, style }
    }

    /// Rotates every head (`head_dim` wide) of `row`, the vector at `position`.
    pub fn apply(&self, row: &mut [f32], position: usize) {
        let half = self.inv_freq.len();
        let head_dim = 2 * half;
        let angles: Vec<(f32, f32)> = self
            .inv_freq
            .iter()
            .map(|f| (position as f64 * *f as f64).sin_cos())
            .map(|(s, c)| (s as f32, c as f32))
            .collect();
        for head in row.chunks_exact_mut(head_dim) {
            for (i, &(sin, cos)) in angles.iter().enumerate() {
                let (a, b) = match self.style {
                    RopeStyle::Adjacent => (2 * i, 2 * i + 1),
                    RopeStyle::Halves => (i, i + half),
                };
                let (x, y) = (head[a], head[b]);
                head[a] = x * cos - y * sin;
                head[b] = x * sin + y * cos;
            }
        }
    }
}

/// `gate ← act(gate) · up`, element by element.
pub fn gated(gate: &mut [f32], up: &[f32], activation: Activation) {
    match activation {
        Activation::Silu => {
            for (g, &u) in gate.iter_mut().zip(up) {
                *g = *g / (1.0 + (-*g).exp()) * u;
            }
        }
        Activation::GeluTanh => {
            const SQRT_2_OVER_PI: f32 = 0.797_884_6;
            for (g, &u) in gate.iter_mut().zip(up) {
                let x = *g;
                let inner = SQRT_2_OVER_PI * (x + 0.044_715 * x * x * x);
                *g = 0.5 * x * (1.0 + inner.tanh()) * u;
            }
        }
    }
}

/// The shape of one attention call.
#[derive(Debug, Clone, Copy)]
pub struct AttentionShape {
    /// Query heads.
    pub n_head: usize,
    /// Key/value heads.
    pub n_kv_head: usize,
    /// Width of a head.
    pub head_dim: usize,
    /// Scores are `q·k · scale`.
    pub scale: f32,
    /// Attend to at most this many positions (the newest, self included).
    pub window: Option<usize>,
}

/// Causal attention of `n` new queries (`q`: `n × n_head·head_dim`, at
/// positions `start .. start + n`) over the cached keys and values of
/// positions `0 .. start + n` (`keys`, `values`: one row of
/// `n_kv_head·head_dim` per position). Writes `out` like `q`.
pub fn attention(
    q: &[f32],
    keys: &[f32],
    values: &[f32],
    start: usize,
    shape: AttentionShape,
    out: &mut [f32],
) {
    let AttentionShape {
        n_head,
        n_kv_head,
        head_dim,
        ..
    } = shape;
    let q_width = n_head * head_dim;
    let kv_width = n_kv_head * head_dim;
    let group = n_head / n_kv_head;
    // One task per (query, head); each writes its own head_dim-wide slice.
    out.par_chunks_mut(head_dim)
        .enumerate()
        .with_min_len(4)
        .for_each_init(Vec::new, |weights: &mut Vec<f32>, (task, out)| {
            let (i, h) = (task / n_head, task % n_head);
            let query = &q[i * q_width + h * head_dim..][..head_dim];
            let kv_offset = (h / group) * head_dim;
            let first = softmax_scores(query, keys, kv_offset, start + i, shape, weights);
            out.fill(0.0);
            for (p, &w) in (first..).zip(weights.iter()) {
                let value = &values[p * kv_width + kv_offset..][..head_dim];
                for (o, &v) in out.iter_mut().zip(value) {
                    *o += w * v;
                }
            }
        });
}

/// The attention weights of `n` new queries (as [`attention`] takes them)
/// over every position `0 .. start + n`, head by head: `[head][query][key]`,
/// zero where a key is in the future or outside the window.
pub fn attention_weights(
    q: &[f32],
    keys: &[f32],
    start: usize,
    shape: AttentionShape,
) -> Vec<Vec<Vec<f32>>> {
    let head_dim = shape.head_dim;
    let n = q.len() / (shape.n_head * head_dim);
    let group = shape.n_head / shape.n_kv_head;
    let mut weights = Vec::new();
    (0..shape.n_head)
        .map(|h| {
            (0..n)
                .map(|i| {
                    let query = &q[(i * shape.n_head + h) * head_dim..][..head_dim];
                    let position = start + i;
                    let kv_offset = (h / group) * head_dim;
                    let first =
                        softmax_scores(query, keys, kv_offset, position, shape, &mut weights);
                    let mut row = vec![0.0; start + n];
                    row[first..=position].copy_from_slice(&weights);
                    row
                })
                .collect()
        })
        .collect()
}

/// The softmax over the keys one query at `position` sees (its window up to
/// itself) of their scaled dot products with `query`, into `weights`;
/// returns the first key's position.
fn softmax_scores(
    query: &[f32],
    keys: &[f32],
    kv_offset: usize,
    position: usize,
    shape: AttentionShape,
    weights: &mut Vec<f32>,
) -> usize {
    let kv_width = shape.n_kv_head * shape.head_dim;
    let first = shape.window.map_or(0, |w| (position + 1).saturating_sub(w));
    weights.clear();
    let mut max = f32::NEG_INFINITY;
    for p in first..=position {
        let key = &keys[p * kv_width + kv_offset..][..shape.head_dim];
        let s = dot(query, key) * shape.scale;
        max = max.max(s);
        weights.push(s);
    }
    let mut sum = 0.0;
    for s in weights.iter_mut() {
        *s = (*s - max).exp();
        sum += *s;
    }
    weights.iter_mut().for_each(|w| *w /= sum);
    first
}

/// `a · b`, in eight running sums that the compiler keeps in one SIMD register.
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let (a8, a_rest) = a.as_chunks::<8>();
    let (b8, b_rest) = b.as_chunks::<8>();
    let mut sums = [0f32; 8];
    for (x, y) in a8.iter().zip(b8) {
        for i in 0..8 {
            sums[i] += x[i] * y[i];
        }
    }
    let tail: f32 = a_rest.iter().zip(b_rest).map(|(x, y)| x * y).sum();
    sums.iter().sum::<f32>() + tail
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rms_norm_makes_unit_rms_rows_times_the_weight() {
        let mut x = vec![3.0, 4.0, 0.0, 0.0, -2.0, 2.0, 2.0, -2.0];
        rms_norm(&mut x, &[1.0, 2.0, 1.0, 1.0], 0.0);
        let r = (25.0f32 / 4.0).sqrt();
        assert!((x[0] - 3.0 / r).abs() < 1e-6 && (x[1] - 8.0 / r).abs() < 1e-6);
        assert!(x[4..]
            .iter()
            .zip([-1.0, 2.0, 1.0, -1.0])
            .all(|(a, b)| (a - b).abs() < 1e-6));
    }

    #[test]
    fn rope_styles_rotate_the_pairs_they_name() {
        // At position 1 with θ such that the first pair turns by 1 radian.
        let mut adjacent = vec![1.0, 0.0, 1.0, 0.0];
        Rope::new(4, 10_000.0, RopeStyle::Adjacent).apply(&mut adjacent, 1);
        assert!((adjacent[0] - 1f32.cos()).abs() < 1e-6 && (adjacent[1] - 1f32.sin()).abs() < 1e-6);
        let mut halves = vec![1.0, 1.0, 0.0, 0.0];
        Rope::new(4, 10_000.0, RopeStyle::Halves).apply(&mut halves, 1);
        assert!((halves[0] - 1f32.cos()).abs() < 1e-6 && (halves[2] - 1f32.sin()).abs() < 1e-6);
        // The second pair turns by 1/100 radian; position 0 changes nothing.
        assert!((halves[3] - 0.01f32.sin()).abs() < 1e-6);
        let mut still = vec![0.3, -0.2, 0.5, 0.7];
        Rope::new(4, 10.0, RopeStyle::Halves).apply(&mut still, 0);
        assert_eq!(still, vec![0.3, -0.2, 0.5, 0.7]);
    }

    #[test]
    fn attention_with_one_position_returns_its_value_and_windows_cut_the_past() {
        let shape = AttentionShape {
            n_head: 2,
            n_kv_head: 1,
            head_dim: 2,
            scale: 1.0,
            window: None,
        };
        let keys = [1.0, 0.0, 0.0, 1.0];
        let values = [5.0, 6.0, 7.0, 8.0];
        let mut out = [0.0; 4];
        attention(&[1.0, 1.0, -1.0, 0.0], &keys, &values, 0, shape, &mut out);
        assert_eq!(out, [5.0, 6.0, 5.0, 6.0]);
        // Second position, both heads on the one KV head: softmax of the scores.
        attention(&[10.0, 0.0, 0.0, 0.0], &keys, &values, 1, shape, &mut out);
        let w = 1.0 / (1.0 + (-10.0f32).exp());
        assert!((out[0] - (5.0 * w + 7.0 * (1.0 - w))).abs() < 1e-5);
        assert!(
            (out[2] - 6.0).abs() < 1e-6,
            "equal scores average the values"
        );
        let windowed = AttentionShape {
            window: Some(1),
            ..shape
        };
        attention(
            &[10.0, 0.0, 0.0, 0.0],
            &keys,
            &values,
            1,
            windowed,
            &mut out,
        );
        assert_eq!(out, [7.0, 8.0, 7.0, 8.0]);
    }
}
