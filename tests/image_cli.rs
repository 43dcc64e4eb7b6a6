//! Text to image end to end on a tiny model: `seer train image`, `seer
//! generate image`, `seer eval image`, determinism, and bad input.

mod common;

use common::run::{fails, seer};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// A tiny image model, trained once for all tests (a few seconds).
fn model() -> &'static Path {
    static DIR: OnceLock<(tempfile::TempDir, PathBuf)> = OnceLock::new();
    &DIR.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let model = dir.path().join("model");
        let out = seer(&[
            "train",
            "image",
            "--preset",
            "tiny",
            "-o",
            model.to_str().unwrap(),
            "--quiet",
        ]);
        assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
        assert!(out.stdout.contains("stage 1 (CLIP)"), "{}", out.stdout);
        (dir, model)
    })
    .1
}

fn generate(prompt: &str, seed: &str, out: &Path, extra: &[&str]) -> common::run::Output {
    let mut args = vec![
        "generate",
        "image",
        prompt,
        "--model",
        model().to_str().unwrap(),
    ];
    args.extend([
        "--steps",
        "4",
        "--seed",
        seed,
        "-o",
        out.to_str().unwrap(),
        "--quiet",
    ]);
    args.extend(extra);
    seer(&args)
}

#[test]
fn training_writes_a_complete_model_folder() {
    for part in [
        "model_index.json",
        "tokenizer/tokenizer.json",
        "text_encoder/config.json",
        "text_encoder/model.safetensors",
        "image_encoder/model.safetensors",
        "denoiser/config.json",
        "denoiser/model.safetensors",
        "scheduler/scheduler_config.json",
        "metrics.jsonl",
    ] {
        assert!(model().join(part).is_file(), "{part} missing");
    }
    let again = seer(&[
        "train",
        "image",
        "--preset",
        "tiny",
        "-o",
        model().to_str().unwrap(),
    ]);
    assert_eq!(
        again.code, 1,
        "an existing model is not overwritten silently"
    );
    assert!(again.stderr.contains("--overwrite"), "{}", again.stderr);
}

#[test]
fn generation_is_deterministic_for_a_seed() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b, c) = (
        dir.path().join("a.png"),
        dir.path().join("b.png"),
        dir.path().join("c.png"),
    );
    for (path, seed) in [(&a, "3"), (&b, "3"), (&c, "4")] {
        let out = generate("a red circle", seed, path, &["-n", "4"]);
        assert_eq!(out.code, 0, "{}", out.stderr);
    }
    let read = |p: &Path| image::open(p).unwrap().to_rgb8();
    assert_eq!(read(&a), read(&b), "same seed, same pictures");
    assert_ne!(read(&a), read(&c), "another seed, other pictures");
    // Four 16-pixel pictures in a 2×2 grid with a 2-pixel gap.
    assert_eq!(read(&a).dimensions(), (34, 34));
    let ddpm = generate("a red circle", "3", &c, &["--sampler", "ddpm"]);
    assert_eq!(ddpm.code, 0, "{}", ddpm.stderr);
}

#[test]
fn empty_and_overlong_prompts_are_explained() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("x.png");
    let empty = generate("", "1", &out, &[]);
    assert_eq!(empty.code, 0);
    assert!(empty.stderr.contains("unconditional"), "{}", empty.stderr);
    let long = "a red circle and a blue square ".repeat(10);
    let cut = generate(&long, "1", &out, &[]);
    assert_eq!(cut.code, 0);
    assert!(cut.stderr.contains("cut off"), "{}", cut.stderr);
}

#[test]
fn bad_generation_settings_fail_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("x.png");
    let m = model().to_str().unwrap();
    let o = out.to_str().unwrap();
    fails(
        &[
            "generate", "image", "a", "--model", m, "--steps", "0", "-o", o,
        ],
        &["steps"],
    );
    fails(
        &[
            "generate",
            "image",
            "a",
            "--model",
            m,
            "--guidance",
            "-1",
            "-o",
            o,
        ],
        &["guidance"],
    );
    fails(
        &[
            "generate",
            "image",
            "a",
            "--model",
            m,
            "--sampler",
            "euler",
            "-o",
            o,
        ],
        &["sampler"],
    );
    fails(
        &["generate", "image", "a", "--model", m, "-n", "0", "-o", o],
        &["-n"],
    );
    fails(
        &["generate", "image", "a", "--model", o, "-o", o],
        &["model_index.json"],
    );
    // A model folder with a part missing names the part.
    let broken = dir.path().join("broken");
    std::fs::create_dir_all(&broken).unwrap();
    for entry in [
        "model_index.json",
        "tokenizer",
        "image_encoder",
        "scheduler",
        "denoiser",
    ] {
        copy(&model().join(entry), &broken.join(entry));
    }
    fails(
        &[
            "generate",
            "image",
            "a",
            "--model",
            broken.to_str().unwrap(),
            "-o",
            o,
        ],
        &["text_encoder"],
    );
}

fn copy(from: &Path, to: &Path) {
    if from.is_dir() {
        std::fs::create_dir_all(to).unwrap();
        for entry in std::fs::read_dir(from).unwrap() {
            let entry = entry.unwrap();
            copy(&entry.path(), &to.join(entry.file_name()));
        }
    } else {
        std::fs::copy(from, to).unwrap();
    }
}

#[test]
fn eval_prints_the_clip_scores_and_the_category_table() {
    let dir = tempfile::tempdir().unwrap();
    let examples = dir.path().join("examples.png");
    let out = seer(&[
        "eval",
        "image",
        "--model",
        model().to_str().unwrap(),
        "--per-category",
        "2",
        "--clip-pairs",
        "40",
        "--steps",
        "3",
        "--examples",
        examples.to_str().unwrap(),
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    // One row of pictures per category, as many as were judged (two).
    let grid = image::open(&examples).unwrap();
    let side = grid.width().div_ceil(2) - 1;
    assert_eq!(
        grid.height(),
        6 * (side + 2) - 2,
        "{}x{}",
        grid.width(),
        grid.height()
    );
    for line in [
        "text→image recall@1",
        "hard negatives",
        "single object",
        "counting",
        "overall",
    ] {
        assert!(
            out.stdout.contains(line),
            "'{line}' missing from:\n{}",
            out.stdout
        );
    }
}

#[test]
fn training_on_a_folder_without_usable_pictures_fails_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("broken.png"), b"not a png").unwrap();
    std::fs::write(dir.path().join("broken.txt"), "a caption").unwrap();
    let out = dir.path().join("model");
    fails(
        &[
            "train",
            "image",
            "--preset",
            "tiny",
            "--data",
            dir.path().to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
        ],
        &["no usable captioned images", "1 skipped"],
    );
}

#[test]
fn training_on_mnist_runs() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("model");
    let o = out.to_str().unwrap();
    let mnist_args = |extra: &[&'static str]| -> Vec<&str> {
        let mut args = vec![
            "train", "image", "--preset", "tiny", "--data", "mnist", "-o", o,
        ];
        args.extend(extra);
        args
    };
    let run = seer(&mnist_args(&[
        "--image-size",
        "32",
        "--quiet",
        "--clip-iters",
        "3",
        "--iters",
        "3",
    ]));
    assert_eq!(run.code, 0, "{}", run.stderr);
    let eval = seer(&[
        "eval",
        "image",
        "--model",
        o,
        "--data",
        "mnist",
        "--per-digit",
        "1",
        "--classifier-steps",
        "2",
        "--steps",
        "2",
    ]);
    assert_eq!(eval.code, 0, "{}", eval.stderr);
    assert!(
        eval.stdout.contains("judging classifier"),
        "{}",
        eval.stdout
    );
    assert!(
        eval.stdout.contains("read as the prompted digit"),
        "{}",
        eval.stdout
    );
    fails(&mnist_args(&["--overwrite"]), &["too small"]);
    // Digits' captions have no colours or positions to swap.
    let config = dir.path().join("contrast.toml");
    for (setting, error) in [
        ("hard_negatives = true", "shapes world"),
        ("caption_contrast = 1.0", "shapes world"),
        ("position_contrast = 1.0", "shapes world"),
        ("shape_contrast = 1.0", "shapes world"),
        (
            "position_contrast = -1.0",
            "position_contrast must be a weight",
        ),
    ] {
        std::fs::write(&config, setting).unwrap();
        let mut args = mnist_args(&["--image-size", "32", "--overwrite", "--config"]);
        args.push(config.to_str().unwrap());
        fails(&args, &[error]);
    }
}

#[test]
fn training_continues_from_a_saved_model() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("more");
    let o = out.to_str().unwrap();
    let from = model().to_str().unwrap();
    fn continued_args<'a>(from: &'a str, o: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
        let mut args = vec![
            "train",
            "image",
            "--preset",
            "tiny",
            "--continue-from",
            from,
            "-o",
            o,
        ];
        args.extend(extra);
        args
    }
    let continued = |extra: &[&str]| seer(&continued_args(from, o, extra));
    let run = continued(&["--iters", "10", "--quiet"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    // Stage 1 is reused, not retrained.
    assert!(!run.stdout.contains("stage 1 (CLIP)"), "{}", run.stdout);
    let first_loss = |path: &Path| -> f64 {
        let metrics = std::fs::read_to_string(path.join("metrics.jsonl")).unwrap();
        let line = metrics
            .lines()
            .find(|l| l.contains("\"diffusion\""))
            .unwrap()
            .to_string();
        let record: serde_json::Value = serde_json::from_str(&line).unwrap();
        record["loss"].as_f64().unwrap()
    };
    // The continued run starts where the first one ended, well below where it began.
    let (before, after) = (first_loss(model()), first_loss(&out));
    assert!(
        after < 0.8 * before,
        "first logged loss {after} against {before}"
    );
    assert_eq!(
        std::fs::read(out.join("tokenizer/tokenizer.json")).unwrap(),
        std::fs::read(model().join("tokenizer/tokenizer.json")).unwrap()
    );
    // A wider caption window in --config adds a caption mix that starts at
    // zero: the denoiser grows, and still starts where the first run ended.
    let wider = dir.path().join("wider.toml");
    std::fs::write(&wider, "[denoiser]\ncaption_window = 1\n").unwrap();
    let grown = continued(&[
        "--iters",
        "10",
        "--quiet",
        "--overwrite",
        "--config",
        wider.to_str().unwrap(),
    ]);
    assert_eq!(grown.code, 0, "{}", grown.stderr);
    let config = std::fs::read_to_string(out.join("denoiser/config.json")).unwrap();
    assert!(config.contains("\"caption_window\": 1"), "{config}");
    assert!(
        first_loss(&out) < 0.8 * before,
        "grown: {}",
        first_loss(&out)
    );
    let clip_only = dir.path().join("clip");
    let c = clip_only.to_str().unwrap();
    assert_eq!(
        seer(&["train", "clip", "--preset", "tiny", "-o", c, "--quiet"]).code,
        0
    );
    // The denoiser goes on with another folder's stage 1.
    let swapped = continued(&[
        "--text-encoder",
        c,
        "--iters",
        "2",
        "--quiet",
        "--overwrite",
    ]);
    assert_eq!(swapped.code, 0, "{}", swapped.stderr);
    assert_eq!(
        std::fs::read(out.join("text_encoder/model.safetensors")).unwrap(),
        std::fs::read(clip_only.join("text_encoder/model.safetensors")).unwrap()
    );
    // ... but not one whose caption states it cannot read.
    let wide = dir.path().join("wide.toml");
    std::fs::write(
        &wide,
        "[text_encoder]\nwidth = 48\nheads = 2\n[denoiser]\ncontext_dim = 48\n",
    )
    .unwrap();
    let wide_clip = dir.path().join("wide");
    let run = seer(&[
        "train",
        "clip",
        "--preset",
        "tiny",
        "--config",
        wide.to_str().unwrap(),
        "-o",
        wide_clip.to_str().unwrap(),
        "--quiet",
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let w = wide_clip.to_str().unwrap();
    fails(
        &continued_args(from, o, &["--overwrite", "--text-encoder", w]),
        &["reads captions of width 32", "gives 48"],
    );
    fails(&continued_args(c, o, &["--overwrite"]), &["denoiser"]);
}

#[test]
fn the_binding_probe_reports_every_band_and_repeats_for_a_seed() {
    let m = model().to_str().unwrap();
    let probe_with = |seed: &str, extra: &[&str]| {
        let mut args = vec![
            "eval",
            "binding",
            "--model",
            m,
            "--pictures",
            "6",
            "--bands",
            "3",
            "--seed",
            seed,
            "--json",
        ];
        args.extend_from_slice(extra);
        let out = seer(&args);
        assert_eq!(out.code, 0, "{}", out.stderr);
        serde_json::from_str::<serde_json::Value>(&out.stdout).unwrap()
    };
    let probe = |seed: &str| probe_with(seed, &[]);
    let report = probe("3");
    let rows = report["timesteps"].as_array().unwrap();
    let steps: Vec<u64> = rows
        .iter()
        .map(|r| r["timestep"].as_u64().unwrap())
        .collect();
    assert_eq!(steps.len(), 3);
    assert!(steps.windows(2).all(|w| w[0] < w[1]), "{steps:?}");
    for row in rows {
        assert_eq!(row["pictures"], 6);
        assert!(row["correct"].as_u64().unwrap() <= 6);
        assert!(row["mean_gap"].as_f64().unwrap().is_finite());
    }
    assert_eq!(report, probe("3"), "the same seed probes the same way");
    // Joined by a relation, the same scenes and noise give other errors.
    let related = probe_with("3", &["--relation"]);
    assert_eq!(related["pictures"], 6);
    assert_ne!(related, report);
    let table = seer(&[
        "eval",
        "binding",
        "--model",
        m,
        "--pictures",
        "4",
        "--bands",
        "2",
    ]);
    assert_eq!(table.code, 0, "{}", table.stderr);
    assert!(
        table.stdout.contains("true caption wins"),
        "{}",
        table.stdout
    );
    fails(
        &["eval", "binding", "--model", m, "--bands", "0"],
        &["--bands"],
    );
    fails(
        &["eval", "binding", "--model", m, "--pictures", "0"],
        &["picture"],
    );
}

#[test]
fn stage_one_trains_alone_and_is_scored_alone() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("clip");
    let o = out.to_str().unwrap();
    let run = seer(&["train", "clip", "--preset", "tiny", "-o", o, "--quiet"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.contains("stage 1 model"), "{}", run.stdout);
    assert!(out.join("text_encoder/model.safetensors").is_file());
    assert!(!out.join("denoiser").exists());
    let eval = seer(&["eval", "image", "--model", o, "--clip-pairs", "20"]);
    assert_eq!(eval.code, 0, "{}", eval.stderr);
    assert!(
        eval.stdout.contains("text→image recall@1"),
        "{}",
        eval.stdout
    );
    assert!(eval.stdout.contains("no denoiser"), "{}", eval.stdout);
    fails(&["eval", "binding", "--model", o], &["no denoiser"]);
    // Stage 1 goes on from the folder's encoders, here with hard negatives.
    let hard = dir.path().join("hard.toml");
    std::fs::write(&hard, "hard_negatives = true\n").unwrap();
    let more = dir.path().join("more");
    let run = seer(&[
        "train",
        "clip",
        "--preset",
        "tiny",
        "--continue-from",
        o,
        "--config",
        hard.to_str().unwrap(),
        "--clip-iters",
        "5",
        "-o",
        more.to_str().unwrap(),
        "--quiet",
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.contains("stage 1 (CLIP)"), "{}", run.stdout);
    assert_eq!(
        std::fs::read(more.join("tokenizer/tokenizer.json")).unwrap(),
        std::fs::read(out.join("tokenizer/tokenizer.json")).unwrap()
    );
    assert_ne!(
        std::fs::read(more.join("text_encoder/model.safetensors")).unwrap(),
        std::fs::read(out.join("text_encoder/model.safetensors")).unwrap(),
        "the encoders were trained further"
    );
    let other = dir.path().join("other");
    fails(
        &[
            "train",
            "clip",
            "--preset",
            "tiny",
            "--iters",
            "5",
            "-o",
            other.to_str().unwrap(),
        ],
        &["--iters", "train image"],
    );
    fails(
        &[
            "generate",
            "image",
            "a",
            "--model",
            o,
            "-o",
            other.to_str().unwrap(),
        ],
        &["no denoiser"],
    );
}
