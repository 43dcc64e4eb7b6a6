//! AdamW as PyTorch defines it (decoupled weight decay), with nanoGPT's rule
//! that only matrices decay, global-norm gradient clipping, and its state
//! saved to and restored from safetensors bit for bit. The update runs in
//! place on seer's fused kernel.

use crate::kernels::{adamw_update, sum_of_squares, AdamWStep};
use crate::nn::{load_tensors, save_tensors, Member, Params};
use crate::{Error, Result};
use candle_core::backprop::GradStore;
use candle_core::{Tensor, Var};
use rayon::prelude::*;
use std::collections::HashMap;
use std::path::Path;

/// Epsilon added to the denominator.
const EPS: f64 = 1e-8;

struct Slot {
    /// The named parameters the tensor holds (itself, or a pack's members).
    members: Vec<Member>,
    var: Var,
    /// `[2, n]`: the first moment, then the second.
    moments: Tensor,
    /// Leading elements that decay: the matrices among the members.
    decayed: usize,
}

/// Elements of the trainable tensor `name` that decay: its leading
/// matrices. A matrix after a vector could not decay, so it is an error.
fn decayed_elements(name: &str, members: &[Member]) -> Result<usize> {
    let is_matrix = |m: &Member| m.shape.rank() >= 2;
    let leading = members.iter().take_while(|m| is_matrix(m)).count();
    if let Some(late) = members[leading..].iter().find(|m| is_matrix(m)) {
        return Err(Error::Invalid(format!(
            "pack '{name}': matrix '{}' follows a vector; matrices must come first to decay",
            late.name
        )));
    }
    Ok(members[..leading]
        .iter()
        .map(|m| m.shape.elem_count())
        .sum())
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
    /// Fresh moments for every trainable tensor; weight decay on matrices
    /// (parameters of rank ≥ 2, and the matrices that lead a pack).
    pub fn new(params: &Params, beta1: f64, beta2: f64, weight_decay: f64) -> Result<Self> {
        let slots = params
            .iter()
            .map(|(name, var)| {
                let members = params.members(name);
                Ok(Slot {
                    decayed: decayed_elements(name, &members)?,
                    members,
                    var: var.clone(),
                    moments: Tensor::zeros((2, var.elem_count()), var.dtype(), var.device())?,
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
                weight_decay,
                decayed: slot.decayed,
                step,
                grad_scale,
            };
            adamw_update(slot.var.as_tensor(), &slot.moments, g, &step)
        })?;
        Ok(norm)
    }

    /// Saves the moments (`m.NAME`, `v.NAME` for every named parameter, in
    /// its shape) and the step count to `path`.
    pub fn save(&self, path: &Path, metadata: &HashMap<String, String>) -> Result<()> {
        let mut tensors = Vec::with_capacity(2 * self.slots.len());
        for slot in &self.slots {
            for member in &slot.members {
                for (kind, row) in [("m", 0), ("v", 1)] {
                    let moment = slot
                        .moments
                        .get(row)?
                        .narrow(0, member.offset, member.shape.elem_count())?
                        .reshape(member.shape.clone())?;
                    tensors.push((format!("{kind}.{}", member.name), moment));
                }
            }
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
            let dtype = slot.var.dtype();
            let mut moment = |kind: &str| -> Result<Tensor> {
                let mut parts = Vec::with_capacity(slot.members.len());
                for member in &slot.members {
                    let key = format!("{kind}.{}", member.name);
                    let t = tensors.remove(&key).ok_or_else(|| {
                        Error::bad_file(path, format!("tensor '{key}' is missing"))
                    })?;
                    if t.shape() != &member.shape {
                        let reason = format!(
                            "tensor '{key}' has shape {:?}, expected {:?}",
                            t.dims(),
                            member.shape.dims()
                        );
                        return Err(Error::bad_file(path, reason));
                    }
                    parts.push(t.to_dtype(dtype)?.flatten_all()?);
                }
                Ok(Tensor::cat(&parts, 0)?)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::{Init, ParamSource};
    use candle_core::{DType, Device};

    #[test]
    fn a_pack_decays_its_leading_matrices_only() {
        let source = ParamSource::init(1, DType::F32, &Device::Cpu);
        let p = source.builder();
        p.get(&[2, 3], "w", Init::Normal(1.0)).unwrap();
        p.get(&[3], "b", Init::Ones).unwrap();
        p.pack("packed", &["w", "b"]).unwrap();
        p.get(&[3], "late_b", Init::Ones).unwrap();
        p.get(&[2, 2], "late_w", Init::Ones).unwrap();
        p.pack("mixed", &["late_b", "late_w"]).unwrap();
        let params = source.into_params();
        let err = AdamW::new(&params, 0.9, 0.999, 0.1).err().unwrap();
        assert!(
            err.to_string().contains("'late_w' follows a vector"),
            "{err}"
        );
        // Without the badly ordered pack: a zero gradient leaves only the
        // decay, which shrinks the matrix's six elements and not the bias.
        let source = ParamSource::init(1, DType::F32, &Device::Cpu);
        let p = source.builder();
        p.get(&[2, 3], "w", Init::Normal(1.0)).unwrap();
        p.get(&[3], "b", Init::Ones).unwrap();
        let pack = p.pack("packed", &["w", "b"]).unwrap().copy().unwrap();
        let params = source.into_params();
        let var = params.get("packed").unwrap().clone();
        let mut optimizer = AdamW::new(&params, 0.9, 0.999, 0.1).unwrap();
        let zeros = var.as_tensor().zeros_like().unwrap();
        let grads = (var.as_tensor() * zeros).unwrap().sum_all().unwrap();
        let grads = grads.backward().unwrap();
        optimizer.step(&grads, 0.5, 0.0).unwrap();
        let before: Vec<f32> = pack.to_vec1().unwrap();
        let after: Vec<f32> = var.as_tensor().to_vec1().unwrap();
        for (i, (a, b)) in after.iter().zip(&before).enumerate() {
            let expected = if i < 6 { b * 0.95 } else { *b };
            assert!(
                (a - expected).abs() < 1e-6,
                "element {i}: {a} against {expected}"
            );
        }
    }
}
