//! `seer eval image`: score a text-to-image model on the shapes world:
//! CLIP retrieval and hard negatives, then a GenEval-style table of
//! generated pictures judged by the detector; or, for MNIST models, the
//! share of generated digits a classifier reads as the prompted digit.
//! `seer eval binding`: the denoiser as a classifier between a two-object
//! caption and the same caption with its colours exchanged, per timestep.
//! `seer eval perplexity`: a text model's perplexity on a text file.

use seer::data::grid;
use seer::data::mnist::Mnist;
use seer::data::shapes::Category;
use seer::diffusion::SamplerKind;
use seer::eval::{
    evaluate_clip, evaluate_digits, evaluate_images, probe_binding, probe_timesteps, ClipReport,
    DigitClassifier, Phrasing,
};
use seer::generate::ImageOptions;
use seer::model::ImageModel;
use std::path::PathBuf;
use std::process::ExitCode;

/// Pictures per category in the `--examples` grid.
const EXAMPLES_PER_CATEGORY: usize = 8;

/// What `seer eval` scores.
#[derive(clap::Subcommand)]
pub enum Kind {
    /// Score a text-to-image model on the shapes world.
    Image(ImageArgs),
    /// A text model's perplexity on a text file, measured as llama-perplexity
    /// does (non-overlapping windows of --ctx tokens, the second half of each scored).
    Perplexity(super::eval_text::PerplexityArgs),
    /// Probe a shapes model's attribute binding without drawing: how often
    /// the denoiser predicts better given a two-object caption than given
    /// it with the colours exchanged, per timestep.
    Binding(BindingArgs),
}

#[derive(clap::Args)]
pub struct BindingArgs {
    /// Image model folder made by `seer train image` on the shapes world.
    #[arg(short, long)]
    model: PathBuf,
    /// Two-object pictures to probe.
    #[arg(long, default_value_t = 200)]
    pictures: usize,
    /// Timesteps probed: the centres of this many equal bands of the schedule.
    #[arg(long, default_value_t = 10)]
    bands: usize,
    /// Seed of the scenes and the noise.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Join the two objects by a relation that holds ("a red circle to the
    /// left of a blue square") instead of "and".
    #[arg(long)]
    relation: bool,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    kind: Kind,
}

#[derive(clap::Args)]
pub struct ImageArgs {
    /// Image model folder made by `seer train image`.
    #[arg(short, long)]
    model: PathBuf,
    /// What the model was trained on: `shapes` (the CLIP scores and the
    /// category table) or `mnist` (generated digits read by a classifier).
    #[arg(long, default_value = "shapes")]
    data: String,
    /// Generated digits per digit (MNIST).
    #[arg(long, default_value_t = 20)]
    per_digit: usize,
    /// Training steps of the MNIST judging classifier.
    #[arg(long, default_value_t = 1500)]
    classifier_steps: u64,
    /// Prompts (one picture each) per category.
    #[arg(long, default_value_t = 50)]
    per_category: usize,
    /// Held-out pairs for the CLIP scores.
    #[arg(long, default_value_t = 1000)]
    clip_pairs: usize,
    /// Denoising steps (DDIM).
    #[arg(long, default_value_t = 50)]
    steps: usize,
    /// Classifier-free guidance scale.
    #[arg(long, default_value_t = 4.0)]
    guidance: f64,
    /// Seed of the starting noise.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Write a grid of the first pictures of each category here (shapes: a
    /// row of up to eight per category, in report order; MNIST: a row per digit).
    #[arg(long)]
    examples: Option<PathBuf>,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let args = match args.kind {
        Kind::Image(args) => args,
        Kind::Binding(args) => return eval_binding(&args),
        Kind::Perplexity(args) => return super::eval_text::run(&args),
    };
    let model = ImageModel::load(&args.model, &candle_core::Device::Cpu)?;
    match args.data.as_str() {
        "shapes" => {}
        "mnist" => return eval_mnist(&args, &model),
        other => anyhow::bail!("--data {other}: use shapes or mnist"),
    }
    let side = model.image_encoder.config().image_size as u32;
    let started = std::time::Instant::now();
    let clip = evaluate_clip(&model, args.clip_pairs, side, 0x5eed)?;
    let clip_s = started.elapsed().as_secs_f64();
    if !args.json {
        print_clip(&clip, clip_s);
    }
    if model.denoiser.is_none() {
        if args.json {
            println!(
                "{}",
                serde_json::to_string_pretty(&serde_json::json!({"clip": clip}))?
            );
        } else {
            println!(
                "\nno denoiser in {} (stage 2 not trained yet): no pictures to judge",
                args.model.display()
            );
        }
        return Ok(ExitCode::SUCCESS);
    }
    let options = ImageOptions {
        steps: args.steps,
        guidance: args.guidance,
        sampler: SamplerKind::Ddim { eta: 0.0 },
        seed: args.seed,
    };
    let started = std::time::Instant::now();
    let per_row = args.per_category.clamp(1, EXAMPLES_PER_CATEGORY);
    let mut shown: Vec<Vec<image::RgbImage>> = vec![Vec::new(); Category::ALL.len()];
    let report = evaluate_images(
        &model,
        args.per_category,
        0x9e7e,
        &options,
        |category, _, picture, _| {
            let row = &mut shown[category as usize];
            if row.len() < per_row {
                row.push(picture.clone());
            }
        },
    )?;
    let images_s = started.elapsed().as_secs_f64();
    if let Some(path) = &args.examples {
        let bytes = super::generate_image::encode_png(&grid(&shown.concat(), per_row))?;
        seer::atomic::write_atomic(path, &bytes)?;
    }
    if args.json {
        let json = serde_json::json!({"clip": clip, "images": report});
        println!("{}", serde_json::to_string_pretty(&json)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "\nGenerated pictures, judged by the detector ({} DDIM steps, guidance {}, {images_s:.1} s):",
        args.steps, args.guidance
    );
    println!("  {:<24} {:>8} {:>7}", "category", "correct", "share");
    for row in &report.rows {
        println!(
            "  {:<24} {:>4}/{:<3} {:>6.1}%",
            row.category,
            row.passed,
            row.total,
            row.percent()
        );
    }
    println!("  {:<24} {:>8} {:>6.1}%", "overall", "", report.overall);
    println!("Why pictures failed (a picture counts under each reason it shows):");
    for row in report.rows.iter().filter(|r| !r.failures.is_empty()) {
        let reasons: Vec<String> = row
            .failures
            .iter()
            .map(|(reason, n)| format!("{reason} {n}"))
            .collect();
        println!("  {:<24} {}", row.category, reasons.join(", "));
    }
    Ok(ExitCode::SUCCESS)
}

fn print_clip(clip: &ClipReport, seconds: f64) {
    println!("CLIP on {} held-out pairs ({seconds:.1} s):", clip.pairs);
    println!(
        "  text→image recall@1 {:.1}%  @5 {:.1}%   (strict, paired picture only: @1 {:.1}%)",
        clip.text_to_image_r1, clip.text_to_image_r5, clip.strict_text_to_image_r1
    );
    println!(
        "  image→text recall@1 {:.1}%  @5 {:.1}%",
        clip.image_to_text_r1, clip.image_to_text_r5
    );
    for (kind, accuracy, cases) in &clip.hard_negatives {
        println!("  hard negatives, {kind}: {accuracy:.1}% of {cases}");
    }
}

fn eval_mnist(args: &ImageArgs, model: &ImageModel) -> anyhow::Result<ExitCode> {
    let Some(denoiser) = &model.denoiser else {
        anyhow::bail!(
            "{} has no denoiser (stage 2 was not trained)",
            args.model.display()
        );
    };
    let side = denoiser.config().image_size as u32;
    let started = std::time::Instant::now();
    let mnist = Mnist::builtin()?;
    let classifier = DigitClassifier::train(&mnist, side, args.classifier_steps, 7)?;
    println!(
        "judging classifier: a ViT trained on MNIST digits 5000-9499 ({} steps, {:.1} s); accuracy on digits 9500-9999: {:.1}%",
        args.classifier_steps,
        started.elapsed().as_secs_f64(),
        classifier.test_accuracy
    );
    let options = ImageOptions {
        steps: args.steps,
        guidance: args.guidance,
        sampler: SamplerKind::Ddim { eta: 0.0 },
        seed: args.seed,
    };
    let started = std::time::Instant::now();
    let (share, pictures) = evaluate_digits(model, &classifier, args.per_digit, &options)?;
    if let Some(path) = &args.examples {
        let bytes = super::generate_image::encode_png(&grid(&pictures, args.per_digit.max(1)))?;
        seer::atomic::write_atomic(path, &bytes)?;
    }
    println!(
        "generated digits read as the prompted digit: {share:.1}% of {} ({} DDIM steps, guidance {}, {:.1} s)",
        pictures.len(),
        args.steps,
        args.guidance,
        started.elapsed().as_secs_f64()
    );
    Ok(ExitCode::SUCCESS)
}

fn eval_binding(args: &BindingArgs) -> anyhow::Result<ExitCode> {
    if args.bands == 0 {
        anyhow::bail!("--bands 0: probe at least one band of timesteps");
    }
    let model = ImageModel::load(&args.model, &candle_core::Device::Cpu)?;
    let timesteps = probe_timesteps(model.schedule.len(), args.bands);
    let started = std::time::Instant::now();
    let phrasing = if args.relation {
        Phrasing::Relation
    } else {
        Phrasing::And
    };
    let report = probe_binding(&model, args.pictures, &timesteps, args.seed, phrasing)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(ExitCode::SUCCESS);
    }
    let joined = match phrasing {
        Phrasing::And => "and",
        Phrasing::Relation => "a relation",
    };
    println!(
        "Binding probe on {} two-object pictures ({:.1} s), objects joined by {joined}: the true caption against the colours exchanged",
        report.pictures,
        started.elapsed().as_secs_f64()
    );
    println!(
        "  {:>8} {:>16} {:>14}",
        "timestep", "true caption wins", "mean error gap"
    );
    for row in &report.timesteps {
        println!(
            "  {:>8} {:>15.1}% {:>13.2}%",
            row.timestep,
            row.percent(),
            100.0 * row.mean_gap
        );
    }
    println!(
        "  {:>8} {:>15.1}%  (errors summed over the timesteps)",
        "all",
        100.0 * report.correct as f64 / report.pictures as f64
    );
    Ok(ExitCode::SUCCESS)
}
