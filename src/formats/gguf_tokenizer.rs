//! The tokenizer a GGUF file carries in its `tokenizer.*` metadata, rebuilt as
//! a Hugging Face tokenizer whose ids match transformers'
//! `AutoTokenizer.from_pretrained(dir, gguf_file=...)`, with the special
//! tokens (BOS, EOS, end of turn, stops) and the chat template.
//!
//! Two vocabularies, by `tokenizer.ggml.model`:
//! - `gpt2`: byte-level BPE from `tokens` and `merges`. The text is split
//!   before BPE as llama.cpp splits it for `tokenizer.ggml.pre` (see
//!   [`PRE_TOKENIZERS`]); an unknown name is refused.
//! - `llama`: SentencePiece BPE stored as `tokens` and `scores`: `▁` for
//!   spaces, `<0x0A>`-style byte tokens for anything else. When the file has
//!   no merges they are derived from the vocabulary as transformers does:
//!   every split of a token into two tokens, best score first (for Gemma, the
//!   token's position in the file, since Gemma's scores do not follow its
//!   merge order). Gemma (`general.architecture` `gemma*`) turns spaces into
//!   `▁` and adds no prefix space; others prefix one `▁` to the text when
//!   `tokenizer.ggml.add_space_prefix` (default true) says so.
//!
//! Control and unknown tokens (`tokenizer.ggml.token_type` 3 and 2) become
//! special added tokens and user-defined ones (4) plain added tokens, so
//! `<|im_start|>` in a rendered template encodes to its one id.
//!
//! Where transformers and llama.cpp differ, llama.cpp wins: `smollm` splits
//! digits one by one, Llama 3's `llama-bpe` takes a word that is a token whole
//! (`ignore_merges`), and control tokens written outside the byte alphabet are
//! still matched whole in text.

use crate::formats::chat_template::{ChatTemplate, CHATML};
use crate::formats::special_tokens::{end_of_turn, stop_set, SpecialTokens};
use crate::formats::{Metadata, Value};
use crate::tokenize::Tokenizer;
use crate::{Error, Result};
use tokenizers::decoders::byte_fallback::ByteFallback;
use tokenizers::decoders::byte_level::ByteLevel;
use tokenizers::decoders::fuse::Fuse;
use tokenizers::decoders::sequence::Sequence as DecoderSequence;
use tokenizers::decoders::strip::Strip;
use tokenizers::decoders::DecoderWrapper;
use tokenizers::models::bpe::{Merges, Vocab, BPE};
use tokenizers::normalizers::replace::Replace;
use tokenizers::pre_tokenizers::metaspace::{Metaspace, PrependScheme};
use tokenizers::pre_tokenizers::sequence::Sequence as PreSequence;
use tokenizers::pre_tokenizers::split::{Split, SplitPattern};
use tokenizers::pre_tokenizers::PreTokenizerWrapper;
use tokenizers::{AddedToken, SplitDelimiterBehavior};

const MODEL: &str = "tokenizer.ggml.model";
const PRE: &str = "tokenizer.ggml.pre";
const TOKENS: &str = "tokenizer.ggml.tokens";
const TOKEN_TYPE: &str = "tokenizer.ggml.token_type";
const SCORES: &str = "tokenizer.ggml.scores";
const MERGES: &str = "tokenizer.ggml.merges";
const ADD_BOS: &str = "tokenizer.ggml.add_bos_token";
const ADD_EOS: &str = "tokenizer.ggml.add_eos_token";
const ADD_SPACE_PREFIX: &str = "tokenizer.ggml.add_space_prefix";
const CHAT_TEMPLATE: &str = "tokenizer.chat_template";
const ARCHITECTURE: &str = "general.architecture";

/// llama.cpp's token types (`tokenizer.ggml.token_type`).
const UNKNOWN: u64 = 2;
const CONTROL: u64 = 3;
const USER_DEFINED: u64 = 4;

/// GPT-2's split: contractions, letters, digits, other symbols, whitespace.
const GPT2_SPLIT: &str =
    r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+";
/// Llama 3's split (digits in threes, newlines kept apart).
const LLAMA3_SPLIT: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
/// Qwen 2's split (as Llama 3's, with digits one by one).
const QWEN2_SPLIT: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

/// How a byte-level vocabulary splits text before BPE: llama.cpp's regexes,
/// applied one after the other, each to the pieces the previous one made.
#[derive(Debug, Clone, Copy)]
struct PreTokenizer {
    /// The regexes.
    splits: &'static [&'static str],
    /// A piece that is itself a token is taken whole, without merges.
    ignore_merges: bool,
    /// Whether BOS is added when the file does not say.
    add_bos: bool,
}

/// The `tokenizer.ggml.pre` names seer knows, grouped as llama.cpp groups them.
pub const PRE_TOKENIZERS: &[&str] = &[
    "default",
    "gpt-2",
    "gpt2",
    "phi-2",
    "mpt",
    "olmo",
    "smollm",
    "starcoder",
    "refact",
    "codeshell",
    "llama3",
    "llama-v3",
    "llama-bpe",
    "falcon3",
    "dbrx",
    "smaug-bpe",
    "qwen2",
    "deepseek-r1-qwen",
    "megrez",
    "stablelm2",
];

/// The `tokenizer.ggml.pre` under which a byte-level BPE `tokenizer.json`
/// (its `normalizer`, `pre_tokenizer` and the model's `ignore_merges`)
/// splits text as llama.cpp does: GPT-2's ByteLevel regex (`gpt-2`), digits
/// one by one before it (`smollm`), Llama 3's regex with words that are
/// tokens taken whole (`llama-bpe`) or without (`dbrx`), Qwen 2's
/// (`qwen2`). `None` for anything else, and for any normalizer.
pub fn pre_tokenizer_of(tokenizer_json: &serde_json::Value) -> Option<&'static str> {
    if !tokenizer_json["normalizer"].is_null() {
        return None;
    }
    let pre = &tokenizer_json["pre_tokenizer"];
    let ignore_merges = tokenizer_json["model"]["ignore_merges"] == true;
    // A ByteLevel step without a prefix space, splitting by GPT-2's regex or not.
    let byte_level = |step: &serde_json::Value, regex: bool| {
        step["type"] == "ByteLevel"
            && step["add_prefix_space"] != true
            && (step["use_regex"] != false) == regex
    };
    if byte_level(pre, true) {
        return (!ignore_merges).then_some("gpt-2");
    }
    if pre["type"] != "Sequence" {
        return None;
    }
    match pre["pretokenizers"].as_array()?.as_slice() {
        [digits, last]
            if digits["type"] == "Digits"
                && digits["individual_digits"] == true
                && byte_level(last, true) =>
        {
            (!ignore_merges).then_some("smollm")
        }
        [split, last]
            if split["type"] == "Split"
                && split["behavior"] == "Isolated"
                && split["invert"] != true
                && byte_level(last, false) =>
        {
            match (split["pattern"]["Regex"].as_str()?, ignore_merges) {
                (LLAMA3_SPLIT, true) => Some("llama-bpe"),
                (LLAMA3_SPLIT, false) => Some("dbrx"),
                (QWEN2_SPLIT, false) => Some("qwen2"),
                _ => None,
            }
        }
        _ => None,
    }
}

fn pre_tokenizer(name: &str) -> Result<PreTokenizer> {
    let plain = |splits| PreTokenizer {
        splits,
        ignore_merges: false,
        add_bos: false,
    };
    Ok(match name {
        "default" => plain(&[
            r"[\p{P}\$\+<=>\^~\|]+",
            GPT2_SPLIT,
            r"\p{N}+",
            "[0-9][0-9][0-9]",
        ]),
        // llama.cpp spells it "gpt-2"; "gpt2" is what other writers use.
        "gpt-2" | "gpt2" | "phi-2" | "mpt" | "olmo" => plain(&[GPT2_SPLIT]),
        "smollm" | "starcoder" | "refact" | "codeshell" => plain(&[r"\p{N}", GPT2_SPLIT]),
        "llama3" | "llama-v3" | "llama-bpe" | "falcon3" => PreTokenizer {
            splits: &[LLAMA3_SPLIT],
            ignore_merges: true,
            add_bos: true,
        },
        "dbrx" | "smaug-bpe" => plain(&[LLAMA3_SPLIT]),
        "qwen2" | "deepseek-r1-qwen" | "megrez" | "stablelm2" => plain(&[QWEN2_SPLIT]),
        other => {
            return Err(Error::Invalid(format!(
                "GGUF metadata '{PRE}' is '{other}', a pre-tokenizer seer does not know; \
                 it knows {}",
                PRE_TOKENIZERS.join(", ")
            )))
        }
    })
}

/// A GGUF file's tokenizer: the vocabulary as a seer [`Tokenizer`], its
/// special tokens and its chat template.
#[derive(Debug, Clone)]
pub struct GgufTokenizer {
    tokenizer: Tokenizer,
    tokens: Vec<String>,
    special: SpecialTokens,
    chat_template: Option<String>,
}

impl GgufTokenizer {
    /// Builds the tokenizer from a GGUF file's metadata. Errors name the
    /// field at fault: missing tokens, merges that name unknown tokens,
    /// special ids past the vocabulary, arrays of the wrong type, or an
    /// unknown `tokenizer.ggml.model` or `tokenizer.ggml.pre`.
    pub fn from_metadata(metadata: &Metadata) -> Result<Self> {
        let tokens = strings(metadata, TOKENS)?
            .ok_or_else(|| Error::Invalid(format!("GGUF metadata has no '{TOKENS}'")))?;
        if tokens.is_empty() {
            return Err(Error::Invalid(format!("GGUF metadata '{TOKENS}' is empty")));
        }
        let count = tokens.len();
        if u32::try_from(count).is_err() {
            return Err(Error::Invalid(format!(
                "GGUF metadata '{TOKENS}' has {count} tokens, more than token ids can number"
            )));
        }
        let types = match numbers(metadata, TOKEN_TYPE, count, Value::as_u64)? {
            Some(types) => types,
            None => vec![1; count],
        };
        let model = metadata.string(MODEL)?;
        let (inner, default_add_bos) = match model {
            "gpt2" => {
                let pre = pre_tokenizer(metadata.opt_string(PRE)?.unwrap_or("default"))?;
                (byte_level_bpe(metadata, &tokens, &types, pre)?, pre.add_bos)
            }
            "llama" => (sentencepiece_bpe(metadata, &tokens, &types)?, true),
            other => {
                return Err(Error::Invalid(format!(
                    "GGUF metadata '{MODEL}' is '{other}': seer reads 'gpt2' (byte-level BPE) \
                     and 'llama' (SentencePiece BPE) vocabularies"
                )))
            }
        };
        let special = special_tokens(metadata, &tokens, default_add_bos)?;
        Ok(Self {
            tokenizer: Tokenizer::from_inner(inner)?,
            tokens: tokens.into_iter().map(str::to_owned).collect(),
            special,
            chat_template: metadata.opt_string(CHAT_TEMPLATE)?.map(str::to_owned),
        })
    }

    /// The tokenizer (encode, decode, vocabulary size).
    pub fn tokenizer(&self) -> &Tokenizer {
        &self.tokenizer
    }

    /// The tokenizer, taken out of the file's other settings.
    pub fn into_tokenizer(self) -> Tokenizer {
        self.tokenizer
    }

    /// The special tokens and prompt conventions.
    pub fn special(&self) -> &SpecialTokens {
        &self.special
    }

    /// Every token's text as the file spells it, by id.
    pub fn tokens(&self) -> &[String] {
        &self.tokens
    }

    /// The text of token `id` as the file spells it, if there is such a token.
    pub fn token(&self, id: u32) -> Option<&str> {
        self.tokens.get(id as usize).map(String::as_str)
    }

    /// Encodes `text`; special tokens written in it (`<|im_start|>`) become
    /// their ids. With `add_special`, BOS and EOS are added as the file says
    /// (`add_bos`, `add_eos`), as transformers' `add_special_tokens=True`
    /// does. A prompt rendered by a chat template is encoded without them,
    /// as `apply_chat_template` does: templates write their own BOS.
    pub fn encode(&self, text: &str, add_special: bool) -> Result<Vec<u32>> {
        let ids = self.tokenizer.encode(text)?;
        Ok(if add_special {
            self.special.add_to(ids)
        } else {
            ids
        })
    }

    /// Whether generating `id` ends the reply.
    pub fn is_stop(&self, id: u32) -> bool {
        self.special.is_stop(id)
    }

    /// The file's chat template source (`tokenizer.chat_template`), if it has one.
    pub fn chat_template_source(&self) -> Option<&str> {
        self.chat_template.as_deref()
    }

    /// The chat template compiled with this vocabulary's BOS and EOS texts:
    /// the file's own, or ChatML ([`CHATML`]) when it has none, as llama.cpp
    /// falls back.
    pub fn chat_template(&self) -> Result<ChatTemplate> {
        let text = |id: Option<u32>| id.and_then(|id| self.token(id)).unwrap_or_default();
        let (bos, eos) = (text(self.special.bos), text(self.special.eos));
        ChatTemplate::new(self.chat_template.as_deref().unwrap_or(CHATML), bos, eos)
    }
}

/// A string array, or `None` when the key is absent.
fn strings<'a>(metadata: &'a Metadata, key: &str) -> Result<Option<Vec<&'a str>>> {
    let Some(items) = metadata.opt_array(key)? else {
        return Ok(None);
    };
    items
        .iter()
        .enumerate()
        .map(|(i, item)| match item {
            Value::String(s) => Ok(s.as_str()),
            other => Err(wrong_item(key, "strings", i, other)),
        })
        .collect::<Result<Vec<_>>>()
        .map(Some)
}

/// A numeric array of `count` entries, each converted by `convert`, or `None`
/// when the key is absent.
fn numbers<T>(
    metadata: &Metadata,
    key: &str,
    count: usize,
    convert: impl Fn(&Value) -> Option<T>,
) -> Result<Option<Vec<T>>> {
    let Some(items) = metadata.opt_array(key)? else {
        return Ok(None);
    };
    if items.len() != count {
        return Err(Error::Invalid(format!(
            "GGUF metadata '{key}' has {} entries, but '{TOKENS}' has {count}",
            items.len()
        )));
    }
    items
        .iter()
        .enumerate()
        .map(|(i, item)| convert(item).ok_or_else(|| wrong_item(key, "numbers", i, item)))
        .collect::<Result<Vec<_>>>()
        .map(Some)
}

fn wrong_item(key: &str, wanted: &str, index: usize, got: &Value) -> Error {
    Error::Invalid(format!(
        "GGUF metadata '{key}' should be an array of {wanted}, but item {index} is {}",
        got.type_name()
    ))
}

/// A special token id, checked against the vocabulary.
fn special_id(metadata: &Metadata, key: &str, count: usize) -> Result<Option<u32>> {
    match metadata.opt_u64(key)? {
        None => Ok(None),
        Some(id) if id < count as u64 => Ok(Some(id as u32)),
        Some(id) => Err(Error::Invalid(format!(
            "GGUF metadata '{key}' is {id}, but the vocabulary ('{TOKENS}') has {count} tokens"
        ))),
    }
}

fn special_tokens(
    metadata: &Metadata,
    tokens: &[&str],
    default_add_bos: bool,
) -> Result<SpecialTokens> {
    let count = tokens.len();
    let id = |name: &str| special_id(metadata, &format!("tokenizer.ggml.{name}"), count);
    let by_text = |text: &str| tokens.iter().position(|t| *t == text).map(|i| i as u32);
    let (bos, eos, pad, unk) = (
        id("bos_token_id")?,
        id("eos_token_id")?,
        id("padding_token_id")?,
        id("unknown_token_id")?,
    );
    let eom = id("eom_token_id")?;
    let eot = match id("eot_token_id")? {
        Some(eot) => Some(eot),
        None => end_of_turn(by_text),
    };
    let add_bos = metadata.opt_bool(ADD_BOS)?.unwrap_or(default_add_bos);
    let add_eos = metadata.opt_bool(ADD_EOS)?.unwrap_or(false);
    for (add, key, id, id_key) in [
        (add_bos, ADD_BOS, bos, "bos_token_id"),
        (add_eos, ADD_EOS, eos, "eos_token_id"),
    ] {
        if add && id.is_none() {
            return Err(Error::Invalid(format!(
                "GGUF metadata '{key}' is true, but 'tokenizer.ggml.{id_key}' is not set"
            )));
        }
    }
    let stops = stop_set([eos, eot, eom].into_iter().flatten(), by_text);
    Ok(SpecialTokens {
        bos,
        eos,
        eot,
        pad,
        unk,
        add_bos,
        add_eos,
        stops,
    })
}

/// A token-to-id map that refuses a token written twice.
fn vocab(keys: &[String]) -> Result<Vocab> {
    let mut vocab = Vocab::with_capacity(keys.len());
    for (id, key) in keys.iter().enumerate() {
        if let Some(first) = vocab.insert(key.clone(), id as u32) {
            return Err(Error::Invalid(format!(
                "GGUF metadata '{TOKENS}' has the token {key:?} twice, at ids {first} and {id}"
            )));
        }
    }
    Ok(vocab)
}

/// Builds the BPE model, naming the metadata behind a failure. A
/// SentencePiece model falls back to byte tokens and fuses unknown pieces.
fn bpe(
    vocab: Vocab,
    merges: Merges,
    unk: Option<String>,
    ignore_merges: bool,
    sentencepiece: bool,
) -> Result<BPE> {
    let mut builder = BPE::builder()
        .vocab_and_merges(vocab, merges)
        .ignore_merges(ignore_merges)
        .byte_fallback(sentencepiece)
        .fuse_unk(sentencepiece);
    if let Some(unk) = unk {
        builder = builder.unk_token(unk);
    }
    builder.build().map_err(|e| {
        Error::Invalid(format!(
            "GGUF metadata '{TOKENS}'/'{MERGES}' do not make a BPE vocabulary: {e}"
        ))
    })
}

/// Adds control and unknown tokens as special tokens and user-defined ones
/// as plain added tokens, each matched whole in raw text. A token the
/// vocabulary respells (`keys` differs from the file's text) is left to BPE,
/// as transformers leaves it.
fn add_tokens(
    tokenizer: &mut tokenizers::Tokenizer,
    tokens: &[&str],
    keys: &[String],
    types: &[u64],
) -> Result<()> {
    let of_type = |wanted: &[u64], special: bool| -> Vec<AddedToken> {
        (0..tokens.len())
            .filter(|&i| wanted.contains(&types[i]) && keys[i] == tokens[i])
            .map(|i| AddedToken::from(tokens[i], special).normalized(false))
            .collect()
    };
    tokenizer
        .add_special_tokens(of_type(&[CONTROL, UNKNOWN], true))
        .map_err(|e| Error::Tokenizer(e.to_string()))?;
    tokenizer
        .add_tokens(of_type(&[USER_DEFINED], false))
        .map_err(|e| Error::Tokenizer(e.to_string()))?;
    Ok(())
}

/// The character GPT-2's byte-level alphabet writes for byte `b`: printable
/// Latin-1 bytes stand for themselves, the others for U+0100 onwards in order.
fn byte_char(b: u8) -> char {
    let printable = |b: u8| matches!(b, b'!'..=b'~' | 0xA1..=0xAC | 0xAE..=0xFF);
    if printable(b) {
        char::from(b)
    } else {
        let rank = (0..b).filter(|&x| !printable(x)).count() as u32;
        char::from_u32(0x100 + rank).unwrap_or(char::REPLACEMENT_CHARACTER)
    }
}

/// Whether `c` is a letter of GPT-2's byte-level alphabet.
fn in_byte_alphabet(c: char) -> bool {
    matches!(c as u32, 0x21..=0x7E | 0xA1..=0xAC | 0xAE..=0xFF | 0x100..=0x143)
}

fn byte_level_bpe(
    metadata: &Metadata,
    tokens: &[&str],
    types: &[u64],
    pre: PreTokenizer,
) -> Result<tokenizers::Tokenizer> {
    // A normal token outside the byte alphabet is respelled in it, as
    // transformers does; added tokens keep their text, which is matched raw.
    let keys: Vec<String> = tokens
        .iter()
        .zip(types)
        .map(|(token, kind)| {
            if [CONTROL, USER_DEFINED, UNKNOWN].contains(kind)
                || token.chars().all(in_byte_alphabet)
            {
                token.to_string()
            } else {
                token.bytes().map(byte_char).collect()
            }
        })
        .collect();
    let vocab = vocab(&keys)?;
    let merges = strings(metadata, MERGES)?.ok_or_else(|| {
        Error::Invalid(format!(
            "GGUF metadata has no '{MERGES}', which a 'gpt2' vocabulary needs"
        ))
    })?;
    let merges = parse_merges(&merges, &vocab)?;
    let model = bpe(vocab, merges, None, pre.ignore_merges, false)?;
    let mut tokenizer = tokenizers::Tokenizer::new(model);
    let mut steps: Vec<PreTokenizerWrapper> = Vec::new();
    for regex in pre.splits {
        let split = Split::new(
            SplitPattern::Regex((*regex).to_owned()),
            SplitDelimiterBehavior::Isolated,
            false,
        )
        .map_err(|e| Error::Tokenizer(format!("pre-tokenizer regex {regex:?}: {e}")))?;
        steps.push(split.into());
    }
    steps.push(ByteLevel::new(false, true, false).into());
    tokenizer.with_pre_tokenizer(Some(PreSequence::new(steps)));
    tokenizer.with_decoder(Some(ByteLevel::default()));
    add_tokens(&mut tokenizer, tokens, &keys, types)?;
    Ok(tokenizer)
}

/// `tokenizer.ggml.merges` entries (`"left right"`), checked against the vocabulary.
fn parse_merges(merges: &[&str], vocab: &Vocab) -> Result<Merges> {
    merges
        .iter()
        .enumerate()
        .map(|(i, merge)| {
            let at = merge.char_indices().skip(1).find(|&(_, c)| c == ' ').map(|(at, _)| at);
            let Some(at) = at else {
                return Err(Error::Invalid(format!(
                    "GGUF metadata '{MERGES}' item {i} ({merge:?}) is not two tokens separated by a space"
                )));
            };
            let (left, right) = (&merge[..at], &merge[at + 1..]);
            for part in [left, right] {
                if !vocab.contains_key(part) {
                    return Err(Error::Invalid(format!(
                        "GGUF metadata '{MERGES}' item {i} ({merge:?}) names {part:?}, which is not in '{TOKENS}'"
                    )));
                }
            }
            Ok((left.to_owned(), right.to_owned()))
        })
        .collect()
}

/// Python's `str.isspace` for one character.
fn python_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

fn sentencepiece_bpe(
    metadata: &Metadata,
    tokens: &[&str],
    types: &[u64],
) -> Result<tokenizers::Tokenizer> {
    let architecture = metadata.opt_string(ARCHITECTURE)?.unwrap_or("llama");
    let gemma = matches!(architecture, "gemma" | "gemma2" | "gemma3");
    if architecture == "phi3" {
        return Err(Error::Invalid(format!(
            "GGUF metadata '{ARCHITECTURE}' is 'phi3', whose SentencePiece variant seer does not read"
        )));
    }
    // Gemma's files write a token of spaces with real spaces; its merges use `▁`.
    let keys: Vec<String> = tokens
        .iter()
        .map(|t| {
            if gemma && t.contains(' ') && t.chars().all(python_space) {
                "▁".repeat(t.chars().count())
            } else {
                t.to_string()
            }
        })
        .collect();
    let vocab = vocab(&keys)?;
    let merges = match strings(metadata, MERGES)? {
        Some(merges) => parse_merges(&merges, &vocab)?,
        None if gemma => merges_by_rank(&keys, &vocab, |id| -(id as f64)),
        None => {
            let scores =
                numbers(metadata, SCORES, tokens.len(), Value::as_f64)?.ok_or_else(|| {
                    Error::Invalid(format!(
                        "GGUF metadata has neither '{MERGES}' nor '{SCORES}'"
                    ))
                })?;
            merges_by_rank(&keys, &vocab, |id| scores[id])
        }
    };
    let unk = special_id(metadata, "tokenizer.ggml.unknown_token_id", tokens.len())?
        .map(|id| keys[id as usize].clone());
    let mut tokenizer = tokenizers::Tokenizer::new(bpe(vocab, merges, unk, false, true)?);
    let mut decoders: Vec<DecoderWrapper> = vec![
        replace("▁", " ")?.into(),
        ByteFallback::new().into(),
        Fuse::new().into(),
    ];
    if gemma {
        tokenizer
            .with_normalizer(Some(replace(" ", "▁")?))
            .map_err(|e| Error::Tokenizer(e.to_string()))?;
    } else {
        let prefix = metadata.opt_bool(ADD_SPACE_PREFIX)?.unwrap_or(true);
        let scheme = if prefix {
            PrependScheme::First
        } else {
            PrependScheme::Never
        };
        tokenizer.with_pre_tokenizer(Some(Metaspace::new('▁', scheme, false)));
        if prefix {
            decoders.push(Strip::new(' ', 1, 0).into());
        }
    }
    tokenizer.with_decoder(Some(DecoderSequence::new(decoders)));
    add_tokens(&mut tokenizer, tokens, &keys, types)?;
    Ok(tokenizer)
}

fn replace(pattern: &str, content: &str) -> Result<Replace> {
    Replace::new(pattern, content).map_err(|e| Error::Tokenizer(e.to_string()))
}

/// Tokens longer than this many bytes get no derived merges: real
/// vocabularies stay far below it, and splitting a longer one costs time
/// quadratic in its length.
const MAX_MERGED_TOKEN_BYTES: usize = 1024;

/// The merges a vocabulary implies, as transformers' `generate_merges`
/// derives them: every split of a token into two tokens, best first by the
/// token's `rank` (higher first), then by longer left and right parts, ties
/// kept in vocabulary order (within a token: by the parts' ids).
fn merges_by_rank(keys: &[String], vocab: &Vocab, rank: impl Fn(usize) -> f64) -> Merges {
    struct Candidate {
        left: u32,
        right: u32,
        rank: f64,
        left_len: usize,
        right_len: usize,
    }
    let mut candidates: Vec<Candidate> = Vec::new();
    for (id, key) in keys.iter().enumerate() {
        if key.len() > MAX_MERGED_TOKEN_BYTES {
            continue;
        }
        let start = candidates.len();
        for (at, _) in key.char_indices().skip(1) {
            let (left, right) = key.split_at(at);
            if let (Some(&l), Some(&r)) = (vocab.get(left), vocab.get(right)) {
                candidates.push(Candidate {
                    left: l,
                    right: r,
                    rank: rank(id),
                    left_len: left.chars().count(),
                    right_len: right.chars().count(),
                });
            }
        }
        candidates[start..].sort_by_key(|c| (c.left, c.right));
    }
    candidates.sort_by(|a, b| {
        b.rank
            .total_cmp(&a.rank)
            .then(b.left_len.cmp(&a.left_len))
            .then(b.right_len.cmp(&a.right_len))
    });
    candidates
        .into_iter()
        .map(|c| {
            (
                keys[c.left as usize].clone(),
                keys[c.right as usize].clone(),
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strs(items: &[&str]) -> Value {
        Value::Array(items.iter().map(|s| Value::String(s.to_string())).collect())
    }

    /// A byte-level vocabulary: `ab`, ` ab` and `<|endoftext|>` (control).
    fn gpt2(extra: Vec<(&str, Value)>) -> Metadata {
        let mut entries = vec![
            (MODEL, Value::String("gpt2".into())),
            (PRE, Value::String("gpt-2".into())),
            (TOKENS, strs(&["<|endoftext|>", "a", "b", "ab", "Ġ", "Ġab"])),
            (
                TOKEN_TYPE,
                Value::Array([3, 1, 1, 1, 1, 1].map(Value::I32).to_vec()),
            ),
            (MERGES, strs(&["a b", "Ġ ab"])),
            ("tokenizer.ggml.eos_token_id", Value::U32(0)),
        ];
        for (key, value) in extra {
            entries.retain(|(k, _)| *k != key);
            entries.push((key, value));
        }
        Metadata::new(
            entries
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect(),
        )
    }

    fn error(metadata: &Metadata) -> String {
        GgufTokenizer::from_metadata(metadata)
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn byte_alphabet_is_gpt2s() {
        assert_eq!(byte_char(b' '), 'Ġ');
        assert_eq!(byte_char(b'\n'), 'Ċ');
        assert_eq!(byte_char(b'a'), 'a');
        assert_eq!(byte_char(0xAD), '\u{143}');
        let all: std::collections::HashSet<char> = (0..=255u8).map(byte_char).collect();
        assert_eq!(all.len(), 256);
        assert!(all.iter().all(|&c| in_byte_alphabet(c)));
    }

    #[test]
    fn byte_level_vocabulary_encodes_with_merges_and_specials() {
        let tok = GgufTokenizer::from_metadata(&gpt2(vec![])).unwrap();
        assert_eq!(
            tok.encode("ab ab<|endoftext|>", false).unwrap(),
            vec![3, 5, 0]
        );
        assert_eq!(
            tok.tokenizer().decode(&[3, 5, 0]).unwrap(),
            "ab ab<|endoftext|>"
        );
        let special = tok.special();
        assert_eq!(
            (special.eos, special.bos, special.eot),
            (Some(0), None, Some(0))
        );
        assert!(!special.add_bos);
        assert_eq!(special.stops, vec![0]);
        // No template in the file: ChatML.
        assert_eq!(tok.chat_template_source(), None);
        let rendered = tok
            .chat_template()
            .unwrap()
            .render(&[crate::formats::ChatMessage::new("user", "ab")], true)
            .unwrap();
        assert_eq!(
            rendered,
            "<|im_start|>user\nab<|im_end|>\n<|im_start|>assistant\n"
        );
    }

    #[test]
    fn llama3_adds_bos_unless_told_otherwise() {
        let bos = ("tokenizer.ggml.bos_token_id", Value::U32(0));
        let llama3 = ("tokenizer.ggml.pre", Value::String("llama-bpe".into()));
        let tok = GgufTokenizer::from_metadata(&gpt2(vec![bos.clone(), llama3.clone()])).unwrap();
        assert!(tok.special().add_bos);
        assert_eq!(tok.encode("ab", true).unwrap(), vec![0, 3]);
        let off = (ADD_BOS, Value::Bool(false));
        let tok = GgufTokenizer::from_metadata(&gpt2(vec![bos, llama3, off])).unwrap();
        assert_eq!(tok.encode("ab", true).unwrap(), vec![3]);
        // Asked to add BOS without one.
        let err = error(&gpt2(vec![(ADD_BOS, Value::Bool(true))]));
        assert!(
            err.contains(ADD_BOS) && err.contains("bos_token_id"),
            "{err}"
        );
    }

    #[test]
    fn errors_name_the_field() {
        // Each case: entries that replace the good vocabulary's, and what the error names.
        type Case = (Vec<(&'static str, Value)>, &'static [&'static str]);
        let cases: Vec<Case> = vec![
            (vec![(MERGES, strs(&["a c"]))], &[MERGES, "\"c\""]),
            (vec![(MERGES, strs(&["ab"]))], &[MERGES, "item 0"]),
            (
                vec![("tokenizer.ggml.eos_token_id", Value::U32(6))],
                &["eos_token_id", "6 tokens"],
            ),
            (
                vec![(TOKEN_TYPE, strs(&["1", "1", "1", "1", "1", "1"]))],
                &[TOKEN_TYPE, "item 0"],
            ),
            (
                vec![(TOKEN_TYPE, Value::Array(vec![Value::I32(1)]))],
                &[TOKEN_TYPE, "1 entries"],
            ),
            (
                vec![(TOKENS, Value::Array(vec![Value::U8(1)]))],
                &[TOKENS, "strings"],
            ),
            (
                vec![(TOKENS, Value::String("a".into()))],
                &[TOKENS, "an array"],
            ),
            (
                vec![
                    (TOKENS, strs(&["a", "b", "a"])),
                    (TOKEN_TYPE, Value::Array(vec![Value::I32(1); 3])),
                ],
                &[TOKENS, "twice"],
            ),
            (
                vec![(MODEL, Value::String("bert".into()))],
                &[MODEL, "'bert'"],
            ),
            (
                vec![(PRE, Value::String("tekken".into()))],
                &[PRE, "'tekken'"],
            ),
            (vec![(ADD_BOS, Value::U8(1))], &[ADD_BOS, "bool"]),
        ];
        for (extra, needles) in cases {
            let err = error(&gpt2(extra));
            for needle in needles {
                assert!(err.contains(needle), "{err:?} lacks {needle:?}");
            }
        }
        let no_tokens = Metadata::new(vec![(MODEL.into(), Value::String("gpt2".into()))]);
        assert!(error(&no_tokens).contains(TOKENS));
        let mut no_merges = gpt2(vec![]).entries().to_vec();
        no_merges.retain(|(k, _)| k != MERGES);
        assert!(error(&Metadata::new(no_merges)).contains(MERGES));
    }

    /// A SentencePiece vocabulary with scores and one byte token.
    fn sentencepiece(architecture: &str) -> Metadata {
        let tokens = [
            "<unk>", "<s>", "</s>", "▁", "a", "b", "ab", "▁a", "▁ab", "<0x63>",
        ];
        let scores = [0.0, 0.0, 0.0, -3.0, -4.0, -5.0, -1.0, -0.5, -2.0, 0.0];
        let types = [2, 3, 3, 1, 1, 1, 1, 1, 1, 6];
        Metadata::new(
            vec![
                (ARCHITECTURE, Value::String(architecture.into())),
                (MODEL, Value::String("llama".into())),
                (TOKENS, strs(&tokens)),
                (SCORES, Value::Array(scores.map(Value::F32).to_vec())),
                (TOKEN_TYPE, Value::Array(types.map(Value::I32).to_vec())),
                ("tokenizer.ggml.bos_token_id", Value::U32(1)),
                ("tokenizer.ggml.eos_token_id", Value::U32(2)),
                ("tokenizer.ggml.unknown_token_id", Value::U32(0)),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect(),
        )
    }

    #[test]
    fn merges_follow_scores_then_lengths() {
        let keys: Vec<String> = ["▁", "a", "b", "ab", "▁a", "▁ab"]
            .map(String::from)
            .to_vec();
        let vocab = vocab(&keys).unwrap();
        let scores = [-3.0, -4.0, -5.0, -1.0, -0.5, -2.0];
        let merges = merges_by_rank(&keys, &vocab, |id| scores[id]);
        let pairs: Vec<(&str, &str)> = merges
            .iter()
            .map(|(l, r)| (l.as_str(), r.as_str()))
            .collect();
        assert_eq!(pairs, [("▁", "a"), ("a", "b"), ("▁a", "b"), ("▁", "ab")]);
    }

    #[test]
    fn sentencepiece_vocabulary_prefixes_a_space_and_falls_back_to_bytes() {
        let tok = GgufTokenizer::from_metadata(&sentencepiece("llama")).unwrap();
        assert!(tok.special().add_bos);
        // "▁ab c" -> ▁ab, ▁, <0x63>.
        assert_eq!(tok.encode("ab c", true).unwrap(), vec![1, 8, 3, 9]);
        assert_eq!(tok.tokenizer().decode(&[8, 3, 9]).unwrap(), "ab c");
        assert_eq!(tok.encode("<s>ab", false).unwrap(), vec![1, 6]);
        // Gemma: no prefix space.
        let gemma = GgufTokenizer::from_metadata(&sentencepiece("gemma3")).unwrap();
        assert_eq!(gemma.encode("ab c", false).unwrap(), vec![6, 3, 9]);
        assert_eq!(gemma.tokenizer().decode(&[6, 3, 9]).unwrap(), "ab c");
    }

    #[test]
    fn sentencepiece_needs_merges_or_scores() {
        let mut entries = sentencepiece("llama").entries().to_vec();
        entries.retain(|(k, _)| k != SCORES);
        let err = error(&Metadata::new(entries));
        assert!(err.contains(SCORES) && err.contains(MERGES), "{err}");
    }

    #[test]
    fn tokenizer_json_pre_tokenizers_map_to_llama_cpp_names() {
        use serde_json::json;
        let byte_level = |regex: bool| json!({"type": "ByteLevel", "add_prefix_space": false, "use_regex": regex});
        let split = |regex: &str| {
            json!({"type": "Split", "pattern": {"Regex": regex},
            "behavior": "Isolated", "invert": false})
        };
        let tokenizer = |pre: serde_json::Value, ignore_merges: bool| {
            json!({"normalizer": null, "pre_tokenizer": pre,
                "model": {"type": "BPE", "ignore_merges": ignore_merges}})
        };
        let sequence =
            |steps: Vec<serde_json::Value>| json!({"type": "Sequence", "pretokenizers": steps});
        let digits = json!({"type": "Digits", "individual_digits": true});
        let cases = [
            (tokenizer(byte_level(true), false), Some("gpt-2")),
            (
                tokenizer(sequence(vec![digits.clone(), byte_level(true)]), false),
                Some("smollm"),
            ),
            (
                tokenizer(sequence(vec![split(LLAMA3_SPLIT), byte_level(false)]), true),
                Some("llama-bpe"),
            ),
            (
                tokenizer(
                    sequence(vec![split(LLAMA3_SPLIT), byte_level(false)]),
                    false,
                ),
                Some("dbrx"),
            ),
            (
                tokenizer(sequence(vec![split(QWEN2_SPLIT), byte_level(false)]), false),
                Some("qwen2"),
            ),
            // Digits without GPT-2's split, a prefix space, a regex seer does not
            // map, a normalizer: none.
            (
                tokenizer(sequence(vec![digits, byte_level(false)]), false),
                None,
            ),
            (
                tokenizer(
                    json!({"type": "ByteLevel", "add_prefix_space": true}),
                    false,
                ),
                None,
            ),
            (
                tokenizer(sequence(vec![split(GPT2_SPLIT), byte_level(false)]), false),
                None,
            ),
            (
                json!({"normalizer": {"type": "NFC"}, "pre_tokenizer": byte_level(true)}),
                None,
            ),
        ];
        for (json, name) in cases {
            assert_eq!(pre_tokenizer_of(&json), name, "{json}");
        }
        for name in ["gpt-2", "smollm", "llama-bpe", "dbrx", "qwen2"] {
            assert!(PRE_TOKENIZERS.contains(&name));
        }
    }
}
