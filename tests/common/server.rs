//! Running `seer serve` from tests, and the models they serve.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

/// A running server on a free port, stopped when dropped.
pub struct Server {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `seer serve` on a free port with `args` and waits until it listens.
pub fn start(args: &[&str]) -> Server {
    let mut child = Command::new(env!("CARGO_BIN_EXE_seer"))
        .args(["serve", "--port", "0"])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let base = line
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .unwrap_or_else(|| panic!("no address in {line:?}"))
        .to_string();
    Server { child, base }
}

/// A folder holding the tiny character GPT fixture with its tokenizer
/// (a character model has no end-of-text token: it always generates to its
/// token limit). Its API name is the folder's name.
pub fn char_model() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    for file in ["config.json", "model.safetensors"] {
        std::fs::copy(fixtures.join("gpt_tiny").join(file), dir.path().join(file)).unwrap();
    }
    std::fs::copy(
        fixtures.join("tokenizers/char.json"),
        dir.path().join("tokenizer.json"),
    )
    .unwrap();
    dir
}
