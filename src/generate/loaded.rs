//! A text model as the commands and the server run it: seer's own GPT (or
//! GPT-2) from a model folder, or an open model (Llama family, Gemma 3) from
//! a GGUF file or a Hugging Face folder, each with its tokenizer and its way of starting, ending and
//! chatting.

use super::{prompt_tokens, Conversation, TextModel};
use crate::model::{Gpt, OpenModel};
use crate::nn::Precision;
use crate::tokenize::Tokenizer;
use crate::{Error, Result};
use candle_core::Device;
use std::path::Path;

/// A loaded text model with its tokenizer.
pub enum LoadedModel {
    /// seer's own GPT (or GPT-2).
    Gpt(Box<Gpt>, Box<Tokenizer>),
    /// An open model from a GGUF file or a Hugging Face folder.
    Open(Box<OpenModel>),
}

impl std::fmt::Debug for LoadedModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Gpt(model, _) => f.debug_tuple("Gpt").field(model.config()).finish(),
            Self::Open(open) => f.debug_tuple("Open").field(open).finish(),
        }
    }
}

impl LoadedModel {
    /// Loads the model at `path`: an open model's file (run on the CPU, its
    /// cache holding `context` tokens at most), or a model folder (its
    /// matrices in `precision`, on `device`).
    pub fn load(
        path: &Path,
        precision: Precision,
        device: &Device,
        context: usize,
    ) -> Result<Self> {
        if OpenModel::is_model_file(path) {
            if !device.is_cpu() {
                return Err(Error::Invalid(format!(
                    "{}: open models run on the CPU only",
                    path.display()
                )));
            }
            let open = OpenModel::open(path, Some(context))?;
            return Ok(Self::Open(Box::new(open)));
        }
        let model = Gpt::load(path, precision, device)?;
        Ok(Self::Gpt(
            Box::new(model),
            Box::new(Tokenizer::load_model_dir(path)?),
        ))
    }

    /// The network.
    pub fn model(&self) -> &dyn TextModel {
        match self {
            Self::Gpt(model, _) => model.as_ref(),
            Self::Open(open) => open.model(),
        }
    }

    /// The tokenizer.
    pub fn tokenizer(&self) -> &Tokenizer {
        match self {
            Self::Gpt(_, tokenizer) => tokenizer,
            Self::Open(open) => open.tokenizer(),
        }
    }

    /// The ids of a plain prompt (an empty one starts from the model's start token).
    pub fn prompt_ids(&self, text: &str) -> Result<Vec<u32>> {
        match self {
            Self::Gpt(_, tokenizer) => prompt_tokens(tokenizer, text),
            Self::Open(open) => {
                let ids = open.prompt_ids(text)?;
                if ids.is_empty() {
                    return Err(Error::Invalid(format!(
                        "give a prompt: {} has no start token to begin from",
                        open.name()
                    )));
                }
                Ok(ids)
            }
        }
    }

    /// The ids of a prompt rendered by a chat template (whose special
    /// tokens are read as such).
    pub fn chat_ids(&self, rendered: &str) -> Result<Vec<u32>> {
        match self {
            Self::Gpt(_, tokenizer) => tokenizer.encode(rendered),
            Self::Open(open) => open.chat_ids(rendered),
        }
    }

    /// The token a model that wants one starts every sequence with (BOS).
    pub fn start_token(&self) -> Option<u32> {
        match self {
            Self::Gpt(..) => None,
            Self::Open(open) => {
                let special = open.special();
                special.bos.filter(|_| special.add_bos)
            }
        }
    }

    /// Token ids that end a generation, besides `<|endoftext|>`.
    pub fn stop_ids(&self) -> Vec<u32> {
        match self {
            Self::Gpt(..) => Vec::new(),
            Self::Open(open) => open.stop_ids(),
        }
    }

    /// An empty conversation in the model's chat template (seer's plain
    /// `User:`/`Assistant:` lines for its own models).
    pub fn conversation(&self) -> Conversation {
        match self {
            Self::Gpt(..) => Conversation::default(),
            Self::Open(open) => Conversation::with_template(open.template().clone()),
        }
    }

    /// What to call the model in messages.
    pub fn describe(&self, path: &Path) -> String {
        match self {
            Self::Gpt(..) => path.display().to_string(),
            Self::Open(open) => format!("{} ({})", open.name(), path.display()),
        }
    }
}
