//! The flags that name a text model for the commands that run one: a
//! seer/GPT-2 model folder, or an open model (Llama family, Gemma 3) as a
//! GGUF file or a Hugging Face folder. Loading is the library's `LoadedModel`.

use seer::device::parse_device;
use seer::generate::LoadedModel;

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

impl ModelArgs {
    /// Loads the model these flags name.
    pub fn load(&self) -> anyhow::Result<LoadedModel> {
        if seer::model::OpenModel::is_model_file(&self.model) && self.device != "cpu" {
            anyhow::bail!(
                "--device {}: open models (GGUF files, Llama and Gemma 3 folders) run on the CPU only",
                self.device
            );
        }
        let device = parse_device(&self.device)?;
        Ok(LoadedModel::load(
            &self.model,
            self.weights.precision(),
            &device,
            self.context,
        )?)
    }
}
