//! The diffusion Transformer (DiT) that denoises images, conditioned on a
//! caption: the image is cut into patch tokens with fixed 2-D position
//! embeddings; the timestep (sinusoidal, then an MLP) and the caption's
//! pooled embedding form the conditioning vector that drives every block's
//! adaLN-Zero modulation; every block also cross-attends to the caption's
//! token states (optionally mixed with their neighbours first, see
//! [`DitConfig::caption_window`]). A final adaptive LayerNorm and a zero-initialised linear
//! layer turn tokens back into patches of the prediction (ε, v or x₀, as the
//! scheduler config says).

use super::component::{load_component, save_component};
use super::TextFeatures;
use crate::nn::{
    grid_embedding, modulated_norm, timestep_embedding, AdaLn, Conditioning, DitBlock, Init,
    Linear, NeighbourMix, ParamSource, Params, PatchIo,
};
use crate::{Error, Result};
use candle_core::{DType, Device, Tensor};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// Width of the sinusoidal timestep features fed to the timestep MLP.
const TIMESTEP_FEATURES: usize = 256;

/// The denoiser's shape.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DitConfig {
    /// Image side in pixels.
    pub image_size: usize,
    /// Colour channels.
    pub channels: usize,
    /// Patch side in pixels.
    pub patch_size: usize,
    /// Pixels each patch token also reads and draws beyond its patch, on
    /// every side (0: plain patches).
    #[serde(default)]
    pub patch_overlap: usize,
    /// Residual stream width.
    pub width: usize,
    /// Blocks.
    pub layers: usize,
    /// Attention heads.
    pub heads: usize,
    /// Width of the caption's token states (the text encoder's width).
    pub context_dim: usize,
    /// Width of the caption's pooled embedding.
    pub pooled_dim: usize,
    /// Caption tokens on either side whose states each token state also
    /// takes in (a learned map, starting at zero) before the blocks
    /// cross-attend to them, so a noun's state carries its adjectives
    /// (0: the text encoder's states as they are).
    #[serde(default)]
    pub caption_window: usize,
}

/// The diffusion Transformer.
pub struct Dit {
    config: DitConfig,
    patches: PatchIo,
    positions: Tensor,
    time_in: Linear,
    time_out: Linear,
    caption_in: Linear,
    caption_mix: Option<NeighbourMix>,
    blocks: Vec<DitBlock>,
    final_adaln: AdaLn,
    params: Params,
}

impl Dit {
    /// A new denoiser drawn from `seed`.
    pub fn new(config: &DitConfig, seed: u64, dtype: DType, device: &Device) -> Result<Self> {
        Self::build(config, ParamSource::init(seed, dtype, device))
    }

    /// Loads `dir` (`config.json`, `model.safetensors`).
    pub fn load(dir: &Path, device: &Device) -> Result<Self> {
        let (config, source) = load_component::<DitConfig>(dir, DType::F32, device)?;
        Self::build(&config, source)
    }

    /// Saves to `dir`.
    pub fn save(&self, dir: &Path) -> Result<()> {
        save_component(dir, &self.config, &self.params)
    }

    fn build(config: &DitConfig, source: ParamSource) -> Result<Self> {
        let (side, patch, c) = (config.image_size, config.patch_size, config.width);
        if patch == 0
            || !side.is_multiple_of(patch)
            || !c.is_multiple_of(config.heads.max(1))
            || !c.is_multiple_of(4)
        {
            return Err(Error::Invalid(format!(
                "denoiser: image_size {side} must be a multiple of patch_size {patch}, and width {c} of heads {} and of 4",
                config.heads
            )));
        }
        let (device, dtype) = (source.builder().device(), source.builder().dtype());
        let p = source.builder();
        let dit = Self {
            config: config.clone(),
            patches: PatchIo::new(&p, patch, config.patch_overlap, config.channels, c)?,
            positions: grid_embedding(side / patch, c, &device)?.to_dtype(dtype)?,
            time_in: Linear::new(
                &p.pp("time_in"),
                TIMESTEP_FEATURES,
                c,
                true,
                Init::Normal(0.02),
            )?,
            time_out: Linear::new(&p.pp("time_out"), c, c, true, Init::Normal(0.02))?,
            caption_in: Linear::new(
                &p.pp("caption_in"),
                config.pooled_dim,
                c,
                true,
                Init::Normal(0.02),
            )?,
            caption_mix: match config.caption_window {
                0 => None,
                window => Some(NeighbourMix::new(
                    &p.pp("caption_mix"),
                    config.context_dim,
                    window,
                )?),
            },
            blocks: (0..config.layers)
                .map(|i| DitBlock::new(&p.pp("h").pp(i), c, config.heads, config.context_dim))
                .collect::<Result<Vec<_>>>()?,
            final_adaln: AdaLn::new(&p.pp("final_adaln"), c, c, 2)?,
            params: Params::default(),
        };
        drop(p);
        Ok(Self {
            params: source.into_params(),
            ..dit
        })
    }

    /// A denoiser of `config` that holds this one's parameters where names
    /// agree, the rest drawn from `seed` as a new model's are: a caption mix
    /// added to a trained denoiser starts at zero, so it changes nothing
    /// until trained.
    pub fn extended(&self, config: &DitConfig, seed: u64) -> Result<Self> {
        let first = self.params.iter().next().map(|(_, v)| v.as_tensor());
        let (dtype, device) = first
            .map(|t| (t.dtype(), t.device().clone()))
            .unwrap_or((DType::F32, Device::Cpu));
        let grown = Self::new(config, seed, dtype, &device)?;
        for (name, var) in self.params.iter() {
            let target = grown.params.get(name).ok_or_else(|| {
                Error::Invalid(format!("denoiser: the new shape has no parameter '{name}'"))
            })?;
            if target.dims() != var.dims() {
                return Err(Error::Invalid(format!(
                    "denoiser: parameter '{name}' is {:?}, the new shape needs {:?}",
                    var.dims(),
                    target.dims()
                )));
            }
            target.set(var.as_tensor())?;
        }
        Ok(grown)
    }

    /// The denoiser's shape.
    pub fn config(&self) -> &DitConfig {
        &self.config
    }

    /// The trainable parameters.
    pub fn params(&self) -> &Params {
        &self.params
    }

    /// The caption states the blocks cross-attend to: the text encoder's,
    /// after the caption mix when there is one.
    pub fn caption_context(&self, caption: &TextFeatures) -> Result<Tensor> {
        match &self.caption_mix {
            Some(mix) => mix.forward(&caption.states, &caption.lengths),
            None => Ok(caption.states.clone()),
        }
    }

    /// The prediction for noisy images `x` (`[batch, channels, side, side]`)
    /// at timesteps `t` (one per image), given the captions' features.
    pub fn forward(&self, x: &Tensor, t: &[f32], caption: &TextFeatures) -> Result<Tensor> {
        self.run(x, t, caption, None)
    }

    /// The prediction, in inference, with every block's cross-attention
    /// weights, `[batch, n_head, patches, caption tokens]` per block: how
    /// much each patch reads each caption token.
    pub fn forward_with_cross_attention(
        &self,
        x: &Tensor,
        t: &[f32],
        caption: &TextFeatures,
    ) -> Result<(Tensor, Vec<Tensor>)> {
        let mut weights = Vec::with_capacity(self.blocks.len());
        let prediction = self.run(x, t, caption, Some(&mut weights))?;
        Ok((prediction, weights))
    }

    /// The prediction, collecting each block's cross-attention weights into
    /// `weights` when asked.
    fn run(
        &self,
        x: &Tensor,
        t: &[f32],
        caption: &TextFeatures,
        mut weights: Option<&mut Vec<Tensor>>,
    ) -> Result<Tensor> {
        let device = x.device();
        let b = x.dim(0)?;
        if t.len() != b || caption.lengths.len() != b {
            return Err(Error::Invalid(format!(
                "denoiser: {b} images need {b} timesteps and captions, got {} and {}",
                t.len(),
                caption.lengths.len()
            )));
        }
        let tokens = self.patches.tokens(x)?.broadcast_add(&self.positions)?;
        let time = timestep_embedding(t, TIMESTEP_FEATURES, device)?.to_dtype(x.dtype())?;
        let time = self
            .time_out
            .forward(&self.time_in.forward(&time)?.silu()?)?;
        let vector = (time + self.caption_in.forward(&caption.pooled)?)?;
        let context = self.caption_context(caption)?;
        let packed = Conditioning::pack(&vector, &context)?;
        let cond = Conditioning {
            packed: &packed,
            lengths: &caption.lengths,
        };
        let mut h = tokens;
        for block in &self.blocks {
            h = match weights.as_deref_mut() {
                Some(weights) => {
                    let (out, w) = block.forward_with_cross_attention(&h, &cond)?;
                    weights.push(w);
                    out
                }
                None => block.forward(&h, &cond)?,
            };
        }
        let m = self.final_adaln.forward(&vector)?;
        let h = modulated_norm(&h, &m[0], &m[1])?;
        self.patches.pictures(&h)
    }
}
