//! The special tokens of an open model's vocabulary (BOS, EOS, end of turn,
//! the ids that stop generation) and how prompts use them, whichever file
//! they come from: a GGUF file's metadata or a Hugging Face folder's
//! tokenizer files.

/// Tokens that end a turn, by their text, in the order llama.cpp prefers them
/// for the end-of-turn id when the file names none.
const END_OF_TURN: [&str; 10] = [
    "<|eot_id|>",
    "<|im_end|>",
    "<|end|>",
    "<end_of_turn>",
    "<|endoftext|>",
    "<|end_of_text|>",
    "<EOT>",
    "_<EOT>",
    "<｜end▁of▁sentence｜>",
    "<end_of_utterance>",
];

/// Tokens that end generation besides those above (llama.cpp's end-of-generation set).
const END_OF_GENERATION: [&str; 3] = ["<|eom_id|>", "<|return|>", "<|call|>"];

/// The special tokens of a vocabulary and how prompts use them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecialTokens {
    /// Beginning of sequence (GGUF `tokenizer.ggml.bos_token_id`; Hugging
    /// Face `bos_token`).
    pub bos: Option<u32>,
    /// End of sequence (`tokenizer.ggml.eos_token_id`; `eos_token`).
    pub eos: Option<u32>,
    /// End of turn (`tokenizer.ggml.eot_token_id`, else the first of
    /// `<|eot_id|>`, `<|im_end|>`, `<|end|>`, `<end_of_turn>`, ... in the vocabulary).
    pub eot: Option<u32>,
    /// Padding (`tokenizer.ggml.padding_token_id`; `pad_token`).
    pub pad: Option<u32>,
    /// Unknown (`tokenizer.ggml.unknown_token_id`; `unk_token`).
    pub unk: Option<u32>,
    /// Whether a prompt starts with BOS (`tokenizer.ggml.add_bos_token`; when
    /// absent, llama.cpp's default: yes for SentencePiece and Llama 3, no for
    /// other byte-level vocabularies. Hugging Face: `add_bos_token`, else
    /// what the tokenizer's post-processor adds).
    pub add_bos: bool,
    /// Whether a prompt ends with EOS (`tokenizer.ggml.add_eos_token`,
    /// default no; Hugging Face: `add_eos_token`, else the post-processor).
    pub add_eos: bool,
    /// The ids that end generation, ascending: EOS, end of turn, end of
    /// message (`tokenizer.ggml.eom_token_id`), Hugging Face's
    /// `generation_config.json` `eos_token_id`s, and every end-of-turn token
    /// of the vocabulary (`<|im_end|>`, `<end_of_turn>`, `<|eot_id|>`, ...),
    /// as llama.cpp's end-of-generation set.
    pub stops: Vec<u32>,
}

impl SpecialTokens {
    /// `ids` with BOS in front and EOS behind where the vocabulary adds them
    /// (`add_bos`, `add_eos`), as transformers' `add_special_tokens=True`.
    pub fn add_to(&self, mut ids: Vec<u32>) -> Vec<u32> {
        if let (true, Some(bos)) = (self.add_bos, self.bos) {
            ids.insert(0, bos);
        }
        if let (true, Some(eos)) = (self.add_eos, self.eos) {
            ids.push(eos);
        }
        ids
    }

    /// Whether generating `id` ends the reply.
    pub fn is_stop(&self, id: u32) -> bool {
        self.stops.binary_search(&id).is_ok()
    }
}

/// The vocabulary's end-of-turn token: the first of [`END_OF_TURN`] that
/// `id_of` finds.
pub(crate) fn end_of_turn(id_of: impl Fn(&str) -> Option<u32>) -> Option<u32> {
    END_OF_TURN.iter().find_map(|text| id_of(text))
}

/// The ids that end generation: `ids` and every end-of-turn or
/// end-of-generation token that `id_of` finds, ascending, each once.
pub(crate) fn stop_set(
    ids: impl IntoIterator<Item = u32>,
    id_of: impl Fn(&str) -> Option<u32>,
) -> Vec<u32> {
    let mut stops: Vec<u32> = ids
        .into_iter()
        .chain(
            END_OF_TURN
                .iter()
                .chain(&END_OF_GENERATION)
                .filter_map(|t| id_of(t)),
        )
        .collect();
    stops.sort_unstable();
    stops.dedup();
    stops
}
