//! `seer generate`: sample text from a trained model, streamed to stdout.

use seer::device::parse_device;
use seer::generate::{generate, Sampler, SamplingParams};
use seer::model::Gpt;
use seer::tokenize::Tokenizer;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct Args {
    /// The prompt to continue (empty: start from nothing).
    #[arg(default_value = "")]
    prompt: String,
    /// Model folder (config.json, model.safetensors, tokenizer.json), e.g. a run folder.
    #[arg(short, long)]
    model: PathBuf,
    /// Tokens to generate.
    #[arg(long, default_value_t = 200)]
    max_tokens: usize,
    /// Sampling temperature; 0 always picks the most likely token.
    #[arg(long, default_value_t = 0.8)]
    temperature: f64,
    /// Sample only from the K most likely tokens.
    #[arg(long, default_value_t = 200)]
    top_k: usize,
    /// Random seed: the same seed, model and flags give the same text.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Device: cpu, cuda or cuda:N.
    #[arg(long, default_value = "cpu")]
    device: String,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let device = parse_device(&args.device)?;
    let model = Gpt::load(&args.model, candle_core::DType::F32, &device)?;
    let tokenizer = Tokenizer::load(&args.model.join("tokenizer.json"))?;
    let mut sampler = Sampler::new(SamplingParams {
        temperature: args.temperature,
        top_k: Some(args.top_k),
        seed: args.seed,
    })?;
    let mut stdout = std::io::stdout().lock();
    write!(stdout, "{}", args.prompt)?;
    generate(
        &model,
        &tokenizer,
        &args.prompt,
        args.max_tokens,
        &mut sampler,
        |piece| {
            let _ = write!(stdout, "{piece}");
            let _ = stdout.flush();
        },
    )?;
    writeln!(stdout)?;
    Ok(ExitCode::SUCCESS)
}
