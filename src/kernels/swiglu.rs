//! SwiGLU's gate: `silu(gate) ⊙ up` from packed `[gate | up]` rows (one
//! product makes both), and its backward pass back to those rows.

use super::{par_written, Float};

/// Rows per parallel task.
const ROWS: usize = 16;

/// The logistic sigmoid.
fn sigmoid<T: Float>(x: T) -> T {
    T::one() / (T::one() + (-x).exp())
}

/// `silu(gate) ⊙ up` for packed rows `[gate | up]` (`2·f` wide): `[n, f]`.
pub(super) fn forward<T: Float>(gate_up: &[T], f: usize) -> Vec<T> {
    let n = gate_up.len() / (2 * f);
    // SAFETY: each part is whole rows, every element written.
    unsafe {
        par_written(n * f, ROWS * f, |start, out| {
            for (r, out) in out.chunks_mut(f).enumerate() {
                let row = &gate_up[(start / f + r) * 2 * f..][..2 * f];
                let (gate, up) = row.split_at(f);
                for ((o, &g), &u) in out.iter_mut().zip(gate).zip(up) {
                    o.write(g * sigmoid(g) * u);
                }
            }
        })
    }
}

/// The gradient with respect to the packed `[gate | up]` rows, given the
/// gradient `dh` (`[n, f]`) of the output.
pub(super) fn backward<T: Float>(dh: &[T], gate_up: &[T], f: usize) -> Vec<T> {
    // SAFETY: each part is whole rows, every element written.
    unsafe {
        par_written(gate_up.len(), ROWS * 2 * f, |start, out| {
            for (r, out) in out.chunks_mut(2 * f).enumerate() {
                let row = start / (2 * f) + r;
                let (gate, up) = gate_up[row * 2 * f..][..2 * f].split_at(f);
                let dh = &dh[row * f..][..f];
                let (d_gate, d_up) = out.split_at_mut(f);
                for i in 0..f {
                    let (g, u) = (gate[i], up[i]);
                    let s = sigmoid(g);
                    let silu = g * s;
                    d_up[i].write(dh[i] * silu);
                    d_gate[i].write(dh[i] * u * s * (T::one() + g * (T::one() - s)));
                }
            }
        })
    }
}
