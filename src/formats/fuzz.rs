//! A mutation fuzzer for everything that reads a GGUF file: the reader, the
//! model config and weights, the tokenizer and the chat template. It flips
//! bits, truncates, overwrites fields with hostile numbers and splices
//! valid files, and counts the inputs that panic (the only failure: an
//! error is the right answer to a malformed file).

use crate::formats::{ChatMessage, Gguf, GgufTokenizer};
use crate::kernels::quant::WeightBytes;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;

/// What a fuzzing run found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FuzzReport {
    /// Inputs tried.
    pub inputs: u64,
    /// Inputs the reader accepted.
    pub parsed: u64,
    /// Inputs from which a whole model loaded.
    pub loaded: u64,
    /// Inputs that panicked.
    pub panics: u64,
    /// The first few of them: the seed file's index, the iteration and the panic message.
    pub first_panics: Vec<(usize, u64, String)>,
}

/// Numbers that break careless readers: zero, one, powers of two and their
/// neighbours, the largest values of every width.
const HOSTILE: [u64; 12] = [
    0,
    1,
    2,
    4,
    5,
    31,
    33,
    0x7f,
    0xffff,
    0x7fff_ffff,
    0xffff_ffff,
    u64::MAX,
];

/// One mutation of `seed`.
fn mutate(seed: &[u8], other: &[u8], rng: &mut StdRng) -> Vec<u8> {
    let mut bytes = seed.to_vec();
    let rounds = rng.random_range(1..=4);
    for _ in 0..rounds {
        if bytes.is_empty() {
            break;
        }
        let at = rng.random_range(0..bytes.len());
        match rng.random_range(0..6) {
            0 => bytes[at] ^= 1 << rng.random_range(0..8),
            1 => bytes[at] = rng.random(),
            2 => {
                let value = HOSTILE[rng.random_range(0..HOSTILE.len())];
                let width = [1, 2, 4, 8][rng.random_range(0..4)];
                let end = (at + width).min(bytes.len());
                let le = value.to_le_bytes();
                bytes[at..end].copy_from_slice(&le[..end - at]);
            }
            3 => bytes.truncate(at),
            4 => {
                // Splice: this file's head, another file's tail.
                let from = rng.random_range(0..other.len().max(1));
                bytes.truncate(at);
                bytes.extend_from_slice(other.get(from..).unwrap_or_default());
            }
            _ => {
                // Repeat or drop a run of bytes.
                let len = rng.random_range(1..=16).min(bytes.len() - at);
                if rng.random() {
                    let run = bytes[at..at + len].to_vec();
                    bytes.splice(at..at, run);
                } else {
                    bytes.drain(at..at + len);
                }
            }
        }
    }
    bytes
}

/// Reads one input as every consumer of a GGUF file would; returns whether
/// the reader accepted it and whether a whole model loaded.
fn consume(bytes: Vec<u8>) -> (bool, bool) {
    let Ok(gguf) = Gguf::parse(WeightBytes::new(bytes), Path::new("fuzz.gguf")) else {
        return (false, false);
    };
    if let Ok(vocabulary) = GgufTokenizer::from_metadata(gguf.metadata()) {
        let _ = vocabulary.encode("Hello, world! 123 <|im_start|>", true);
        if let Ok(template) = vocabulary.chat_template() {
            let _ = template.render(&[ChatMessage::new("user", "hi")], true);
        }
    }
    let loaded = crate::model::Llama::from_gguf(&gguf, Some(64)).is_ok();
    (true, loaded)
}

/// Runs `iterations` mutations of the `seeds` (valid GGUF files), from
/// `seed`; `on_progress` is called every 1,000 inputs with the report so far.
pub fn fuzz_gguf(
    seeds: &[Vec<u8>],
    iterations: u64,
    seed: u64,
    mut on_progress: impl FnMut(&FuzzReport),
) -> FuzzReport {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut report = FuzzReport::default();
    if seeds.is_empty() {
        return report;
    }
    for i in 0..iterations {
        let pick = rng.random_range(0..seeds.len());
        let other = &seeds[rng.random_range(0..seeds.len())];
        let input = mutate(&seeds[pick], other, &mut rng);
        report.inputs += 1;
        match catch_unwind(AssertUnwindSafe(|| consume(input))) {
            Ok((parsed, loaded)) => {
                report.parsed += u64::from(parsed);
                report.loaded += u64::from(loaded);
            }
            Err(panic) => {
                report.panics += 1;
                if report.first_panics.len() < 10 {
                    let message = panic
                        .downcast_ref::<String>()
                        .cloned()
                        .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                        .unwrap_or_default();
                    report.first_panics.push((pick, i, message));
                }
            }
        }
        if (i + 1) % 1000 == 0 {
            on_progress(&report);
        }
    }
    report
}
