//! An open model as a user runs it, from one GGUF file: the network, its
//! tokenizer, its special tokens and its chat template.

use super::Llama;
use crate::formats::{ChatTemplate, Gguf, GgufTokenizer};
use crate::tokenize::Tokenizer;
use crate::{Error, Result};
use std::path::Path;
use std::sync::Arc;

/// A Llama-family or Gemma 3 model with everything needed to talk to it.
pub struct OpenModel {
    model: Llama,
    vocabulary: GgufTokenizer,
    template: Arc<ChatTemplate>,
    name: String,
}

impl std::fmt::Debug for OpenModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenModel")
            .field("name", &self.name)
            .field("model", &self.model)
            .finish_non_exhaustive()
    }
}

impl OpenModel {
    /// Whether `path` names a model file this type opens (a `.gguf` file).
    pub fn is_model_file(path: &Path) -> bool {
        path.extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("gguf"))
    }

    /// Opens the GGUF file at `path`, its context limited to `context`
    /// tokens (`None`: the trained length).
    pub fn open(path: &Path, context: Option<usize>) -> Result<Self> {
        let gguf = Gguf::open(path)?;
        let in_file = |e: Error| Error::bad_file(path, e.to_string());
        let vocabulary = GgufTokenizer::from_metadata(gguf.metadata()).map_err(in_file)?;
        let template = Arc::new(vocabulary.chat_template().map_err(in_file)?);
        let model = Llama::from_gguf(&gguf, context)?;
        let vocab = model.config().vocab_size;
        if vocabulary.tokens().len() > vocab {
            return Err(Error::bad_file(
                path,
                format!(
                    "its tokenizer has {} tokens but the model only {vocab} embeddings",
                    vocabulary.tokens().len()
                ),
            ));
        }
        let name = gguf
            .metadata()
            .opt_string("general.name")
            .ok()
            .flatten()
            .map(str::to_owned)
            .unwrap_or_else(|| {
                path.file_stem()
                    .map(|s| s.to_string_lossy().into_owned())
                    .unwrap_or_default()
            });
        Ok(Self {
            model,
            vocabulary,
            template,
            name,
        })
    }

    /// The network.
    pub fn model(&self) -> &Llama {
        &self.model
    }

    /// The same model with its network changed by `change` (another kernel
    /// path, weights expanded to f32).
    pub fn map_model(self, change: impl FnOnce(Llama) -> Result<Llama>) -> Result<Self> {
        Ok(Self {
            model: change(self.model)?,
            ..self
        })
    }

    /// The tokenizer.
    pub fn tokenizer(&self) -> &Tokenizer {
        self.vocabulary.tokenizer()
    }

    /// The vocabulary with its special tokens.
    pub fn vocabulary(&self) -> &GgufTokenizer {
        &self.vocabulary
    }

    /// The chat template (the file's own, or ChatML when it has none).
    pub fn template(&self) -> &Arc<ChatTemplate> {
        &self.template
    }

    /// The model's name (`general.name`, else the file's).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The ids of a plain prompt, with the beginning-of-sequence token when
    /// the model wants one.
    pub fn prompt_ids(&self, text: &str) -> Result<Vec<u32>> {
        self.vocabulary.encode(text, true)
    }

    /// The ids of a prompt a chat template rendered (which writes its own
    /// special tokens).
    pub fn chat_ids(&self, rendered: &str) -> Result<Vec<u32>> {
        self.vocabulary.encode(rendered, false)
    }

    /// The token ids that end a reply (end of sequence, end of turn).
    pub fn stop_ids(&self) -> Vec<u32> {
        self.vocabulary.special().stops.clone()
    }
}
