//! An open model as a user runs it, from one GGUF file or a Hugging Face
//! model folder: the network, its tokenizer, its special tokens and its chat
//! template.

use super::{Llama, LlamaConfig};
use crate::formats::{ChatTemplate, Gguf, GgufTokenizer, HfTokenizer, SpecialTokens};
use crate::tokenize::Tokenizer;
use crate::{Error, Result};
use std::path::Path;
use std::sync::Arc;

/// A Llama-family or Gemma 3 model with everything needed to talk to it.
pub struct OpenModel {
    model: Llama,
    tokenizer: Tokenizer,
    special: SpecialTokens,
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
    /// Whether `path` names a model this type opens: a `.gguf` file, or a
    /// folder whose `config.json` is not GPT-2's (Hugging Face Llama or
    /// Gemma 3; other architectures are refused by name when opened).
    pub fn is_model_file(path: &Path) -> bool {
        if path.is_dir() {
            return is_open_model_folder(path);
        }
        path.extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("gguf"))
    }

    /// Opens the GGUF file or Hugging Face folder at `path`, its context
    /// limited to `context` tokens (`None`: the trained length).
    pub fn open(path: &Path, context: Option<usize>) -> Result<Self> {
        if path.is_dir() {
            Self::open_hf_dir(path, context)
        } else {
            Self::open_gguf(path, context)
        }
    }

    /// Opens a GGUF file: weights, tokenizer and template from its metadata.
    fn open_gguf(path: &Path, context: Option<usize>) -> Result<Self> {
        let mut gguf = Gguf::open(path)?;
        let in_file = |e: Error| Error::bad_file(path, e.to_string());
        let config = LlamaConfig::from_gguf(gguf.metadata()).map_err(in_file)?;
        let vocabulary = GgufTokenizer::from_metadata(gguf.metadata()).map_err(in_file)?;
        let template = vocabulary.chat_template().map_err(in_file)?;
        let (special, vocab_size) = (vocabulary.special().clone(), vocabulary.tokens().len());
        // The tokenizer is built: its metadata and the token list go before
        // the weights load, so that they are not in memory together.
        let tokenizer = vocabulary.into_tokenizer();
        gguf.forget_vocabulary();
        let model = Llama::from_gguf_with(&gguf, config, context)?;
        check_vocabulary(path, vocab_size, &model)?;
        let name = gguf
            .metadata()
            .opt_string("general.name")
            .ok()
            .flatten()
            .map(str::to_owned)
            .unwrap_or_else(|| file_name(path));
        Ok(Self {
            model,
            special,
            tokenizer,
            template: Arc::new(template),
            name,
        })
    }

    /// Opens a Hugging Face folder: `config.json`, the safetensors weights,
    /// `tokenizer.json` and the settings around it (see [`HfTokenizer`]).
    fn open_hf_dir(dir: &Path, context: Option<usize>) -> Result<Self> {
        let model = Llama::open_hf_dir(dir, context)?;
        let vocabulary = HfTokenizer::from_dir(dir, model.config().vocab_size)?;
        let template = vocabulary
            .chat_template()
            .map_err(|e| Error::bad_file(dir, format!("its chat template: {e}")))?;
        let tokens = vocabulary.tokenizer().vocab_size();
        check_vocabulary(&dir.join("tokenizer.json"), tokens, &model)?;
        Ok(Self {
            model,
            special: vocabulary.special().clone(),
            tokenizer: vocabulary.into_tokenizer(),
            template: Arc::new(template),
            name: dir
                .canonicalize()
                .ok()
                .and_then(|d| d.file_name().map(|n| n.to_string_lossy().into_owned()))
                .unwrap_or_else(|| file_name(dir)),
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
        &self.tokenizer
    }

    /// The special tokens (BOS, EOS, end of turn, stops) and whether prompts
    /// start with BOS.
    pub fn special(&self) -> &SpecialTokens {
        &self.special
    }

    /// The chat template (the file's own, or ChatML when it has none).
    pub fn template(&self) -> &Arc<ChatTemplate> {
        &self.template
    }

    /// The model's name (`general.name`, else the file's or folder's).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The ids of a plain prompt, with the beginning-of-sequence token when
    /// the model wants one.
    pub fn prompt_ids(&self, text: &str) -> Result<Vec<u32>> {
        Ok(self.special.add_to(self.tokenizer.encode(text)?))
    }

    /// The ids of a prompt a chat template rendered (which writes its own
    /// special tokens).
    pub fn chat_ids(&self, rendered: &str) -> Result<Vec<u32>> {
        self.tokenizer.encode(rendered)
    }

    /// The token ids that end a reply (end of sequence, end of turn).
    pub fn stop_ids(&self) -> Vec<u32> {
        self.special.stops.clone()
    }
}

/// Refuses a tokenizer of more than the model's `vocab_size` tokens.
fn check_vocabulary(path: &Path, tokens: usize, model: &Llama) -> Result<()> {
    let vocab = model.config().vocab_size;
    if tokens > vocab {
        return Err(Error::bad_file(
            path,
            format!("its tokenizer has {tokens} tokens but the model only {vocab} embeddings"),
        ));
    }
    Ok(())
}

/// The file's name without its extension.
fn file_name(path: &Path) -> String {
    path.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Whether the folder's `config.json` names a model other than GPT-2
/// (`model_type`, else `architectures`), which seer's own GPT loads.
fn is_open_model_folder(dir: &Path) -> bool {
    let Ok(text) = std::fs::read_to_string(dir.join("config.json")) else {
        return false;
    };
    let Ok(json) = serde_json::from_str::<serde_json::Value>(&text) else {
        return false;
    };
    if let Some(model_type) = json.get("model_type").and_then(|t| t.as_str()) {
        return model_type != "gpt2";
    }
    json.get("architectures")
        .and_then(|a| a.as_array())
        .is_some_and(|archs| {
            !archs.is_empty() && !archs.iter().any(|a| a.as_str() == Some("GPT2LMHeadModel"))
        })
}
