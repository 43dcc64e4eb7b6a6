//! CLIP: a text encoder and an image encoder trained so that a caption and
//! its picture land close together in one embedding space (the symmetric
//! contrastive loss with a learned temperature). The text encoder is a
//! bidirectional Transformer over caption tokens; its pooled embedding and
//! its token states are what the diffusion decoder is conditioned on. The
//! image encoder is a ViT over patches.

use super::component::{load_component, save_component};
use crate::kernels::cross_entropy;
use crate::nn::{
    patchify, Block, BlockShape, Init, LayerNorm, Linear, Mode, ParamBuilder, ParamSource, Params,
};
use crate::{Error, Result};
use candle_core::{DType, Device, Tensor, D};
use serde::{Deserialize, Serialize};
use std::path::Path;

const EPS: f64 = 1e-5;
/// Largest allowed `exp(logit_scale)`, as in CLIP.
const MAX_LOGIT_SCALE: f64 = 100.0;

/// The text encoder's shape.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TextEncoderConfig {
    /// Tokenizer vocabulary size.
    pub vocab_size: usize,
    /// Most tokens per caption, the end-of-text token included.
    pub context_length: usize,
    /// Residual stream width.
    pub width: usize,
    /// Transformer blocks.
    pub layers: usize,
    /// Attention heads.
    pub heads: usize,
    /// Width of the shared embedding space.
    pub embed_dim: usize,
}

/// The image encoder's shape.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImageEncoderConfig {
    /// Image side in pixels.
    pub image_size: usize,
    /// Colour channels.
    pub channels: usize,
    /// Patch side in pixels.
    pub patch_size: usize,
    /// Residual stream width.
    pub width: usize,
    /// Transformer blocks.
    pub layers: usize,
    /// Attention heads.
    pub heads: usize,
    /// Width of the shared embedding space.
    pub embed_dim: usize,
}

/// Bidirectional pre-LayerNorm blocks `h.0 …`.
fn encoder_blocks(
    p: &ParamBuilder,
    width: usize,
    heads: usize,
    layers: usize,
) -> Result<Vec<Block>> {
    let shape = BlockShape {
        dim: width,
        n_head: heads,
        causal: false,
        bias: true,
        dropout: 0.0,
        eps: EPS,
        proj_init: Init::Normal(0.02 / (2.0 * layers.max(1) as f64).sqrt()),
    };
    (0..layers)
        .map(|i| Block::new(&p.pp("h").pp(i), &shape))
        .collect()
}

/// A batch of captions as the text encoder sees them.
#[derive(Debug, Clone)]
pub struct TextFeatures {
    /// Token states after the final LayerNorm, `[batch, l, width]`, right-padded.
    pub states: Tensor,
    /// Real tokens per caption.
    pub lengths: Vec<usize>,
    /// The caption embeddings, `[batch, embed_dim]` (not normalised).
    pub pooled: Tensor,
}

impl TextFeatures {
    /// The same features cut off from the autograd graph (a frozen encoder).
    pub fn detach(&self) -> TextFeatures {
        TextFeatures {
            states: self.states.detach(),
            lengths: self.lengths.clone(),
            pooled: self.pooled.detach(),
        }
    }
}

/// The caption encoder; it also holds CLIP's learned temperature.
pub struct TextEncoder {
    config: TextEncoderConfig,
    wte: Tensor,
    wpe: Tensor,
    blocks: Vec<Block>,
    ln_f: LayerNorm,
    projection: Linear,
    logit_scale: Tensor,
    params: Params,
}

impl TextEncoder {
    /// The token embedding matrix `[vocab, width]`.
    pub fn token_embeddings(&self) -> &Tensor {
        &self.wte
    }

    /// A new encoder drawn from `seed`.
    pub fn new(
        config: &TextEncoderConfig,
        seed: u64,
        dtype: DType,
        device: &Device,
    ) -> Result<Self> {
        Self::build(config, ParamSource::init(seed, dtype, device))
    }

    /// Loads `dir` (`config.json`, `model.safetensors`).
    pub fn load(dir: &Path, device: &Device) -> Result<Self> {
        let (config, source) = load_component::<TextEncoderConfig>(dir, DType::F32, device)?;
        Self::build(&config, source)
    }

    /// Saves to `dir`.
    pub fn save(&self, dir: &Path) -> Result<()> {
        save_component(dir, &self.config, &self.params)
    }

    fn build(config: &TextEncoderConfig, source: ParamSource) -> Result<Self> {
        if config.context_length == 0 || !config.width.is_multiple_of(config.heads.max(1)) {
            return Err(Error::Invalid(format!(
                "text encoder: context_length must be positive and width {} divisible by heads {}",
                config.width, config.heads
            )));
        }
        let c = config.width;
        let (wte, wpe, blocks, ln_f, projection, logit_scale) = {
            let p = source.builder();
            (
                p.pp("wte")
                    .get(&[config.vocab_size, c], "weight", Init::Normal(0.02))?,
                p.pp("wpe")
                    .get(&[config.context_length, c], "weight", Init::Normal(0.01))?,
                encoder_blocks(&p, c, config.heads, config.layers)?,
                LayerNorm::new(&p.pp("ln_f"), c, true, EPS)?,
                Linear::new(
                    &p.pp("projection"),
                    c,
                    config.embed_dim,
                    false,
                    Init::Normal(1.0 / (c as f64).sqrt()),
                )?,
                // CLIP's initial temperature, 0.07.
                p.get(&[], "logit_scale", Init::Constant((1.0f64 / 0.07).ln()))?,
            )
        };
        Ok(Self {
            config: config.clone(),
            wte,
            wpe,
            blocks,
            ln_f,
            projection,
            logit_scale,
            params: source.into_params(),
        })
    }

    /// The encoder's shape.
    pub fn config(&self) -> &TextEncoderConfig {
        &self.config
    }

    /// The trainable parameters.
    pub fn params(&self) -> &Params {
        &self.params
    }

    /// Encodes captions given as token ids, each ending in the end-of-text
    /// token, whose state (having seen the whole caption) is the pooled one.
    pub fn encode(&self, captions: &[Vec<u32>], mode: &mut Mode) -> Result<TextFeatures> {
        let device = self.wte.device();
        let l = captions.iter().map(Vec::len).max().unwrap_or(0);
        if l == 0 || captions.iter().any(Vec::is_empty) || l > self.config.context_length {
            return Err(Error::Invalid(format!(
                "captions must hold 1 to {} tokens each",
                self.config.context_length
            )));
        }
        let b = captions.len();
        let lengths: Vec<usize> = captions.iter().map(Vec::len).collect();
        let ids: Vec<u32> = captions
            .iter()
            .flat_map(|c| c.iter().copied().chain(std::iter::repeat_n(0, l - c.len())))
            .collect();
        let ids = Tensor::from_vec(ids, b * l, device)?;
        let c = self.config.width;
        let mut x = self
            .wte
            .index_select(&ids, 0)?
            .reshape((b, l, c))?
            .broadcast_add(&self.wpe.narrow(0, 0, l)?)?;
        for block in &self.blocks {
            x = block.forward_padded(&x, &lengths, mode)?;
        }
        let states = self.ln_f.forward(&x)?;
        let last: Vec<u32> = lengths
            .iter()
            .enumerate()
            .map(|(i, &n)| (i * l + n - 1) as u32)
            .collect();
        let last = Tensor::from_vec(last, b, device)?;
        let pooled = self
            .projection
            .forward(&states.reshape((b * l, c))?.index_select(&last, 0)?)?;
        Ok(TextFeatures {
            states,
            lengths,
            pooled,
        })
    }
}

/// The ViT image encoder.
pub struct ImageEncoder {
    config: ImageEncoderConfig,
    patch_embed: Linear,
    wpe: Tensor,
    blocks: Vec<Block>,
    ln_f: LayerNorm,
    projection: Linear,
    params: Params,
}

impl ImageEncoder {
    /// A new encoder drawn from `seed`.
    pub fn new(
        config: &ImageEncoderConfig,
        seed: u64,
        dtype: DType,
        device: &Device,
    ) -> Result<Self> {
        Self::build(config, ParamSource::init(seed, dtype, device))
    }

    /// Loads `dir` (`config.json`, `model.safetensors`).
    pub fn load(dir: &Path, device: &Device) -> Result<Self> {
        let (config, source) = load_component::<ImageEncoderConfig>(dir, DType::F32, device)?;
        Self::build(&config, source)
    }

    /// Saves to `dir`.
    pub fn save(&self, dir: &Path) -> Result<()> {
        save_component(dir, &self.config, &self.params)
    }

    fn build(config: &ImageEncoderConfig, source: ParamSource) -> Result<Self> {
        let (side, patch) = (config.image_size, config.patch_size);
        if patch == 0
            || !side.is_multiple_of(patch)
            || !config.width.is_multiple_of(config.heads.max(1))
        {
            return Err(Error::Invalid(format!(
                "image encoder: image_size {side} must be a multiple of patch_size {patch}, and width {} of heads {}",
                config.width, config.heads
            )));
        }
        let c = config.width;
        let n = (side / patch).pow(2);
        let patch_len = patch * patch * config.channels;
        let (patch_embed, wpe, blocks, ln_f, projection) = {
            let p = source.builder();
            (
                Linear::new(
                    &p.pp("patch_embed"),
                    patch_len,
                    c,
                    true,
                    Init::Normal((1.0 / patch_len as f64).sqrt()),
                )?,
                p.pp("wpe").get(&[n, c], "weight", Init::Normal(0.02))?,
                encoder_blocks(&p, c, config.heads, config.layers)?,
                LayerNorm::new(&p.pp("ln_f"), c, true, EPS)?,
                Linear::new(
                    &p.pp("projection"),
                    c,
                    config.embed_dim,
                    false,
                    Init::Normal(1.0 / (c as f64).sqrt()),
                )?,
            )
        };
        Ok(Self {
            config: config.clone(),
            patch_embed,
            wpe,
            blocks,
            ln_f,
            projection,
            params: source.into_params(),
        })
    }

    /// The encoder's shape.
    pub fn config(&self) -> &ImageEncoderConfig {
        &self.config
    }

    /// The trainable parameters.
    pub fn params(&self) -> &Params {
        &self.params
    }

    /// Embeddings `[batch, embed_dim]` of images `[batch, channels, side, side]`
    /// in `[-1, 1]`: the mean of the final patch states, projected.
    pub fn encode(&self, images: &Tensor, mode: &mut Mode) -> Result<Tensor> {
        let tokens = patchify(images, self.config.patch_size)?;
        let mut x = self
            .patch_embed
            .forward(&tokens)?
            .broadcast_add(&self.wpe)?;
        for block in &self.blocks {
            x = block.forward(&x, mode)?;
        }
        let pooled = self.ln_f.forward(&x)?.mean(1)?;
        self.projection.forward(&pooled)
    }
}

/// Rows scaled to unit length.
pub fn normalize(x: &Tensor) -> Result<Tensor> {
    let norm = x.sqr()?.sum_keepdim(D::Minus1)?.sqrt()?.maximum(1e-12)?;
    Ok(x.broadcast_div(&norm)?)
}

/// The symmetric contrastive loss of matching caption and image embeddings
/// (row `i` of each is a pair): cross-entropy of each caption against all
/// images and of each image against all captions, averaged, with logits
/// scaled by `exp(logit_scale)` (capped at 100). `hard_negatives`, when
/// given, are more caption embeddings that match no image: each image is
/// also scored against them (NegCLIP's image→caption term), so captions
/// that differ from the true one in a single detail are pushed away from
/// it. Returns the loss and the `[captions, images]` similarity logits.
pub fn contrastive_loss(
    text: &Tensor,
    hard_negatives: Option<&Tensor>,
    image: &Tensor,
    logit_scale: &Tensor,
) -> Result<(Tensor, Tensor)> {
    let b = text.dim(0)?;
    let scale = logit_scale.clamp(0.0, MAX_LOGIT_SCALE.ln())?.exp()?;
    let image = normalize(image)?;
    let similarity = |captions: &Tensor| -> Result<Tensor> {
        Ok(normalize(captions)?
            .matmul(&image.t()?)?
            .broadcast_mul(&scale)?)
    };
    let logits = similarity(text)?;
    let targets = Tensor::arange(0u32, b as u32, text.device())?;
    let t2i = cross_entropy(&logits, &targets)?;
    let captions_per_image = match hard_negatives {
        Some(negatives) if negatives.dim(0)? > 0 => {
            Tensor::cat(&[&logits, &similarity(negatives)?], 0)?
        }
        _ => logits.clone(),
    };
    let i2t = cross_entropy(&captions_per_image.t()?, &targets)?;
    Ok((((t2i + i2t)? * 0.5)?, logits))
}

impl TextEncoder {
    /// CLIP's learned log temperature.
    pub fn logit_scale(&self) -> &Tensor {
        &self.logit_scale
    }
}
