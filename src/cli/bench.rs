//! `seer bench`: training and generation speed of presets on random weights.

use seer::device::parse_device;
use seer::generate::{bench_generate, bench_model, copy_bandwidth, median};
use seer::model::OpenModel;
use seer::train::{bench_image, bench_train, matmul_peak_gflops, ImageTrainConfig, TrainConfig};
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    what: What,
}

#[derive(clap::Subcommand)]
enum What {
    /// Milliseconds per training step (median after warm-up), tokens/s and MFU.
    Train {
        /// Preset whose model and batch to time.
        #[arg(long, default_value = "shakespeare-char-cpu")]
        preset: String,
        /// Override the preset's batch size.
        #[arg(long)]
        batch_size: Option<usize>,
        /// Vocabulary size of the random tokens (65 is shakespeare-char's).
        #[arg(long, default_value_t = 65)]
        vocab_size: usize,
        /// Untimed steps first.
        #[arg(long, default_value_t = 3)]
        warmup: usize,
        /// Timed steps.
        #[arg(long, default_value_t = 20)]
        iters: usize,
        /// Device: cpu, cuda or cuda:N.
        #[arg(long, default_value = "cpu")]
        device: String,
    },
    /// Generation tokens/s (prompt processing and new tokens, separately), on
    /// random weights of a preset's shape, or of a GGUF model file (as
    /// llama-bench measures: pp = one batch of --prompt-tokens, tg =
    /// --new-tokens decoded one at a time, medians of --repetitions).
    Generate {
        /// An open model to time instead of a preset (a GGUF file, or a
        /// Hugging Face Llama or Gemma 3 folder).
        #[arg(long)]
        model: Option<std::path::PathBuf>,
        /// Timed repetitions (open models).
        #[arg(long, default_value_t = 5)]
        repetitions: usize,
        /// Preset whose model shape to time.
        #[arg(long, default_value = "gpt2-small")]
        preset: String,
        /// Vocabulary size (50257 is GPT-2's).
        #[arg(long, default_value_t = 50257)]
        vocab_size: usize,
        /// Prompt length in tokens.
        #[arg(long, default_value_t = 128)]
        prompt_tokens: usize,
        /// Tokens to generate.
        #[arg(long, default_value_t = 256)]
        new_tokens: usize,
        /// Feed the whole context every step instead of using the KV cache.
        #[arg(long)]
        no_cache: bool,
        /// Weight matrices: f32, or bf16.
        #[arg(long, value_enum, default_value = "f32")]
        weights: super::Weights,
    },
    /// Text to image: ms per stage-2 training step, and seconds to sample a grid.
    Image {
        /// Image preset whose denoiser and batch to time.
        #[arg(long, default_value = "shapes")]
        preset: String,
        /// Untimed training steps first.
        #[arg(long, default_value_t = 2)]
        warmup: usize,
        /// Timed training steps.
        #[arg(long, default_value_t = 10)]
        iters: usize,
        /// Pictures sampled together.
        #[arg(long, default_value_t = 4)]
        images: usize,
        /// DDIM steps per picture.
        #[arg(long, default_value_t = 50)]
        steps: usize,
        /// Timed sampling rounds.
        #[arg(long, default_value_t = 3)]
        rounds: usize,
    },
}

impl Args {
    /// Whether the benchmark trains (so the allocator keeps freed memory).
    pub fn trains(&self) -> bool {
        matches!(self.what, What::Train { .. } | What::Image { .. })
    }
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    match args.what {
        What::Image {
            preset,
            warmup,
            iters,
            images,
            steps,
            rounds,
        } => {
            let config = ImageTrainConfig::preset(&preset)?;
            let bench = bench_image(&config, warmup, iters, images, steps, rounds)?;
            println!(
                "image preset {preset}: denoiser of {} parameters, batch {}",
                bench.params, config.diffusion.batch_size
            );
            println!("training: median {:.1} ms/iter", bench.train_step_ms);
            println!(
                "sampling: {images} pictures, {steps} DDIM steps with guidance in {:.2} s ({:.2} images/s)",
                bench.sample_s, bench.images_per_s
            );
            Ok(ExitCode::SUCCESS)
        }
        What::Train {
            preset,
            batch_size,
            vocab_size,
            warmup,
            iters,
            device,
        } => train(&preset, batch_size, vocab_size, warmup, iters, &device),
        What::Generate {
            model: Some(path),
            prompt_tokens,
            new_tokens,
            repetitions,
            ..
        } => bench_open_model(&path, prompt_tokens, new_tokens, repetitions),
        What::Generate {
            model: None,
            preset,
            vocab_size,
            prompt_tokens,
            new_tokens,
            no_cache,
            weights,
            ..
        } => {
            let config = TrainConfig::preset(&preset)?.model(vocab_size);
            let report = bench_generate(
                &config,
                weights.precision(),
                prompt_tokens,
                new_tokens,
                !no_cache,
            )?;
            let bandwidth = copy_bandwidth(1 << 28, 5);
            let bound = bandwidth / report.weight_bytes as f64;
            println!(
                "preset {preset}: {} layers, {} wide, vocab {vocab_size}, {weights:?} weights; prompt {prompt_tokens} tokens, {new_tokens} new, KV cache {}",
                config.n_layer,
                config.n_embd,
                if no_cache { "off" } else { "on" }
            );
            println!(
                "prompt processing: {:.1} tokens/s",
                report.prompt_tokens_per_s
            );
            println!("generation: {:.2} tokens/s", report.tokens_per_s);
            println!(
                "weights read per token: {:.1} MB; memory bandwidth (copy, read + write) {:.1} GB/s; bound {:.1} tokens/s ({:.0}% reached)",
                report.weight_bytes as f64 / 1e6,
                bandwidth / 1e9,
                bound,
                100.0 * report.tokens_per_s / bound
            );
            if let Some(rss) = report.peak_rss {
                println!("peak memory: {:.0} MiB", rss as f64 / (1 << 20) as f64);
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn train(
    preset: &str,
    batch_size: Option<usize>,
    vocab_size: usize,
    warmup: usize,
    iters: usize,
    device: &str,
) -> anyhow::Result<ExitCode> {
    let device = parse_device(device)?;
    let mut config = TrainConfig::preset(preset)?;
    if let Some(b) = batch_size {
        config.batch_size = b;
    }
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let peak = matmul_peak_gflops(2048, 10, &device)?;
    println!("preset {preset}: {} layers, {} heads, {} wide, block {}, batch {} x {} accumulation, vocab {vocab_size}",
        config.n_layer, config.n_head, config.n_embd, config.block_size, config.batch_size, config.grad_accum);
    println!("f32 matmul peak (2048^3, best of 10): {peak:.1} GFLOP/s on {threads} threads");
    let report = bench_train(&config, vocab_size, warmup, iters, &device)?;
    let achieved = report.flops_per_step / (report.median_ms / 1e3) / 1e9;
    println!(
        "params (excluding position embeddings): {:.2}M",
        report.params as f64 / 1e6
    );
    println!(
        "median {:.2} ms/iter over {iters} steps (min {:.2}, max {:.2})",
        report.median_ms,
        report.step_ms.iter().copied().fold(f64::MAX, f64::min),
        report.step_ms.iter().copied().fold(0.0, f64::max)
    );
    println!(
        "{:.0} tokens/s, {:.1} GFLOP/s, MFU {:.1}% of the measured peak",
        report.tokens_per_s,
        achieved,
        100.0 * achieved / peak
    );
    let [forward, backward, optimizer] = report.phase_ms;
    println!("phases (medians): forward {forward:.2} ms, backward {backward:.2} ms, optimizer {optimizer:.2} ms");
    Ok(ExitCode::SUCCESS)
}

/// `seer bench generate --model FILE.gguf` (or a Hugging Face folder):
/// llama-bench's pp and tg figures.
fn bench_open_model(
    path: &std::path::Path,
    prompt_tokens: usize,
    new_tokens: usize,
    repetitions: usize,
) -> anyhow::Result<ExitCode> {
    let open = OpenModel::open(path, Some(prompt_tokens.max(new_tokens).max(1)))?;
    let model = open.model();
    let bench = bench_model(model, prompt_tokens, new_tokens, repetitions)?;
    let spread = |v: &[f64]| {
        let (lo, hi) = v
            .iter()
            .fold((f64::MAX, 0f64), |(l, h), &x| (l.min(x), h.max(x)));
        format!(
            "{:.1} tokens/s (median of {}; {lo:.1} to {hi:.1})",
            median(v),
            v.len()
        )
    };
    println!(
        "{}: {} layers, {} wide, {} threads, {} kernels",
        open.name(),
        model.config().n_layer,
        model.config().n_embd,
        rayon::current_num_threads(),
        model.kernel_path()
    );
    println!("pp{prompt_tokens}: {}", spread(&bench.prompt));
    println!("tg{new_tokens}: {}", spread(&bench.generation));
    if let Some(rss) = seer::generate::peak_rss() {
        println!("peak memory: {:.0} MiB", rss as f64 / (1 << 20) as f64);
    }
    Ok(ExitCode::SUCCESS)
}
