//! The request bodies of the OpenAI API that seer serves, parsed with the
//! failing field named, and checked against OpenAI's ranges.

use super::error::ApiError;
use crate::generate::{GenerateOptions, SamplingParams};
use serde::Deserialize;

/// A prompt: one string or several.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Prompt {
    /// One prompt.
    One(String),
    /// Several prompts, each answered `n` times.
    Many(Vec<String>),
}

/// Stop sequences: one string or several.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Stop {
    /// One stop sequence.
    One(String),
    /// Up to four.
    Many(Vec<String>),
}

/// A chat message's content: text, or a list of parts of which the text
/// ones are read.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Content {
    /// Plain text.
    Text(String),
    /// Content parts (`{"type": "text", "text": ...}`).
    Parts(Vec<ContentPart>),
}

/// One part of a message's content.
#[derive(Debug, Clone, Deserialize)]
pub struct ContentPart {
    /// The part's type; only `text` is read.
    #[serde(rename = "type")]
    pub kind: String,
    /// The text of a `text` part.
    #[serde(default)]
    pub text: Option<String>,
}

/// A chat message.
#[derive(Debug, Clone, Deserialize)]
pub struct Message {
    /// `system`, `developer`, `user` or `assistant`.
    pub role: String,
    /// What was said.
    pub content: Content,
}

impl Message {
    /// The text of the message.
    pub fn text(&self) -> String {
        match &self.content {
            Content::Text(text) => text.clone(),
            Content::Parts(parts) => parts
                .iter()
                .filter(|p| p.kind == "text")
                .filter_map(|p| p.text.clone())
                .collect::<Vec<_>>()
                .join("\n"),
        }
    }
}

/// `stream_options`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct StreamOptions {
    /// Send a last chunk with the token counts.
    #[serde(default)]
    pub include_usage: bool,
}

/// The body of `/v1/completions` and `/v1/chat/completions` (each reads
/// its own of `prompt` and `messages`); fields seer does not use are ignored.
#[derive(Debug, Clone, Deserialize)]
pub struct TextRequest {
    /// The model to use.
    pub model: String,
    /// Completions: the prompt.
    pub prompt: Option<Prompt>,
    /// Chat: the conversation.
    pub messages: Option<Vec<Message>>,
    /// Most tokens to generate.
    pub max_tokens: Option<u64>,
    /// Chat's newer name for `max_tokens`.
    pub max_completion_tokens: Option<u64>,
    /// Sampling temperature, 0 to 2 (1 if not given).
    pub temperature: Option<f64>,
    /// Nucleus sampling, in (0, 1].
    pub top_p: Option<f64>,
    /// seer's extra: keep only the `top_k` most likely tokens.
    pub top_k: Option<u64>,
    /// seer's extra: min-p filtering, in [0, 1].
    pub min_p: Option<f64>,
    /// seer's extra: transformers' repetition penalty (1 is off).
    pub repetition_penalty: Option<f64>,
    /// OpenAI's presence penalty, -2 to 2.
    pub presence_penalty: Option<f64>,
    /// OpenAI's frequency penalty, -2 to 2.
    pub frequency_penalty: Option<f64>,
    /// Choices per prompt, 1 to 8.
    pub n: Option<u64>,
    /// Up to four stop sequences.
    pub stop: Option<Stop>,
    /// Seed for sampling (choice `i` uses `seed + i`).
    pub seed: Option<u64>,
    /// Stream the reply as server-sent events.
    #[serde(default)]
    pub stream: bool,
    /// Streaming options.
    pub stream_options: Option<StreamOptions>,
}

/// Most choices one request may ask for.
pub const MAX_CHOICES: u64 = 8;
/// Most tokens one request may ask for.
pub const MAX_TOKENS: u64 = 4096;

impl TextRequest {
    /// The settings for each of the request's generations; `default_max`
    /// is used when the request gives no token limit.
    pub fn settings(
        &self,
        default_max: u64,
    ) -> Result<(GenerateOptions, SamplingParams, u64), ApiError> {
        let range = |name: &str, value: Option<f64>, lo: f64, hi: f64, open_lo: bool| match value {
            Some(v) if !(v.is_finite() && (if open_lo { v > lo } else { v >= lo }) && v <= hi) => {
                let low = if open_lo { "(" } else { "[" };
                Err(ApiError::invalid(
                    name,
                    format!("{name} is {v}; it must be in {low}{lo}, {hi}]"),
                ))
            }
            _ => Ok(()),
        };
        range("temperature", self.temperature, 0.0, 2.0, false)?;
        range("top_p", self.top_p, 0.0, 1.0, true)?;
        range("min_p", self.min_p, 0.0, 1.0, false)?;
        range("presence_penalty", self.presence_penalty, -2.0, 2.0, false)?;
        range(
            "frequency_penalty",
            self.frequency_penalty,
            -2.0,
            2.0,
            false,
        )?;
        range(
            "repetition_penalty",
            self.repetition_penalty,
            0.0,
            10.0,
            true,
        )?;
        let (max_name, max) = match (self.max_completion_tokens, self.max_tokens) {
            (Some(m), _) => ("max_completion_tokens", m),
            (None, Some(m)) => ("max_tokens", m),
            (None, None) => ("max_tokens", default_max),
        };
        let max = count(max_name, max, MAX_TOKENS)?;
        let n = count("n", self.n.unwrap_or(1), MAX_CHOICES)?;
        if self.top_k == Some(0) {
            return Err(ApiError::invalid("top_k", "top_k must be at least 1"));
        }
        let stop = match &self.stop {
            None => Vec::new(),
            Some(Stop::One(s)) => vec![s.clone()],
            Some(Stop::Many(list)) if list.len() > 4 => {
                return Err(ApiError::invalid(
                    "stop",
                    format!("stop has {} sequences; at most 4", list.len()),
                ))
            }
            Some(Stop::Many(list)) => list.clone(),
        };
        let sampling = SamplingParams {
            temperature: self.temperature.unwrap_or(1.0),
            top_k: self.top_k.map(|k| k as usize),
            top_p: self.top_p,
            min_p: self.min_p,
            repetition_penalty: self.repetition_penalty.unwrap_or(1.0),
            frequency_penalty: self.frequency_penalty.unwrap_or(0.0),
            presence_penalty: self.presence_penalty.unwrap_or(0.0),
            seed: self.seed.unwrap_or_else(rand::random),
        };
        let options = GenerateOptions {
            max_tokens: max as usize,
            stop,
            ..Default::default()
        };
        Ok((options, sampling, n))
    }

    /// Whether the last streamed chunk should carry the token counts.
    pub fn include_usage(&self) -> bool {
        self.stream_options
            .as_ref()
            .is_some_and(|o| o.include_usage)
    }
}

/// The body of `/v1/images/generations`.
#[derive(Debug, Clone, Deserialize)]
pub struct ImageRequest {
    /// What to draw.
    pub prompt: String,
    /// The model to use (optional: the server has one image model).
    pub model: Option<String>,
    /// Pictures to make, 1 to 8.
    pub n: Option<u64>,
    /// `WIDTHxHEIGHT`; only the model's own size.
    pub size: Option<String>,
    /// Only `b64_json`.
    pub response_format: Option<String>,
    /// seer's extra: denoising steps (default 50).
    pub steps: Option<u64>,
    /// seer's extra: classifier-free guidance (default 4).
    pub guidance: Option<f64>,
    /// seer's extra: the seed of the starting noise.
    pub seed: Option<u64>,
}

/// `value` of the field `name`, refused unless it is from 1 to `max`.
pub fn count(name: &str, value: u64, max: u64) -> Result<u64, ApiError> {
    if (1..=max).contains(&value) {
        Ok(value)
    } else {
        Err(ApiError::invalid(
            name,
            format!("{name} is {value}; it must be from 1 to {max}"),
        ))
    }
}

/// Parses a JSON body into `T`, naming the field that failed.
pub fn parse<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    let value: T = serde_path_to_error::deserialize(&mut deserializer).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if inner.is_syntax() || inner.is_eof() {
            ApiError::bad_request(format!("the body is not valid JSON: {inner}"))
        } else if path == "." {
            let message = inner.to_string();
            match message.split('`').nth(1) {
                Some(field) if message.starts_with("missing field") => {
                    ApiError::invalid(field, format!("{field} is required"))
                }
                _ => ApiError::bad_request(format!("the body is not a valid request: {message}")),
            }
        } else {
            ApiError::invalid(&path, format!("{path}: {inner}"))
        }
    })?;
    deserializer
        .end()
        .map_err(|e| ApiError::bad_request(format!("the body is not valid JSON: {e}")))?;
    Ok(value)
}
