//! `seer generate image`: pictures from a prompt, saved as a PNG (a grid when
//! there are several).

use seer::data::grid;
use seer::diffusion::SamplerKind;
use seer::generate::{generate_images, ImageOptions};
use seer::model::ImageModel;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct Args {
    /// What to draw (empty: an unconditional sample).
    #[arg(default_value = "")]
    prompt: String,
    /// Image model folder made by `seer train image`.
    #[arg(short, long)]
    model: PathBuf,
    /// Denoising steps.
    #[arg(long, default_value_t = 50)]
    steps: usize,
    /// Classifier-free guidance scale (1: the prompt alone; 0: ignore it).
    #[arg(long, default_value_t = 4.0, allow_negative_numbers = true)]
    guidance: f64,
    /// Sampler: ddim (deterministic with --eta 0) or ddpm (ancestral).
    #[arg(long, default_value = "ddim")]
    sampler: String,
    /// DDIM's noise scale (0: deterministic).
    #[arg(long, default_value_t = 0.0, allow_negative_numbers = true)]
    eta: f64,
    /// Random seed: the same seed, model and flags give the same pictures.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Pictures to make.
    #[arg(short = 'n', long, default_value_t = 1)]
    n: usize,
    /// PNG to write.
    #[arg(short, long, default_value = "out.png")]
    out: PathBuf,
    /// Hide the progress bar.
    #[arg(long)]
    quiet: bool,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let sampler = match args.sampler.as_str() {
        "ddim" => SamplerKind::Ddim { eta: args.eta },
        "ddpm" => SamplerKind::Ddpm,
        other => anyhow::bail!("--sampler {other}: use ddim or ddpm"),
    };
    let model = ImageModel::load(&args.model, &candle_core::Device::Cpu)?;
    if args.prompt.trim().is_empty() {
        eprintln!("empty prompt: drawing unconditional samples");
    }
    let (_, cut) = model.caption_ids(&args.prompt)?;
    if cut {
        eprintln!(
            "the prompt is longer than the text encoder's {} tokens: the end was cut off",
            model.text_encoder.config().context_length
        );
    }
    let options = ImageOptions {
        steps: args.steps,
        guidance: args.guidance,
        sampler,
        seed: args.seed,
    };
    if args.n == 0 {
        anyhow::bail!("-n must be at least 1");
    }
    let bar = if args.quiet {
        indicatif::ProgressBar::hidden()
    } else {
        indicatif::ProgressBar::new(args.steps as u64).with_style(
            indicatif::ProgressStyle::with_template(
                "step {pos}/{len} [{bar:30}] {per_sec} eta {eta}",
            )
            .expect("valid template")
            .progress_chars("=> "),
        )
    };
    let started = std::time::Instant::now();
    let pictures = generate_images(&model, &vec![args.prompt.clone(); args.n], &options, |_| {
        bar.inc(1)
    })?;
    bar.finish_and_clear();
    let columns = (pictures.len() as f64).sqrt().ceil() as usize;
    let picture = grid(&pictures, columns);
    let bytes = encode_png(&picture)?;
    seer::atomic::write_atomic(&args.out, &bytes)?;
    eprintln!(
        "{} picture(s) in {:.2} s → {}",
        pictures.len(),
        started.elapsed().as_secs_f64(),
        args.out.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// The picture as PNG bytes.
pub fn encode_png(picture: &image::RgbImage) -> anyhow::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    picture.write_to(
        &mut std::io::Cursor::new(&mut bytes),
        image::ImageFormat::Png,
    )?;
    Ok(bytes)
}
