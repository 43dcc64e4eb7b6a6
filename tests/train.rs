//! Training runs: checkpoints round-trip bit for bit, a resumed or interrupted
//! run reproduces the uninterrupted losses exactly, and the run folder is a
//! loadable model folder.

use candle_core::Device;
use seer::data::{prepare, PrepareOptions};
use seer::tokenize::TokenizerKind;
use seer::train::{train, Checkpoint, MetricRecord, TrainConfig, TrainOptions, TrainOutcome};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

fn prepared(dir: &Path) -> PathBuf {
    let corpus = dir.join("corpus.txt");
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("data/tinyshakespeare.txt"),
    )
    .unwrap();
    std::fs::write(&corpus, &text[..30_000]).unwrap();
    let out = dir.join("data");
    prepare(&PrepareOptions {
        inputs: vec![corpus],
        kind: TokenizerKind::Char,
        vocab_size: 0,
        tokenizer_file: None,
        val_fraction: 0.1,
        out: out.clone(),
        overwrite: false,
    })
    .unwrap();
    out
}

fn options(data: &Path, out: &Path, config: TrainConfig, resume: bool) -> TrainOptions {
    TrainOptions {
        data: data.to_path_buf(),
        out: out.to_path_buf(),
        config: Some(config),
        resume,
        overwrite: false,
        verbose: false,
        device: Device::Cpu,
    }
}

fn config() -> TrainConfig {
    TrainConfig {
        dropout: 0.1,
        grad_accum: 2,
        ..TrainConfig::preset("tiny").unwrap()
    }
}

fn records(run: &Path) -> Vec<MetricRecord> {
    std::fs::read_to_string(run.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn losses(records: &[MetricRecord]) -> Vec<(u64, String, u64)> {
    records
        .iter()
        .map(|r| (r.step, r.split.clone(), r.loss.to_bits()))
        .collect()
}

#[test]
fn resumed_and_interrupted_runs_reproduce_the_uninterrupted_losses() {
    let dir = tempfile::tempdir().unwrap();
    let data = prepared(dir.path());
    let go = AtomicBool::new(false);

    let whole = dir.path().join("whole");
    let outcome = train(&options(&data, &whole, config(), false), &go).unwrap();
    assert!(matches!(outcome, TrainOutcome::Finished { .. }));
    let reference = losses(&records(&whole));
    assert_eq!(reference.iter().filter(|r| r.1 == "train").count(), 20);
    assert_eq!(reference.iter().filter(|r| r.1 == "val").count(), 3);
    for file in [
        "config.json",
        "model.safetensors",
        "tokenizer.json",
        "optimizer.safetensors",
        "trainer_state.json",
        "loss.png",
        "best/model.safetensors",
    ] {
        assert!(whole.join(file).exists(), "{file} missing");
    }

    // Stopped after 7 steps, then resumed to the end (max_iters may grow on resume).
    let split = dir.path().join("split");
    let first = TrainConfig {
        max_iters: 7,
        ..config()
    };
    train(&options(&data, &split, first, false), &go).unwrap();
    train(&options(&data, &split, config(), true), &go).unwrap();
    // The first part ended with its own final evaluation at step 7; every
    // other record is the uninterrupted run's, bit for bit.
    let resumed = losses(&records(&split));
    let extra: Vec<_> = resumed.iter().filter(|r| !reference.contains(r)).collect();
    assert_eq!(extra.len(), 1);
    assert_eq!((extra[0].0, extra[0].1.as_str()), (7, "val"));
    let without: Vec<_> = resumed
        .iter()
        .filter(|r| reference.contains(r))
        .cloned()
        .collect();
    assert_eq!(without, reference);

    // Ctrl-C: the stop flag is already set, so each call takes one step and checkpoints.
    let stopped = dir.path().join("stopped");
    let stop = AtomicBool::new(true);
    let outcome = train(&options(&data, &stopped, config(), false), &stop).unwrap();
    assert_eq!(outcome, TrainOutcome::Interrupted { step: 1 });
    let outcome = train(&options(&data, &stopped, config(), true), &stop).unwrap();
    assert_eq!(outcome, TrainOutcome::Interrupted { step: 2 });
    train(&options(&data, &stopped, config(), true), &go).unwrap();
    assert_eq!(losses(&records(&stopped)), reference);

    let a = std::fs::read(whole.join("model.safetensors")).unwrap();
    assert_eq!(a, std::fs::read(split.join("model.safetensors")).unwrap());
    assert_eq!(a, std::fs::read(stopped.join("model.safetensors")).unwrap());
}

#[test]
fn checkpoints_round_trip_bit_for_bit() {
    let dir = tempfile::tempdir().unwrap();
    let data = prepared(dir.path());
    let run = dir.path().join("run");
    train(
        &options(
            &data,
            &run,
            TrainConfig {
                max_iters: 5,
                ..config()
            },
            false,
        ),
        &AtomicBool::new(false),
    )
    .unwrap();
    let loaded = Checkpoint::load(&run, &Device::Cpu).unwrap();
    assert_eq!(loaded.state.step, 5);
    let copy = dir.path().join("copy");
    let tokenizer = seer::tokenize::Tokenizer::load(&run.join("tokenizer.json")).unwrap();
    Checkpoint::save(
        &copy,
        &loaded.model,
        &loaded.optimizer,
        &tokenizer,
        &loaded.state,
    )
    .unwrap();
    for file in [
        "model.safetensors",
        "optimizer.safetensors",
        "trainer_state.json",
        "config.json",
    ] {
        assert_eq!(
            std::fs::read(run.join(file)).unwrap(),
            std::fs::read(copy.join(file)).unwrap(),
            "{file} differs"
        );
    }
}

#[test]
fn a_save_killed_midway_is_finished_or_discarded() {
    let dir = tempfile::tempdir().unwrap();
    let data = prepared(dir.path());
    let run = dir.path().join("run");
    train(
        &options(
            &data,
            &run,
            TrainConfig {
                max_iters: 4,
                ..config()
            },
            false,
        ),
        &AtomicBool::new(false),
    )
    .unwrap();
    let staging = run.join(".checkpoint");

    // Killed while writing: no trainer_state.json staged, so the old checkpoint stands.
    std::fs::create_dir_all(&staging).unwrap();
    std::fs::write(staging.join("model.safetensors"), b"half a fi").unwrap();
    assert_eq!(Checkpoint::load(&run, &Device::Cpu).unwrap().state.step, 4);
    assert!(!staging.exists());

    // Killed while moving files into place: the staged checkpoint is completed.
    let before = std::fs::read(run.join("model.safetensors")).unwrap();
    std::fs::create_dir_all(&staging).unwrap();
    for file in [
        "model.safetensors",
        "optimizer.safetensors",
        "trainer_state.json",
    ] {
        std::fs::copy(run.join(file), staging.join(file)).unwrap();
    }
    std::fs::remove_file(run.join("model.safetensors")).unwrap();
    assert_eq!(Checkpoint::load(&run, &Device::Cpu).unwrap().state.step, 4);
    assert_eq!(
        std::fs::read(run.join("model.safetensors")).unwrap(),
        before
    );
}
