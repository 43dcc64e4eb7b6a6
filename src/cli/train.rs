//! `seer train`: train a GPT on a prepared data folder.

use anyhow::Context;
use seer::device::parse_device;
use seer::train::{train, Checkpoint, TrainConfig, TrainOptions, TrainOutcome};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Settings that override the preset and the TOML file.
#[derive(clap::Args, Default)]
pub struct Overrides {
    /// Transformer blocks.
    #[arg(long)]
    n_layer: Option<usize>,
    /// Attention heads.
    #[arg(long)]
    n_head: Option<usize>,
    /// Residual stream width.
    #[arg(long)]
    n_embd: Option<usize>,
    /// Context length in tokens.
    #[arg(long)]
    block_size: Option<usize>,
    /// Dropout probability.
    #[arg(long)]
    dropout: Option<f64>,
    /// Sequences per micro-batch.
    #[arg(long)]
    batch_size: Option<usize>,
    /// Micro-batches per optimizer step (gradient accumulation).
    #[arg(long)]
    grad_accum: Option<usize>,
    /// Optimizer steps.
    #[arg(long)]
    max_iters: Option<u64>,
    /// Peak learning rate.
    #[arg(long)]
    lr: Option<f64>,
    /// Final learning rate of the cosine decay.
    #[arg(long)]
    min_lr: Option<f64>,
    /// Linear warm-up steps.
    #[arg(long)]
    warmup_iters: Option<u64>,
    /// Step at which the decay reaches min_lr.
    #[arg(long)]
    lr_decay_iters: Option<u64>,
    /// AdamW weight decay (matrices only).
    #[arg(long)]
    weight_decay: Option<f64>,
    /// Clip the global gradient norm (0 disables).
    #[arg(long)]
    grad_clip: Option<f64>,
    /// Evaluate every N steps.
    #[arg(long)]
    eval_interval: Option<u64>,
    /// Batches per evaluation.
    #[arg(long)]
    eval_iters: Option<u64>,
    /// Checkpoint every N steps (and after each evaluation).
    #[arg(long)]
    checkpoint_interval: Option<u64>,
    /// Record the training loss every N steps.
    #[arg(long)]
    log_interval: Option<u64>,
    /// Seed of initialisation, data order and dropout.
    #[arg(long)]
    seed: Option<u64>,
}

/// `is_empty` and `apply` over every override field.
macro_rules! overrides {
    ($($field:ident),*) => {
        impl Overrides {
            fn is_empty(&self) -> bool {
                true $(&& self.$field.is_none())*
            }

            fn apply(&self, config: &mut TrainConfig) {
                $(if let Some(value) = self.$field {
                    config.$field = value;
                })*
            }
        }
    };
}

overrides!(
    n_layer,
    n_head,
    n_embd,
    block_size,
    dropout,
    batch_size,
    grad_accum,
    max_iters,
    lr,
    min_lr,
    warmup_iters,
    lr_decay_iters,
    weight_decay,
    grad_clip,
    eval_interval,
    eval_iters,
    checkpoint_interval,
    log_interval,
    seed
);

/// What else `seer train` trains.
#[derive(clap::Subcommand)]
pub enum Kind {
    /// Train a text-to-image model: stage 1 (CLIP text and image encoders),
    /// then stage 2 (the diffusion Transformer).
    Image(super::train_image::Args),
    /// Train stage 1 alone: the caption and image encoders (CLIP), to score
    /// with `seer eval image` or reuse with `seer train image --text-encoder`.
    Clip(super::train_image::Args),
}

#[derive(clap::Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct Args {
    #[command(subcommand)]
    kind: Option<Kind>,
    /// Data folder made by `seer prepare`.
    #[arg(long, required = true)]
    data: Option<PathBuf>,
    /// Run folder: the model, checkpoints, metrics.jsonl and loss.png.
    #[arg(short, long, required = true)]
    out: Option<PathBuf>,
    /// Built-in preset: shakespeare-char-cpu (default for new runs), shakespeare-char, gpt2-small, tiny.
    #[arg(long)]
    preset: Option<String>,
    /// TOML file whose keys override the preset.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Continue the run in --out from its last checkpoint.
    #[arg(long)]
    resume: bool,
    /// Replace the run already in --out.
    #[arg(long, conflicts_with = "resume")]
    overwrite: bool,
    /// Device: cpu, cuda or cuda:N.
    #[arg(long, default_value = "cpu")]
    device: String,
    /// Hide the progress bar.
    #[arg(long)]
    quiet: bool,
    #[command(flatten)]
    overrides: Overrides,
}

/// The run's settings: preset, then TOML, then flags. When resuming with
/// none of them, the checkpoint's settings (`None`).
fn resolve_config(args: &Args) -> anyhow::Result<Option<TrainConfig>> {
    let explicit = args.preset.is_some() || args.config.is_some() || !args.overrides.is_empty();
    if args.resume && !explicit {
        return Ok(None);
    }
    let mut config = match (&args.preset, args.resume) {
        (Some(name), _) => TrainConfig::preset(name)?,
        (None, true) => Checkpoint::read_state(args.out.as_deref().unwrap_or(".".as_ref()))?.config,
        (None, false) => TrainConfig::preset("shakespeare-char-cpu")?,
    };
    if let Some(path) = &args.config {
        config = config.with_toml_file(path)?;
    }
    args.overrides.apply(&mut config);
    Ok(Some(config))
}

pub fn run(mut args: Args) -> anyhow::Result<ExitCode> {
    match args.kind.take() {
        Some(Kind::Image(image)) => return super::train_image::run(image),
        Some(Kind::Clip(clip)) => return super::train_image::run_clip(clip),
        None => {}
    }
    let (Some(data), Some(out)) = (args.data.clone(), args.out.clone()) else {
        anyhow::bail!("seer train needs --data and --out (see --help)");
    };
    let options = TrainOptions {
        data: data.clone(),
        out: out.clone(),
        config: resolve_config(&args)?,
        resume: args.resume,
        overwrite: args.overwrite,
        verbose: !args.quiet,
        device: parse_device(&args.device)?,
    };
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    ctrlc::set_handler(move || flag.store(true, Ordering::SeqCst))
        .context("cannot install the Ctrl-C handler")?;
    match train(&options, &stop)? {
        TrainOutcome::Finished {
            val_loss,
            elapsed_s,
        } => {
            println!(
                "done: val loss {val_loss:.4} after {elapsed_s:.1} s; model in {}",
                out.display()
            );
            Ok(ExitCode::SUCCESS)
        }
        TrainOutcome::Interrupted { step } => {
            println!(
                "interrupted: checkpoint saved at step {step}; continue with `seer train --data {} --out {} --resume`",
                data.display(),
                out.display()
            );
            Ok(ExitCode::from(130))
        }
    }
}
