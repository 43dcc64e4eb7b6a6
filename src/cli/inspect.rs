//! `seer inspect`: look inside a model. How text splits into tokens, the
//! next-token distribution, attention maps, embedding neighbours and
//! analogies, the denoising path of a picture and where its caption words
//! land in it; in the terminal, as PNG, and as JSON (`--json`) for scripts.

use super::text_model::ModelArgs;
use seer::diffusion::SamplerKind;
use seer::generate::ImageOptions;
use seer::inspect::{self, EmbeddingSpace, TokenPiece, WordVector};
use seer::model::{Gpt, ImageModel, OpenModel};
use seer::plot::save_png;
use seer::tokenize::{Tokenizer, TokenizerKind};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    view: View,
}

#[derive(clap::Subcommand)]
enum View {
    /// How a text splits into tokens: boundaries, ids, byte fallbacks.
    Tokens(TokensArgs),
    /// The next-token distribution after a prompt (full softmax, temperature 1).
    Next(NextArgs),
    /// Attention weights of each layer and head over a prompt, as a heatmap PNG.
    Attention(AttentionArgs),
    /// Token-embedding geometry: cosine neighbours, analogies, a 2-D PCA map.
    Embed(EmbedArgs),
    /// The denoising path of text to image, from noise to picture, as one strip.
    Denoise(DenoiseArgs),
    /// How much each caption token's state depends on its context: two
    /// captions of the same length, their states compared position by position.
    Context(ContextArgs),
    /// Where each caption word lands in the picture: how much the
    /// denoiser's patches read each caption token while drawing it.
    CrossAttention(CrossAttentionArgs),
}

/// The `--model` of the views that run a text model.
#[derive(clap::Args)]
struct TextModelArg {
    /// Model folder: config.json, model.safetensors and tokenizer.json (or
    /// GPT-2's vocab.json + merges.txt), or an open model's .gguf file.
    #[arg(short, long)]
    model: PathBuf,
}

/// An open model's file, opened for a look inside (its cache sized for a prompt).
fn open_model(path: &Path) -> anyhow::Result<OpenModel> {
    Ok(OpenModel::open(path, Some(4096))?)
}

/// A text model folder: config.json, model.safetensors and a tokenizer.
fn load_text_model(dir: &Path) -> anyhow::Result<(Gpt, Tokenizer)> {
    let model = Gpt::load(dir, candle_core::DType::F32, &candle_core::Device::Cpu)?;
    let tokenizer = Tokenizer::load_model_dir(dir)?;
    Ok((model, tokenizer))
}

#[derive(clap::Args)]
struct TokensArgs {
    /// Model folder, or an image model folder (its tokenizer/), or a folder
    /// made by `seer prepare`, or an open model's .gguf file.
    #[arg(short, long)]
    model: PathBuf,
    /// The text to split.
    text: String,
    /// Also draw it as a PNG.
    #[arg(long)]
    plot: Option<PathBuf>,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args)]
struct NextArgs {
    /// Model folder (config.json, model.safetensors and tokenizer.json, or
    /// GPT-2's vocab.json + merges.txt), or an open model's .gguf file or
    /// Hugging Face folder (Llama family, Gemma 3).
    #[arg(short, long)]
    model: PathBuf,
    /// The prompt.
    prompt: String,
    /// How many of the most likely tokens to show.
    #[arg(long, default_value_t = 10)]
    top: usize,
    /// Also draw it as a PNG.
    #[arg(long)]
    plot: Option<PathBuf>,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args)]
struct AttentionArgs {
    #[command(flatten)]
    model: TextModelArg,
    /// The prompt.
    prompt: String,
    /// Layer to show, from 0 (default: the mean over all layers).
    #[arg(long)]
    layer: Option<usize>,
    /// Head to show, from 0 (default: the mean over all heads).
    #[arg(long)]
    head: Option<usize>,
    /// Token position whose attention is listed (default: the last).
    #[arg(long)]
    query: Option<usize>,
    /// How many attended positions to list.
    #[arg(long, default_value_t = 5)]
    top: usize,
    /// Heatmap PNG to write.
    #[arg(short, long, default_value = "attention.png")]
    out: PathBuf,
    /// Print every layer's and head's weights as JSON (no PNG).
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args)]
#[command(group = clap::ArgGroup::new("question").required(true).multiple(true))]
struct EmbedArgs {
    /// Model folder (as for `next`), or an image model folder: its caption
    /// encoder's token embedding.
    #[arg(short, long)]
    model: PathBuf,
    /// The tokens nearest this word.
    #[arg(long, group = "question")]
    neighbours: Option<String>,
    /// Vector arithmetic, e.g. "king - man + woman": the tokens nearest the result.
    #[arg(long, group = "question")]
    analogy: Option<String>,
    /// Words to place on the 2-D map (comma-separated; default: the words
    /// asked about and the answers).
    #[arg(long, group = "question", value_delimiter = ',')]
    words: Vec<String>,
    /// How many tokens to list.
    #[arg(long, default_value_t = 10)]
    top: usize,
    /// Write a PNG map of the words' first two principal components.
    #[arg(long)]
    plot: Option<PathBuf>,
    /// Print JSON instead of tables.
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args)]
struct ContextArgs {
    /// Image model folder made by `seer train image`.
    #[arg(short, long)]
    model: PathBuf,
    /// A caption.
    a: String,
    /// Another caption of as many tokens (e.g. with the colours swapped).
    b: String,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

/// How to draw the picture that a view looks into.
#[derive(clap::Args)]
struct DrawArgs {
    /// Denoising steps.
    #[arg(long, default_value_t = 50)]
    steps: usize,
    /// Classifier-free guidance scale.
    #[arg(long, default_value_t = 4.0)]
    guidance: f64,
    /// Sampler: ddim or ddpm.
    #[arg(long, default_value = "ddim")]
    sampler: String,
    /// Random seed.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// How many times to enlarge each picture.
    #[arg(long, default_value_t = 3)]
    scale: u32,
}

impl DrawArgs {
    /// The sampling options these arguments ask for, once checked.
    fn options(&self) -> anyhow::Result<ImageOptions> {
        let sampler = match self.sampler.as_str() {
            "ddim" => SamplerKind::Ddim { eta: 0.0 },
            "ddpm" => SamplerKind::Ddpm,
            other => anyhow::bail!("--sampler {other}: use ddim or ddpm"),
        };
        if self.scale == 0 || self.scale > 16 {
            anyhow::bail!("--scale {}: use 1 to 16", self.scale);
        }
        Ok(ImageOptions {
            steps: self.steps,
            guidance: self.guidance,
            sampler,
            seed: self.seed,
        })
    }
}

#[derive(clap::Args)]
struct DenoiseArgs {
    /// Image model folder made by `seer train image`.
    #[arg(short, long)]
    model: PathBuf,
    /// What to draw.
    prompt: String,
    #[command(flatten)]
    draw: DrawArgs,
    /// Columns in the strip: the noise, then evenly spread steps to the last.
    #[arg(long, default_value_t = 8)]
    frames: usize,
    /// PNG to write.
    #[arg(short, long, default_value = "denoise.png")]
    out: PathBuf,
}

#[derive(clap::Args)]
struct CrossAttentionArgs {
    /// Image model folder made by `seer train image`.
    #[arg(short, long)]
    model: PathBuf,
    /// What to draw.
    prompt: String,
    #[command(flatten)]
    draw: DrawArgs,
    /// Denoiser block to show, from 0 (default: the mean over all blocks).
    #[arg(long)]
    block: Option<usize>,
    /// PNG to write: the picture, then each caption token's map over it.
    #[arg(short, long, default_value = "cross-attention.png")]
    out: PathBuf,
    /// Print the tokens and their maps as JSON (no PNG).
    #[arg(long)]
    json: bool,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    match args.view {
        View::Tokens(a) => tokens(a),
        View::Next(a) => next(a),
        View::Attention(a) => attention(a),
        View::Embed(a) => embed(a),
        View::Denoise(a) => denoise(a),
        View::Context(a) => context(a),
        View::CrossAttention(a) => cross_attention(a),
    }?;
    Ok(ExitCode::SUCCESS)
}

fn print_json(value: &impl serde::Serialize) {
    println!("{}", serde_json::to_string(value).expect("serialises"));
}

/// The tokens joined with `|` between them, whitespace visible.
fn boundaries(tokens: &[String]) -> String {
    let shown: Vec<String> = tokens.iter().map(|t| inspect::visible(t)).collect();
    format!("|{}|", shown.join("|"))
}

/// A bar of up to `width` blocks for `fraction` of the largest value.
fn bar(fraction: f64, width: usize) -> String {
    "█".repeat((fraction.clamp(0.0, 1.0) * width as f64).round() as usize)
}

fn tokens(args: TokensArgs) -> anyhow::Result<()> {
    let dir = &args.model;
    let image_tokenizer = dir.join("tokenizer").join("tokenizer.json");
    let tokenizer = if OpenModel::is_model_file(dir) {
        open_model(dir)?.tokenizer().clone()
    } else if image_tokenizer.exists() {
        Tokenizer::load(&image_tokenizer)?
    } else {
        Tokenizer::load_model_dir(dir)?
    };
    let pieces = inspect::split_tokens(&tokenizer, &args.text)?;
    if let Some(path) = &args.plot {
        let labels: Vec<String> = pieces.iter().map(TokenPiece::display).collect();
        let ids: Vec<u32> = pieces.iter().map(|p| p.id).collect();
        let title = format!("{} tokens", pieces.len());
        save_png(&inspect::token_boxes(&labels, &ids, &title)?, path)?;
    }
    if args.json {
        print_json(&serde_json::json!({ "tokens": pieces }));
        return Ok(());
    }
    let kind = match tokenizer.kind() {
        TokenizerKind::Char => "character",
        TokenizerKind::Bpe => "byte-level BPE",
    };
    println!(
        "{} tokens for {} characters ({kind} tokenizer, {} in the vocabulary)",
        pieces.len(),
        args.text.chars().count(),
        tokenizer.vocab_size()
    );
    let texts: Vec<String> = pieces.iter().map(TokenPiece::text).collect();
    println!("{}", boundaries(&texts));
    println!("{:>4}  {:>7}  {:<16} bytes", "#", "id", "token");
    for (i, piece) in pieces.iter().enumerate() {
        let bytes: Vec<String> = piece.bytes.iter().map(|b| format!("{b:02x}")).collect();
        let note = if piece.byte_fallback {
            "  (byte fallback: part of a character)"
        } else {
            ""
        };
        println!(
            "{i:>4}  {:>7}  {:<16} {}{note}",
            piece.id,
            piece.display(),
            bytes.join(" ")
        );
    }
    Ok(())
}

fn next(args: NextArgs) -> anyhow::Result<()> {
    let loaded = ModelArgs {
        model: args.model.clone(),
        weights: super::Weights::F32,
        device: "cpu".into(),
        context: 4096,
    }
    .load()?;
    let ids = inspect::fits(loaded.model(), loaded.prompt_ids(&args.prompt)?)?;
    let result = inspect::next_tokens(loaded.model(), loaded.tokenizer(), &ids, args.top)?;
    if let Some(path) = &args.plot {
        let labels: Vec<String> = result
            .next
            .iter()
            .map(|n| inspect::visible(&n.token))
            .collect();
        let probs: Vec<f64> = result.next.iter().map(|n| n.prob).collect();
        let title = format!("next token after \"{}\"", args.prompt.replace('\n', "↵"));
        save_png(&inspect::probability_bars(&labels, &probs, &title)?, path)?;
    }
    if args.json {
        print_json(&result);
        return Ok(());
    }
    println!(
        "prompt: {} ({} tokens)",
        boundaries(&result.prompt_tokens),
        result.prompt_tokens.len()
    );
    println!(
        "{:>4}  {:<16} {:>7}  {:>8}  {:>8}",
        "rank", "next token", "id", "prob", "cum."
    );
    let top = result.next.first().map_or(1.0, |n| n.prob);
    let mut cumulative = 0.0;
    for (rank, candidate) in result.next.iter().enumerate() {
        cumulative += candidate.prob;
        println!(
            "{:>4}  {:<16} {:>7}  {:>7.2}%  {:>7.2}%  {}",
            rank + 1,
            inspect::visible(&candidate.token),
            candidate.id,
            100.0 * candidate.prob,
            100.0 * cumulative,
            bar(candidate.prob / top, 30)
        );
    }
    Ok(())
}

fn attention(args: AttentionArgs) -> anyhow::Result<()> {
    let path = &args.model.model;
    let maps = if OpenModel::is_model_file(path) {
        inspect::open_model_attention_maps(&open_model(path)?, &args.prompt)?
    } else {
        let (model, tokenizer) = load_text_model(path)?;
        inspect::attention_maps(&model, &tokenizer, &args.prompt)?
    };
    let map = maps.select(args.layer, args.head)?;
    let query = args.query.unwrap_or(maps.tokens.len() - 1);
    let attended = maps.most_attended(&map, query, args.top)?;
    if args.json {
        print_json(&maps);
        return Ok(());
    }
    let which = |index: Option<usize>, count: usize, noun: &str| match index {
        Some(i) => format!("{noun} {i} (of {count})"),
        None => format!("mean of {count} {noun}s"),
    };
    let title = format!(
        "{}, {} (row: query, column: key)",
        which(args.layer, maps.layers(), "layer"),
        which(args.head, maps.heads(), "head")
    );
    let visible: Vec<String> = maps.tokens.iter().map(|t| inspect::visible(t)).collect();
    // Written first: a reader that stops early must not cost the picture.
    let picture = inspect::attention_heatmap(&map, &visible, &title)?;
    save_png(&picture, &args.out)?;
    println!(
        "{} ({} tokens); {title}",
        boundaries(&maps.tokens),
        maps.tokens.len()
    );
    println!("token {query} '{}' attends most to:", visible[query]);
    for a in &attended {
        println!(
            "{:>5}  {:<16} {:.3}  {}",
            a.position,
            visible[a.position],
            a.weight,
            bar(a.weight as f64, 30)
        );
    }
    println!("heatmap: {}", args.out.display());
    Ok(())
}

fn embed(args: EmbedArgs) -> anyhow::Result<()> {
    let dir = &args.model;
    // An image model's caption encoder has a token embedding too.
    let (space, tokenizer) = if OpenModel::is_model_file(dir) {
        let open = open_model(dir)?;
        (
            EmbeddingSpace::of_open(open.model()),
            open.tokenizer().clone(),
        )
    } else if dir.join("model_index.json").exists() {
        let model = ImageModel::load(dir, &candle_core::Device::Cpu)?;
        let space = EmbeddingSpace::new(model.text_encoder.token_embeddings())?;
        (space, model.tokenizer)
    } else {
        let (model, tokenizer) = load_text_model(&args.model)?;
        (EmbeddingSpace::of(&model)?, tokenizer)
    };
    let mut report = serde_json::Map::new();
    // The terminal's text, printed at the end (after the map is written).
    let mut text = String::new();
    // The words asked about and the answers, for the default map.
    let mut mapped: Vec<WordVector> = Vec::new();
    if let Some(word) = &args.neighbours {
        let vector = space.word(&tokenizer, word)?;
        let ids: Vec<u32> = vector.tokens.iter().map(|t| t.id).collect();
        let found = space.nearest(&tokenizer, &vector.vector, args.top, &ids)?;
        writeln!(text, "{}", vector.describe())?;
        write_neighbours(&mut text, "nearest tokens", &found)?;
        report.insert(
            "neighbours".into(),
            serde_json::json!({ "word": vector, "nearest": found }),
        );
        for n in found.iter().take(5) {
            mapped.push(space.token(&tokenizer, n.id)?);
        }
        mapped.push(vector);
    }
    if let Some(expression) = &args.analogy {
        let terms = inspect::parse_analogy(expression)?;
        let (words, sum) = space.combine(&tokenizer, &terms)?;
        let ids: Vec<u32> = words
            .iter()
            .flat_map(|w| w.tokens.iter().map(|t| t.id))
            .collect();
        let found = space.nearest(&tokenizer, &sum, args.top, &ids)?;
        for w in &words {
            writeln!(text, "{}", w.describe())?;
        }
        write_neighbours(&mut text, &format!("nearest to {expression}"), &found)?;
        report.insert(
            "analogy".into(),
            serde_json::json!({ "expression": expression, "terms": words, "nearest": found }),
        );
        if let Some(best) = found.first() {
            mapped.push(space.token(&tokenizer, best.id)?);
        }
        mapped.extend(words);
    }
    if !args.words.is_empty() {
        mapped = args
            .words
            .iter()
            .map(|w| space.word(&tokenizer, w))
            .collect::<seer::Result<_>>()?;
    }
    let points = inspect::pca_2d(&mapped.iter().map(|w| w.vector.clone()).collect::<Vec<_>>());
    if !args.words.is_empty() {
        let placed: Vec<_> = mapped
            .iter()
            .zip(&points)
            .map(|(w, p)| serde_json::json!({ "word": w, "pc1": p[0], "pc2": p[1] }))
            .collect();
        writeln!(text, "{:<16} {:>9} {:>9}", "word", "pc1", "pc2")?;
        for (w, p) in mapped.iter().zip(&points) {
            writeln!(text, "{:<16} {:>9.3} {:>9.3}", w.word, p[0], p[1])?;
        }
        report.insert("map".into(), serde_json::Value::Array(placed));
    }
    if let Some(path) = &args.plot {
        let labels: Vec<String> = mapped.iter().map(|w| w.word.clone()).collect();
        let title = "token embedding, first two principal components";
        save_png(&inspect::word_map(&points, &labels, title)?, path)?;
        writeln!(text, "map: {}", path.display())?;
    }
    if args.json {
        print_json(&report);
    } else {
        print!("{text}");
    }
    Ok(())
}

fn write_neighbours(
    text: &mut String,
    title: &str,
    found: &[inspect::Neighbour],
) -> std::fmt::Result {
    writeln!(text, "{title}:")?;
    writeln!(
        text,
        "{:>4}  {:<16} {:>7}  {:>7}",
        "rank", "token", "id", "cosine"
    )?;
    for (rank, n) in found.iter().enumerate() {
        writeln!(
            text,
            "{:>4}  {:<16} {:>7}  {:>7.3}",
            rank + 1,
            inspect::visible(&n.token),
            n.id,
            n.similarity
        )?;
    }
    Ok(())
}

fn denoise(args: DenoiseArgs) -> anyhow::Result<()> {
    let options = args.draw.options()?;
    let model = ImageModel::load(&args.model, &candle_core::Device::Cpu)?;
    let frames = inspect::denoise_frames(&model, &args.prompt, &options, args.frames)?;
    let strip = inspect::denoise_strip(&frames, options.steps, args.draw.scale)?;
    save_png(&strip, &args.out)?;
    let shown: Vec<String> = frames.iter().map(|f| f.steps_done.to_string()).collect();
    println!(
        "'{}': noise to picture in {} steps; shown after steps {} → {}",
        args.prompt,
        options.steps,
        shown.join(", "),
        args.out.display()
    );
    Ok(())
}

fn cross_attention(args: CrossAttentionArgs) -> anyhow::Result<()> {
    let options = args.draw.options()?;
    let model = ImageModel::load(&args.model, &candle_core::Device::Cpu)?;
    let maps = inspect::cross_attention_maps(&model, &args.prompt, &options, args.block)?;
    if args.json {
        print_json(&maps);
        return Ok(());
    }
    let over = args
        .block
        .map_or("all blocks".to_string(), |b| format!("block {b}"));
    println!(
        "'{}': cross-attention over {} steps, {over}, all heads; each token's share of it, \
         where it is read most (x, y from the top left, 0 to 1) and how unevenly (peak / mean)",
        args.prompt, options.steps
    );
    println!(
        "{:<16} {:>7} {:>6} {:>6} {:>9}",
        "token", "share", "x", "y", "peak/mean"
    );
    for (k, token) in maps.tokens.iter().enumerate() {
        let (x, y) = maps.peak(k);
        let share = 100.0 * maps.share(k);
        println!(
            "{:<16} {share:>6.1}% {x:>6.3} {y:>6.3} {:>9.2}",
            inspect::visible(token),
            maps.contrast(k)
        );
    }
    save_png(
        &inspect::cross_attention_strip(&maps, args.draw.scale)?,
        &args.out,
    )?;
    println!("→ {}", args.out.display());
    Ok(())
}

fn context(args: ContextArgs) -> anyhow::Result<()> {
    let model = ImageModel::load(&args.model, &candle_core::Device::Cpu)?;
    let c = inspect::compare_contexts(&model, &args.a, &args.b)?;
    if args.json {
        print_json(&c);
        return Ok(());
    }
    // Without a caption mix the denoiser reads the encoder's states as they are.
    let window = model
        .denoiser
        .as_ref()
        .map_or(0, |d| d.config().caption_window);
    let mixed = c.denoiser.as_ref().filter(|_| window > 0);
    println!("cosine between the two captions' token states, position by position");
    let header = if mixed.is_some() {
        "  denoiser (after its caption mix)"
    } else {
        ""
    };
    println!("{:<16} {:<16} {:>8}{header}", "first", "second", "encoder");
    for (k, cos) in c.encoder.iter().enumerate() {
        let (a, b) = (
            inspect::visible(&c.tokens_a[k]),
            inspect::visible(&c.tokens_b[k]),
        );
        let after = mixed.map_or(String::new(), |d| format!("  {:>8.4}", d[k]));
        println!("{a:<16} {b:<16} {cos:>8.4}{after}");
    }
    println!("pooled embedding: cosine {:.4}", c.pooled);
    Ok(())
}
