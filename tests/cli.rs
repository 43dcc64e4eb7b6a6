//! The `seer` binary end to end: the happy path on a tiny run, and bad input
//! that must end in a one-line error naming the problem, exit code 1, no panic.

mod common;

use common::run::{fails, seer, seer_with_input};
use std::path::Path;
use std::process::Command;

fn write_corpus(dir: &Path, chars: usize) -> String {
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("data/tinyshakespeare.txt"),
    )
    .unwrap();
    let path = dir.join("corpus.txt");
    std::fs::write(&path, &text[..chars]).unwrap();
    path.to_str().unwrap().to_string()
}

fn s(path: &Path) -> String {
    path.to_str().unwrap().to_string()
}

#[test]
fn prepare_train_generate_end_to_end() {
    let dir = tempfile::tempdir().unwrap();
    let corpus = write_corpus(dir.path(), 20_000);
    let data = s(&dir.path().join("data"));
    let run = s(&dir.path().join("run"));
    let out = seer(&["prepare", "--tokenizer", "char", &corpus, "-o", &data]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stdout.contains("train") && out.stdout.contains("val"));
    let out = seer(&[
        "train", "--data", &data, "--preset", "tiny", "-o", &run, "--quiet",
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stdout.contains("val loss"), "{}", out.stdout);
    let generate = |seed: &str| {
        seer(&[
            "generate",
            "--model",
            &run,
            "--seed",
            seed,
            "--max-tokens",
            "40",
            "ROMEO:",
        ])
    };
    let (a, b, c) = (generate("1"), generate("1"), generate("2"));
    assert_eq!(a.code, 0, "{}", a.stderr);
    assert!(a.stdout.starts_with("ROMEO:") && a.stdout.chars().count() > 40);
    assert_eq!(a.stdout, b.stdout, "same seed, same text");
    assert_ne!(a.stdout, c.stdout, "another seed, other text");

    // JSON output, several samples, stop sequences.
    let out = seer(&[
        "generate",
        "--model",
        &run,
        "--json",
        "-n",
        "2",
        "--max-tokens",
        "12",
        "ROMEO:",
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let lines: Vec<serde_json::Value> = out
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    for (i, line) in lines.iter().enumerate() {
        assert_eq!(line["index"], i as u64);
        assert_eq!(line["finish_reason"], "length");
        assert_eq!(line["completion_tokens"], 12);
        assert_eq!(line["token_ids"].as_array().unwrap().len(), 12);
        assert_eq!(line["prompt_tokens"], 6);
    }
    assert_ne!(
        lines[0]["text"], lines[1]["text"],
        "samples use different seeds"
    );
    // The same model with bf16 weight matrices generates as well.
    let out = seer(&[
        "generate",
        "--model",
        &run,
        "--json",
        "--weights",
        "bf16",
        "--max-tokens",
        "12",
        "ROMEO:",
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let line: serde_json::Value = serde_json::from_str(out.stdout.trim()).unwrap();
    assert_eq!(line["completion_tokens"], 12, "{}", out.stdout);
    let out = seer(&[
        "generate",
        "--model",
        &run,
        "--json",
        "--stop",
        "e",
        "--stop",
        " ",
        "--max-tokens",
        "200",
        "ROMEO:",
    ]);
    let line: serde_json::Value = serde_json::from_str(out.stdout.trim()).unwrap();
    assert_eq!(line["finish_reason"], "stop", "{}", out.stdout);
    let text = line["text"].as_str().unwrap();
    assert!(!text.contains('e') && !text.contains(' '), "{text:?}");
    let streamed = seer(&[
        "generate",
        "--model",
        &run,
        "--stop",
        "e",
        "--stop",
        " ",
        "--max-tokens",
        "200",
        "ROMEO:",
    ]);
    assert_eq!(
        streamed.stdout,
        format!("ROMEO:{text}\n"),
        "streamed text equals the JSON text"
    );

    // Chat with piped input: commands, turns, a full window, saving.
    let saved = dir.path().join("chat.json");
    let script = format!(
        "/set temperature 0\n/set max_tokens 8\nhi\n/history\n/set bogus 1\nyo\nok\n/save {}\n/reset\n/history\nthis message is far too long for the tiny context\n/quit\nnever read\n",
        saved.display()
    );
    let out = seer_with_input(&["chat", "--model", &run], &script);
    assert_eq!(out.code, 0, "{}", out.stderr);
    // Three replies, and one "Assistant" line in /history.
    assert_eq!(
        out.stdout.matches("Assistant:").count(),
        3 + 1,
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("(temperature = 0)") && out.stdout.contains("User: hi"),
        "{}",
        out.stdout
    );
    assert!(
        out.stderr
            .contains("does not fit the model's context of 32 tokens"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("unknown setting 'bogus'"),
        "{}",
        out.stderr
    );
    // The tiny model's context is 32 characters: three turns do not fit.
    assert!(out.stderr.contains("dropped the"), "{}", out.stderr);
    let turns: Vec<serde_json::Value> =
        serde_json::from_str(&std::fs::read_to_string(&saved).unwrap()).unwrap();
    assert_eq!(turns.last().unwrap()["role"], "assistant");
    assert!(out.stdout.contains("(conversation cleared)"));

    // Bad input around an existing run.
    fails(
        &["generate", "--model", &run, "--top-p", "1.5", "hi"],
        &["--top-p 1.5"],
    );
    fails(
        &["generate", "--model", &run, "--top-k", "0", "hi"],
        &["--top-k"],
    );
    fails(
        &["train", "--data", &data, "--preset", "tiny", "-o", &run],
        &["already exists", "--resume", "--overwrite"],
    );
    fails(
        &[
            "train",
            "--data",
            &data,
            "-o",
            &run,
            "--resume",
            "--n-layer",
            "3",
        ],
        &["n_layer", "3", "2"],
    );
    fails(
        &["generate", "--model", &run, "ROMEO§"],
        &["'§'", "vocabulary"],
    );
    fails(
        &["generate", "--model", &run, "--temperature=-1", "hi"],
        &["--temperature"],
    );
    let model = dir.path().join("run/model.safetensors");
    let bytes = std::fs::read(&model).unwrap();
    std::fs::write(&model, &bytes[..bytes.len() / 2]).unwrap();
    fails(
        &["generate", "--model", &run, "hi"],
        &["model.safetensors", "truncated or corrupt"],
    );
    fails(
        &["train", "--data", &data, "-o", &run, "--resume"],
        &["model.safetensors"],
    );
}

#[test]
fn corpus_problems_are_reported() {
    let dir = tempfile::tempdir().unwrap();
    let out = s(&dir.path().join("out"));
    fails(
        &["prepare", "/no/such/corpus.txt", "-o", &out],
        &["/no/such/corpus.txt"],
    );
    let empty = dir.path().join("empty.txt");
    std::fs::write(&empty, "").unwrap();
    fails(&["prepare", &s(&empty), "-o", &out], &["empty"]);
    let binary = dir.path().join("binary.txt");
    std::fs::write(&binary, [0x66, 0x6f, 0xff, 0xfe]).unwrap();
    fails(
        &["prepare", &s(&binary), "-o", &out],
        &["binary.txt", "UTF-8"],
    );
    let corpus = write_corpus(dir.path(), 20);
    fails(
        &["prepare", &corpus, "-o", &out, "--val-fraction", "0"],
        &["--val-fraction"],
    );
    fails(
        &[
            "prepare",
            &corpus,
            "-o",
            &out,
            "--val-fraction",
            "0.01",
            "--tokenizer",
            "char",
        ],
        &["--val-fraction", "0 val"],
    );
    fails(
        &["prepare", &corpus, "-o", &out, "--vocab-size", "100"],
        &["--vocab-size 100", "257"],
    );
}

#[test]
fn training_problems_are_reported() {
    let dir = tempfile::tempdir().unwrap();
    let small = write_corpus(dir.path(), 300);
    let data = s(&dir.path().join("data"));
    assert_eq!(
        seer(&["prepare", "--tokenizer", "char", &small, "-o", &data]).code,
        0
    );
    let run = s(&dir.path().join("run"));
    fails(
        &[
            "train",
            "--data",
            &data,
            "--preset",
            "tiny",
            "-o",
            &run,
            "--block-size",
            "64",
        ],
        &["val.bin", "one block"],
    );
    fails(
        &[
            "train", "--data", &data, "--preset", "tiny", "-o", &run, "--n-embd", "30", "--n-head",
            "4",
        ],
        &["n_embd 30", "n_head 4"],
    );
    fails(
        &["train", "--data", &data, "--preset", "nope", "-o", &run],
        &["unknown preset 'nope'", "shakespeare-char-cpu"],
    );
    fails(
        &["train", "--data", &data, "-o", &run, "--resume"],
        &["--resume", "no checkpoint"],
    );
    let toml = dir.path().join("run.toml");
    std::fs::write(&toml, "n_layers = 3\n").unwrap();
    fails(
        &["train", "--data", &data, "--config", &s(&toml), "-o", &run],
        &["run.toml", "n_layers"],
    );
    fails(
        &[
            "train",
            "--data",
            &s(&dir.path().join("nowhere")),
            "-o",
            &run,
        ],
        &["nowhere", "meta.json"],
    );

    let small_block = [
        "train",
        "--data",
        &data,
        "--preset",
        "tiny",
        "--block-size",
        "8",
        "-o",
        &run,
    ];
    let shard = dir.path().join("data/train.bin");
    let bytes = std::fs::read(&shard).unwrap();
    std::fs::write(&shard, &bytes[..bytes.len() - 1]).unwrap();
    fails(&small_block, &["train.bin", "truncated"]);
    let mut bad = bytes.clone();
    bad[0] = b'X';
    std::fs::write(&shard, &bad).unwrap();
    fails(&small_block, &["train.bin", "magic"]);
}

#[test]
fn the_demo_trains_and_samples() {
    let dir = tempfile::tempdir().unwrap();
    let out = seer(&["demo", "--out", &s(dir.path()), "--iters", "10"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stdout.contains("val loss"), "{}", out.stdout);
    assert!(out.stdout.contains("ROMEO:"), "{}", out.stdout);
    assert!(dir.path().join("model/loss.png").exists());
    // Text to image with the built-in shapes model: 16 pictures in a 4×4 grid.
    assert!(
        out.stdout.contains("built-in shapes model"),
        "{}",
        out.stdout
    );
    let grid = image::open(dir.path().join("shapes.png"))
        .unwrap()
        .to_rgb8();
    assert_eq!(grid.dimensions(), (4 * 32 + 3 * 2, 4 * 32 + 3 * 2));
}

#[test]
fn a_folder_of_files_is_one_corpus() {
    let dir = tempfile::tempdir().unwrap();
    let corpus = dir.path().join("corpus");
    std::fs::create_dir_all(corpus.join("more")).unwrap();
    std::fs::write(
        corpus.join("a.txt"),
        "the first document, with some words in it\n".repeat(50),
    )
    .unwrap();
    std::fs::write(
        corpus.join("more/b.txt"),
        "a second document: more words, other words\n".repeat(50),
    )
    .unwrap();
    std::fs::write(corpus.join(".hidden"), "skipped").unwrap();
    let data = dir.path().join("data");
    let out = seer(&[
        "prepare",
        &s(&corpus),
        "-o",
        &s(&data),
        "--vocab-size",
        "300",
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let meta: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(data.join("meta.json")).unwrap()).unwrap();
    assert_eq!(meta["sources"].as_array().unwrap().len(), 2);
    assert_eq!(meta["tokenizer"], "bpe");
    // BPE stops merging when no pair occurs twice, so a small corpus may end below the target.
    let vocab = meta["vocab_size"].as_u64().unwrap();
    assert!((258..=300).contains(&vocab), "vocab {vocab}");
    fails(
        &["prepare", &s(&corpus), "-o", &s(&data)],
        &["already holds prepared data", "--overwrite"],
    );
}

#[test]
fn ctrl_c_saves_a_checkpoint_and_resume_finishes_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let corpus = write_corpus(dir.path(), 20_000);
    let data = s(&dir.path().join("data"));
    let run = dir.path().join("run");
    assert_eq!(
        seer(&["prepare", "--tokenizer", "char", &corpus, "-o", &data]).code,
        0
    );
    let child = Command::new(env!("CARGO_BIN_EXE_seer"))
        .args([
            "train",
            "--data",
            &data,
            "--preset",
            "tiny",
            "--max-iters",
            "100000",
            "-o",
            &s(&run),
            "--quiet",
        ])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // The first checkpoint follows the evaluation at step 0.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !run.join("trainer_state.json").exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "no checkpoint within 60 s"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    std::thread::sleep(std::time::Duration::from_millis(300));
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(130), "{stdout}");
    assert!(
        stdout.contains("interrupted: checkpoint saved at step"),
        "{stdout}"
    );
    let state: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("trainer_state.json")).unwrap())
            .unwrap();
    let step = state["step"].as_u64().unwrap();
    assert!(step > 0);
    let out = seer(&[
        "train",
        "--data",
        &data,
        "-o",
        &s(&run),
        "--resume",
        "--max-iters",
        &(step + 5).to_string(),
        "--quiet",
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let state: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("trainer_state.json")).unwrap())
            .unwrap();
    assert_eq!(state["step"].as_u64().unwrap(), step + 5);
}
