//! The settings of a text-to-image run: both stages' model shapes, the
//! noise schedule, and each stage's optimisation, with built-in presets.

use super::config::with_toml_file;
use crate::data::shapes::{COLOURS_SWAPPED, POSITION_SWAPPED, SHAPE_CHANGED};
use crate::diffusion::{BetaSchedule, Prediction, SchedulerConfig};
use crate::model::{DitConfig, ImageEncoderConfig, TextEncoderConfig};
use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// One stage's optimisation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StageConfig {
    /// Pairs per step.
    pub batch_size: usize,
    /// Optimizer steps.
    pub iters: u64,
    /// Peak learning rate.
    pub lr: f64,
    /// Learning rate at the end of the cosine decay.
    pub min_lr: f64,
    /// Steps of linear warm-up.
    pub warmup_iters: u64,
    /// AdamW weight decay (matrices only).
    pub weight_decay: f64,
    /// Global gradient-norm clip (0 disables).
    pub grad_clip: f64,
}

/// Everything that defines a text-to-image run except the data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImageTrainConfig {
    /// Image side in pixels.
    pub image_size: usize,
    /// Caption tokenizer vocabulary (byte-level BPE, at least 257).
    pub vocab_size: usize,
    /// Stage 1: the caption encoder.
    pub text_encoder: TextEncoderConfig,
    /// Stage 1: the image encoder.
    pub image_encoder: ImageEncoderConfig,
    /// Stage 1's optimisation (the contrastive loss).
    pub clip: StageConfig,
    /// Stage 1 also scores each picture against its caption's hard
    /// negatives (colours swapped between two objects, relation or cell
    /// flipped, count changed, one of two objects' shape changed), as
    /// NegCLIP does; only the shapes world
    /// makes them. In-batch negatives almost never differ from a caption
    /// only in which colour goes with which shape, so without them the
    /// pooled caption stays close to a bag of words.
    #[serde(default)]
    pub hard_negatives: bool,
    /// Stage 2: the denoiser.
    pub denoiser: DitConfig,
    /// Stage 2: the noise schedule and prediction type.
    pub scheduler: SchedulerConfig,
    /// Stage 2's optimisation.
    pub diffusion: StageConfig,
    /// Decay of the moving average of the denoiser's weights that is saved
    /// and sampled with.
    pub ema_decay: f64,
    /// Share of captions replaced by the empty caption in stage 2, so that
    /// classifier-free guidance has an unconditional model to push against.
    pub caption_dropout: f64,
    /// Share of training pictures whose denoiser sees the caption only
    /// through cross-attention, its pooled embedding zeroed. The pooled
    /// vector is a bag of words that modulates every patch alike, yet it is
    /// the easy path: a denoiser trained with it always learns to ignore
    /// its cross-attention (zeroing every cross-attention output changed
    /// the shipped model's scores by noise), and then cannot say which
    /// colour goes with which shape. Dropping it makes the token states
    /// carry the caption too.
    #[serde(default)]
    pub pooled_dropout: f64,
    /// Weight of stage 2's caption contrast (0: off): each picture whose
    /// caption has a colour-swapped twin ("a blue circle and a red square"
    /// for "a red circle and a blue square") is also denoised given the
    /// twin, on the same noisy input, and a hinge asks that error to
    /// exceed the true caption's by 10%; the denoiser as a classifier, as
    /// `seer eval binding` probes it. Shapes world only.
    #[serde(default)]
    pub caption_contrast: f64,
    /// Weight of the same contrast for position (0: off): the twin
    /// reverses the caption's relation ("a red circle right of a blue
    /// square" for "... left of ...") or mirrors a lone object's cell
    /// ("in the top right" for "in the top left"). Shapes world only.
    #[serde(default)]
    pub position_contrast: f64,
    /// Weight of the same contrast for shapes (0: off): the twin gives one
    /// of two objects another shape ("a red square left of a blue square"
    /// for "a red circle left of a blue square"). Shapes world only.
    #[serde(default)]
    pub shape_contrast: f64,
    /// Whether stage 2 also trains the text encoder (default: frozen).
    pub finetune_text_encoder: bool,
    /// Min-SNR-γ loss weighting (Hang et al., 2023): each picture's error
    /// counts as `min(SNR, γ)` times its error in the clean image, which
    /// keeps the nearly clean timesteps from dominating; 0 turns it off
    /// (the plain error of the prediction type).
    #[serde(default)]
    pub min_snr_gamma: f64,
    /// Training timesteps drawn as `T·sigmoid(u)`, `u ~ N(0, s)` (SD3's
    /// logit-normal sampling, denser in the middle of the schedule) with
    /// this `s`; 0 draws them uniformly.
    #[serde(default)]
    pub logit_normal_std: f64,
    /// Training timesteps moved towards the noisy end: a drawn fraction `f`
    /// of the schedule becomes `s·f / (1 + (s − 1)·f)` for this `s`, which
    /// makes the noisiest timesteps `s` times as frequent and the cleanest
    /// `s` times as rare (SD3's timestep shift, here applied to training
    /// only); 1 leaves them as drawn. The noisy end is where a sample
    /// commits to its layout, so it is where the caption's word for a
    /// place can act.
    #[serde(default = "no_shift")]
    pub timestep_shift: f64,
    /// Seed of initialisation and data.
    pub seed: u64,
    /// Log the loss every this many steps.
    pub log_interval: u64,
    /// Save the model every this many stage-2 steps.
    pub checkpoint_interval: u64,
}

/// The default [`ImageTrainConfig::timestep_shift`]: timesteps as drawn.
fn no_shift() -> f64 {
    1.0
}

/// Names of the built-in image presets, with what they are.
pub const IMAGE_PRESETS: [(&str, &str); 3] = [
    ("shapes", "the shapes world at 32×32: CLIP (2+2 layers, 128 wide), DiT (patch 4, 6 layers, 128 wide), v-prediction"),
    ("mnist", "the shapes preset's models for the built-in digits: 800 CLIP steps, then 4,000 stage-2 steps on the plain v-prediction loss with uniform timesteps"),
    ("tiny", "a seconds-long run for tests: 16×16 images, one-layer encoders, two-block DiT"),
];

impl ImageTrainConfig {
    /// The built-in preset `name`.
    pub fn preset(name: &str) -> Result<Self> {
        match name {
            "shapes" => Ok(Self::shapes()),
            "mnist" => Ok(Self::mnist()),
            "tiny" => Ok(Self::tiny()),
            other => Err(Error::Invalid(format!(
                "unknown image preset '{other}': choose one of {}",
                IMAGE_PRESETS.map(|(n, _)| n).join(", ")
            ))),
        }
    }

    fn shapes() -> Self {
        let (text_width, embed) = (128, 128);
        Self {
            image_size: 32,
            vocab_size: 320,
            text_encoder: TextEncoderConfig {
                vocab_size: 320,
                context_length: 24,
                width: text_width,
                layers: 2,
                heads: 4,
                embed_dim: embed,
            },
            image_encoder: ImageEncoderConfig {
                image_size: 32,
                channels: 3,
                patch_size: 4,
                width: 128,
                layers: 2,
                heads: 4,
                embed_dim: embed,
            },
            clip: StageConfig {
                batch_size: 128,
                iters: 1500,
                lr: 1e-3,
                min_lr: 1e-4,
                warmup_iters: 100,
                weight_decay: 0.1,
                grad_clip: 1.0,
            },
            denoiser: DitConfig {
                image_size: 32,
                channels: 3,
                patch_size: 4,
                patch_overlap: 0,
                width: 128,
                layers: 6,
                heads: 4,
                context_dim: text_width,
                pooled_dim: embed,
                caption_window: 0,
            },
            scheduler: SchedulerConfig {
                beta_schedule: BetaSchedule::Cosine,
                prediction_type: Prediction::Velocity,
                ..SchedulerConfig::default()
            },
            diffusion: StageConfig {
                batch_size: 64,
                iters: 8000,
                lr: 1e-3,
                min_lr: 1e-4,
                warmup_iters: 200,
                weight_decay: 0.0,
                grad_clip: 1.0,
            },
            ema_decay: 0.999,
            caption_dropout: 0.1,
            pooled_dropout: 0.0,
            hard_negatives: false,
            caption_contrast: 0.0,
            position_contrast: 0.0,
            shape_contrast: 0.0,
            finetune_text_encoder: false,
            min_snr_gamma: 5.0,
            logit_normal_std: 1.0,
            timestep_shift: 1.0,
            seed: 1337,
            log_interval: 50,
            checkpoint_interval: 500,
        }
    }

    /// The shapes preset's models, trained shorter and on the plain loss:
    /// digits are thin strokes, which Min-SNR weights and logit-normal
    /// timesteps left ragged (with them the same run drew 80.0% of digits
    /// as prompted, without them 94.0%; see BENCHMARKS.md).
    fn mnist() -> Self {
        let shapes = Self::shapes();
        Self {
            clip: StageConfig {
                iters: 800,
                ..shapes.clip
            },
            diffusion: StageConfig {
                iters: 4000,
                ..shapes.diffusion
            },
            min_snr_gamma: 0.0,
            logit_normal_std: 0.0,
            ..shapes
        }
    }

    fn tiny() -> Self {
        let shapes = Self::shapes();
        Self {
            image_size: 16,
            vocab_size: 300,
            text_encoder: TextEncoderConfig {
                vocab_size: 300,
                width: 32,
                layers: 1,
                heads: 2,
                embed_dim: 32,
                ..shapes.text_encoder
            },
            image_encoder: ImageEncoderConfig {
                image_size: 16,
                width: 32,
                layers: 1,
                heads: 2,
                embed_dim: 32,
                ..shapes.image_encoder
            },
            clip: StageConfig {
                batch_size: 16,
                iters: 20,
                warmup_iters: 2,
                ..shapes.clip
            },
            denoiser: DitConfig {
                image_size: 16,
                patch_size: 4,
                width: 32,
                layers: 2,
                heads: 2,
                context_dim: 32,
                pooled_dim: 32,
                ..shapes.denoiser
            },
            diffusion: StageConfig {
                batch_size: 8,
                iters: 20,
                warmup_iters: 2,
                ..shapes.diffusion
            },
            log_interval: 5,
            checkpoint_interval: 10,
            ..shapes
        }
    }

    /// This config with the keys of the TOML file at `path` replacing its own.
    pub fn with_toml_file(&self, path: &Path) -> Result<Self> {
        with_toml_file(self, path)
    }

    /// The stage-2 contrast's weight for twins of the hard-negative `kind`
    /// (0 for the kinds it does not contrast).
    pub fn contrast_weight(&self, kind: &str) -> f64 {
        match kind {
            COLOURS_SWAPPED => self.caption_contrast,
            POSITION_SWAPPED => self.position_contrast,
            SHAPE_CHANGED => self.shape_contrast,
            _ => 0.0,
        }
    }

    /// Whether stage 2 contrasts any kind of twin.
    pub fn contrasts(&self) -> bool {
        [COLOURS_SWAPPED, POSITION_SWAPPED, SHAPE_CHANGED]
            .iter()
            .any(|kind| self.contrast_weight(kind) > 0.0)
    }

    /// Checks that the parts fit together.
    pub fn validate(&self) -> Result<()> {
        let side = self.image_size;
        if self.image_encoder.image_size != side || self.denoiser.image_size != side {
            return Err(Error::Invalid(format!(
                "image_size {side} must match image_encoder.image_size {} and denoiser.image_size {}",
                self.image_encoder.image_size, self.denoiser.image_size
            )));
        }
        if self.text_encoder.vocab_size != self.vocab_size {
            return Err(Error::Invalid(format!(
                "text_encoder.vocab_size {} must equal vocab_size {}",
                self.text_encoder.vocab_size, self.vocab_size
            )));
        }
        if self.denoiser.context_dim != self.text_encoder.width
            || self.denoiser.pooled_dim != self.text_encoder.embed_dim
        {
            return Err(Error::Invalid(
                "denoiser.context_dim and pooled_dim must equal the text encoder's width and embed_dim".into(),
            ));
        }
        for (name, weight) in [
            ("caption_contrast", self.caption_contrast),
            ("position_contrast", self.position_contrast),
            ("shape_contrast", self.shape_contrast),
        ] {
            if !(weight >= 0.0 && weight.is_finite()) {
                return Err(Error::Invalid(format!(
                    "{name} must be a weight of 0 or more, not {weight}"
                )));
            }
        }
        if !(0.0..=1.0).contains(&self.pooled_dropout) {
            return Err(Error::Invalid(format!(
                "pooled_dropout must be in [0, 1], not {}",
                self.pooled_dropout
            )));
        }
        if !(0.0..1.0).contains(&self.caption_dropout) {
            return Err(Error::Invalid(format!(
                "caption_dropout must be in [0, 1), not {}",
                self.caption_dropout
            )));
        }
        for (name, value) in [
            ("min_snr_gamma", self.min_snr_gamma),
            ("logit_normal_std", self.logit_normal_std),
        ] {
            if !(value >= 0.0 && value.is_finite()) {
                return Err(Error::Invalid(format!(
                    "{name} must be 0 (off) or positive, not {value}"
                )));
            }
        }
        if !(self.timestep_shift > 0.0 && self.timestep_shift.is_finite()) {
            return Err(Error::Invalid(format!(
                "timestep_shift must be positive (1 leaves timesteps unshifted), not {}",
                self.timestep_shift
            )));
        }
        for (name, stage) in [("clip", &self.clip), ("diffusion", &self.diffusion)] {
            if stage.batch_size < 2 || stage.lr <= 0.0 {
                return Err(Error::Invalid(format!(
                    "{name}.batch_size must be at least 2 and {name}.lr positive"
                )));
            }
        }
        Ok(())
    }
}
