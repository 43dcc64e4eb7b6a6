//! AdamW as PyTorch defines it (decoupled weight decay), with nanoGPT's rule
//! that only matrices decay, global-norm gradient clipping, and its state
//! saved to and restored from safetensors bit for bit. The update runs in
//! place on seer's fused kernel.

use crate::kernels::{adamw_update, sum_of_squares, AdamWStep};
use crate::nn::{load_tensors, save_tensors, Params};
use crate::{Error, Result};
use candle_core::backprop::GradStore;
use candle_core::{Tensor, Var};
use rayon::prelude::*;
use std::collections::HashMap;
use std::path::Path;

/// Epsilon added to the denominator.
const EPS: f64 = 1e-8;

struct Slot {
    name: String,
    var: Var,
    /// `[2, n]`: the first moment, then the second.
    moments: Tensor,
    decay: bool,
}

/// The AdamW optimizer over a model's parameters.
pub struct AdamW {
    slots: Vec<Slot>,
    beta1: f64,
    beta2: f64,
    weight_decay: f64,
    step: u64,
}

impl AdamW {
    /// Fresh moments for every parameter; weight decay on tensors of rank ≥ 2.
    pub fn new(params: &Params, beta1: f64, beta2: f64, weight_decay: f64) -> Result<Self> {
        let slots = params
            .iter()
            .map(|(name, var)| {
                Ok(Slot {
                    name: name.clone(),
                    var: var.clone(),
                    moments: Tensor::zeros((2, var.elem_count()), var.dtype(), var.device())?,
                    decay: var.rank() >= 2,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            slots,
            beta1,
            beta2,
            weight_decay,
            step: 0,
        })
    }

    /// Optimizer steps taken.
    pub fn steps_taken(&self) -> u64 {
        self.step
    }

    /// The L2 norm of all gradients together.
    pub fn grad_norm(&self, grads: &GradStore) -> Result<f64> {
        let squares = self
            .slots
            .par_iter()
            .filter_map(|slot| grads.get(slot.var.as_tensor()))
            .map(sum_of_squares)
            .collect::<candle_core::Result<Vec<f64>>>()?;
        Ok(squares.iter().sum::<f64>().sqrt())
    }

    /// One AdamW step at learning rate `lr`. Gradients are first scaled so
    /// their global norm is at most `clip` (when `clip > 0`). Returns the
    /// global norm before clipping. The parameters are updated side by side
    /// (one parallel loop over all of them, each parameter one pass).
    pub fn step(&mut self, grads: &GradStore, lr: f64, clip: f64) -> Result<f64> {
        let norm = self.grad_norm(grads)?;
        let grad_scale = if clip > 0.0 && norm > clip {
            clip / (norm + 1e-6)
        } else {
            1.0
        };
        self.step += 1;
        let (beta1, beta2, weight_decay, step) =
            (self.beta1, self.beta2, self.weight_decay, self.step);
        self.slots.par_iter().try_for_each(|slot| {
            let Some(g) = grads.get(slot.var.as_tensor()) else {
                return Ok(());
            };
            let step = AdamWStep {
                lr,
                beta1,
                beta2,
                eps: EPS,
                weight_decay: if slot.decay { weight_decay } else { 0.0 },
                step,
                grad_scale,
            };
            adamw_update(slot.var.as_tensor(), &slot.moments, g, &step)
        })?;
        Ok(norm)
    }

    /// Saves the moments (`m.NAME`, `v.NAME`) and the step count to `path`.
    pub fn save(&self, path: &Path, metadata: &HashMap<String, String>) -> Result<()> {
        let mut tensors = Vec::with_capacity(2 * self.slots.len());
        for slot in &self.slots {
            let shape = slot.var.shape();
            tensors.push((
                format!("m.{}", slot.name),
                slot.moments.get(0)?.reshape(shape)?,
            ));
            tensors.push((
                format!("v.{}", slot.name),
                slot.moments.get(1)?.reshape(shape)?,
            ));
        }
        let mut metadata = metadata.clone();
        metadata.insert("adamw_step".into(), self.step.to_string());
        save_tensors(&tensors, path, &metadata)
    }

    /// Restores the state written by `save`; returns the file's metadata.
    pub fn load(&mut self, path: &Path) -> Result<HashMap<String, String>> {
        let device = self
            .slots
            .first()
            .map(|s| s.var.device().clone())
            .unwrap_or(candle_core::Device::Cpu);
        let (mut tensors, metadata) = load_tensors(path, &device)?;
        for slot in &mut self.slots {
            let mut moment = |kind: &str| -> Result<Tensor> {
                let key = format!("{kind}.{}", slot.name);
                let t = tensors
                    .remove(&key)
                    .ok_or_else(|| Error::bad_file(path, format!("tensor '{key}' is missing")))?;
                if t.dims() != slot.var.dims() {
                    let expected = slot.var.dims();
                    let reason = format!(
                        "tensor '{key}' has shape {:?}, expected {expected:?}",
                        t.dims()
                    );
                    return Err(Error::bad_file(path, reason));
                }
                Ok(t.to_dtype(slot.var.dtype())?.flatten_all()?)
            };
            let (m, v) = (moment("m")?, moment("v")?);
            slot.moments = Tensor::stack(&[m, v], 0)?;
        }
        self.step = metadata
            .get("adamw_step")
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| Error::bad_file(path, "metadata 'adamw_step' is missing"))?;
        Ok(metadata)
    }
}
