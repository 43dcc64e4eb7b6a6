//! `POST /v1/completions` and `POST /v1/chat/completions`: the request
//! checked, its prompts tokenized and handed to the text engine (one job per
//! choice), and the replies sent whole or streamed as server-sent events
//! that end with `data: [DONE]`.

use super::api::{parse, Prompt, TextRequest};
use super::engine::{Job, JobEvent, TextEngine};
use super::error::ApiError;
use super::{read_body, unix_time, AppState};
use crate::generate::{FinishReason, LoadedModel, Role, REPLY_STOP};
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::response::sse::{Event, Sse};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};
use std::convert::Infallible;
use std::sync::Arc;
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver};
use tokio_stream::wrappers::{ReceiverStream, UnboundedReceiverStream};
use tokio_stream::{StreamExt, StreamMap};

/// The text model a server holds.
pub struct TextService {
    /// The engine that runs it.
    pub engine: TextEngine,
    /// The model, for its tokenizer and chat template.
    pub model: Arc<LoadedModel>,
    /// Its name in the API (the model folder's or file's name).
    pub name: String,
}

impl TextService {
    /// Starts an engine for `model`, batching up to `max_batch` sequences.
    pub fn start(model: LoadedModel, name: String, max_batch: usize) -> Self {
        let model = Arc::new(model);
        Self {
            engine: TextEngine::start(model.clone(), max_batch),
            model,
            name,
        }
    }

    /// The model's context length, in tokens.
    pub fn context_length(&self) -> usize {
        self.model.model().context_length()
    }
}

/// Which endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Completion,
    Chat,
}

/// Tokens a completion makes when the request does not say (OpenAI's default).
const COMPLETION_DEFAULT_TOKENS: u64 = 16;
/// Tokens a chat reply may take when the request does not say.
const CHAT_DEFAULT_TOKENS: u64 = 128;

/// `POST /v1/completions`.
pub async fn completions(
    State(state): State<Arc<AppState>>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    answer(&state, body, Kind::Completion)
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

/// `POST /v1/chat/completions`.
pub async fn chat_completions(
    State(state): State<Arc<AppState>>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    answer(&state, body, Kind::Chat)
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

/// One choice being generated.
struct Choice {
    /// Its receiver of the engine's events.
    events: UnboundedReceiver<JobEvent>,
    /// Whether its prompt's tokens count in the usage (once per prompt).
    counts_prompt: bool,
}

async fn answer(
    state: &AppState,
    body: Result<Bytes, BytesRejection>,
    kind: Kind,
) -> Result<Response, ApiError> {
    let body = read_body(body)?;
    let request: TextRequest = parse(&body)?;
    let service = state.text.as_ref().ok_or_else(|| {
        ApiError::not_found("this server has no text model: start it with `seer serve --model DIR`")
    })?;
    if request.model != service.name {
        return Err(ApiError::unknown_model(
            &request.model,
            &state.model_names(),
        ));
    }
    let default_max = match kind {
        Kind::Completion => COMPLETION_DEFAULT_TOKENS,
        Kind::Chat => CHAT_DEFAULT_TOKENS,
    };
    let (mut options, sampling, n) = request.settings(default_max)?;
    options.stop_ids = service.model.stop_ids();
    let param = match kind {
        Kind::Completion => "prompt",
        Kind::Chat => "messages",
    };
    let encoded = match kind {
        Kind::Completion => completion_prompts(&request)?
            .iter()
            .map(|prompt| service.model.prompt_ids(prompt))
            .collect(),
        Kind::Chat => {
            let (prompt, plain) = chat_prompt(&request, service, options.max_tokens)?;
            if plain {
                options.stop.push(REPLY_STOP.to_string());
            }
            service.model.chat_ids(&prompt).map(|ids| vec![ids])
        }
    };
    let encoded = encoded.map_err(|e| ApiError::invalid(param, e.to_string()))?;
    let context = service.context_length();
    let mut choices = Vec::new();
    for ids in encoded {
        if ids.len() >= context {
            return Err(ApiError::invalid(
                param,
                format!(
                    "the prompt is {} tokens; this model's context is {} tokens, with room needed for the reply",
                    ids.len(),
                    context
                ),
            )
            .with_code("context_length_exceeded"));
        }
        for i in 0..n {
            let (events, receiver) = unbounded_channel();
            let mut sampling = sampling.clone();
            sampling.seed = sampling.seed.wrapping_add(choices.len() as u64);
            let job = Job {
                prompt_ids: ids.clone(),
                options: options.clone(),
                sampling,
                events,
            };
            if !service.engine.submit(job) {
                return Err(ApiError::internal("the text engine has stopped"));
            }
            choices.push(Choice {
                events: receiver,
                counts_prompt: i == 0,
            });
        }
    }
    let reply = Reply {
        id: format!(
            "{}-{:016x}",
            if kind == Kind::Chat {
                "chatcmpl"
            } else {
                "cmpl"
            },
            rand::random::<u64>()
        ),
        created: unix_time(),
        model: service.name.clone(),
        kind,
    };
    if request.stream {
        Ok(reply
            .stream(choices, request.include_usage())
            .into_response())
    } else {
        Ok(Json(reply.whole(choices).await?).into_response())
    }
}

/// The prompts of a completion request.
fn completion_prompts(request: &TextRequest) -> Result<Vec<String>, ApiError> {
    match &request.prompt {
        None => Err(ApiError::invalid("prompt", "prompt is required")),
        Some(Prompt::One(p)) => Ok(vec![p.clone()]),
        Some(Prompt::Many(list)) if list.is_empty() || list.len() > 8 => Err(ApiError::invalid(
            "prompt",
            "prompt must be a string or a list of 1 to 8 strings",
        )),
        Some(Prompt::Many(list)) => Ok(list.clone()),
    }
}

/// The chat template's text for a request's messages, with the oldest turns
/// dropped if the conversation and the reply do not fit the context, and
/// whether it is seer's plain template (whose replies end at the next
/// `User:` line rather than at an end-of-turn token).
fn chat_prompt(
    request: &TextRequest,
    service: &TextService,
    max_tokens: usize,
) -> Result<(String, bool), ApiError> {
    let messages = match &request.messages {
        Some(m) if !m.is_empty() => m,
        _ => {
            return Err(ApiError::invalid(
                "messages",
                "messages must hold at least one message",
            ))
        }
    };
    let mut conversation = service.model.conversation();
    for (i, message) in messages.iter().enumerate() {
        let role = match message.role.as_str() {
            "system" | "developer" => Role::System,
            "user" => Role::User,
            "assistant" => Role::Assistant,
            other => {
                return Err(ApiError::invalid(
                    &format!("messages[{i}].role"),
                    format!("role '{other}' is not one of system, developer, user, assistant"),
                ))
            }
        };
        conversation.push(role, &message.text());
    }
    let context = service.context_length();
    let room = max_tokens.min(context / 2);
    let (prompt, _dropped) = conversation
        .prompt(service.model.tokenizer(), context, room)
        .map_err(|e| match e {
            crate::Error::Invalid(_) => ApiError::invalid(
                "messages",
                format!(
                    "the last message does not fit this model's context of {} tokens with {room} kept for the reply: \
                     send a shorter message or a smaller max_tokens",
                    context
                ),
            )
            .with_code("context_length_exceeded"),
            other => ApiError::invalid("messages", other.to_string()),
        })?;
    Ok((prompt, !conversation.has_template()))
}

/// What every chunk or reply of one request shares.
struct Reply {
    id: String,
    created: u64,
    model: String,
    kind: Kind,
}

/// Token counts.
#[derive(Default)]
struct Usage {
    prompt: usize,
    completion: usize,
}

impl Usage {
    fn add(&mut self, counts_prompt: bool, prompt: usize, completion: usize) {
        if counts_prompt {
            self.prompt += prompt;
        }
        self.completion += completion;
    }

    fn json(&self) -> Value {
        json!({
            "prompt_tokens": self.prompt,
            "completion_tokens": self.completion,
            "total_tokens": self.prompt + self.completion,
        })
    }
}

impl Reply {
    fn object(&self, chunk: bool) -> &'static str {
        match (self.kind, chunk) {
            (Kind::Completion, _) => "text_completion",
            (Kind::Chat, false) => "chat.completion",
            (Kind::Chat, true) => "chat.completion.chunk",
        }
    }

    fn envelope(&self, chunk: bool, choices: Vec<Value>) -> Value {
        json!({
            "id": self.id,
            "object": self.object(chunk),
            "created": self.created,
            "model": self.model,
            "choices": choices,
        })
    }

    /// One streamed choice: new `text`, or the end.
    fn chunk_choice(
        &self,
        index: usize,
        text: Option<&str>,
        finish: Option<FinishReason>,
    ) -> Value {
        match self.kind {
            Kind::Completion => json!({
                "index": index,
                "text": text.unwrap_or_default(),
                "logprobs": null,
                "finish_reason": finish,
            }),
            Kind::Chat => json!({
                "index": index,
                "delta": match text { Some(t) => json!({ "content": t }), None => json!({}) },
                "logprobs": null,
                "finish_reason": finish,
            }),
        }
    }

    /// Waits for every choice and answers in one body.
    async fn whole(&self, choices: Vec<Choice>) -> Result<Value, ApiError> {
        let mut usage = Usage::default();
        let mut answers = Vec::new();
        for (index, mut choice) in choices.into_iter().enumerate() {
            let mut text = String::new();
            let finish = loop {
                match choice.events.recv().await {
                    Some(JobEvent::Text(piece)) => text.push_str(&piece),
                    Some(JobEvent::Done {
                        finish_reason,
                        prompt_tokens,
                        completion_tokens,
                    }) => {
                        usage.add(choice.counts_prompt, prompt_tokens, completion_tokens);
                        break finish_reason;
                    }
                    Some(JobEvent::Failed(message)) => return Err(ApiError::internal(message)),
                    None => return Err(ApiError::internal("the text engine stopped")),
                }
            };
            answers.push(match self.kind {
                Kind::Completion => json!({
                    "index": index,
                    "text": text,
                    "logprobs": null,
                    "finish_reason": finish,
                }),
                Kind::Chat => json!({
                    "index": index,
                    "message": { "role": "assistant", "content": text.trim() },
                    "logprobs": null,
                    "finish_reason": finish,
                }),
            });
        }
        let mut body = self.envelope(false, answers);
        body["usage"] = usage.json();
        Ok(body)
    }

    /// Streams every choice's text as it comes, as server-sent events. When
    /// the client goes away the stream is dropped, and with it the choices'
    /// receivers, which stops their generation.
    fn stream(
        self,
        choices: Vec<Choice>,
        include_usage: bool,
    ) -> Sse<ReceiverStream<Result<Event, Infallible>>> {
        let (sender, receiver) = tokio::sync::mpsc::channel(64);
        tokio::spawn(async move {
            let send = |value: Value| {
                let sender = sender.clone();
                async move {
                    sender
                        .send(Ok(Event::default().data(value.to_string())))
                        .await
                        .is_ok()
                }
            };
            let mut counts_prompt = Vec::new();
            let mut merged = StreamMap::new();
            for (index, choice) in choices.into_iter().enumerate() {
                counts_prompt.push(choice.counts_prompt);
                merged.insert(index, UnboundedReceiverStream::new(choice.events));
                if self.kind == Kind::Chat {
                    let first = json!({
                        "index": index,
                        "delta": { "role": "assistant", "content": "" },
                        "logprobs": null,
                        "finish_reason": null,
                    });
                    if !send(self.envelope(true, vec![first])).await {
                        return;
                    }
                }
            }
            // A chat reply's leading spaces (after "Assistant:") are not shown.
            let mut started = vec![self.kind == Kind::Completion; counts_prompt.len()];
            let mut usage = Usage::default();
            while let Some((index, event)) = merged.next().await {
                let choice = match event {
                    JobEvent::Text(piece) => {
                        let piece = if started[index] {
                            piece.as_str()
                        } else {
                            piece.trim_start()
                        };
                        if piece.is_empty() {
                            continue;
                        }
                        started[index] = true;
                        self.chunk_choice(index, Some(piece), None)
                    }
                    JobEvent::Done {
                        finish_reason,
                        prompt_tokens,
                        completion_tokens,
                    } => {
                        usage.add(counts_prompt[index], prompt_tokens, completion_tokens);
                        self.chunk_choice(index, None, Some(finish_reason))
                    }
                    JobEvent::Failed(message) => {
                        let _ = send(ApiError::internal(message).body()).await;
                        return;
                    }
                };
                if !send(self.envelope(true, vec![choice])).await {
                    return;
                }
            }
            if include_usage {
                let mut last = self.envelope(true, Vec::new());
                last["usage"] = usage.json();
                if !send(last).await {
                    return;
                }
            }
            let _ = sender.send(Ok(Event::default().data("[DONE]"))).await;
        });
        Sse::new(ReceiverStream::new(receiver))
    }
}
