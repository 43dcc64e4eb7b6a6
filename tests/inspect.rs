//! Inspection: next-token probabilities and attention weights match
//! transformers' on the random GPT-2 fixture (tests/fixtures/hf_gpt2,
//! inspect.safetensors made by scripts/reference/inspect_parity.py); the
//! embedding view recovers an analogy planted in a generated corpus; every
//! view runs from the command line, and bad input fails in one line.

mod common;

use candle_core::{DType, Device, Tensor};
use common::relative_error;
use common::run::{fails, seer};
use rand::prelude::*;
use seer::data::{prepare, PrepareOptions};
use seer::diffusion::SamplerKind;
use seer::generate::{generate_images, ImageOptions};
use seer::inspect::{self, parse_analogy, EmbeddingSpace};
use seer::model::{Gpt, ImageModel};
use seer::nn::load_tensors;
use seer::tokenize::{Tokenizer, TokenizerKind};
use seer::train::{train, TrainConfig, TrainOptions};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/hf_gpt2")
}

fn fixture_str() -> String {
    fixture().to_str().unwrap().to_string()
}

fn prompts() -> Vec<String> {
    std::fs::read_to_string(fixture().join("prompts.txt"))
        .unwrap()
        .split("\n---\n")
        .map(str::to_string)
        .collect()
}

#[test]
fn next_token_probabilities_and_attention_match_transformers() {
    let expected = load_tensors(&fixture().join("inspect.safetensors"), &Device::Cpu)
        .unwrap()
        .0;
    let model = Gpt::load(&fixture(), DType::F32, &Device::Cpu).unwrap();
    let tokenizer = Tokenizer::load_model_dir(&fixture()).unwrap();
    for (i, prompt) in prompts().iter().enumerate() {
        let ids = inspect::prompt_ids(&model, &tokenizer, prompt).unwrap();
        let probs = inspect::next_token_probs(&model, &ids).unwrap();
        let probs = Tensor::new(probs, &Device::Cpu).unwrap();
        let e = relative_error(&probs, &expected[&format!("probs.{i}")]);
        assert!(e <= 1e-4, "next-token probabilities of {prompt:?}: {e:.2e}");

        let maps = inspect::attention_maps(&model, &tokenizer, prompt).unwrap();
        let got: Vec<f32> = maps
            .attention
            .iter()
            .flatten()
            .flatten()
            .flatten()
            .copied()
            .collect();
        let shape = (maps.layers(), maps.heads(), ids.len(), ids.len());
        let got = Tensor::from_vec(got, shape, &Device::Cpu).unwrap();
        let e = relative_error(&got, &expected[&format!("attention.{i}")]);
        assert!(e <= 1e-4, "attention of {prompt:?}: {e:.2e}");
        for head in maps.attention.iter().flatten() {
            for (q, row) in head.iter().enumerate() {
                let sum: f32 = row.iter().sum();
                assert!((sum - 1.0).abs() < 1e-5, "row {q} sums to {sum}");
                assert!(row[q + 1..].iter().all(|&w| w == 0.0), "row {q}: {row:?}");
            }
        }
    }
}

#[test]
fn token_pieces_show_byte_fallbacks_and_rebuild_the_text() {
    let tokenizer = Tokenizer::load_model_dir(&fixture()).unwrap();
    let text = "First Citizen: café ☃";
    let pieces = inspect::split_tokens(&tokenizer, text).unwrap();
    let bytes: Vec<u8> = pieces.iter().flat_map(|p| p.bytes.clone()).collect();
    assert_eq!(bytes, text.as_bytes());
    // é and ☃ are not in the 300-token vocabulary: they fall back to bytes.
    let fallbacks: Vec<String> = pieces
        .iter()
        .filter(|p| p.byte_fallback)
        .map(|p| p.display())
        .collect();
    assert_eq!(
        fallbacks,
        ["<0xC3>", "<0xA9>", "<0xE2>", "<0x98>", "<0x83>"]
    );
    assert!(pieces.iter().any(|p| p.display() == "␣c"), "{pieces:?}");
}

/// People with two planted attributes: sex (fixing the pronouns around
/// them) and station (fixing the places around them).
const PEOPLE: [(&str, usize, usize); 8] = [
    ("king", 0, 0),
    ("queen", 1, 0),
    ("man", 0, 1),
    ("woman", 1, 1),
    ("boy", 0, 2),
    ("girl", 1, 2),
    ("monk", 0, 3),
    ("nun", 1, 3),
];
const PLACES: [[&str; 3]; 4] = [
    ["palace", "crown", "throne"],
    ["market", "farm", "field"],
    ["school", "toy", "game"],
    ["abbey", "prayer", "chapel"],
];
const PRONOUNS: [(&str, &str); 2] = [("he", "his"), ("she", "her")];

/// Sentences in which each person word appears only with its sex's
/// pronouns and its station's places: the structure that "king - man +
/// woman = queen" reads back.
fn planted_corpus(sentences: usize, seed: u64) -> String {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut text = String::new();
    for _ in 0..sentences {
        let (who, sex, station) = PEOPLE[rng.random_range(0..PEOPLE.len())];
        let (he, his) = PRONOUNS[sex];
        let place = PLACES[station][rng.random_range(0..3)];
        let thing = PLACES[station][rng.random_range(0..3)];
        let line = match rng.random_range(0..4) {
            0 => format!("the {who} went to the {place} and {he} sang ."),
            1 => format!("{he} is the {who} of the {place} ."),
            2 => format!("in the {place} the {who} lost {his} {thing} ."),
            _ => format!("the {who} said {he} loves the {place} ."),
        };
        text.push_str(&line);
        text.push('\n');
    }
    text
}

/// The analogies the planted structure implies, with their answers.
const ANALOGIES: [(&str, &str); 6] = [
    ("king - man + woman", "queen"),
    ("queen - woman + man", "king"),
    ("boy - man + woman", "girl"),
    ("monk - man + woman", "nun"),
    ("nun - girl + boy", "monk"),
    ("king - queen + nun", "monk"),
];

/// How many of [`ANALOGIES`] the model's embedding answers first.
fn analogies_recovered(model: &Gpt, tokenizer: &Tokenizer) -> usize {
    let space = EmbeddingSpace::of(model).unwrap();
    ANALOGIES
        .iter()
        .filter(|(expression, answer)| {
            let terms = parse_analogy(expression).unwrap();
            let (words, sum) = space.combine(tokenizer, &terms).unwrap();
            let exclude: Vec<u32> = words
                .iter()
                .flat_map(|w| w.tokens.iter().map(|t| t.id))
                .collect();
            let best = &space.nearest(tokenizer, &sum, 1, &exclude).unwrap()[0];
            best.token.trim() == *answer
        })
        .count()
}

#[test]
fn a_planted_analogy_is_recovered_from_the_embedding() {
    let dir = tempfile::tempdir().unwrap();
    let corpus = dir.path().join("corpus.txt");
    std::fs::write(&corpus, planted_corpus(20_000, 0)).unwrap();
    let data = dir.path().join("data");
    let prepared = prepare(&PrepareOptions {
        inputs: vec![corpus],
        kind: TokenizerKind::Bpe,
        vocab_size: 400,
        tokenizer_file: None,
        val_fraction: 0.1,
        out: data.clone(),
        overwrite: false,
    })
    .unwrap();
    // Every person is one token, so the analogy is about whole words.
    for (who, _, _) in PEOPLE {
        assert_eq!(
            prepared.tokenizer.encode(&format!(" {who}")).unwrap().len(),
            1
        );
    }
    let config = TrainConfig {
        n_embd: 64,
        n_head: 4,
        block_size: 32,
        batch_size: 16,
        max_iters: 800,
        lr_decay_iters: 800,
        warmup_iters: 50,
        lr: 3e-3,
        eval_interval: 400,
        checkpoint_interval: 400,
        log_interval: 100,
        ..TrainConfig::preset("tiny").unwrap()
    };
    // Before training the embedding is random: the analogies are not there.
    let untrained = Gpt::new(
        &config.model(prepared.tokenizer.vocab_size()),
        config.seed,
        DType::F32,
        &Device::Cpu,
    )
    .unwrap();
    let before = analogies_recovered(&untrained, &prepared.tokenizer);
    assert!(before < ANALOGIES.len(), "recovered {before} untrained");

    let run = dir.path().join("run");
    train(
        &TrainOptions {
            data,
            out: run.clone(),
            config: Some(config),
            resume: false,
            overwrite: false,
            verbose: false,
            device: Device::Cpu,
        },
        &AtomicBool::new(false),
    )
    .unwrap();
    let model = Gpt::load(&run, DType::F32, &Device::Cpu).unwrap();
    let after = analogies_recovered(&model, &prepared.tokenizer);
    assert_eq!(
        after,
        ANALOGIES.len(),
        "recovered {after} of {}",
        ANALOGIES.len()
    );

    // The command line says the same, and draws the words' map.
    let map = dir.path().join("map.png");
    let out = seer(&[
        "inspect",
        "embed",
        "-m",
        run.to_str().unwrap(),
        "--analogy",
        "king - man + woman",
        "--top",
        "3",
        "--plot",
        map.to_str().unwrap(),
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let first = out
        .stdout
        .lines()
        .find(|l| l.trim_start().starts_with("1 "));
    assert!(first.is_some_and(|l| l.contains("queen")), "{}", out.stdout);
    assert!(image::open(&map).is_ok());
}

#[test]
fn tokens_view_lists_every_token_as_text_json_and_a_picture() {
    let dir = tempfile::tempdir().unwrap();
    let png = dir.path().join("tokens.png");
    let model = fixture_str();
    let out = seer(&[
        "inspect",
        "tokens",
        "-m",
        &model,
        "a café",
        "--plot",
        png.to_str().unwrap(),
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stdout.contains("byte fallback"), "{}", out.stdout);
    assert!(image::open(&png).unwrap().width() > 100);
    let out = seer(&[
        "inspect",
        "tokens",
        "-m",
        &fixture_str(),
        "a café",
        "--json",
    ]);
    let json: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    let bytes: Vec<u8> = json["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|t| {
            t["bytes"]
                .as_array()
                .unwrap()
                .iter()
                .map(|b| b.as_u64().unwrap() as u8)
        })
        .collect();
    assert_eq!(bytes, "a café".as_bytes());
}

#[test]
fn next_view_prints_the_full_softmax_as_json() {
    let out = seer(&[
        "inspect",
        "next",
        "-m",
        &fixture_str(),
        "First Citizen:",
        "--top",
        "300",
        "--json",
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let json: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    let next = json["next"].as_array().unwrap();
    assert_eq!(next.len(), 300);
    let probs: Vec<f64> = next.iter().map(|n| n["prob"].as_f64().unwrap()).collect();
    assert!((probs.iter().sum::<f64>() - 1.0).abs() < 1e-9);
    assert!(probs.windows(2).all(|w| w[0] >= w[1]));
    let tokens: Vec<&str> = json["prompt_tokens"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    assert_eq!(tokens.concat(), "First Citizen:");
    let dir = tempfile::tempdir().unwrap();
    let png = dir.path().join("next.png");
    let table = seer(&[
        "inspect",
        "next",
        "-m",
        &fixture_str(),
        "First Citizen:",
        "--plot",
        png.to_str().unwrap(),
    ]);
    assert_eq!(table.code, 0, "{}", table.stderr);
    assert_eq!(table.stdout.lines().count(), 12, "{}", table.stdout);
    assert!(image::open(&png).unwrap().height() > 100);
}

#[test]
fn attention_view_writes_a_heatmap_and_json() {
    let dir = tempfile::tempdir().unwrap();
    let png = dir.path().join("attention.png");
    let prompt = "First Citizen:\nBefore we proceed";
    let model = fixture_str();
    let args = |extra: &[&str]| {
        let mut args = vec!["inspect", "attention", "-m", model.as_str()];
        args.extend_from_slice(&[prompt, "-o", png.to_str().unwrap()]);
        args.extend_from_slice(extra);
        seer(&args)
    };
    let out = args(&["--layer", "1", "--head", "2", "--query", "3"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stdout.contains("token 3 '␣' attends most to"),
        "{}",
        out.stdout
    );
    let picture = image::open(&png).unwrap();
    assert!(picture.width() > 300 && picture.height() > 300);
    let out = args(&["--json"]);
    let json: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    let attention = json["attention"].as_array().unwrap();
    let n = json["tokens"].as_array().unwrap().len();
    assert_eq!(
        (attention.len(), attention[0].as_array().unwrap().len()),
        (2, 3)
    );
    assert_eq!(attention[1][2].as_array().unwrap().len(), n);
    assert_eq!(attention[1][2][n - 1].as_array().unwrap().len(), n);
}

#[test]
fn attention_refuses_layers_heads_and_queries_out_of_range() {
    let model = fixture_str();
    let base = ["inspect", "attention", "-m", model.as_str(), "a b c"];
    let with = |extra: &[&'static str]| [&base[..], extra].concat();
    fails(&with(&["--layer", "2"]), &["--layer 2", "2 layers"]);
    fails(&with(&["--head", "3"]), &["--head 3", "3 heads"]);
    fails(
        &with(&["--query", "9"]),
        &["--query 9", "tokens in the prompt"],
    );
}

#[test]
fn embed_refuses_words_outside_the_vocabulary_and_bad_analogies() {
    // A character model: its tokenizer knows only the corpus's characters.
    let dir = common::server::char_model();
    let model = dir.path().to_str().unwrap();
    let ok = seer(&[
        "inspect",
        "embed",
        "-m",
        model,
        "--neighbours",
        "e",
        "--top",
        "3",
    ]);
    assert_eq!(ok.code, 0, "{}", ok.stderr);
    assert!(ok.stdout.contains("e = token e"), "{}", ok.stdout);
    let word = seer(&["inspect", "embed", "-m", model, "--neighbours", "the"]);
    assert!(word.stdout.contains("mean of 3 tokens"), "{}", word.stdout);
    fails(
        &["inspect", "embed", "-m", model, "--neighbours", "日本"],
        &["'日本' is not in the model's vocabulary"],
    );
    fails(
        &["inspect", "embed", "-m", model, "--analogy", "a + "],
        &["--analogy 'a + '"],
    );
}

#[test]
fn denoise_view_draws_the_path_from_noise_to_picture() {
    let dir = tempfile::tempdir().unwrap();
    let png = dir.path().join("strip.png");
    let model = Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/shapes-model");
    let out = seer(&[
        "inspect",
        "denoise",
        "-m",
        model.to_str().unwrap(),
        "a red circle",
        "--steps",
        "6",
        "--frames",
        "4",
        "-o",
        png.to_str().unwrap(),
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stdout.contains("after steps 0, 2, 4, 6"),
        "{}",
        out.stdout
    );
    let strip = image::open(&png).unwrap().to_rgb8();
    // Four columns of 96-pixel pictures (32 × 3) in two rows.
    assert!(strip.width() >= 4 * 96 && strip.height() >= 2 * 96);
    fails(
        &[
            "inspect",
            "denoise",
            "-m",
            model.to_str().unwrap(),
            "a red circle",
            "--frames",
            "1",
        ],
        &["--frames 1"],
    );
}

#[test]
fn an_image_models_caption_tokens_and_embedding_can_be_inspected() {
    let model = Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/shapes-model");
    let model = model.to_str().unwrap();
    let out = seer(&["inspect", "tokens", "-m", model, "a red circle", "--json"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let json: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(json["tokens"].as_array().unwrap().len(), 3, "{json}");
    let out = seer(&[
        "inspect",
        "embed",
        "-m",
        model,
        "--neighbours",
        "red",
        "--json",
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let json: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    let nearest = json["neighbours"]["nearest"].as_array().unwrap();
    assert_eq!(nearest.len(), 10);
    assert!(nearest.iter().all(|n| n["token"] != " red"), "{json}");
}

#[test]
fn caption_contexts_compare_position_by_position() {
    let model = Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/shapes-model");
    let model = model.to_str().unwrap();
    let compare = |a: &str, b: &str| seer(&["inspect", "context", "-m", model, a, b, "--json"]);
    let same = compare("a red circle", "a red circle");
    assert_eq!(same.code, 0, "{}", same.stderr);
    let json: serde_json::Value = serde_json::from_str(&same.stdout).unwrap();
    let cosines = |key: &str| -> Vec<f64> {
        json[key]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect()
    };
    // "a", "red", "circle" and the end-of-text token, identical in both.
    assert_eq!(cosines("encoder").len(), 4, "{json}");
    assert!(cosines("encoder").iter().all(|c| (c - 1.0).abs() < 1e-5));
    assert!(cosines("denoiser").iter().all(|c| (c - 1.0).abs() < 1e-5));
    assert!((json["pooled"].as_f64().unwrap() - 1.0).abs() < 1e-5);
    let swapped = compare("a red circle", "a blue circle");
    let json: serde_json::Value = serde_json::from_str(&swapped.stdout).unwrap();
    let encoder: Vec<f64> = json["encoder"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    // Cosines, and a different word makes a different state.
    assert!(
        encoder.iter().all(|c| (-1.0..=1.0 + 1e-6).contains(c)),
        "{json}"
    );
    assert!(encoder[1] < 1.0 - 1e-4, "{json}");
    assert!(json["pooled"].as_f64().unwrap() < 1.0 - 1e-4, "{json}");
    assert_eq!(json["tokens_b"][1], "Ġblue", "{json}");
    let table = seer(&[
        "inspect",
        "context",
        "-m",
        model,
        "a red circle",
        "a blue circle",
    ]);
    assert_eq!(table.code, 0, "{}", table.stderr);
    assert!(
        table.stdout.contains("pooled embedding: cosine"),
        "{}",
        table.stdout
    );
    let uneven = seer(&[
        "inspect",
        "context",
        "-m",
        model,
        "a red circle",
        "a circle",
    ]);
    assert_eq!(uneven.code, 1);
    assert!(uneven.stderr.contains("same length"), "{}", uneven.stderr);
}

#[test]
fn cross_attention_maps_add_up_and_leave_the_picture_as_drawn() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/shapes-model");
    let model = ImageModel::load(&path, &Device::Cpu).unwrap();
    let prompt = "a red circle left of a blue square";
    let options = ImageOptions {
        steps: 12,
        guidance: 4.0,
        sampler: SamplerKind::Ddim { eta: 0.0 },
        seed: 5,
    };
    let all = inspect::cross_attention_maps(&model, prompt, &options, None).unwrap();
    let drawn = generate_images(&model, &[prompt.to_string()], &options, |_| {}).unwrap();
    assert!(
        all.picture == drawn[0],
        "the inspection changed the picture"
    );
    assert_eq!(all.tokens.len(), 9, "{:?}", all.tokens);
    assert_eq!(all.tokens[2], " circle");
    let patches = all.grid * all.grid;
    assert_eq!(all.grid, 8);
    assert!(all.maps.iter().all(|m| m.len() == patches));
    // Every patch's weights over the caption sum to 1.
    for patch in 0..patches {
        let total: f32 = all.maps.iter().map(|m| m[patch]).sum();
        assert!((total - 1.0).abs() < 1e-4, "patch {patch}: {total}");
    }
    // The maps of all blocks are the mean of each block's.
    let blocks = model.denoiser.as_ref().unwrap().config().layers;
    let each: Vec<_> = (0..blocks)
        .map(|b| inspect::cross_attention_maps(&model, prompt, &options, Some(b)).unwrap())
        .collect();
    for (k, map) in all.maps.iter().enumerate() {
        for (p, &w) in map.iter().enumerate() {
            let mean = each.iter().map(|e| e.maps[k][p]).sum::<f32>() / blocks as f32;
            assert!(
                (w - mean).abs() < 1e-5,
                "token {k}, patch {p}: {w} vs {mean}"
            );
        }
    }
    assert!(each[0].maps != each[1].maps);
    let err = inspect::cross_attention_maps(&model, prompt, &options, Some(blocks)).unwrap_err();
    assert!(
        err.to_string().contains(&format!("--block {blocks}")),
        "{err}"
    );
}

#[test]
fn cross_attention_view_prints_a_table_json_and_a_strip() {
    let dir = tempfile::tempdir().unwrap();
    let png = dir.path().join("maps.png");
    let model = Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/shapes-model");
    let model = model.to_str().unwrap();
    let base = [
        "inspect",
        "cross-attention",
        "-m",
        model,
        "a red circle",
        "--steps",
        "6",
    ];
    let table = seer(&[&base[..], &["--block", "1", "-o", png.to_str().unwrap()]].concat());
    assert_eq!(table.code, 0, "{}", table.stderr);
    assert!(table.stdout.contains("block 1"), "{}", table.stdout);
    assert!(table.stdout.contains("␣circle"), "{}", table.stdout);
    // The picture and a panel for each of the 4 tokens, 96 pixels each (32 × 3).
    let strip = image::open(&png).unwrap().to_rgb8();
    assert!(strip.width() >= 5 * 96 && strip.height() >= 96);
    let json = seer(&[&base[..], &["--json"]].concat());
    assert_eq!(json.code, 0, "{}", json.stderr);
    let json: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(json["tokens"].as_array().unwrap().len(), 4, "{json}");
    assert_eq!(json["maps"][0].as_array().unwrap().len(), 64, "{json}");
    fails(&[&base[..], &["--block", "99"]].concat(), &["--block 99"]);
}
