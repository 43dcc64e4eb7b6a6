//! The tokenizer of a Hugging Face model folder, as transformers'
//! `AutoTokenizer.from_pretrained(dir)` and `GenerationConfig` read it:
//!
//! - `tokenizer.json`: the vocabulary (the `tokenizers` library's own format);
//! - `tokenizer_config.json`: `bos_token`, `eos_token`, `pad_token`,
//!   `unk_token` (a string, or an added token `{"content": ...}`),
//!   `add_bos_token` and `add_eos_token` (when absent, whatever
//!   `tokenizer.json`'s post-processor adds), and `chat_template` (a string,
//!   or a list of `{"name", "template"}` of which seer takes `default`);
//! - `chat_template.jinja`, where transformers 5 writes the template
//!   (it wins over `tokenizer_config.json`'s);
//! - `generation_config.json` (else `config.json`): `eos_token_id`, one id
//!   or a list, all of which stop generation; `bos_token_id` and
//!   `eos_token_id` also stand in for a `tokenizer_config.json` without
//!   `bos_token` / `eos_token`.
//!
//! Added tokens whose ids lie past the model's embeddings (Gemma 3's
//! `<image_soft_token>`, the text model never sees one) are left out, as
//! llama.cpp's conversion to GGUF leaves them out. As for GGUF files, the
//! end-of-turn tokens of the vocabulary
//! (`<end_of_turn>`, `<|im_end|>`, ...) stop generation too, and a folder
//! without a template chats in ChatML.

use crate::formats::chat_template::{ChatTemplate, CHATML};
use crate::formats::special_tokens::{end_of_turn, stop_set, SpecialTokens};
use crate::tokenize::Tokenizer;
use crate::{Error, Result};
use serde_json::Value;
use std::path::{Path, PathBuf};

/// A Hugging Face folder's tokenizer: the vocabulary as a seer
/// [`Tokenizer`], its special tokens and its chat template.
#[derive(Debug, Clone)]
pub struct HfTokenizer {
    tokenizer: Tokenizer,
    special: SpecialTokens,
    chat_template: Option<String>,
    bos_text: String,
    eos_text: String,
}

impl HfTokenizer {
    /// Reads the tokenizer files of the model folder `dir`, for a model of
    /// `vocab_size` embeddings. Errors name the file and field at fault: no
    /// `tokenizer.json`, a special token that is not in the vocabulary, an
    /// id past it, a field of the wrong type.
    pub fn from_dir(dir: &Path, vocab_size: usize) -> Result<Self> {
        let tokenizer_json = dir.join("tokenizer.json");
        if !tokenizer_json.is_file() {
            return Err(Error::bad_file(
                dir,
                "holds no tokenizer.json (seer reads the tokenizers library's format; \
                 a SentencePiece tokenizer.model alone is not enough)",
            ));
        }
        let tokenizer = load_tokenizer(&tokenizer_json, vocab_size)?;
        let config = JsonFile::read_optional(&dir.join("tokenizer_config.json"))?;
        let generation = match JsonFile::read_optional(&dir.join("generation_config.json"))? {
            Some(file) => Some(file),
            None => JsonFile::read_optional(&dir.join("config.json"))?,
        };
        let inner = tokenizer.inner();
        let count = inner.get_vocab_size(true);
        let token = |name: &str| -> Result<Option<(String, u32)>> {
            let Some(config) = &config else {
                return Ok(None);
            };
            let Some(text) = config.token_text(name)? else {
                return Ok(None);
            };
            match inner.token_to_id(&text) {
                Some(id) => Ok(Some((text, id))),
                None => Err(config.error(
                    name,
                    format!("is '{text}', which is not a token of tokenizer.json"),
                )),
            }
        };
        let id_field = |name: &str| -> Result<Vec<u32>> {
            match &generation {
                Some(file) => file.ids(name, count),
                None => Ok(Vec::new()),
            }
        };
        // A special token by its text in tokenizer_config.json, else by its
        // id in generation_config.json (or config.json).
        let special = |name: &str, id_name: &str| -> Result<(String, Option<u32>)> {
            if let Some((text, id)) = token(name)? {
                return Ok((text, Some(id)));
            }
            let id = id_field(id_name)?.first().copied();
            let text = id.and_then(|id| inner.id_to_token(id)).unwrap_or_default();
            Ok((text, id))
        };
        let (bos_text, bos) = special("bos_token", "bos_token_id")?;
        let (eos_text, eos) = special("eos_token", "eos_token_id")?;
        // pad and unk only inform; one the vocabulary lacks is left out.
        let lenient = |name: &str| token(name).ok().flatten().map(|(_, id)| id);
        let (pad, unk) = (lenient("pad_token"), lenient("unk_token"));
        let (post_bos, post_eos) = post_processor_adds(inner, bos, eos)?;
        let flag = |name: &str, default: bool| -> Result<bool> {
            match &config {
                Some(config) => Ok(config.bool(name)?.unwrap_or(default)),
                None => Ok(default),
            }
        };
        let (add_bos, add_eos) = (
            flag("add_bos_token", post_bos)?,
            flag("add_eos_token", post_eos)?,
        );
        for (add, name, id) in [
            (add_bos, "add_bos_token", bos),
            (add_eos, "add_eos_token", eos),
        ] {
            if add && id.is_none() {
                return Err(Error::bad_file(
                    dir.join("tokenizer_config.json"),
                    format!("'{name}' is true, but the folder names no such token"),
                ));
            }
        }
        let id_of = |text: &str| inner.token_to_id(text);
        let eot = end_of_turn(id_of);
        let stops = stop_set(
            [eos, eot]
                .into_iter()
                .flatten()
                .chain(id_field("eos_token_id")?),
            id_of,
        );
        let chat_template = chat_template(dir, config.as_ref())?;
        Ok(Self {
            special: SpecialTokens {
                bos,
                eos,
                eot,
                pad,
                unk,
                add_bos,
                add_eos,
                stops,
            },
            tokenizer,
            chat_template,
            bos_text,
            eos_text,
        })
    }

    /// The tokenizer (encode, decode, vocabulary size).
    pub fn tokenizer(&self) -> &Tokenizer {
        &self.tokenizer
    }

    /// The tokenizer, taken out of the folder's other settings.
    pub fn into_tokenizer(self) -> Tokenizer {
        self.tokenizer
    }

    /// The special tokens and prompt conventions.
    pub fn special(&self) -> &SpecialTokens {
        &self.special
    }

    /// The folder's chat template source, if it has one.
    pub fn chat_template_source(&self) -> Option<&str> {
        self.chat_template.as_deref()
    }

    /// The chat template compiled with the folder's BOS and EOS texts: its
    /// own, or ChatML ([`CHATML`]) when it has none.
    pub fn chat_template(&self) -> Result<ChatTemplate> {
        ChatTemplate::new(
            self.chat_template.as_deref().unwrap_or(CHATML),
            &self.bos_text,
            &self.eos_text,
        )
    }
}

/// `tokenizer.json` without the added tokens of ids `vocab_size` and up.
fn load_tokenizer(path: &Path, vocab_size: usize) -> Result<Tokenizer> {
    let text = std::fs::read_to_string(path).map_err(Error::io(path))?;
    let invalid =
        |e: serde_json::Error| Error::bad_file(path, format!("not a valid tokenizer.json: {e}"));
    let mut json: Value = serde_json::from_str(&text).map_err(invalid)?;
    if let Some(Value::Array(added)) = json.get_mut("added_tokens") {
        added.retain(|token| {
            token
                .get("id")
                .and_then(Value::as_u64)
                .is_none_or(|id| id < vocab_size as u64)
        });
    }
    Tokenizer::from_inner(serde_json::from_value(json).map_err(invalid)?)
}

/// Whether the tokenizer's post-processor puts `bos` in front and `eos`
/// behind an encoding with special tokens (what transformers does when
/// `tokenizer_config.json` does not say).
fn post_processor_adds(
    inner: &tokenizers::Tokenizer,
    bos: Option<u32>,
    eos: Option<u32>,
) -> Result<(bool, bool)> {
    let encode = |special: bool| -> Result<Vec<u32>> {
        Ok(inner
            .encode("a", special)
            .map_err(|e| Error::Tokenizer(e.to_string()))?
            .get_ids()
            .to_vec())
    };
    let (plain, with) = (encode(false)?, encode(true)?);
    let added = with.len() > plain.len();
    Ok((
        added && bos.is_some() && with.first() == bos.as_ref(),
        added && eos.is_some() && with.last() == eos.as_ref(),
    ))
}

/// The chat template: `chat_template.jinja`, else `tokenizer_config.json`'s
/// `chat_template` (a string, or the entry named `default` of a list).
fn chat_template(dir: &Path, config: Option<&JsonFile>) -> Result<Option<String>> {
    let jinja = dir.join("chat_template.jinja");
    if jinja.is_file() {
        return std::fs::read_to_string(&jinja)
            .map(Some)
            .map_err(Error::io(&jinja));
    }
    let Some(config) = config else {
        return Ok(None);
    };
    match config.field("chat_template") {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(Value::Array(list)) => list
            .iter()
            .find(|entry| entry.get("name").and_then(Value::as_str) == Some("default"))
            .map(|entry| match entry.get("template") {
                Some(Value::String(s)) => Ok(Some(s.clone())),
                _ => Err(config.error(
                    "chat_template",
                    "entry 'default' has no 'template' string".into(),
                )),
            })
            .unwrap_or_else(|| {
                Err(config.error(
                    "chat_template",
                    "is a list with no template named 'default'".into(),
                ))
            }),
        Some(_) => Err(config.error(
            "chat_template",
            "should be a string or a list of {name, template}".into(),
        )),
    }
}

/// A JSON settings file of the folder, for errors that name it.
struct JsonFile {
    path: PathBuf,
    json: Value,
}

impl JsonFile {
    /// The file at `path`, or `None` when there is none.
    fn read_optional(path: &Path) -> Result<Option<Self>> {
        if !path.is_file() {
            return Ok(None);
        }
        let text = std::fs::read_to_string(path).map_err(Error::io(path))?;
        let json = serde_json::from_str(&text)
            .map_err(|e| Error::bad_file(path, format!("invalid JSON: {e}")))?;
        Ok(Some(Self {
            path: path.to_path_buf(),
            json,
        }))
    }

    fn error(&self, name: &str, what: String) -> Error {
        Error::bad_file(&self.path, format!("'{name}' {what}"))
    }

    /// Field `name`, unless absent or null.
    fn field(&self, name: &str) -> Option<&Value> {
        self.json.get(name).filter(|v| !v.is_null())
    }

    fn bool(&self, name: &str) -> Result<Option<bool>> {
        match self.field(name) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(_) => Err(self.error(name, "should be true or false".into())),
        }
    }

    /// A special token's text: a string, or an added token's `content`.
    fn token_text(&self, name: &str) -> Result<Option<String>> {
        match self.field(name) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(v) => match v.get("content") {
                Some(Value::String(s)) => Ok(Some(s.clone())),
                _ => Err(self.error(name, "should be a string or {\"content\": ...}".into())),
            },
        }
    }

    /// Token ids: one id or a list of them, each below `count`.
    fn ids(&self, name: &str, count: usize) -> Result<Vec<u32>> {
        let values = match self.field(name) {
            None => return Ok(Vec::new()),
            Some(Value::Array(items)) => items.iter().collect(),
            Some(v) => vec![v],
        };
        values
            .into_iter()
            .map(|v| match v.as_u64() {
                Some(id) if id < count as u64 => Ok(id as u32),
                Some(id) => Err(self.error(
                    name,
                    format!("holds {id}, but the vocabulary has {count} tokens"),
                )),
                None => Err(self.error(name, "should be a token id or a list of them".into())),
            })
            .collect()
    }
}
