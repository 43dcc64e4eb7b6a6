//! Training tokenizers on a corpus.

use super::{Tokenizer, END_OF_TEXT};
use crate::{Error, Result};
use std::collections::BTreeSet;
use tokenizers::decoders::byte_level::ByteLevel as ByteLevelDecoder;
use tokenizers::decoders::fuse::Fuse;
use tokenizers::models::bpe::{BpeTrainerBuilder, BPE};
use tokenizers::models::TrainerWrapper;
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::{AddedToken, Model};

/// The smallest BPE vocabulary: the 256 byte tokens plus `<|endoftext|>`.
pub const MIN_BPE_VOCAB: usize = 257;

/// A character tokenizer over the characters of `corpus`, ids in code point order
/// (as nanoGPT's shakespeare-char). Stored as a BPE model without merges, so
/// that it is an ordinary `tokenizer.json`.
pub fn train_char(corpus: &str) -> Result<Tokenizer> {
    let chars: BTreeSet<char> = corpus.chars().collect();
    if chars.is_empty() {
        return Err(Error::Invalid(
            "cannot build a character tokenizer from an empty corpus".into(),
        ));
    }
    let vocab: tokenizers::models::bpe::Vocab = chars
        .iter()
        .enumerate()
        .map(|(id, c)| (c.to_string(), id as u32))
        .collect();
    let model = BPE::builder()
        .vocab_and_merges(vocab, Vec::new())
        .build()
        .map_err(|e| Error::Tokenizer(e.to_string()))?;
    let mut inner = tokenizers::Tokenizer::new(model);
    inner.with_decoder(Some(Fuse::new()));
    Tokenizer::from_inner(inner)
}

/// A byte-level BPE tokenizer (GPT-2's scheme) with `vocab_size` tokens,
/// `<|endoftext|>` included, trained on the given documents.
pub fn train_bpe(documents: &[String], vocab_size: usize) -> Result<Tokenizer> {
    if vocab_size < MIN_BPE_VOCAB {
        return Err(Error::Invalid(format!(
            "--vocab-size {vocab_size} is too small for byte-level BPE: it needs at least \
             {MIN_BPE_VOCAB} (256 bytes plus {END_OF_TEXT})"
        )));
    }
    let mut trainer: TrainerWrapper = BpeTrainerBuilder::new()
        .vocab_size(vocab_size)
        .min_frequency(2)
        .show_progress(false)
        .initial_alphabet(ByteLevel::alphabet().into_iter().collect())
        .special_tokens(vec![AddedToken::from(END_OF_TEXT, true)])
        .build()
        .into();
    let mut inner = tokenizers::Tokenizer::new(BPE::default());
    inner.with_pre_tokenizer(Some(ByteLevel::new(false, true, true)));
    inner.with_decoder(Some(ByteLevelDecoder::default()));
    inner
        .train(&mut trainer, documents.iter())
        .map_err(|e| Error::Tokenizer(e.to_string()))?;
    if inner.get_model().get_vocab_size() == 0 {
        return Err(Error::Tokenizer("BPE training produced no tokens".into()));
    }
    Tokenizer::from_inner(inner)
}
