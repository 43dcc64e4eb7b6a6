//! `seer eval perplexity`: how well a text model predicts a text file.

use super::text_model::ModelArgs;
use seer::eval::perplexity;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct PerplexityArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// The text to score (UTF-8).
    file: PathBuf,
    /// Tokens per window.
    #[arg(long, default_value_t = 512)]
    ctx: usize,
    /// Score at most this many windows (default: every whole window).
    #[arg(long)]
    windows: Option<usize>,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
}

pub fn run(args: &PerplexityArgs) -> anyhow::Result<ExitCode> {
    let mut model_args = args.model.clone();
    model_args.context = model_args.context.max(args.ctx);
    let loaded = model_args.load()?;
    let text = std::fs::read_to_string(&args.file)
        .map_err(|e| anyhow::anyhow!("{}: {e}", args.file.display()))?;
    // As llama-perplexity: the text is encoded as a prompt (with BOS first,
    // for a model that wants it), and every window starts with BOS.
    let tokens = loaded.prompt_ids(&text)?;
    let bos = loaded.start_token();
    let available = tokens.len() / args.ctx.max(1);
    let total = args.windows.map_or(available, |w| w.min(available));
    let started = std::time::Instant::now();
    let result = perplexity(
        loaded.model(),
        &tokens,
        args.ctx,
        bos,
        args.windows,
        |done| {
            if !args.json {
                eprint!("\rwindow {done}/{total}");
                let _ = std::io::stderr().flush();
            }
        },
    )?;
    if args.json {
        println!("{}", serde_json::to_string(&result)?);
    } else {
        eprintln!();
        println!(
            "perplexity {:.4} ({:.4} nats per token) over {} tokens in {} windows of {} ({} text tokens; {:.1} s)",
            result.perplexity,
            result.mean_nll,
            result.scored,
            result.windows,
            result.ctx,
            tokens.len(),
            started.elapsed().as_secs_f64()
        );
    }
    Ok(ExitCode::SUCCESS)
}
