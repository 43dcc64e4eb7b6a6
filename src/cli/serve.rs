//! `seer serve`: the OpenAI-compatible HTTP API and the web playground.

use seer::serve::{serve, ServeOptions};
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct Args {
    /// Text model folder (config.json, model.safetensors, tokenizer), served
    /// for /v1/completions and /v1/chat/completions.
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
    };
    serve(&options, |address| {
        println!("seer is serving on http://{address} (the playground is at /; Ctrl-C stops it)");
        let _ = std::io::stdout().flush();
    })?;
    Ok(ExitCode::SUCCESS)
}
