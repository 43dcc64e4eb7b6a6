//! A text-to-image model on disk and in memory: a folder in diffusers'
//! spirit with `model_index.json` and one sub-folder per part:
//! `tokenizer/`, `text_encoder/`, `image_encoder/` (stage 1, CLIP),
//! `denoiser/` (stage 2, the DiT) and `scheduler/` (`scheduler_config.json`).

use super::{Dit, ImageEncoder, TextEncoder};
use crate::diffusion::{NoiseSchedule, SchedulerConfig};
use crate::tokenize::Tokenizer;
use crate::{Error, Result};
use candle_core::Device;
use serde_json::json;
use std::path::Path;

/// The parts of a text-to-image model.
pub struct ImageModel {
    /// Caption tokenizer (byte-level BPE); captions end with its end-of-text token.
    pub tokenizer: Tokenizer,
    /// Stage 1's caption encoder.
    pub text_encoder: TextEncoder,
    /// Stage 1's image encoder (kept for evaluation and retrieval).
    pub image_encoder: ImageEncoder,
    /// Stage 2's denoiser, once trained.
    pub denoiser: Option<Dit>,
    /// The noise schedule the denoiser was trained with.
    pub schedule: NoiseSchedule,
}

/// A caption as token ids for the text encoder: cut to fit `context_length`
/// with the end-of-text token last. Returns the ids and whether it was cut.
pub fn caption_ids(
    tokenizer: &Tokenizer,
    text: &str,
    context_length: usize,
) -> Result<(Vec<u32>, bool)> {
    let end = tokenizer.end_of_text().ok_or_else(|| {
        Error::Tokenizer("the caption tokenizer has no <|endoftext|> token".into())
    })?;
    let mut ids = tokenizer.encode(text)?;
    let cut = ids.len() + 1 > context_length;
    ids.truncate(context_length.saturating_sub(1));
    ids.push(end);
    Ok((ids, cut))
}

impl ImageModel {
    /// Token ids of a caption (see [`caption_ids`]).
    pub fn caption_ids(&self, text: &str) -> Result<(Vec<u32>, bool)> {
        caption_ids(
            &self.tokenizer,
            text,
            self.text_encoder.config().context_length,
        )
    }

    /// Writes the model folder; each file atomically.
    pub fn save(&self, dir: &Path) -> Result<()> {
        std::fs::create_dir_all(dir.join("tokenizer")).map_err(Error::io(dir))?;
        self.tokenizer.save(&dir.join("tokenizer/tokenizer.json"))?;
        self.text_encoder.save(&dir.join("text_encoder"))?;
        self.image_encoder.save(&dir.join("image_encoder"))?;
        if let Some(denoiser) = &self.denoiser {
            denoiser.save(&dir.join("denoiser"))?;
        }
        let scheduler = dir.join("scheduler");
        std::fs::create_dir_all(&scheduler).map_err(Error::io(&scheduler))?;
        let config =
            serde_json::to_string_pretty(&self.schedule.config).expect("config serialises");
        crate::atomic::write_atomic(&scheduler.join("scheduler_config.json"), config.as_bytes())?;
        let index = json!({
            "_class_name": "SeerTextToImagePipeline",
            "tokenizer": ["tokenizers", "Tokenizer"],
            "text_encoder": ["seer", "TextEncoder"],
            "image_encoder": ["seer", "ImageEncoder"],
            "denoiser": self.denoiser.as_ref().map(|_| json!(["seer", "Dit"])),
            "scheduler": ["seer", "NoiseSchedule"],
        });
        let index = serde_json::to_string_pretty(&index).expect("index serialises");
        crate::atomic::write_atomic(&dir.join("model_index.json"), index.as_bytes())
    }

    /// Reads a model folder; a missing part is named in the error. The
    /// denoiser may be absent (a stage-1-only model).
    pub fn load(dir: &Path, device: &Device) -> Result<Self> {
        if !dir.join("model_index.json").is_file() {
            return Err(Error::bad_file(
                dir,
                "not an image model folder (no model_index.json); make one with `seer train image`",
            ));
        }
        for part in [
            "tokenizer/tokenizer.json",
            "text_encoder",
            "image_encoder",
            "scheduler/scheduler_config.json",
        ] {
            if !dir.join(part).exists() {
                return Err(Error::bad_file(
                    dir.join(part),
                    "missing part of the image model",
                ));
            }
        }
        let tokenizer = Tokenizer::load(&dir.join("tokenizer/tokenizer.json"))?;
        let text_encoder = TextEncoder::load(&dir.join("text_encoder"), device)?;
        let image_encoder = ImageEncoder::load(&dir.join("image_encoder"), device)?;
        let denoiser = dir
            .join("denoiser")
            .exists()
            .then(|| Dit::load(&dir.join("denoiser"), device))
            .transpose()?;
        let path = dir.join("scheduler/scheduler_config.json");
        let text = std::fs::read_to_string(&path).map_err(Error::io(&path))?;
        let config: SchedulerConfig = serde_json::from_str(&text)
            .map_err(|e| Error::bad_file(&path, format!("invalid scheduler config: {e}")))?;
        if tokenizer.vocab_size() != text_encoder.config().vocab_size {
            return Err(Error::bad_file(
                dir.join("tokenizer/tokenizer.json"),
                format!(
                    "the tokenizer has {} tokens but the text encoder expects {}",
                    tokenizer.vocab_size(),
                    text_encoder.config().vocab_size
                ),
            ));
        }
        Ok(Self {
            tokenizer,
            text_encoder,
            image_encoder,
            denoiser,
            schedule: NoiseSchedule::new(config)?,
        })
    }
}
