//! `seer demo`: the whole text path on the built-in corpus, in minutes:
//! prepare a character tokenizer and shards, train a small GPT (the loss
//! falls as you watch), then sample Shakespeare from it.

use seer::data::{prepare, PrepareOptions};
use seer::generate::{generate, GenerateOptions, Sampler, SamplingParams};
use seer::tokenize::TokenizerKind;
use seer::train::{train, TrainConfig, TrainOptions, TrainOutcome};
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
}

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
    Ok(ExitCode::SUCCESS)
}
