//! AdamW as PyTorch defines it (decoupled weight decay), with nanoGPT's rule
//! that only matrices decay, global-norm gradient clipping, and its state
//! saved to and restored from safetensors bit for bit.

use crate::nn::{load_tensors, save_tensors, Params};
use crate::{Error, Result};
use candle_core::backprop::GradStore;
use candle_core::{Tensor, Var};
use std::collections::HashMap;
use std::path::Path;

/// Epsilon added to the denominator.
const EPS: f64 = 1e-8;

struct Slot {
    name: String,
    var: Var,
    m: Tensor,
    v: Tensor,
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
                    m: var.zeros_like()?,
                    v: var.zeros_like()?,
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
        let mut total = 0.0;
        for slot in &self.slots {
            if let Some(g) = grads.get(slot.var.as_tensor()) {
                total += g
                    .sqr()?
                    .sum_all()?
                    .to_dtype(candle_core::DType::F64)?
                    .to_scalar::<f64>()?;
            }
        }
        Ok(total.sqrt())
    }

    /// One AdamW step at learning rate `lr`. Gradients are first scaled so
    /// their global norm is at most `clip` (when `clip > 0`). Returns the
    /// global norm before clipping.
    pub fn step(&mut self, grads: &GradStore, lr: f64, clip: f64) -> Result<f64> {
        let norm = self.grad_norm(grads)?;
        let scale = if clip > 0.0 && norm > clip {
            clip / (norm + 1e-6)
        } else {
            1.0
        };
        self.step += 1;
        let t = self.step as i32;
        let bias1 = 1.0 - self.beta1.powi(t);
        let bias2 = 1.0 - self.beta2.powi(t);
        for slot in &mut self.slots {
            let Some(g) = grads.get(slot.var.as_tensor()) else {
                continue;
            };
            // Gradients carry the autograd graph; detaching keeps the moments from holding it.
            let g = if scale != 1.0 {
                (g.detach() * scale)?
            } else {
                g.detach()
            };
            slot.m = ((&slot.m * self.beta1)? + (&g * (1.0 - self.beta1))?)?;
            slot.v = ((&slot.v * self.beta2)? + (g.sqr()? * (1.0 - self.beta2))?)?;
            let param = slot.var.as_tensor();
            let param = if slot.decay {
                (param * (1.0 - lr * self.weight_decay))?
            } else {
                param.clone()
            };
            let denom = ((&slot.v / bias2)?.sqrt()? + EPS)?;
            let update = ((&slot.m / denom)? * (lr / bias1))?;
            slot.var.set(&(param - update)?)?;
        }
        Ok(norm)
    }

    /// Saves the moments (`m.NAME`, `v.NAME`) and the step count to `path`.
    pub fn save(&self, path: &Path, metadata: &HashMap<String, String>) -> Result<()> {
        let mut tensors = Vec::with_capacity(2 * self.slots.len());
        for slot in &self.slots {
            tensors.push((format!("m.{}", slot.name), slot.m.clone()));
            tensors.push((format!("v.{}", slot.name), slot.v.clone()));
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
            for (kind, target) in [("m", &mut slot.m), ("v", &mut slot.v)] {
                let key = format!("{kind}.{}", slot.name);
                let t = tensors
                    .remove(&key)
                    .ok_or_else(|| Error::bad_file(path, format!("tensor '{key}' is missing")))?;
                if t.dims() != target.dims() {
                    return Err(Error::bad_file(
                        path,
                        format!(
                            "tensor '{key}' has shape {:?}, expected {:?}",
                            t.dims(),
                            target.dims()
                        ),
                    ));
                }
                *target = t.to_dtype(target.dtype())?;
            }
        }
        self.step = metadata
            .get("adamw_step")
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| Error::bad_file(path, "metadata 'adamw_step' is missing"))?;
        Ok(metadata)
    }
}
