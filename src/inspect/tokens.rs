//! How a text splits into tokens: each token's id, its vocabulary entry and
//! the bytes it stands for, with byte-level pieces that are not whole
//! characters shown as bytes.

use crate::tokenize::Tokenizer;
use crate::{Error, Result};
use serde::Serialize;
use tokenizers::decoders::DecoderWrapper;

/// One token of a text.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TokenPiece {
    /// Its id.
    pub id: u32,
    /// Its entry in the vocabulary (byte-level BPE writes a space as `Ġ`).
    pub token: String,
    /// The bytes of text it stands for.
    pub bytes: Vec<u8>,
    /// Whether those bytes are not a whole UTF-8 text on their own: the
    /// token holds part of a character (byte-level BPE's byte fallback).
    pub byte_fallback: bool,
}

impl TokenPiece {
    /// The token's text, or its bytes written as `<0xE2>` when they are not
    /// whole characters.
    pub fn text(&self) -> String {
        match std::str::from_utf8(&self.bytes) {
            Ok(text) => text.to_string(),
            Err(_) => self.bytes.iter().map(|b| format!("<0x{b:02X}>")).collect(),
        }
    }

    /// [`TokenPiece::text`] with whitespace made visible (`␣`, `↵`, `⇥`).
    pub fn display(&self) -> String {
        visible(&self.text())
    }
}

/// `text` with spaces, newlines and tabs drawn as visible marks (`␣`, `↵`,
/// `⇥`, `␍`) and other control characters as their code (`<0x15>`).
pub fn visible(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            ' ' => "␣".to_string(),
            '\n' => "↵".to_string(),
            '\t' => "⇥".to_string(),
            '\r' => "␍".to_string(),
            c if c.is_control() => format!("<0x{:02X}>", c as u32),
            other => other.to_string(),
        })
        .collect()
}

/// The tokens of `text`, in order.
pub fn split_tokens(tokenizer: &Tokenizer, text: &str) -> Result<Vec<TokenPiece>> {
    let ids = tokenizer.encode(text)?;
    ids.iter().map(|&id| token_piece(tokenizer, id)).collect()
}

/// The piece for token `id`.
pub fn token_piece(tokenizer: &Tokenizer, id: u32) -> Result<TokenPiece> {
    let inner = tokenizer.inner();
    let token = inner
        .id_to_token(id)
        .ok_or_else(|| Error::Tokenizer(format!("token id {id} is not in the vocabulary")))?;
    let special = inner.get_added_tokens_decoder().contains_key(&id);
    let byte_level = matches!(inner.get_decoder(), Some(DecoderWrapper::ByteLevel(_)));
    let bytes = if special {
        token.clone().into_bytes()
    } else if byte_level {
        token
            .chars()
            .map(byte_of_char)
            .collect::<Option<Vec<u8>>>()
            .ok_or_else(|| {
                Error::Tokenizer(format!(
                    "token {id} ({token:?}) is not in byte-level BPE's alphabet"
                ))
            })?
    } else {
        tokenizer.decode(&[id])?.into_bytes()
    };
    let byte_fallback = std::str::from_utf8(&bytes).is_err();
    Ok(TokenPiece {
        id,
        token,
        bytes,
        byte_fallback,
    })
}

/// The byte that GPT-2's byte-level alphabet writes as `c`: printable
/// Latin-1 characters stand for themselves, and the other 68 bytes, in
/// order, for the characters from U+0100 on.
fn byte_of_char(c: char) -> Option<u8> {
    let printable = |b: u8| matches!(b, b'!'..=b'~' | 0xA1..=0xAC | 0xAE..=0xFF);
    let code = c as u32;
    if code < 256 {
        return printable(code as u8).then_some(code as u8);
    }
    let index = (code - 256) as usize;
    (0..=255u8).filter(|&b| !printable(b)).nth(index)
}

#[cfg(test)]
mod tests {
    use super::byte_of_char;

    #[test]
    fn gpt2_byte_alphabet_inverts() {
        assert_eq!(byte_of_char('Ġ'), Some(b' '));
        assert_eq!(byte_of_char('Ċ'), Some(b'\n'));
        assert_eq!(byte_of_char('a'), Some(b'a'));
        assert_eq!(byte_of_char('Ā'), Some(0));
        assert_eq!(byte_of_char('ł'), Some(0xA0));
        assert_eq!(byte_of_char('Ń'), Some(0xAD));
        assert_eq!(byte_of_char(' '), None);
        assert_eq!(byte_of_char('ń'), None);
    }
}
