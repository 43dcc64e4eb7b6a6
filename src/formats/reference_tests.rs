//! GGUF tokenizers and chat templates against transformers: the fixtures in
//! tests/fixtures/gguf/ (made by scripts/reference/gguf_tokenizer_parity.py)
//! hold tokenizer-only GGUF files and what transformers computes from them.

use super::{ChatMessage, ChatTemplate, Gguf, GgufTokenizer};
use serde_json::Value as Json;
use std::path::PathBuf;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/gguf")
        .join(name)
}

fn json(name: &str) -> Json {
    let text = std::fs::read_to_string(fixture(name)).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn tokenizer(name: &str) -> GgufTokenizer {
    let gguf = Gguf::open(&fixture(name)).unwrap();
    GgufTokenizer::from_metadata(gguf.metadata()).unwrap()
}

fn ids(value: &Json) -> Vec<u32> {
    serde_json::from_value(value.clone()).unwrap()
}

fn messages(value: &Json) -> Vec<ChatMessage> {
    value
        .as_array()
        .unwrap()
        .iter()
        .map(|m| ChatMessage::new(m["role"].as_str().unwrap(), m["content"].as_str().unwrap()))
        .collect()
}

/// Every encoding, decoding and chat rendering of `expected` matches.
fn assert_matches(tok: &GgufTokenizer, expected: &Json) {
    let special = tok.special();
    let text_of = |id: Option<u32>| id.and_then(|id| tok.token(id)).unwrap();
    assert_eq!(text_of(special.bos), expected["bos_token"]);
    assert_eq!(text_of(special.eos), expected["eos_token"]);
    for row in expected["encodings"].as_array().unwrap() {
        let text = row["text"].as_str().unwrap();
        let plain = tok.encode(text, false).unwrap();
        assert_eq!(plain, ids(&row["ids"]), "ids of {text:?}");
        assert_eq!(
            tok.encode(text, true).unwrap(),
            ids(&row["with_special"]),
            "{text:?}"
        );
        assert_eq!(
            tok.tokenizer().decode(&plain).unwrap(),
            row["decoded"],
            "decoding {text:?}"
        );
    }
    let template = tok.chat_template().unwrap();
    for row in expected["chats"].as_array().unwrap() {
        let generation = row["add_generation_prompt"].as_bool().unwrap();
        let text = template
            .render(&messages(&row["messages"]), generation)
            .unwrap();
        assert_eq!(text, row["text"]);
        assert_eq!(
            tok.encode(&text, false).unwrap(),
            ids(&row["ids"]),
            "{text:?}"
        );
    }
}

#[test]
fn smollm2_matches_transformers() {
    let tok = tokenizer("smollm2_tokenizer.gguf");
    assert_matches(&tok, &json("smollm2_tokenizer.json"));
    let special = tok.special();
    assert_eq!(
        (special.bos, special.eos, special.unk, special.pad),
        (Some(1), Some(2), Some(0), Some(2))
    );
    assert!(!special.add_bos && !special.add_eos);
    // <|im_end|> ends a turn; <|endoftext|> ends generation too.
    assert_eq!(special.eot, Some(2));
    assert_eq!(special.stops, vec![0, 2]);
    assert!(tok.is_stop(2) && !tok.is_stop(1));
    assert_eq!(tok.tokenizer().vocab_size(), 49152);
}

#[test]
fn sentencepiece_matches_transformers() {
    let expected = json("spm_tokenizer.json");
    for arch in ["llama", "gemma3"] {
        let tok = tokenizer(&format!("spm_{arch}.gguf"));
        assert_matches(&tok, &expected[arch]);
        assert!(tok.special().add_bos);
        assert_eq!(tok.tokenizer().vocab_size(), 420);
    }
    // Without a prefix space, Gemma's ids are sentencepiece's own (which does
    // not read special tokens written in text, so those rows are left out).
    let gemma = tokenizer("spm_gemma3.gguf");
    for (row, sp) in expected["gemma3"]["encodings"]
        .as_array()
        .unwrap()
        .iter()
        .zip(expected["sentencepiece"].as_array().unwrap())
    {
        let text = row["text"].as_str().unwrap();
        if !text.contains('<') {
            assert_eq!(gemma.encode(text, false).unwrap(), ids(sp), "{text:?}");
        }
    }
}

#[test]
fn chat_templates_match_transformers() {
    let expected = json("chat_templates.json");
    let (bos, eos) = (
        expected["bos_token"].as_str().unwrap(),
        expected["eos_token"].as_str().unwrap(),
    );
    for case in expected["templates"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let template = ChatTemplate::new(case["template"].as_str().unwrap(), bos, eos).unwrap();
        for row in case["cases"].as_array().unwrap() {
            let generation = row["add_generation_prompt"].as_bool().unwrap();
            let rendered = template.render(&messages(&row["messages"]), generation);
            match (&rendered, row["text"].as_str(), row["error"].as_str()) {
                (Ok(text), Some(want), _) => assert_eq!(text, want, "template {name}"),
                (Err(e), _, Some(want)) => {
                    assert!(e.to_string().ends_with(want), "template {name}: {e}")
                }
                _ => panic!("template {name}: {rendered:?}, expected {row}"),
            }
        }
    }
}
