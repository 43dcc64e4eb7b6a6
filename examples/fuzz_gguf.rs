//! Fuzzes seer's GGUF loading (reader, model config and weights, tokenizer,
//! chat template) with mutations of valid files, and exits non-zero if any
//! input panics.
//!
//! ```text
//! cargo run --release --example fuzz_gguf -- [--iterations N] [--seed S] FILE.gguf...
//! ```
//!
//! Without files it uses the committed fixtures under tests/fixtures/.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

fn main() -> ExitCode {
    let mut iterations = 1_000_000u64;
    let mut seed = 0u64;
    let mut files = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let number = |v: Option<String>| v.and_then(|v| v.parse().ok());
        match arg.as_str() {
            "--iterations" => match number(args.next()) {
                Some(n) => iterations = n,
                None => return usage("--iterations takes a whole number"),
            },
            "--seed" => match number(args.next()) {
                Some(n) => seed = n,
                None => return usage("--seed takes a whole number"),
            },
            _ => files.push(PathBuf::from(arg)),
        }
    }
    if files.is_empty() {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
        for dir in ["llama", "gguf"] {
            if let Ok(entries) = std::fs::read_dir(root.join(dir)) {
                files.extend(
                    entries
                        .filter_map(|e| e.ok().map(|e| e.path()))
                        .filter(|p| p.extension().is_some_and(|e| e == "gguf")),
                );
            }
        }
        files.sort();
    }
    let mut seeds = Vec::new();
    for file in &files {
        match std::fs::read(file) {
            Ok(bytes) => seeds.push(bytes),
            Err(e) => return usage(&format!("{}: {e}", file.display())),
        }
    }
    if seeds.is_empty() {
        return usage("no GGUF files to start from");
    }
    // Panics are caught and counted; keep their default messages off the terminal.
    std::panic::set_hook(Box::new(|_| {}));
    let started = Instant::now();
    let report = seer::formats::fuzz_gguf(&seeds, iterations, seed, |r| {
        if r.inputs % 100_000 == 0 {
            eprintln!(
                "{} inputs, {} parsed, {} loaded, {} panics ({:.0} s)",
                r.inputs,
                r.parsed,
                r.loaded,
                r.panics,
                started.elapsed().as_secs_f64()
            );
        }
    });
    println!(
        "{} inputs from {} files (seed {seed}): {} parsed, {} loaded a model, {} panicked, in {:.1} s",
        report.inputs,
        seeds.len(),
        report.parsed,
        report.loaded,
        report.panics,
        started.elapsed().as_secs_f64()
    );
    for (file, iteration, message) in &report.first_panics {
        println!(
            "panic: {} mutation {iteration}: {message}",
            files[*file].display()
        );
    }
    if report.panics == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn usage(message: &str) -> ExitCode {
    eprintln!("error: {message}\nusage: fuzz_gguf [--iterations N] [--seed S] FILE.gguf...");
    ExitCode::from(2)
}
