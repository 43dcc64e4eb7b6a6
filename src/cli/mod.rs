//! The command line: one file per command.

mod bench;
mod chat;
mod demo;
mod eval;
mod eval_text;
mod generate;
mod generate_image;
mod inspect;
mod prepare;
mod quantize;
mod serve;
mod text_model;
mod train;
mod train_image;

use clap::error::ErrorKind;
use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// seer: a prediction machine for text and images.
///
/// Train a tokenizer and a GPT on your corpus, then generate text by chaining
/// next-token predictions; train a caption encoder and a diffusion
/// Transformer, then draw pictures from prompts.
#[derive(Parser)]
#[command(name = "seer", version, about, long_about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Train a tokenizer on text files and write token shards (train.bin, val.bin).
    Prepare(prepare::Args),
    /// Train a GPT on prepared data.
    Train(Box<train::Args>),
    /// Generate text from a trained model, streamed as it is produced.
    Generate(Box<generate::Args>),
    /// Chat with a model: the conversation so far is its context.
    Chat(chat::Args),
    /// Look inside a model: tokens, next-token probabilities, attention maps,
    /// embedding neighbours and analogies, the denoising path.
    Inspect(inspect::Args),
    /// Score a model: `seer eval perplexity` on a text file, `seer eval image`
    /// (the shapes-world table), `seer eval binding`.
    Eval(eval::Args),
    /// Serve models over an OpenAI-compatible HTTP API, with a web playground.
    Serve(serve::Args),
    /// Write a model as a GGUF file in one weight type (q8_0, q4_k, f16, ...):
    /// a GGUF requantized, or a seer GPT converted so that llama.cpp runs it.
    Quantize(quantize::Args),
    /// Measure speed (ms per training step, tokens/s, MFU).
    Bench(bench::Args),
    /// Train a small character GPT on the built-in Shakespeare and sample
    /// from it, then draw pictures from prompts with the built-in shapes model.
    Demo(demo::Args),
}

/// How a text model's weight matrices are held for generation.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum Weights {
    /// As trained: f32.
    F32,
    /// bf16 (activations stay f32): half the bytes read per token, so
    /// faster generation; logits differ by rounding (inference only).
    Bf16,
}

impl Weights {
    /// The model precision these weights mean.
    pub fn precision(self) -> seer::nn::Precision {
        use candle_core::DType;
        seer::nn::Precision {
            activations: DType::F32,
            matrices: match self {
                Weights::F32 => DType::F32,
                Weights::Bf16 => DType::BF16,
            },
        }
    }
}

/// Writes each piece of generated text to `out` as it arrives (the
/// streaming of `generate`, `chat` and `demo`).
fn stream_text(out: &mut impl std::io::Write) -> impl FnMut(seer::generate::Event) + '_ {
    move |event| {
        if let seer::generate::Event::Text(piece) = event {
            // A closed stdout only loses the echo; generation goes on.
            let _ = write!(out, "{piece}");
            let _ = out.flush();
        }
    }
}

/// Parses the command line and runs the command. A mistake on the command
/// line is reported in one line (`--help` shows the usage) with exit code 2.
impl Command {
    /// Whether the command trains a model: it frees and reallocates the
    /// same large buffers every step.
    fn trains(&self) -> bool {
        match self {
            Command::Train(_) | Command::Demo(_) => true,
            Command::Bench(args) => args.trains(),
            _ => false,
        }
    }
}

pub fn run() -> anyhow::Result<ExitCode> {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e)
            if matches!(
                e.kind(),
                ErrorKind::DisplayHelp
                    | ErrorKind::DisplayVersion
                    | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
            ) =>
        {
            e.exit()
        }
        Err(e) => {
            let message = e.to_string();
            let first = message.lines().next().unwrap_or_default();
            eprintln!("{first} (see --help)");
            return Ok(ExitCode::from(2));
        }
    };
    if cli.command.trains() {
        crate::set_purge_delay(-1);
    }
    match cli.command {
        // The server's engines go onto the pool one step at a time.
        Command::Serve(args) => serve::run(args),
        command => seer::threads::on_pool(|| match command {
            Command::Prepare(args) => prepare::run(args),
            Command::Train(args) => train::run(*args),
            Command::Generate(args) => generate::run(*args),
            Command::Chat(args) => chat::run(args),
            Command::Inspect(args) => inspect::run(args),
            Command::Eval(args) => eval::run(args),
            Command::Bench(args) => bench::run(args),
            Command::Quantize(args) => quantize::run(args),
            Command::Demo(args) => demo::run(args),
            Command::Serve(_) => unreachable!("served above"),
        }),
    }
}
