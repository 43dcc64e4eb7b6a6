//! Helpers shared by the integration tests.

#![allow(dead_code)]

pub mod composite;
pub mod run;
pub mod server;

use candle_core::{DType, Device, Tensor, Var};

/// max |a − b| / max |b|, the relative error the reference checks use.
pub fn relative_error(a: &Tensor, b: &Tensor) -> f64 {
    assert_eq!(a.dims(), b.dims());
    let values = |t: &Tensor| -> Vec<f64> {
        t.to_dtype(DType::F64)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap()
    };
    let (a, b) = (values(a), values(b));
    let diff = a
        .iter()
        .zip(&b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f64::max);
    diff / b.iter().map(|y| y.abs()).fold(1e-30, f64::max)
}

/// The central difference `(f(x + ε) − f(x − ε)) / 2ε` of the scalar `loss`
/// with respect to element `i` of `var` (f64), whose values are `original`;
/// `var` is left holding `original` with element `i` moved by −ε.
pub fn central_difference(
    var: &Var,
    original: &[f64],
    i: usize,
    eps: f64,
    loss: impl Fn() -> f64,
) -> f64 {
    let at = |delta: f64| {
        let mut values = original.to_vec();
        values[i] += delta;
        var.set(&Tensor::from_vec(values, var.shape(), &Device::Cpu).unwrap())
            .unwrap();
        loss()
    };
    (at(eps) - at(-eps)) / (2.0 * eps)
}
