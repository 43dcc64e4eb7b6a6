//! `seer train image`: train a text-to-image model (stage 1 CLIP, stage 2 DiT).

use anyhow::Context;
use seer::data::mnist::{Mnist, GENERATOR_DIGITS};
use seer::data::{load_folder, PairSource};
use seer::train::{train_image, ImageTrainConfig, ImageTrainOptions};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

#[derive(clap::Args)]
pub struct Args {
    /// Training pairs: `shapes` (the built-in shapes world), `mnist` (the
    /// built-in digits) or a folder of PNG/JPEG files with `.txt` captions
    /// or a `metadata.jsonl`.
    #[arg(long, default_value = "shapes")]
    data: String,
    /// Picture side in pixels (the shapes world draws 32 or 64).
    #[arg(long)]
    image_size: Option<usize>,
    /// Model folder to write.
    #[arg(short, long)]
    out: PathBuf,
    /// Built-in preset: shapes (default) or tiny.
    #[arg(long, default_value = "shapes")]
    preset: String,
    /// TOML file whose keys override the preset (tables for the parts:
    /// `[denoiser]`, `[diffusion]`, `[scheduler]`, ...).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Reuse stage 1 (tokenizer and encoders) from this image model folder.
    #[arg(long)]
    text_encoder: Option<PathBuf>,
    /// Go on training the model in this folder (a fresh optimizer, warm-up
    /// and cosine decay): `train image` starts stage 2 from its denoiser and
    /// reuses its stage 1 (unless --text-encoder names another folder, whose
    /// caption states must be as wide); `train clip` trains its tokenizer's
    /// encoders further.
    #[arg(long)]
    continue_from: Option<PathBuf>,
    /// Let stage 2 train the text encoder too (default: frozen).
    #[arg(long)]
    finetune_text_encoder: bool,
    /// Stage 1 steps.
    #[arg(long)]
    clip_iters: Option<u64>,
    /// Stage 2 steps.
    #[arg(long)]
    iters: Option<u64>,
    /// Stage 2 pictures per step.
    #[arg(long)]
    batch_size: Option<usize>,
    /// Stage 2 peak learning rate.
    #[arg(long)]
    lr: Option<f64>,
    /// Seed of initialisation and data.
    #[arg(long)]
    seed: Option<u64>,
    /// Replace a model already in --out.
    #[arg(long)]
    overwrite: bool,
    /// Hide the progress bars.
    #[arg(long)]
    quiet: bool,
}

fn source(data: &str, side: usize) -> anyhow::Result<PairSource> {
    let side = side as u32;
    Ok(match data {
        "shapes" => PairSource::Shapes { side },
        "mnist" => {
            if side < 28 {
                anyhow::bail!("--image-size {side} is too small for 28×28 MNIST digits");
            }
            PairSource::Mnist {
                digits: Arc::new(Mnist::builtin()?),
                range: GENERATOR_DIGITS,
                side,
            }
        }
        folder => {
            let loaded = load_folder(std::path::Path::new(folder), side)?;
            if !loaded.skipped.is_empty() {
                eprintln!(
                    "{folder}: {} file(s) skipped, e.g. {}: {}",
                    loaded.skipped.len(),
                    loaded.skipped[0].0,
                    loaded.skipped[0].1
                );
            }
            eprintln!("{folder}: {} captioned pictures", loaded.pairs.len());
            PairSource::Folder {
                pairs: Arc::new(loaded.pairs),
                side,
            }
        }
    })
}

/// `seer train clip`: stage 1 alone; the stage-2 settings do not apply.
pub fn run_clip(args: Args) -> anyhow::Result<ExitCode> {
    let stage2_flags = [
        ("--text-encoder", args.text_encoder.is_some()),
        ("--finetune-text-encoder", args.finetune_text_encoder),
        ("--iters", args.iters.is_some()),
        ("--batch-size", args.batch_size.is_some()),
        ("--lr", args.lr.is_some()),
    ];
    if let Some((flag, _)) = stage2_flags.iter().find(|(_, given)| *given) {
        anyhow::bail!("{flag} is a stage-2 setting: use it with `seer train image`");
    }
    train(args, true)
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    train(args, false)
}

fn train(args: Args, clip_only: bool) -> anyhow::Result<ExitCode> {
    let mut config = ImageTrainConfig::preset(&args.preset)?;
    if let Some(path) = &args.config {
        config = config.with_toml_file(path)?;
    }
    config.finetune_text_encoder |= args.finetune_text_encoder;
    if let Some(iters) = args.clip_iters {
        config.clip.iters = iters;
    }
    if let Some(iters) = args.iters {
        config.diffusion.iters = iters;
    }
    if let Some(batch) = args.batch_size {
        config.diffusion.batch_size = batch;
    }
    if let Some(lr) = args.lr {
        config.diffusion.lr = lr;
        config.diffusion.min_lr = config.diffusion.min_lr.min(lr);
    }
    if let Some(side) = args.image_size {
        config.image_size = side;
        config.image_encoder.image_size = side;
        config.denoiser.image_size = side;
    }
    if let Some(seed) = args.seed {
        config.seed = seed;
    }
    if args.out.join("model_index.json").exists() && !args.overwrite {
        anyhow::bail!(
            "{} already holds an image model: pass --overwrite to replace it",
            args.out.display()
        );
    }
    let options = ImageTrainOptions {
        source: source(&args.data, config.image_size)?,
        config,
        out: args.out.clone(),
        continue_clip: clip_only && args.continue_from.is_some(),
        text_encoder: args.text_encoder.or(args.continue_from.clone()),
        continue_denoiser: args.continue_from.filter(|_| !clip_only),
        progress: !args.quiet,
        clip_only,
    };
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    ctrlc::set_handler(move || flag.store(true, Ordering::SeqCst))
        .context("cannot install the Ctrl-C handler")?;
    let outcome = train_image(&options, &stop)?;
    if let Some(loss) = outcome.clip_loss {
        println!(
            "stage 1 (CLIP): loss {loss:.4} in {:.1} s",
            outcome.clip_seconds
        );
    }
    if clip_only {
        println!(
            "stage 1 model (tokenizer and encoders) in {}",
            args.out.display()
        );
    } else {
        println!(
            "stage 2 (diffusion): loss {:.4} in {:.1} s; model in {}",
            outcome.diffusion_loss,
            outcome.diffusion_seconds,
            args.out.display()
        );
    }
    if outcome.interrupted {
        println!(
            "interrupted: the model saved so far is in {}",
            args.out.display()
        );
        return Ok(ExitCode::from(130));
    }
    Ok(ExitCode::SUCCESS)
}
