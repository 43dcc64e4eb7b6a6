//! Tokenizers: round trips, clear errors, and parity with Python's `tokenizers`.

use rand::{Rng, SeedableRng};
use seer::tokenize::{train_bpe, train_char, Tokenizer, TokenizerKind};
use std::path::Path;

const CORPUS: &str =
    "First Citizen:\nBefore we proceed any further, hear me speak.\n\nAll:\nSpeak, speak.\n";

fn bpe() -> Tokenizer {
    let docs = vec![
        CORPUS.repeat(20),
        "naïve café 你好 🙂 emoji text".repeat(10),
    ];
    train_bpe(&docs, 320).unwrap()
}

#[test]
fn char_tokenizer_round_trips_and_orders_ids_by_code_point() {
    let tok = train_char(CORPUS).unwrap();
    assert_eq!(tok.kind(), TokenizerKind::Char);
    let ids = tok.encode("Speak, hear me.\n").unwrap();
    assert_eq!(ids.len(), 16);
    assert_eq!(tok.decode(&ids).unwrap(), "Speak, hear me.\n");
    // ids follow code point order: '\n' < ' ' < ',' ...
    assert_eq!(tok.encode("\n").unwrap(), vec![0]);
    assert_eq!(tok.encode(" ").unwrap(), vec![1]);
}

#[test]
fn char_tokenizer_refuses_unseen_characters_by_name() {
    let tok = train_char(CORPUS).unwrap();
    let err = tok.encode("Speak, Zeus!").unwrap_err().to_string();
    assert!(err.contains("'Z'"), "{err}");
    assert!(err.contains("byte offset 7"), "{err}");
}

#[test]
fn bpe_round_trips_any_utf8() {
    let tok = bpe();
    assert_eq!(tok.kind(), TokenizerKind::Bpe);
    assert_eq!(tok.vocab_size(), 320);
    assert!(tok.end_of_text().is_some());
    let fixed = [
        "emoji 🙂🚀👩‍👩‍👧 and CJK 你好，世界",
        "control\t\u{0}\u{1}\u{1b}[0m\r\n\u{7f}",
        "  leading and trailing spaces  ",
        "a<|endoftext|>b",
        "",
    ];
    for text in fixed {
        let ids = tok.encode(text).unwrap();
        assert_eq!(tok.decode(&ids).unwrap(), text);
    }
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    for _ in 0..200 {
        let len = rng.random_range(0..40);
        let text: String = (0..len)
            .map(|_| loop {
                if let Some(c) = char::from_u32(rng.random_range(0..0x2_0000)) {
                    break c;
                }
            })
            .collect();
        let ids = tok.encode(&text).unwrap();
        assert_eq!(tok.decode(&ids).unwrap(), text);
    }
}

#[test]
fn bpe_merges_frequent_pairs() {
    let tok = bpe();
    let text = "Before we proceed any further";
    assert!(tok.encode(text).unwrap().len() < text.len() / 2);
}

#[test]
fn bpe_vocabulary_below_the_byte_alphabet_is_refused() {
    let err = train_bpe(&[CORPUS.to_string()], 100)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("--vocab-size 100") && err.contains("257"),
        "{err}"
    );
}

#[test]
fn save_and_load_keep_the_tokenizer() {
    let dir = tempfile::tempdir().unwrap();
    for tok in [bpe(), train_char(CORPUS).unwrap()] {
        let path = dir.path().join("tokenizer.json");
        tok.save(&path).unwrap();
        let loaded = Tokenizer::load(&path).unwrap();
        assert_eq!(loaded.kind(), tok.kind());
        assert_eq!(loaded.vocab_size(), tok.vocab_size());
        let text = "Speak, speak.\n";
        assert_eq!(loaded.encode(text).unwrap(), tok.encode(text).unwrap());
    }
}

#[test]
fn corpus_encoding_in_pieces_equals_whole_encoding() {
    let tok = bpe();
    let text = CORPUS.repeat(3000);
    assert_eq!(
        tok.encode_corpus(&text, |_| {}).unwrap(),
        tok.encode(&text).unwrap()
    );
}

/// tokenizer.json files written by seer, encoded by Python's `tokenizers`
/// (scripts/reference/tokenizer_parity.py): seer must produce the same ids.
#[test]
fn encodings_match_python_tokenizers() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tokenizers");
    let expected: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("expected.json")).unwrap()).unwrap();
    for kind in ["bpe", "char"] {
        let tok = Tokenizer::load(&dir.join(format!("{kind}.json"))).unwrap();
        let rows = expected[kind].as_array().unwrap();
        assert!(rows.len() >= 3);
        for row in rows {
            let text = row["text"].as_str().unwrap();
            let ids: Vec<u32> = row["ids"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_u64().unwrap() as u32)
                .collect();
            assert_eq!(tok.encode(text).unwrap(), ids, "{kind}: {text:?}");
            assert_eq!(tok.decode(&ids).unwrap(), row["decoded"].as_str().unwrap());
        }
    }
}
