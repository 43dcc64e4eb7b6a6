//! The command line: one file per command.

mod bench;
mod chat;
mod demo;
mod generate;
mod prepare;
mod train;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// seer: a prediction machine for text and images.
///
/// Train a tokenizer and a GPT on your corpus, then generate text by chaining
/// next-token predictions.
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
    Generate(generate::Args),
    /// Chat with a model: the conversation so far is its context.
    Chat(chat::Args),
    /// Measure speed (ms per training step, tokens/s, MFU).
    Bench(bench::Args),
    /// Train a small character GPT on the built-in Shakespeare and sample from it.
    Demo(demo::Args),
}

/// Parses the command line and runs the command.
pub fn run() -> anyhow::Result<ExitCode> {
    let cli = Cli::parse();
    match cli.command {
        Command::Prepare(args) => prepare::run(args),
        Command::Train(args) => train::run(*args),
        Command::Generate(args) => generate::run(args),
        Command::Chat(args) => chat::run(args),
        Command::Bench(args) => bench::run(args),
        Command::Demo(args) => demo::run(args),
    }
}
