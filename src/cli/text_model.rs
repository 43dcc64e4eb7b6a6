//! Loading a text model for the commands that run one: a seer/GPT-2 model
//! folder, or an open model (Llama family, Gemma 3) as a GGUF file or a
//! Hugging Face folder.

use seer::device::parse_device;
use seer::generate::{Conversation, TextModel};
use seer::model::{Gpt, OpenModel};
use seer::tokenize::Tokenizer;
use std::path::Path;

/// Where a command's text model comes from, as its flags say.
#[derive(clap::Args, Clone)]
pub struct ModelArgs {
    /// A model folder (config.json, model.safetensors and tokenizer.json, or
    /// GPT-2's vocab.json + merges.txt: a run folder or a Hugging Face GPT-2
    /// checkpoint), or an open model (Llama family, Gemma 3): a .gguf file
    /// (scripts/get-model.sh fetches one) or a Hugging Face folder.
    #[arg(short, long)]
    pub model: std::path::PathBuf,
    /// Weight matrices of a GPT model folder: f32, or bf16 (faster
    /// generation, logits within rounding). Open models keep their own types.
    #[arg(long, value_enum, default_value = "f32")]
    pub weights: super::Weights,
    /// Device: cpu, cuda or cuda:N.
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// Context length for an open model, in tokens (its KV cache holds this
    /// many); at most the length it was trained for.
    #[arg(long, default_value_t = 4096)]
    pub context: usize,
}

/// A loaded text model with its tokenizer.
pub enum LoadedModel {
    /// seer's own GPT (or GPT-2).
    Gpt(Box<Gpt>, Box<Tokenizer>),
    /// An open model from a GGUF file or a Hugging Face folder.
    Open(Box<OpenModel>),
}

impl LoadedModel {
    /// Loads what `args` names.
    pub fn load(args: &ModelArgs) -> anyhow::Result<Self> {
        let path = &args.model;
        if OpenModel::is_model_file(path) {
            if args.device != "cpu" {
                anyhow::bail!(
                    "--device {}: open models (GGUF files, Llama and Gemma 3 folders) run on the CPU only",
                    args.device
                );
            }
            let open = OpenModel::open(path, Some(args.context))?;
            return Ok(Self::Open(Box::new(open)));
        }
        let device = parse_device(&args.device)?;
        let model = Gpt::load(path, args.weights.precision(), &device)?;
        Ok(Self::Gpt(
            Box::new(model),
            Box::new(Tokenizer::load_model_dir(path)?),
        ))
    }

    /// The network.
    pub fn model(&self) -> &dyn TextModel {
        match self {
            Self::Gpt(model, _) => model.as_ref(),
            Self::Open(open) => open.model(),
        }
    }

    /// The tokenizer.
    pub fn tokenizer(&self) -> &Tokenizer {
        match self {
            Self::Gpt(_, tokenizer) => tokenizer,
            Self::Open(open) => open.tokenizer(),
        }
    }

    /// The ids of a plain prompt (an empty one starts from the model's start token).
    pub fn prompt_ids(&self, text: &str) -> anyhow::Result<Vec<u32>> {
        Ok(match self {
            Self::Gpt(_, tokenizer) => seer::generate::prompt_tokens(tokenizer, text)?,
            Self::Open(open) => {
                let ids = open.prompt_ids(text)?;
                if ids.is_empty() {
                    anyhow::bail!(
                        "give a prompt: {} has no start token to begin from",
                        open.name()
                    );
                }
                ids
            }
        })
    }

    /// The ids of a prompt rendered by a chat template.
    pub fn chat_ids(&self, rendered: &str) -> anyhow::Result<Vec<u32>> {
        Ok(match self {
            Self::Gpt(_, tokenizer) => tokenizer.encode(rendered)?,
            Self::Open(open) => open.chat_ids(rendered)?,
        })
    }

    /// The token a model that wants one starts every sequence with (BOS).
    pub fn start_token(&self) -> Option<u32> {
        match self {
            Self::Gpt(..) => None,
            Self::Open(open) => {
                let special = open.special();
                special.bos.filter(|_| special.add_bos)
            }
        }
    }

    /// Token ids that end a generation, besides `<|endoftext|>`.
    pub fn stop_ids(&self) -> Vec<u32> {
        match self {
            Self::Gpt(..) => Vec::new(),
            Self::Open(open) => open.stop_ids(),
        }
    }

    /// An empty conversation in the model's chat template.
    pub fn conversation(&self) -> Conversation {
        match self {
            Self::Gpt(..) => Conversation::default(),
            Self::Open(open) => Conversation::with_template(open.template().clone()),
        }
    }

    /// What to call the model in messages.
    pub fn describe(&self, path: &Path) -> String {
        match self {
            Self::Gpt(..) => path.display().to_string(),
            Self::Open(open) => format!("{} ({})", open.name(), path.display()),
        }
    }
}
