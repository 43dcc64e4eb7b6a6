//! `seer quantize`: write a model as a GGUF file with its weights in one
//! type — a GGUF file requantized, a Hugging Face Llama or Gemma 3 folder
//! converted as llama.cpp's convert_hf_to_gguf.py converts it, or a seer GPT
//! folder converted to llama.cpp's `gpt2` architecture, so that llama.cpp
//! runs it.

use seer::convert::{
    parse_target, write_gguf, GgufSource, GptSource, HfSource, Planned, TensorSource,
};
use seer::kernels::quant::GgmlType;
use seer::model::OpenModel;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct Args {
    /// The model: a .gguf file (Llama family, Gemma 3, or any other GGUF
    /// whose tensors seer reads), a Hugging Face folder of a Llama-family or
    /// Gemma 3 model (config.json, safetensors weights, tokenizer.json), or
    /// a seer/GPT-2 model folder (config.json, model.safetensors and a
    /// byte-level BPE tokenizer).
    #[arg(value_name = "IN")]
    input: PathBuf,
    /// The GGUF file to write (written beside it, then renamed into place).
    #[arg(value_name = "OUT")]
    output: PathBuf,
    /// The weights' type: f32, f16, bf16, q8_0, q5_0, q4_1, q4_0 or q4_k.
    /// Every weight matrix gets it (as `llama-quantize --pure`) unless its
    /// rows are not whole blocks of it; norms, biases and position
    /// embeddings keep their type.
    #[arg(long = "type", short = 't', value_name = "TYPE")]
    ty: String,
    /// Print only errors.
    #[arg(long)]
    quiet: bool,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let target = parse_target(&args.ty)?;
    check_output(&args.input, &args.output)?;
    let source = open(&args.input)?;
    let count = source.tensors().len() as u64;
    let bar = if args.quiet {
        indicatif::ProgressBar::hidden()
    } else {
        indicatif::ProgressBar::new(count).with_style(
            indicatif::ProgressStyle::with_template(
                "tensor {pos}/{len} [{bar:30}] {msg} eta {eta}",
            )
            .expect("a valid template")
            .progress_chars("=> "),
        )
    };
    let planned = write_gguf(source.as_ref(), target, &args.output, |i, p| {
        bar.set_position(i as u64);
        bar.set_message(p.name.clone());
    })?;
    bar.finish_and_clear();
    if !args.quiet {
        report(&args.output, target, &planned);
    }
    Ok(ExitCode::SUCCESS)
}

/// The tensor source `input` names: a GGUF file, a Hugging Face Llama or
/// Gemma 3 folder, or a GPT model folder.
fn open(input: &Path) -> anyhow::Result<Box<dyn TensorSource>> {
    if input.is_dir() {
        if OpenModel::is_model_file(input) {
            return Ok(Box::new(HfSource::open(input)?));
        }
        if !GptSource::is_gpt_folder(input) {
            anyhow::bail!(
                "{}: not a model folder (no config.json); seer quantize reads .gguf files, \
                 Hugging Face Llama and Gemma 3 folders, and seer/GPT-2 model folders",
                input.display()
            );
        }
        return Ok(Box::new(GptSource::open(input)?));
    }
    if !input.exists() {
        anyhow::bail!("{}: no such file or folder", input.display());
    }
    Ok(Box::new(GgufSource::open(input)?))
}

/// Refuses, before any work, an output whose folder does not exist or that
/// is the input itself.
fn check_output(input: &Path, output: &Path) -> anyhow::Result<()> {
    let dir = match output.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    if !dir.is_dir() {
        anyhow::bail!(
            "{}: the folder {} does not exist; create it first",
            output.display(),
            dir.display()
        );
    }
    if output.is_dir() {
        anyhow::bail!("{}: is a folder; give a file name", output.display());
    }
    let same = input
        .canonicalize()
        .ok()
        .zip(output.canonicalize().ok())
        .is_some_and(|(a, b)| a == b);
    if same {
        anyhow::bail!("{}: is the input; write to another file", output.display());
    }
    Ok(())
}

/// One line per type written, and one per weight that could not take the target type.
fn report(output: &Path, target: GgmlType, planned: &[Planned]) {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for p in planned {
        *counts.entry(p.to.name()).or_default() += 1;
    }
    let bytes = std::fs::metadata(output).map(|m| m.len()).unwrap_or(0);
    let types: Vec<String> = counts.iter().map(|(t, n)| format!("{n} {t}")).collect();
    println!(
        "{}: {} tensors ({}), {:.1} MB, mostly {target}",
        output.display(),
        planned.len(),
        types.join(", "),
        bytes as f64 / 1e6
    );
    for p in planned {
        if let Some(note) = &p.note {
            println!("  {}: {note}", p.name);
        }
    }
}
