//! A short run of the GGUF fuzzer (`cargo run --release --example fuzz_gguf`
//! runs a million): mutations of the committed GGUF fixtures must make the
//! reader, the model loader, the tokenizer and the chat template return
//! errors, never panic.

use seer::formats::fuzz_gguf;

#[test]
fn mutated_gguf_files_never_panic() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/llama");
    let seeds: Vec<Vec<u8>> = ["tiny-q4_1.gguf", "tiny-q4_k.gguf", "tiny-gemma3-q8_0.gguf"]
        .iter()
        .map(|name| std::fs::read(dir.join(name)).unwrap())
        .collect();
    let report = fuzz_gguf(&seeds, 3_000, 1, |_| {});
    assert_eq!(report.inputs, 3_000);
    assert_eq!(report.panics, 0, "{:?}", report.first_panics);
    // The mutations reach past the reader: some inputs still parse, and some
    // still load as a model.
    assert!(report.parsed > 100 && report.loaded > 10, "{report:?}");
}
