//! Tokenizers: text in, token ids out, and back.
//!
//! Two kinds, both stored as a Hugging Face `tokenizer.json` that the Python
//! `tokenizers` package loads and encodes identically:
//! - **char**: one token per character seen in the corpus (nanoGPT's
//!   shakespeare-char); text with an unseen character is refused.
//! - **bpe**: byte-level BPE as in GPT-2, trained with the `tokenizers` crate,
//!   with an `<|endoftext|>` token; any UTF-8 text round-trips.

mod train;

pub use train::{train_bpe, train_char, MIN_BPE_VOCAB};

use crate::{Error, Result};
use std::collections::HashSet;
use std::path::Path;
use tokenizers::decoders::DecoderWrapper;

/// The end-of-text token that separates documents in BPE corpora.
pub const END_OF_TEXT: &str = "<|endoftext|>";

/// Which kind of tokenizer a `tokenizer.json` holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenizerKind {
    /// One token per character.
    Char,
    /// Byte-level BPE (or any other `tokenizer.json` that is not seer's char kind).
    Bpe,
}

impl std::str::FromStr for TokenizerKind {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "char" => Ok(Self::Char),
            "bpe" => Ok(Self::Bpe),
            other => Err(Error::Invalid(format!(
                "unknown tokenizer kind '{other}': use 'char' or 'bpe'"
            ))),
        }
    }
}

/// A trained tokenizer: a `tokenizers::Tokenizer` plus what seer knows of it.
#[derive(Clone)]
pub struct Tokenizer {
    inner: tokenizers::Tokenizer,
    kind: TokenizerKind,
    /// For the char kind: the characters it can encode.
    alphabet: Option<HashSet<char>>,
}

impl Tokenizer {
    pub(crate) fn from_inner(inner: tokenizers::Tokenizer) -> Result<Self> {
        // seer's character tokenizers are the ones that fuse their tokens back
        // without a pre-tokenizer; anything else (byte-level BPE, or another
        // tokenizer.json) is treated as BPE, with no alphabet check.
        let char_level = inner.get_pre_tokenizer().is_none()
            && matches!(inner.get_decoder(), Some(DecoderWrapper::Fuse(_)));
        let (kind, alphabet) = if !char_level {
            (TokenizerKind::Bpe, None)
        } else {
            let alphabet = inner
                .get_vocab(false)
                .keys()
                .filter_map(|token| {
                    let mut chars = token.chars();
                    match (chars.next(), chars.next()) {
                        (Some(c), None) => Some(c),
                        _ => None,
                    }
                })
                .collect();
            (TokenizerKind::Char, Some(alphabet))
        };
        Ok(Self {
            inner,
            kind,
            alphabet,
        })
    }

    /// Loads a `tokenizer.json`.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(Error::io(path))?;
        let inner: tokenizers::Tokenizer = text
            .parse()
            .map_err(|e| Error::bad_file(path, format!("not a valid tokenizer.json: {e}")))?;
        Self::from_inner(inner)
    }

    /// The tokenizer of a model folder: its `tokenizer.json`, or else GPT-2's
    /// `vocab.json` + `merges.txt` (byte-level BPE, `<|endoftext|>` special).
    pub fn load_model_dir(dir: &Path) -> Result<Self> {
        let json = dir.join("tokenizer.json");
        if json.exists() {
            return Self::load(&json);
        }
        let (vocab, merges) = (dir.join("vocab.json"), dir.join("merges.txt"));
        if !(vocab.exists() && merges.exists()) {
            return Err(Error::bad_file(
                dir,
                "holds no tokenizer: add tokenizer.json, or GPT-2's vocab.json and merges.txt",
            ));
        }
        let (vocab_path, merges_path) = (vocab.to_string_lossy(), merges.to_string_lossy());
        let model = tokenizers::models::bpe::BPE::from_file(&vocab_path, &merges_path)
            .build()
            .map_err(|e| {
                Error::bad_file(&vocab, format!("cannot read vocab.json + merges.txt: {e}"))
            })?;
        let mut inner = tokenizers::Tokenizer::new(model);
        let byte_level = tokenizers::pre_tokenizers::byte_level::ByteLevel::new(false, true, true);
        inner.with_pre_tokenizer(Some(byte_level));
        inner.with_decoder(Some(byte_level));
        if inner.token_to_id(END_OF_TEXT).is_some() {
            inner
                .add_special_tokens([tokenizers::AddedToken::from(END_OF_TEXT, true)])
                .map_err(|e| Error::Tokenizer(e.to_string()))?;
        }
        Self::from_inner(inner)
    }

    /// Saves as `tokenizer.json` (atomically).
    pub fn save(&self, path: &Path) -> Result<()> {
        let json = self
            .inner
            .to_string(true)
            .map_err(|e| Error::Tokenizer(e.to_string()))?;
        crate::atomic::write_atomic(path, json.as_bytes())
    }

    /// The kind of tokenizer.
    pub fn kind(&self) -> TokenizerKind {
        self.kind
    }

    /// Number of token ids, special tokens included.
    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }

    /// The id of `<|endoftext|>`, if the tokenizer has one.
    pub fn end_of_text(&self) -> Option<u32> {
        self.inner.token_to_id(END_OF_TEXT)
    }

    /// The underlying Hugging Face tokenizer.
    pub fn inner(&self) -> &tokenizers::Tokenizer {
        &self.inner
    }

    /// Encodes `text` into token ids. The char kind refuses characters that
    /// were not in its training corpus, naming the first one.
    pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
        if let Some(alphabet) = &self.alphabet {
            if let Some((at, c)) = text.char_indices().find(|(_, c)| !alphabet.contains(c)) {
                return Err(Error::Tokenizer(format!(
                    "character {c:?} (byte offset {at}) is not in the character tokenizer's \
                     vocabulary; use text made of the training corpus's characters, or a BPE tokenizer"
                )));
            }
        }
        let encoding = self
            .inner
            .encode(text, false)
            .map_err(|e| Error::Tokenizer(e.to_string()))?;
        Ok(encoding.get_ids().to_vec())
    }

    /// Decodes token ids back into text (special tokens kept).
    pub fn decode(&self, ids: &[u32]) -> Result<String> {
        let size = self.vocab_size() as u32;
        if let Some(bad) = ids.iter().find(|&&id| id >= size) {
            return Err(Error::Tokenizer(format!(
                "token id {bad} is outside the vocabulary (size {size})"
            )));
        }
        self.inner
            .decode(ids, false)
            .map_err(|e| Error::Tokenizer(e.to_string()))
    }

    /// Encodes a large corpus in pieces, calling `progress` with the number of
    /// bytes done after each piece. Pieces end after a newline that precedes a
    /// non-space character, where both tokenizers' pre-tokenization splits
    /// anyway, so the result equals `encode(text)`.
    pub fn encode_corpus(&self, text: &str, mut progress: impl FnMut(usize)) -> Result<Vec<u32>> {
        const PIECE: usize = 1 << 16;
        let mut ids = Vec::with_capacity(text.len() / 2);
        let mut start = 0;
        while start < text.len() {
            let end = piece_end(text, start, PIECE);
            ids.extend(self.encode(&text[start..end])?);
            start = end;
            progress(end);
        }
        Ok(ids)
    }
}

/// The end of the piece that starts at `start`: the first safe boundary at or
/// after `start + size`, or the end of the text.
fn piece_end(text: &str, start: usize, size: usize) -> usize {
    let bytes = text.as_bytes();
    let mut i = start + size;
    while i < bytes.len() {
        if bytes[i - 1] == b'\n' && !bytes[i].is_ascii_whitespace() {
            return i;
        }
        i += 1;
    }
    text.len()
}

impl std::fmt::Debug for Tokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokenizer")
            .field("kind", &self.kind)
            .field("vocab_size", &self.vocab_size())
            .finish()
    }
}
