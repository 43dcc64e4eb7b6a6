//! Named parameters: created with a deterministic initialisation, or loaded
//! from safetensors by name, and saved back with the same names.
//!
//! Several parameters may be packed into one flat trainable tensor (a
//! Transformer block's matrices, for its fused kernel): the optimizer then
//! sees the pack, while loading, saving and the layers see each named
//! parameter, as a view of its part of the pack.

use crate::{Error, Result};
use candle_core::backprop::GradStore;
use candle_core::{DType, Device, Shape, Tensor, Var};
use rand::SeedableRng;
use rand_distr::{Distribution, Normal};
use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

/// A model's trainable tensors by name, in name order: each a named
/// parameter, or a pack of several.
#[derive(Clone, Default)]
pub struct Params {
    vars: BTreeMap<String, Var>,
    /// The named parameters inside each pack, by the pack's name.
    packs: BTreeMap<String, Vec<Member>>,
}

/// A named parameter's place in a trainable tensor: its elements from
/// `offset` on, in `shape`.
#[derive(Debug, Clone, PartialEq)]
pub struct Member {
    /// The parameter's name.
    pub name: String,
    /// Where its elements start in the flat tensor.
    pub offset: usize,
    /// Its shape.
    pub shape: Shape,
}

impl Params {
    /// The trainable tensors (parameters and packs), in name order.
    pub fn iter(&self) -> impl Iterator<Item = (&String, &Var)> {
        self.vars.iter()
    }

    /// The trainable tensor called `name`.
    pub fn get(&self, name: &str) -> Option<&Var> {
        self.vars.get(name)
    }

    /// The named parameters in the trainable tensor `name`: a pack's
    /// members, or the parameter itself.
    pub fn members(&self, name: &str) -> Vec<Member> {
        match (self.packs.get(name), self.vars.get(name)) {
            (Some(members), _) => members.clone(),
            (None, Some(var)) => vec![Member {
                name: name.to_string(),
                offset: 0,
                shape: var.shape().clone(),
            }],
            (None, None) => Vec::new(),
        }
    }

    /// Every named parameter, in name order, packed ones as views of their
    /// part of the pack (what a checkpoint holds).
    pub fn named(&self) -> Result<Vec<(String, Tensor)>> {
        let mut named = Vec::new();
        for (name, var) in &self.vars {
            match self.packs.get(name) {
                Some(members) => {
                    for m in members {
                        named.push((m.name.clone(), member_view(var.as_tensor(), m)?));
                    }
                }
                None => named.push((name.clone(), var.as_tensor().clone())),
            }
        }
        named.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(named)
    }

    /// Number of trainable tensors (a pack counts once).
    pub fn len(&self) -> usize {
        self.vars.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.vars.is_empty()
    }

    /// The parameters of several models as one set, each model's names
    /// under its prefix (`"text_encoder"` → `text_encoder.wte.weight`).
    pub fn joined(parts: &[(&str, &Params)]) -> Params {
        let vars = parts
            .iter()
            .flat_map(|(prefix, params)| {
                params
                    .vars
                    .iter()
                    .map(move |(name, var)| (format!("{prefix}.{name}"), var.clone()))
            })
            .collect();
        let packs = parts
            .iter()
            .flat_map(|(prefix, params)| {
                params.packs.iter().map(move |(name, members)| {
                    let members = members
                        .iter()
                        .map(|m| Member {
                            name: format!("{prefix}.{}", m.name),
                            ..m.clone()
                        })
                        .collect();
                    (format!("{prefix}.{name}"), members)
                })
            })
            .collect();
        Params { vars, packs }
    }

    /// Total number of scalar parameters.
    pub fn count(&self) -> usize {
        self.vars.values().map(|v| v.elem_count()).sum()
    }

    /// The gradient of every named parameter that has one in `grads`, in
    /// name order (packed parameters' as views of their pack's gradient).
    pub fn named_grads(&self, grads: &GradStore) -> Result<Vec<(String, Tensor)>> {
        let mut named = Vec::new();
        for (name, var) in &self.vars {
            let Some(grad) = grads.get(var.as_tensor()) else {
                continue;
            };
            for member in self.members(name) {
                let view = member_view(&grad.flatten_all()?, &member)?;
                named.push((member.name, view));
            }
        }
        named.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(named)
    }

    /// Saves every parameter to a safetensors file, atomically, with
    /// `metadata` in its header.
    pub fn save(&self, path: &Path, metadata: &HashMap<String, String>) -> Result<()> {
        save_tensors(&self.named()?, path, metadata)
    }
}

/// The part of the flat `pack` that holds `member`, as a view in its shape.
fn member_view(pack: &Tensor, member: &Member) -> Result<Tensor> {
    Ok(pack
        .detach()
        .narrow(0, member.offset, member.shape.elem_count())?
        .reshape(member.shape.clone())?)
}

/// Saves named tensors to a safetensors file, atomically.
pub fn save_tensors(
    tensors: &[(String, Tensor)],
    path: &Path,
    metadata: &HashMap<String, String>,
) -> Result<()> {
    let views: Vec<(&str, &Tensor)> = tensors.iter().map(|(n, t)| (n.as_str(), t)).collect();
    let metadata = (!metadata.is_empty()).then(|| metadata.clone());
    let bytes = safetensors::serialize(views, metadata)
        .map_err(|e| Error::bad_file(path, format!("cannot serialise tensors: {e}")))?;
    crate::atomic::write_atomic(path, &bytes)
}

/// Reads every tensor of a safetensors file, with the header's metadata.
pub fn load_tensors(
    path: &Path,
    device: &Device,
) -> Result<(HashMap<String, Tensor>, HashMap<String, String>)> {
    let bytes = std::fs::read(path).map_err(Error::io(path))?;
    let corrupt = |e: &dyn std::fmt::Display| {
        Error::bad_file(
            path,
            format!("not a valid safetensors file (truncated or corrupt?): {e}"),
        )
    };
    let (_, header) = safetensors::SafeTensors::read_metadata(&bytes).map_err(|e| corrupt(&e))?;
    let metadata = header.metadata().clone().unwrap_or_default();
    let tensors = candle_core::safetensors::load_buffer(&bytes, device).map_err(|e| corrupt(&e))?;
    Ok((tensors, metadata))
}

/// How a new parameter is initialised.
#[derive(Debug, Clone, Copy)]
pub enum Init {
    /// Normal with mean 0 and this standard deviation.
    Normal(f64),
    /// All zeros.
    Zeros,
    /// All ones.
    Ones,
    /// Every element this value.
    Constant(f64),
}

enum Source {
    Init(Box<rand::rngs::StdRng>),
    Load {
        tensors: HashMap<String, Tensor>,
        path: PathBuf,
    },
}

/// The dtypes a model is built with: its activations (and every parameter
/// they are computed with directly), and the matrices of its linear layers,
/// which the linear kernel may read from a narrower type (bf16 halves the
/// bytes generation streams per token; such a model is for inference only).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Precision {
    /// Activations, norms, biases, position tables.
    pub activations: DType,
    /// Weight matrices of the linear layers (and a tied output layer).
    pub matrices: DType,
}

impl From<DType> for Precision {
    /// Everything in one dtype.
    fn from(dtype: DType) -> Self {
        Precision {
            activations: dtype,
            matrices: dtype,
        }
    }
}

struct State {
    source: Source,
    params: Params,
    precision: Precision,
    device: Device,
}

/// Hands out a model's parameters by name while the model is built: freshly
/// initialised from a seed, or loaded from a checkpoint. Mirrors candle's
/// `VarBuilder`, but initialisation is deterministic and every tensor is kept
/// as a trainable `Var`.
#[derive(Clone)]
pub struct ParamBuilder<'a> {
    state: &'a RefCell<State>,
    prefix: String,
}

/// Owns the state a `ParamBuilder` borrows.
pub struct ParamSource(RefCell<State>);

impl ParamSource {
    /// New parameters drawn from an RNG seeded with `seed`.
    pub fn init(seed: u64, precision: impl Into<Precision>, device: &Device) -> Self {
        Self::new(
            Source::Init(Box::new(rand::rngs::StdRng::seed_from_u64(seed))),
            precision.into(),
            device,
        )
    }

    /// Parameters taken from `tensors` (read from `path`), converted to `precision`.
    pub fn load(
        tensors: HashMap<String, Tensor>,
        path: &Path,
        precision: impl Into<Precision>,
        device: &Device,
    ) -> Self {
        let path = path.to_path_buf();
        Self::new(Source::Load { tensors, path }, precision.into(), device)
    }

    fn new(source: Source, precision: Precision, device: &Device) -> Self {
        Self(RefCell::new(State {
            source,
            params: Params::default(),
            precision,
            device: device.clone(),
        }))
    }

    /// A builder at the root of the name space.
    pub fn builder(&self) -> ParamBuilder<'_> {
        ParamBuilder {
            state: &self.0,
            prefix: String::new(),
        }
    }

    /// The parameters handed out so far.
    pub fn into_params(self) -> Params {
        self.0.into_inner().params
    }
}

impl ParamBuilder<'_> {
    /// A builder for the names under `name.`.
    pub fn pp(&self, name: impl std::fmt::Display) -> Self {
        Self {
            state: self.state,
            prefix: self.full_name(&name.to_string()),
        }
    }

    /// The dtype of the activations (and of every parameter but the matrices).
    pub fn dtype(&self) -> DType {
        self.state.borrow().precision.activations
    }

    /// The device new parameters are created on.
    pub fn device(&self) -> Device {
        self.state.borrow().device.clone()
    }

    fn full_name(&self, name: &str) -> String {
        if self.prefix.is_empty() {
            name.to_string()
        } else {
            format!("{}.{name}", self.prefix)
        }
    }

    /// The parameter `name` with `shape`: initialised with `init`, or loaded.
    pub fn get(&self, shape: &[usize], name: &str, init: Init) -> Result<Tensor> {
        let dtype = self.dtype();
        self.get_as(shape, name, init, dtype)
    }

    /// A weight matrix that only the linear kernel reads: as [`get`](Self::get),
    /// in the precision's matrix dtype.
    pub fn get_matrix(&self, shape: &[usize], name: &str, init: Init) -> Result<Tensor> {
        let dtype = self.state.borrow().precision.matrices;
        self.get_as(shape, name, init, dtype)
    }

    fn get_as(&self, shape: &[usize], name: &str, init: Init, dtype: DType) -> Result<Tensor> {
        let name = self.full_name(name);
        let mut state = self.state.borrow_mut();
        if let Some(view) = state.params.packed_view(&name)? {
            return Ok(view);
        }
        let device = state.device.clone();
        let tensor = match &mut state.source {
            Source::Init(rng) => {
                let n: usize = shape.iter().product();
                let values: Vec<f64> = match init {
                    Init::Normal(std) => {
                        let normal =
                            Normal::new(0.0, std).map_err(|e| Error::Invalid(e.to_string()))?;
                        (0..n).map(|_| normal.sample(rng)).collect()
                    }
                    Init::Zeros => vec![0.0; n],
                    Init::Ones => vec![1.0; n],
                    Init::Constant(value) => vec![value; n],
                };
                Tensor::from_vec(values, shape, &device)?.to_dtype(dtype)?
            }
            Source::Load { tensors, path } => {
                let tensor = tensors.remove(&name).ok_or_else(|| {
                    Error::bad_file(&*path, format!("tensor '{name}' is missing"))
                })?;
                if tensor.dims() != shape {
                    return Err(Error::bad_file(
                        &*path,
                        format!(
                            "tensor '{name}' has shape {:?}, the config needs {shape:?}",
                            tensor.dims()
                        ),
                    ));
                }
                tensor.to_dtype(dtype)?.to_device(&device)?
            }
        };
        let var = Var::from_tensor(&tensor)?;
        let out = var.as_tensor().clone();
        state.params.vars.insert(name, var);
        Ok(out)
    }

    /// Packs the parameters `members` (names under this builder, handed out
    /// already, of one dtype) into one flat trainable tensor called `name`,
    /// in that order, and returns it. From then on the builder hands out
    /// each member as a view of its part of the pack (no new draw or load),
    /// so layers built again see the pack's values as training changes them.
    pub fn pack(&self, name: &str, members: &[&str]) -> Result<Tensor> {
        let name = self.full_name(name);
        let mut state = self.state.borrow_mut();
        let params = &mut state.params;
        let mut parts = Vec::with_capacity(members.len());
        let mut placed = Vec::with_capacity(members.len());
        let mut offset = 0;
        for member in members {
            let full = self.full_name(member);
            let var = params.vars.remove(&full).ok_or_else(|| {
                Error::Invalid(format!("cannot pack '{full}': no such parameter yet"))
            })?;
            parts.push(var.as_tensor().detach().flatten_all()?);
            placed.push(Member {
                name: full,
                offset,
                shape: var.shape().clone(),
            });
            offset += var.elem_count();
        }
        let var = Var::from_tensor(&Tensor::cat(&parts, 0)?)?;
        let out = var.as_tensor().clone();
        params.vars.insert(name.clone(), var);
        params.packs.insert(name, placed);
        Ok(out)
    }
}

impl Params {
    /// The view of the packed parameter `name`, if it is in a pack.
    fn packed_view(&self, name: &str) -> Result<Option<Tensor>> {
        for (pack, members) in &self.packs {
            if let Some(m) = members.iter().find(|m| m.name == name) {
                return Ok(Some(member_view(self.vars[pack].as_tensor(), m)?));
            }
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packed_parameters_are_views_of_one_trainable_tensor() {
        let source = ParamSource::init(1, DType::F32, &Device::Cpu);
        let p = source.builder().pp("block");
        let w = p.get(&[2, 3], "w", Init::Normal(1.0)).unwrap();
        let b = p.get(&[3], "b", Init::Ones).unwrap();
        let keep = p.get(&[4], "kept", Init::Zeros).unwrap();
        let pack = p.pack("packed", &["w", "b"]).unwrap();
        let before: Vec<f32> = pack.to_vec1().unwrap();
        let mut expected: Vec<f32> = w.flatten_all().unwrap().to_vec1().unwrap();
        expected.extend(b.to_vec1::<f32>().unwrap());
        assert_eq!(before, expected, "the pack holds the members in order");
        // The builder now hands out views: no new draw, the pack's values.
        let view = p.get(&[3], "b", Init::Zeros).unwrap();
        assert_eq!(view.to_vec1::<f32>().unwrap(), vec![1.0; 3]);
        assert!(p.pack("again", &["missing"]).is_err());
        let params = source.into_params();
        let names: Vec<&String> = params.iter().map(|(n, _)| n).collect();
        assert_eq!(names, ["block.kept", "block.packed"]);
        assert_eq!(params.count(), 6 + 3 + 4);
        let members = params.members("block.packed");
        assert_eq!(members[1].name, "block.b");
        assert_eq!(members[1].offset, 6);
        // Changing the pack changes what the named parameters read.
        let var = params.get("block.packed").unwrap();
        let values: Vec<f32> = (0..9).map(|i| i as f32).collect();
        var.set(&Tensor::new(values, &Device::Cpu).unwrap())
            .unwrap();
        let named = params.named().unwrap();
        let names: Vec<&str> = named.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["block.b", "block.kept", "block.w"]);
        assert_eq!(named[0].1.to_vec1::<f32>().unwrap(), [6.0, 7.0, 8.0]);
        assert_eq!(named[2].1.dims(), [2, 3]);
        assert_eq!(view.to_vec1::<f32>().unwrap(), [6.0, 7.0, 8.0]);
        // A gradient of the pack reaches each named parameter.
        let loss = (var.as_tensor() * 2.0).unwrap().sum_all().unwrap();
        let loss = (loss + keep.sum_all().unwrap()).unwrap();
        let grads = loss.backward().unwrap();
        let named = params.named_grads(&grads).unwrap();
        let names: Vec<&str> = named.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["block.b", "block.kept", "block.w"]);
        assert_eq!(named[0].1.to_vec1::<f32>().unwrap(), [2.0; 3]);
        assert_eq!(named[1].1.to_vec1::<f32>().unwrap(), [1.0; 4]);
        assert_eq!(named[2].1.to_vec2::<f32>().unwrap(), [[2.0; 3]; 2]);
    }
}
