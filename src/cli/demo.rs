//! `seer demo`: the whole text path on the built-in corpus, in minutes:
//! prepare a character tokenizer and shards, train a small GPT (the loss
//! falls as you watch), then sample Shakespeare from it; then text to image
//! with the shapes model built into seer (or, with `--train`, one trained
//! from scratch).

use seer::data::{grid, prepare, PairSource, PrepareOptions};
use seer::diffusion::SamplerKind;
use seer::generate::{generate, GenerateOptions, Sampler, SamplingParams};
use seer::generate::{generate_images, ImageOptions};
use seer::model::ImageModel;
use seer::tokenize::TokenizerKind;
use seer::train::{
    train, train_image, ImageTrainConfig, ImageTrainOptions, TrainConfig, TrainOptions,
    TrainOutcome,
};
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;

/// The built-in corpus: Karpathy's tinyshakespeare.
const SHAKESPEARE: &str = include_str!("../../data/tinyshakespeare.txt");

#[derive(clap::Args)]
pub struct Args {
    /// Folder for the demo's data and model.
    #[arg(short, long, default_value = "runs/demo")]
    out: PathBuf,
    /// Training steps (2000: the whole shakespeare-char-cpu preset).
    #[arg(long, default_value_t = 2000)]
    iters: u64,
    /// Seed of training and sampling.
    #[arg(long, default_value_t = 1337)]
    seed: u64,
    /// Also train the text-to-image model from scratch (`seer train image
    /// --preset shapes`, about 40 minutes on 2 cores) instead of using the
    /// built-in one.
    #[arg(long)]
    train: bool,
}

/// The shapes model built into seer: every file of the folder that
/// `seer train image --data shapes --preset shapes` wrote (with the
/// settings and continuations BENCHMARKS.md records).
const SHAPES_MODEL: [(&str, &[u8]); 10] = [
    (
        "model_index.json",
        include_bytes!("../../assets/shapes-model/model_index.json"),
    ),
    (
        "metrics.jsonl",
        include_bytes!("../../assets/shapes-model/metrics.jsonl"),
    ),
    (
        "tokenizer/tokenizer.json",
        include_bytes!("../../assets/shapes-model/tokenizer/tokenizer.json"),
    ),
    (
        "text_encoder/config.json",
        include_bytes!("../../assets/shapes-model/text_encoder/config.json"),
    ),
    (
        "text_encoder/model.safetensors",
        include_bytes!("../../assets/shapes-model/text_encoder/model.safetensors"),
    ),
    (
        "image_encoder/config.json",
        include_bytes!("../../assets/shapes-model/image_encoder/config.json"),
    ),
    (
        "image_encoder/model.safetensors",
        include_bytes!("../../assets/shapes-model/image_encoder/model.safetensors"),
    ),
    (
        "denoiser/config.json",
        include_bytes!("../../assets/shapes-model/denoiser/config.json"),
    ),
    (
        "denoiser/model.safetensors",
        include_bytes!("../../assets/shapes-model/denoiser/model.safetensors"),
    ),
    (
        "scheduler/scheduler_config.json",
        include_bytes!("../../assets/shapes-model/scheduler/scheduler_config.json"),
    ),
];

/// Prompts the demo draws, four pictures each.
const PROMPTS: [&str; 4] = [
    "a red circle",
    "a small blue square in the top left",
    "a green triangle to the left of a yellow circle",
    "two purple squares",
];

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let corpus = args.out.join("tinyshakespeare.txt");
    std::fs::create_dir_all(&args.out)?;
    std::fs::write(&corpus, SHAKESPEARE)?;
    let data = args.out.join("data");
    println!(
        "1. tokenizer and shards: {} -> {}",
        corpus.display(),
        data.display()
    );
    let prepared = prepare(&PrepareOptions {
        inputs: vec![corpus],
        kind: TokenizerKind::Char,
        vocab_size: 0,
        tokenizer_file: None,
        val_fraction: 0.1,
        out: data.clone(),
        overwrite: true,
    })?;
    println!(
        "   {} characters in the vocabulary, {} train and {} val tokens",
        prepared.meta.vocab_size, prepared.meta.train_tokens, prepared.meta.val_tokens
    );
    let mut config = TrainConfig::preset("shakespeare-char-cpu")?;
    config.max_iters = args.iters;
    config.lr_decay_iters = args.iters;
    config.eval_interval = (args.iters / 5).max(1);
    config.checkpoint_interval = config.eval_interval;
    config.seed = args.seed;
    let model_dir = args.out.join("model");
    println!(
        "2. training a {}-layer, {}-wide GPT for {} steps (batch {} x {} tokens); val loss every {} steps:",
        config.n_layer, config.n_embd, config.max_iters, config.batch_size, config.block_size, config.eval_interval
    );
    let outcome = train(
        &TrainOptions {
            data,
            out: model_dir.clone(),
            config: Some(config),
            resume: false,
            overwrite: true,
            verbose: true,
            device: candle_core::Device::Cpu,
        },
        &AtomicBool::new(false),
    )?;
    if let TrainOutcome::Finished {
        val_loss,
        elapsed_s,
    } = outcome
    {
        println!("   val loss {val_loss:.4} (ln 65 = 4.17 at the start) in {elapsed_s:.0} s; loss curve: {}", model_dir.join("loss.png").display());
    }
    println!(
        "3. sampling 300 characters after \"ROMEO:\" (temperature 0.8, top-k 200, seed {}):\n",
        args.seed
    );
    let model = seer::model::Gpt::load(
        &model_dir,
        candle_core::DType::F32,
        &candle_core::Device::Cpu,
    )?;
    let mut sampler = Sampler::new(SamplingParams {
        temperature: 0.8,
        top_k: Some(200),
        seed: args.seed,
        ..SamplingParams::default()
    })?;
    let mut stdout = std::io::stdout().lock();
    write!(stdout, "ROMEO:")?;
    let options = GenerateOptions {
        max_tokens: 300,
        stop: Vec::new(),
        ..Default::default()
    };
    generate(
        &model,
        &prepared.tokenizer,
        "ROMEO:",
        &options,
        &mut sampler,
        super::stream_text(&mut stdout),
    )?;
    writeln!(
        stdout,
        "\n\nThe model folder {} loads in Hugging Face transformers as a GPT-2.",
        model_dir.display()
    )?;
    drop(stdout);
    draw_pictures(&args)?;
    Ok(ExitCode::SUCCESS)
}

/// Step 4: pictures from prompts, with the built-in shapes model or a new one.
fn draw_pictures(args: &Args) -> anyhow::Result<()> {
    let dir = args.out.join("shapes-model");
    if args.train {
        println!("\n4. training a text-to-image model on the shapes world (stage 1 CLIP, stage 2 DiT) into {}:", dir.display());
        let options = ImageTrainOptions {
            config: ImageTrainConfig::preset("shapes")?,
            source: PairSource::Shapes { side: 32 },
            out: dir.clone(),
            text_encoder: None,
            continue_clip: false,
            continue_denoiser: None,
            progress: true,
            clip_only: false,
        };
        let outcome = train_image(&options, &AtomicBool::new(false))?;
        println!(
            "   stage 1 in {:.0} s, stage 2 in {:.0} s (denoising loss {:.4})",
            outcome.clip_seconds, outcome.diffusion_seconds, outcome.diffusion_loss
        );
    } else {
        for (name, bytes) in SHAPES_MODEL {
            let path = dir.join(name);
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent)?;
            }
            std::fs::write(&path, bytes)?;
        }
        println!(
            "\n4. text to image with the built-in shapes model ({}):",
            dir.display()
        );
    }
    let model = ImageModel::load(&dir, &candle_core::Device::Cpu)?;
    let options = ImageOptions {
        steps: 50,
        guidance: 2.0,
        sampler: SamplerKind::Ddim { eta: 0.0 },
        seed: args.seed,
    };
    let started = std::time::Instant::now();
    let prompts: Vec<String> = PROMPTS
        .iter()
        .flat_map(|p| std::iter::repeat_n(p.to_string(), 4))
        .collect();
    let pictures = generate_images(&model, &prompts, &options, |_| {})?;
    let path = args.out.join("shapes.png");
    let bytes = super::generate_image::encode_png(&grid(&pictures, 4))?;
    seer::atomic::write_atomic(&path, &bytes)?;
    println!(
        "   {} pictures (50 DDIM steps, guidance 2) in {:.1} s, one row per prompt: {}",
        pictures.len(),
        started.elapsed().as_secs_f64(),
        path.display()
    );
    for (row, prompt) in PROMPTS.iter().enumerate() {
        println!("   row {}: {prompt}", row + 1);
    }
    Ok(())
}
