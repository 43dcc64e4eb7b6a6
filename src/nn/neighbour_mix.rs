//! Local mixing of a caption's token states: each state gains a learned
//! linear map of its neighbours' states, up to `window` positions on either
//! side, padding left out. In "a red circle and a blue square" the state of
//! "circle" then carries "red" and that of "square" carries "blue", so a
//! patch that cross-attends to a shape's word also reads the colour bound to
//! it. A contrastive text encoder's token states are close to a bag of words
//! (the state of "circle" barely changes when its colour does); this is the
//! short path from an adjective to its noun that such states lack.

use super::{Init, Linear, ParamBuilder};
use crate::{Error, Result};
use candle_core::{Tensor, D};

/// `y_k = x_k + Σ_{0<|o|≤window} x_{k+o} · W_o`, with `W` starting at zero,
/// so a new mix leaves the states as they were.
#[derive(Debug, Clone)]
pub struct NeighbourMix {
    window: usize,
    mix: Linear,
}

impl NeighbourMix {
    /// A mix over `window` neighbours on each side of `dim`-wide states:
    /// one matrix `mix` (`[2·window·dim, dim]`, zeros), no bias.
    pub fn new(p: &ParamBuilder, dim: usize, window: usize) -> Result<Self> {
        if window == 0 {
            return Err(Error::Invalid(
                "a neighbour mix needs a window of at least 1".into(),
            ));
        }
        Ok(Self {
            window,
            mix: Linear::new(&p.pp("mix"), 2 * window * dim, dim, false, Init::Zeros)?,
        })
    }

    /// Mixes `x` (`[batch, l, dim]`, right-padded), item `b` holding
    /// `lengths[b]` real states (all `l` when `lengths` is empty).
    pub fn forward(&self, x: &Tensor, lengths: &[usize]) -> Result<Tensor> {
        let (b, l, _) = x.dims3()?;
        let real: Vec<f32> = (0..b)
            .flat_map(|i| (0..l).map(move |k| (k < lengths.get(i).copied().unwrap_or(l)) as u8))
            .map(f32::from)
            .collect();
        let real = Tensor::from_vec(real, (b, l, 1), x.device())?.to_dtype(x.dtype())?;
        let x_real = x.broadcast_mul(&real)?;
        let mut neighbours = Vec::with_capacity(2 * self.window);
        for o in 1..=self.window {
            if o >= l {
                let zeros = x_real.zeros_like()?;
                neighbours.extend([zeros.clone(), zeros]);
                continue;
            }
            let before = x_real.narrow(1, 0, l - o)?.pad_with_zeros(1, o, 0)?;
            let after = x_real.narrow(1, o, l - o)?.pad_with_zeros(1, 0, o)?;
            neighbours.extend([before, after]);
        }
        let neighbours = Tensor::cat(&neighbours, D::Minus1)?;
        Ok((x + self.mix.forward(&neighbours)?)?)
    }
}

#[cfg(test)]
mod tests {
    use super::NeighbourMix;
    use crate::nn::ParamSource;
    use candle_core::{DType, Device, IndexOp, Tensor};

    /// With the matrix set to pass one neighbour through, each real state
    /// gains exactly its neighbours' states, and padding contributes nothing.
    #[test]
    fn a_state_gains_its_real_neighbours_only() {
        let device = Device::Cpu;
        let source = ParamSource::init(0, DType::F32, &device);
        let mix = NeighbourMix::new(&source.builder(), 1, 1).unwrap();
        let w = source.into_params();
        // Rows: [before, after]; both pass through with weight 1.
        w.get("mix.weight")
            .unwrap()
            .set(&Tensor::new(&[[1f32], [1f32]], &device).unwrap())
            .unwrap();
        let x = Tensor::new(&[[[1f32], [10.], [100.], [1000.]]], &device).unwrap();
        let y = mix.forward(&x, &[3]).unwrap();
        let y: Vec<f32> = y.i((0, .., 0)).unwrap().to_vec1().unwrap();
        // Position 3 is padding: it neither gives nor has its value counted as real.
        assert_eq!(y, vec![11.0, 111.0, 110.0, 1100.0]);
    }
}
