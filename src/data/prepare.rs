//! `seer prepare`: corpus files in, a data folder out.
//!
//! The folder holds `tokenizer.json`, `train.bin`, `val.bin` (see `shard`) and
//! `meta.json`. The split is nanoGPT's: the first `1 - val_fraction` of the
//! tokens train, the rest validate.

use super::write_shard;
use crate::tokenize::{train_bpe, train_char, Tokenizer, TokenizerKind, END_OF_TEXT};
use crate::{Error, Result};
use std::path::{Path, PathBuf};

/// What `prepare` needs to know.
#[derive(Debug, Clone)]
pub struct PrepareOptions {
    /// Text files, or folders whose files (recursively, in name order) are read.
    pub inputs: Vec<PathBuf>,
    /// Tokenizer kind to train, when `tokenizer_file` is not given.
    pub kind: TokenizerKind,
    /// BPE vocabulary size (ignored for char).
    pub vocab_size: usize,
    /// Use this existing `tokenizer.json` instead of training one.
    pub tokenizer_file: Option<PathBuf>,
    /// Fraction of tokens for the val split, in (0, 1).
    pub val_fraction: f64,
    /// Output folder.
    pub out: PathBuf,
    /// Replace shards already in `out`.
    pub overwrite: bool,
}

/// `meta.json`: what a data folder holds.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct DataMeta {
    /// Format version of the folder.
    pub format_version: u32,
    /// Tokenizer kind.
    pub tokenizer: TokenizerKind,
    /// Vocabulary size of `tokenizer.json`.
    pub vocab_size: usize,
    /// Tokens in `train.bin`.
    pub train_tokens: usize,
    /// Tokens in `val.bin`.
    pub val_tokens: usize,
    /// The corpus files, in the order read.
    pub sources: Vec<String>,
}

/// An opened data folder: its metadata and tokenizer.
pub struct PreparedData {
    /// The folder.
    pub dir: PathBuf,
    /// Its `meta.json`.
    pub meta: DataMeta,
    /// Its `tokenizer.json`.
    pub tokenizer: Tokenizer,
}

impl PreparedData {
    /// Opens a folder written by `prepare`.
    pub fn open(dir: &Path) -> Result<Self> {
        let meta_path = dir.join("meta.json");
        let text = std::fs::read_to_string(&meta_path).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                Error::bad_file(
                    &meta_path,
                    "missing; is this a folder made by `seer prepare`?",
                )
            } else {
                Error::io(&meta_path)(e)
            }
        })?;
        let meta: DataMeta = serde_json::from_str(&text)
            .map_err(|e| Error::bad_file(&meta_path, format!("invalid meta.json: {e}")))?;
        let tokenizer = Tokenizer::load(&dir.join("tokenizer.json"))?;
        if tokenizer.vocab_size() != meta.vocab_size {
            return Err(Error::bad_file(
                &meta_path,
                format!(
                    "vocab_size {} does not match tokenizer.json ({})",
                    meta.vocab_size,
                    tokenizer.vocab_size()
                ),
            ));
        }
        Ok(Self {
            dir: dir.to_path_buf(),
            meta,
            tokenizer,
        })
    }
}

/// Reads the corpus, trains or loads the tokenizer, encodes and writes the folder.
pub fn prepare(options: &PrepareOptions) -> Result<PreparedData> {
    if !(options.val_fraction > 0.0 && options.val_fraction < 1.0) {
        return Err(Error::Invalid(format!(
            "--val-fraction {} must be between 0 and 1 (exclusive) so that both splits hold tokens",
            options.val_fraction
        )));
    }
    let files = list_files(&options.inputs)?;
    let mut documents = Vec::with_capacity(files.len());
    for file in &files {
        let bytes = std::fs::read(file).map_err(Error::io(file))?;
        let text = String::from_utf8(bytes).map_err(|e| {
            Error::bad_file(
                file,
                format!(
                    "not UTF-8 text (invalid byte at offset {})",
                    e.utf8_error().valid_up_to()
                ),
            )
        })?;
        if !text.is_empty() {
            documents.push(text);
        }
    }
    if documents.is_empty() {
        let names: Vec<_> = files.iter().map(|f| f.display().to_string()).collect();
        return Err(Error::Invalid(format!(
            "the corpus is empty: {}",
            names.join(", ")
        )));
    }
    let out = &options.out;
    if !options.overwrite && out.join("train.bin").exists() {
        return Err(Error::Invalid(format!(
            "{} already holds prepared data; pass --overwrite to replace it",
            out.display()
        )));
    }
    let tokenizer = match &options.tokenizer_file {
        Some(path) => Tokenizer::load(path)?,
        None => match options.kind {
            TokenizerKind::Char => train_char(&documents.concat())?,
            TokenizerKind::Bpe => train_bpe(&documents, options.vocab_size)?,
        },
    };
    let corpus = match tokenizer.end_of_text() {
        Some(_) => documents.join(END_OF_TEXT),
        None => documents.concat(),
    };
    let tokens = encode_with_progress(&tokenizer, &corpus)?;
    let val_tokens = (tokens.len() as f64 * options.val_fraction).round() as usize;
    let train_tokens = tokens.len() - val_tokens;
    if val_tokens < 2 || train_tokens < 2 {
        return Err(Error::Invalid(format!(
            "--val-fraction {} splits {} tokens into {train_tokens} train and {val_tokens} val; \
             both need at least 2: use a larger corpus or another fraction",
            options.val_fraction,
            tokens.len()
        )));
    }
    std::fs::create_dir_all(out).map_err(Error::io(out))?;
    let vocab_size = tokenizer.vocab_size();
    tokenizer.save(&out.join("tokenizer.json"))?;
    write_shard(&out.join("train.bin"), &tokens[..train_tokens], vocab_size)?;
    write_shard(&out.join("val.bin"), &tokens[train_tokens..], vocab_size)?;
    let meta = DataMeta {
        format_version: 1,
        tokenizer: tokenizer.kind(),
        vocab_size,
        train_tokens,
        val_tokens,
        sources: files.iter().map(|f| f.display().to_string()).collect(),
    };
    let json = serde_json::to_string_pretty(&meta).expect("meta serialises");
    crate::atomic::write_atomic(&out.join("meta.json"), json.as_bytes())?;
    Ok(PreparedData {
        dir: out.clone(),
        meta,
        tokenizer,
    })
}

fn encode_with_progress(tokenizer: &Tokenizer, corpus: &str) -> Result<Vec<u32>> {
    const SHOW_ABOVE: usize = 1 << 20;
    let bar = if corpus.len() >= SHOW_ABOVE {
        indicatif::ProgressBar::new(corpus.len() as u64).with_style(
            indicatif::ProgressStyle::with_template(
                "encoding {bar:40} {binary_bytes}/{binary_total_bytes} {binary_bytes_per_sec} eta {eta}",
            )
            .expect("valid template"),
        )
    } else {
        indicatif::ProgressBar::hidden()
    };
    let tokens = tokenizer.encode_corpus(corpus, |done| bar.set_position(done as u64))?;
    bar.finish_and_clear();
    Ok(tokens)
}

/// The files named by `inputs`: files as given, folders walked recursively in
/// name order, hidden entries skipped.
fn list_files(inputs: &[PathBuf]) -> Result<Vec<PathBuf>> {
    if inputs.is_empty() {
        return Err(Error::Invalid(
            "no corpus given: name one or more text files or folders".into(),
        ));
    }
    let mut files = Vec::new();
    for input in inputs {
        let meta = std::fs::metadata(input).map_err(Error::io(input))?;
        if meta.is_dir() {
            walk(input, &mut files)?;
        } else {
            files.push(input.clone());
        }
    }
    if files.is_empty() {
        return Err(Error::Invalid("the corpus folders hold no files".into()));
    }
    Ok(files)
}

fn walk(dir: &Path, files: &mut Vec<PathBuf>) -> Result<()> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .map_err(Error::io(dir))?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| {
            !p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with('.'))
        })
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            walk(&path, files)?;
        } else {
            files.push(path);
        }
    }
    Ok(())
}
