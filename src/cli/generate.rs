//! `seer generate`: sample text from a trained model, streamed to stdout, or
//! as JSON objects for scripts.

use super::text_model::ModelArgs;
use seer::generate::{
    generate_from_ids, Event, GenerateOptions, Generation, Sampler, SamplingParams,
};
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

/// Sampling flags, shared with other commands that generate.
#[derive(clap::Args, Clone)]
pub struct SamplingArgs {
    /// Sampling temperature; 0 always picks the most likely token.
    #[arg(long, default_value_t = 0.8)]
    pub temperature: f64,
    /// Sample only from the K most likely tokens.
    #[arg(long)]
    pub top_k: Option<usize>,
    /// Sample only from the most likely tokens whose probabilities add up to P (nucleus).
    #[arg(long)]
    pub top_p: Option<f64>,
    /// Drop tokens less than MIN_P times as likely as the most likely one.
    #[arg(long)]
    pub min_p: Option<f64>,
    /// Penalise tokens already in the prompt or output (transformers' semantics; 1 is off).
    #[arg(long, default_value_t = 1.0)]
    pub repetition_penalty: f64,
    /// Subtract this times a token's count in the output (OpenAI's semantics).
    #[arg(long, default_value_t = 0.0)]
    pub frequency_penalty: f64,
    /// Subtract this from every token already in the output (OpenAI's semantics).
    #[arg(long, default_value_t = 0.0)]
    pub presence_penalty: f64,
    /// Random seed: the same seed, model and flags give the same text.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

impl SamplingArgs {
    /// The sampler settings, with `offset` added to the seed (for sample `offset`).
    pub fn params(&self, offset: u64) -> SamplingParams {
        SamplingParams {
            temperature: self.temperature,
            top_k: self.top_k,
            top_p: self.top_p,
            min_p: self.min_p,
            repetition_penalty: self.repetition_penalty,
            frequency_penalty: self.frequency_penalty,
            presence_penalty: self.presence_penalty,
            seed: self.seed.wrapping_add(offset),
        }
    }
}

/// What else `seer generate` makes.
#[derive(clap::Subcommand)]
pub enum Kind {
    /// Draw pictures from a prompt with a text-to-image model.
    Image(super::generate_image::Args),
}

#[derive(clap::Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct Args {
    #[command(subcommand)]
    kind: Option<Kind>,
    /// The prompt to continue (empty: start from nothing; a prompt that is
    /// literally "image" needs `--` before it).
    #[arg(default_value = "")]
    prompt: String,
    /// A model folder (config.json, model.safetensors and tokenizer.json, or
    /// GPT-2's vocab.json + merges.txt: a run folder or a Hugging Face GPT-2
    /// checkpoint), or an open model (Llama family, Gemma 3): a .gguf file
    /// (scripts/get-model.sh fetches one) or a Hugging Face folder.
    #[arg(short, long, required = true)]
    model: Option<PathBuf>,
    /// Tokens to generate.
    #[arg(long, default_value_t = 200)]
    max_tokens: usize,
    /// Stop when the text contains this (repeat for several; `\n`, `\t` and `\\`
    /// are read as escapes); it is left out.
    #[arg(long)]
    stop: Vec<String>,
    /// Independent samples (seeds SEED, SEED+1, ...).
    #[arg(short = 'n', long = "num-samples", default_value_t = 1)]
    num_samples: u64,
    /// Print one JSON object per sample (text, token ids, finish reason) instead of streaming.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    sampling: SamplingArgs,
    /// Weight matrices of a model folder: f32, or bf16 (faster generation,
    /// logits within rounding). GGUF files keep their own types.
    #[arg(long, value_enum, default_value = "f32")]
    weights: super::Weights,
    /// Device: cpu, cuda or cuda:N.
    #[arg(long, default_value = "cpu")]
    device: String,
    /// Context length for a GGUF model, in tokens; at most its trained length.
    #[arg(long, default_value_t = 4096)]
    context: usize,
}

/// One line of `--json` output.
#[derive(serde::Serialize)]
struct JsonSample<'a> {
    index: u64,
    text: &'a str,
    token_ids: &'a [u32],
    finish_reason: seer::generate::FinishReason,
    prompt_tokens: usize,
    completion_tokens: usize,
}

/// `s` with `\n`, `\t` and `\\` turned into newline, tab and backslash.
fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match (c, chars.clone().next()) {
            ('\\', Some('n')) => out.push('\n'),
            ('\\', Some('t')) => out.push('\t'),
            ('\\', Some('\\')) => out.push('\\'),
            _ => {
                out.push(c);
                continue;
            }
        }
        chars.next();
    }
    out
}

pub fn run(mut args: Args) -> anyhow::Result<ExitCode> {
    if let Some(Kind::Image(image)) = args.kind.take() {
        return super::generate_image::run(image);
    }
    let Some(dir) = args.model.clone() else {
        anyhow::bail!("seer generate needs --model (see --help)");
    };
    let loaded = ModelArgs {
        model: dir,
        weights: args.weights,
        device: args.device.clone(),
        context: args.context,
    }
    .load()?;
    let prompt_ids = loaded.prompt_ids(&args.prompt)?;
    let stop = args.stop.iter().map(|s| unescape(s)).collect();
    let options = GenerateOptions {
        max_tokens: args.max_tokens,
        stop,
        stop_ids: loaded.stop_ids(),
    };
    let mut stdout = std::io::stdout().lock();
    for index in 0..args.num_samples {
        let mut sampler = Sampler::new(args.sampling.params(index))?;
        if !args.json {
            if args.num_samples > 1 {
                writeln!(stdout, "--- sample {} ---", index + 1)?;
            }
            write!(stdout, "{}", args.prompt)?;
        }
        let generation: Generation = generate_from_ids(
            loaded.model(),
            loaded.tokenizer(),
            prompt_ids.clone(),
            &options,
            &mut sampler,
            |event| match event {
                Event::Text(piece) if !args.json => {
                    let _ = write!(stdout, "{piece}");
                    let _ = stdout.flush();
                }
                Event::Text(_) => {}
                Event::WindowSlid { block_size } => {
                    eprintln!("\nnote: prompt and output passed the model's context of {block_size} tokens; the oldest tokens are dropped from here on");
                }
            },
        )?;
        if args.json {
            let line = JsonSample {
                index,
                text: &generation.text,
                token_ids: &generation.ids,
                finish_reason: generation.finish_reason,
                prompt_tokens: generation.prompt_tokens,
                completion_tokens: generation.ids.len(),
            };
            writeln!(stdout, "{}", serde_json::to_string(&line)?)?;
        } else {
            writeln!(stdout)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::unescape;

    #[test]
    fn stop_sequences_read_escapes() {
        assert_eq!(unescape(r"\n\n"), "\n\n");
        assert_eq!(unescape(r"a\tb\\n"), "a\tb\\n");
        assert_eq!(unescape(r"end\"), "end\\");
        assert_eq!(unescape("plain"), "plain");
    }
}
