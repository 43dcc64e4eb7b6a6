//! `seer prepare`: corpus to tokenizer and token shards.

use seer::data::{prepare, PrepareOptions};
use seer::tokenize::TokenizerKind;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct Args {
    /// Text files or folders of them (read recursively, in name order).
    #[arg(required = true)]
    inputs: Vec<PathBuf>,
    /// Output folder for tokenizer.json, train.bin, val.bin and meta.json.
    #[arg(short, long)]
    out: PathBuf,
    /// Tokenizer to train: `char` (one token per character) or `bpe` (byte-level BPE).
    #[arg(long, default_value = "bpe")]
    tokenizer: TokenizerKind,
    /// BPE vocabulary size, <|endoftext|> included.
    #[arg(long, default_value_t = 8192)]
    vocab_size: usize,
    /// Use this tokenizer.json instead of training one.
    #[arg(long)]
    tokenizer_file: Option<PathBuf>,
    /// Fraction of the tokens held out for validation (the end of the corpus).
    #[arg(long, default_value_t = 0.1)]
    val_fraction: f64,
    /// Replace shards already in the output folder.
    #[arg(long)]
    overwrite: bool,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let prepared = prepare(&PrepareOptions {
        inputs: args.inputs,
        kind: args.tokenizer,
        vocab_size: args.vocab_size,
        tokenizer_file: args.tokenizer_file,
        val_fraction: args.val_fraction,
        out: args.out.clone(),
        overwrite: args.overwrite,
    })?;
    let meta = &prepared.meta;
    println!(
        "{}: {:?} tokenizer with {} tokens; {} train and {} val tokens from {} file(s)",
        args.out.display(),
        meta.tokenizer,
        meta.vocab_size,
        meta.train_tokens,
        meta.val_tokens,
        meta.sources.len()
    );
    Ok(ExitCode::SUCCESS)
}
