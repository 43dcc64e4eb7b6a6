//! A Hugging Face `tokenizer.json` as GGUF tokenizer metadata, laid out as
//! llama.cpp's `convert_hf_to_gguf.py` writes it. Two kinds:
//!
//! - Byte-level BPE (a ByteLevel pre-tokenizer) → `tokenizer.ggml.model =
//!   gpt2` (`get_vocab_base` + `SpecialVocab`): the tokens in id order, their
//!   types, the merges, and `tokenizer.ggml.pre`, the llama.cpp
//!   pre-tokenizer that splits text as the `tokenizer.json` does (see
//!   [`pre_tokenizer_of`]; convert_hf_to_gguf.py recognizes known models by
//!   a hash of their ids instead, and refuses the others).
//! - SentencePiece-style BPE (`byte_fallback`, as Gemma's and Llama 2's
//!   `tokenizer.json`) → `llama` with `pre = default`: the tokens, their
//!   types (`<0x..>` BYTE, the `unk_token` UNKNOWN) and scores. The
//!   converter reads scores from `tokenizer.model`; without one (its
//!   `LlamaHfVocab`) it writes -1000 for every token, which leaves
//!   llama.cpp's tokenizer, merging the best-scored pair first, with no
//!   order. Here they follow the merges instead: the token the `n`th
//!   distinct merge makes scores `-n`, the other normal tokens continue
//!   that count in id order, and special, byte and user-defined tokens
//!   score 0 — which is what sentencepiece gives a BPE model it trained.
//!
//! Both: ids the tokenizer lacks up to the model's vocabulary size become
//! unused `[PADn]` tokens; added tokens that are special (or look it:
//! `<|...|>`, `<unused..>`) are CONTROL, the others USER_DEFINED with
//! `▁` written as a space.

use crate::formats::{pre_tokenizer_of, Value};
use crate::{Error, Result};
use serde_json::Value as Json;
use std::collections::HashMap;

/// llama.cpp's token types (`llama_token_type` / gguf-py's `TokenType`).
const NORMAL: i32 = 1;
const UNKNOWN: i32 = 2;
const CONTROL: i32 = 3;
const USER_DEFINED: i32 = 4;
const UNUSED: i32 = 5;
const BYTE: i32 = 6;

/// The score of an unused `[PADn]` token (convert_hf_to_gguf.py's).
const UNUSED_SCORE: f32 = -1000.0;

/// A tokenizer's GGUF form.
pub(super) struct Vocabulary {
    tokens: Vec<String>,
    types: Vec<i32>,
    kind: Kind,
}

enum Kind {
    ByteLevel {
        pre: &'static str,
        merges: Vec<String>,
    },
    SentencePiece {
        scores: Vec<f32>,
        add_space_prefix: bool,
    },
}

impl Vocabulary {
    /// The vocabulary of `tokenizer_json` (the `tokenizers` library's
    /// format) for a model of `vocab_size` embeddings.
    pub(super) fn new(tokenizer_json: &Json, vocab_size: usize) -> Result<Self> {
        let model = &tokenizer_json["model"];
        if model["type"] == "BPE" && model["byte_fallback"] == true {
            Self::sentencepiece(tokenizer_json, vocab_size)
        } else {
            Self::byte_level(tokenizer_json, vocab_size)
        }
    }

    /// A byte-level BPE vocabulary; anything else is refused.
    pub(super) fn byte_level(tokenizer_json: &Json, vocab_size: usize) -> Result<Self> {
        let model = &tokenizer_json["model"];
        if model["type"] != "BPE" {
            return Err(Error::Invalid(format!(
                "the tokenizer's model is {}; seer writes BPE vocabularies to GGUF (byte-level \
                 as llama.cpp's gpt2, with byte fallback as its llama)",
                model["type"]
            )));
        }
        let pre = pre_tokenizer_of(tokenizer_json).ok_or_else(|| {
            Error::Invalid(format!(
                "its pre-tokenizer {} (normalizer {}) splits text as none of llama.cpp's \
                 byte-level pre-tokenizers that seer knows (GPT-2's, SmolLM's, Llama 3's, \
                 Qwen 2's) does",
                tokenizer_json["pre_tokenizer"], tokenizer_json["normalizer"]
            ))
        })?;
        let (tokens, types) = token_table(tokenizer_json, vocab_size, false)?;
        let merges = merge_pairs(model)?
            .into_iter()
            .map(|(left, right)| format!("{left} {right}"))
            .collect();
        Ok(Self {
            tokens,
            types,
            kind: Kind::ByteLevel { pre, merges },
        })
    }

    fn sentencepiece(tokenizer_json: &Json, vocab_size: usize) -> Result<Self> {
        let (tokens, types) = token_table(tokenizer_json, vocab_size, true)?;
        // The rank of the first merge that makes each token.
        let mut rank: HashMap<String, usize> = HashMap::new();
        for (left, right) in merge_pairs(&tokenizer_json["model"])? {
            let next = rank.len();
            rank.entry(left + &right).or_insert(next);
        }
        let mut unmerged = rank.len();
        let scores = tokens
            .iter()
            .zip(&types)
            .map(|(token, &ty)| match ty {
                NORMAL => {
                    let place = rank.get(token).copied().unwrap_or_else(|| {
                        unmerged += 1;
                        unmerged - 1
                    });
                    // (0 - place, so that the first scores 0, not -0.)
                    0.0 - place as f32
                }
                UNUSED => UNUSED_SCORE,
                _ => 0.0,
            })
            .collect();
        Ok(Self {
            tokens,
            types,
            kind: Kind::SentencePiece {
                scores,
                add_space_prefix: adds_space_prefix(tokenizer_json),
            },
        })
    }

    /// The `tokenizer.ggml.*` entries for the vocabulary itself: model,
    /// pre-tokenizer, tokens, scores or merges, token types and
    /// `add_space_prefix`.
    pub(super) fn entries(self) -> Vec<(&'static str, Value)> {
        let strings = |v: Vec<String>| Value::Array(v.into_iter().map(Value::String).collect());
        let types = Value::Array(self.types.into_iter().map(Value::I32).collect());
        match self.kind {
            Kind::ByteLevel { pre, merges } => vec![
                ("tokenizer.ggml.model", Value::String("gpt2".into())),
                ("tokenizer.ggml.pre", Value::String(pre.into())),
                ("tokenizer.ggml.tokens", strings(self.tokens)),
                ("tokenizer.ggml.token_type", types),
                ("tokenizer.ggml.merges", strings(merges)),
            ],
            Kind::SentencePiece {
                scores,
                add_space_prefix,
            } => vec![
                ("tokenizer.ggml.model", Value::String("llama".into())),
                ("tokenizer.ggml.pre", Value::String("default".into())),
                ("tokenizer.ggml.tokens", strings(self.tokens)),
                (
                    "tokenizer.ggml.scores",
                    Value::Array(scores.into_iter().map(Value::F32).collect()),
                ),
                ("tokenizer.ggml.token_type", types),
                (
                    "tokenizer.ggml.add_space_prefix",
                    Value::Bool(add_space_prefix),
                ),
            ],
        }
    }
}

/// Every token id below `vocab_size` with its text and type.
fn token_table(
    tokenizer_json: &Json,
    vocab_size: usize,
    sentencepiece: bool,
) -> Result<(Vec<String>, Vec<i32>)> {
    let model = &tokenizer_json["model"];
    let vocab = model["vocab"]
        .as_object()
        .ok_or_else(|| Error::Invalid("the BPE model has no 'vocab'".into()))?;
    let unk = model["unk_token"].as_str();
    let mut table: Vec<Option<(String, i32)>> = vec![None; vocab_size];
    for (token, id) in vocab {
        let id = id
            .as_u64()
            .ok_or_else(|| Error::Invalid(format!("token {token:?} has no numeric id")))?;
        let slot = table.get_mut(id as usize).ok_or_else(|| {
            Error::Invalid(format!(
                "token {token:?} has id {id}, past the model's vocab_size {vocab_size}"
            ))
        })?;
        let ty = if !sentencepiece {
            NORMAL
        } else if Some(token.as_str()) == unk {
            UNKNOWN
        } else if is_byte_token(token) {
            BYTE
        } else {
            NORMAL
        };
        *slot = Some((token.clone(), ty));
    }
    for added in tokenizer_json["added_tokens"]
        .as_array()
        .into_iter()
        .flatten()
    {
        let (Some(id), Some(content)) = (added["id"].as_u64(), added["content"].as_str()) else {
            continue;
        };
        let Some(slot) = table.get_mut(id as usize) else {
            continue;
        };
        *slot = Some(if sentencepiece && Some(content) == unk {
            (content.to_string(), UNKNOWN)
        } else if added["special"] == true || looks_special(content) {
            (content.to_string(), CONTROL)
        } else {
            (content.replace('▁', " "), USER_DEFINED)
        });
    }
    Ok(table
        .into_iter()
        .enumerate()
        .map(|(id, t)| t.unwrap_or_else(|| (format!("[PAD{id}]"), UNUSED)))
        .unzip())
}

/// `<0x0A>`: a SentencePiece byte token.
fn is_byte_token(token: &str) -> bool {
    let b = token.as_bytes();
    b.len() == 6 && token.starts_with("<0x") && token.ends_with('>') && {
        b[3..5].iter().all(u8::is_ascii_hexdigit)
    }
}

/// Added tokens that some models do not mark special but are
/// (convert_hf_to_gguf.py's `does_token_look_special`).
fn looks_special(token: &str) -> bool {
    ["<pad>", "<mask>", "<2mass>", "[@BOS@]"].contains(&token)
        || (token.starts_with("<|") && token.ends_with("|>"))
        || (token.starts_with("<｜") && token.ends_with("｜>"))
        || (token.starts_with("<unused") && token.ends_with('>'))
}

/// The BPE model's merges as pairs (either spelling: `"a b"` or `["a", "b"]`).
fn merge_pairs(model: &Json) -> Result<Vec<(String, String)>> {
    model["merges"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|m| {
            let pair = match m {
                Json::String(s) => s.split_once(' '),
                Json::Array(pair) if pair.len() == 2 => pair[0].as_str().zip(pair[1].as_str()),
                _ => None,
            };
            pair.map(|(l, r)| (l.to_string(), r.to_string()))
                .ok_or_else(|| Error::Invalid(format!("a merge is {m}, not a pair of tokens")))
        })
        .collect()
}

/// Whether a SentencePiece-style `tokenizer.json` puts `▁` before the text
/// (a `Prepend` normalizer, or a `Metaspace` pre-tokenizer that prepends).
fn adds_space_prefix(tokenizer_json: &Json) -> bool {
    fn steps<'a>(step: &'a Json, list: &str) -> Vec<&'a Json> {
        match step[list].as_array() {
            Some(items) => items.iter().collect(),
            None => vec![step],
        }
    }
    let prepends = steps(&tokenizer_json["normalizer"], "normalizers")
        .into_iter()
        .any(|n| n["type"] == "Prepend" && n["prepend"] == "▁");
    let metaspace = steps(&tokenizer_json["pre_tokenizer"], "pretokenizers")
        .into_iter()
        .any(|p| {
            p["type"] == "Metaspace"
                && (p["add_prefix_space"] == true
                    || p["prepend_scheme"] == "first"
                    || p["prepend_scheme"] == "always")
        });
    prepends || metaspace
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn byte_tokens_special_looks_and_space_prefixes_are_recognized() {
        assert!(is_byte_token("<0x0A>") && is_byte_token("<0xff>"));
        assert!(!is_byte_token("<0x0G>") && !is_byte_token("<0x0A"));
        assert!(looks_special("<|im_start|>") && looks_special("<unused3>"));
        assert!(!looks_special("<b>"));
        let llama2 = json!({
            "normalizer": {"type": "Sequence", "normalizers": [
                {"type": "Prepend", "prepend": "▁"},
                {"type": "Replace", "pattern": {"String": " "}, "content": "▁"}]},
            "pre_tokenizer": null});
        assert!(adds_space_prefix(&llama2));
        let gemma = json!({
            "normalizer": {"type": "Replace", "pattern": {"String": " "}, "content": "▁"},
            "pre_tokenizer": {"type": "Split", "pattern": {"String": " "}}});
        assert!(!adds_space_prefix(&gemma));
        let metaspace = json!({"normalizer": null,
            "pre_tokenizer": {"type": "Metaspace", "replacement": "▁", "prepend_scheme": "first"}});
        assert!(adds_space_prefix(&metaspace));
    }

    #[test]
    fn sentencepiece_scores_follow_the_merges() {
        let tokenizer = json!({
            "added_tokens": [
                {"id": 0, "content": "<unk>", "special": true},
                {"id": 1, "content": "<s>", "special": true},
                {"id": 9, "content": "▁▁", "special": false}],
            "model": {"type": "BPE", "byte_fallback": true, "unk_token": "<unk>",
                "vocab": {"<unk>": 0, "<s>": 1, "<0x0A>": 2, "▁t": 3, "he": 4, "▁the": 5,
                    "▁": 6, "t": 7, "h": 8, "▁▁": 9},
                "merges": [["▁", "t"], ["h", "e"], ["▁t", "he"], ["▁th", "e"], ["▁", "▁"]]},
            "normalizer": null, "pre_tokenizer": null});
        let v = Vocabulary::new(&tokenizer, 12).unwrap();
        assert_eq!(v.types, [2, 3, 6, 1, 1, 1, 1, 1, 1, 4, 5, 5]);
        assert_eq!(v.tokens[9], "  ");
        assert_eq!(v.tokens[11], "[PAD11]");
        let Kind::SentencePiece { scores, .. } = &v.kind else {
            panic!("not SentencePiece")
        };
        // ▁t, he, ▁the by their first merges; ▁, t, h after the four merged.
        assert_eq!(
            scores,
            &[0.0, 0.0, 0.0, 0.0, -1.0, -2.0, -4.0, -5.0, -6.0, 0.0, -1000.0, -1000.0]
        );
        assert!(Vocabulary::new(&tokenizer, 8)
            .err()
            .unwrap()
            .to_string()
            .contains("past the model's vocab_size 8"));
    }
}
