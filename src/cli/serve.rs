//! `seer serve`: the OpenAI-compatible HTTP API and the web playground.

use seer::serve::{serve, ServeOptions};
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct Args {
    /// Text model, served for /v1/completions and /v1/chat/completions: a
    /// model folder (config.json, model.safetensors, tokenizer) or an open
    /// model's .gguf file (Llama family, Gemma 3), chatting in its own template.
    #[arg(short, long)]
    model: Option<PathBuf>,
    /// Image model folder made by `seer train image`, served for /v1/images/generations.
    #[arg(long)]
    image_model: Option<PathBuf>,
    /// Address to listen on (loopback: only this machine can connect).
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    /// Port to listen on (0: any free port, printed at start).
    #[arg(long, default_value_t = 8080)]
    port: u16,
    /// Largest request body accepted, in bytes.
    #[arg(long, default_value_t = 1 << 20)]
    max_body_bytes: usize,
    /// Most text generations run together in one batch.
    #[arg(long, default_value_t = 16)]
    max_batch: usize,
    /// Weight matrices: f32, or bf16 (faster generation, logits within rounding).
    #[arg(long, value_enum, default_value = "f32")]
    weights: super::Weights,
    /// Context length for a GGUF model, in tokens (each sequence's KV cache
    /// holds this many); at most the length it was trained for.
    #[arg(long, default_value_t = 4096)]
    context: usize,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let options = ServeOptions {
        model: args.model,
        image_model: args.image_model,
        host: args.host,
        port: args.port,
        max_body_bytes: args.max_body_bytes,
        max_batch: args.max_batch,
        precision: args.weights.precision(),
        context: args.context,
    };
    serve(&options, |address| {
        println!("seer is serving on http://{address} (the playground is at /; Ctrl-C stops it)");
        let _ = std::io::stdout().flush();
    })?;
    Ok(ExitCode::SUCCESS)
}
