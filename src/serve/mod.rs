//! Serving: an OpenAI-compatible HTTP API (axum on tokio) and a web
//! playground. `GET /v1/models`, `POST /v1/completions`, `POST
//! /v1/chat/completions` (streamed as server-sent events with `"stream":
//! true`), `POST /v1/images/generations`, `GET /health`, and the playground
//! at `/`. Model work runs on engine threads, off the async runtime; text
//! requests are batched together step by step. Errors come in OpenAI's
//! shape with the matching HTTP status.

pub mod api;
mod engine;
pub mod error;
mod images;
mod text;

pub use engine::{Job, JobEvent, TextEngine};
pub use error::ApiError;
pub use images::ImageService;
pub use text::TextService;

use crate::generate::LoadedModel;
use crate::model::ImageModel;
use crate::{Error, Result};
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// How to serve.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// Text model: a model folder or an open model's GGUF file.
    pub model: Option<PathBuf>,
    /// Image model folder.
    pub image_model: Option<PathBuf>,
    /// Address to bind (loopback unless told otherwise).
    pub host: String,
    /// Port (0: any free one).
    pub port: u16,
    /// Largest request body accepted, in bytes.
    pub max_body_bytes: usize,
    /// Most text sequences generated together.
    pub max_batch: usize,
    /// The text model's precision (bf16 matrices generate faster).
    pub precision: crate::nn::Precision,
    /// The most tokens an open model's sequence holds (its KV cache).
    pub context: usize,
}

/// What every handler shares.
pub struct AppState {
    /// The text model, if served.
    pub text: Option<TextService>,
    /// The image model, if served.
    pub image: Option<ImageService>,
}

impl AppState {
    /// The names of the models served.
    pub fn model_names(&self) -> Vec<String> {
        let text = self.text.iter().map(|t| t.name.clone());
        text.chain(self.image.iter().map(|i| i.name.clone()))
            .collect()
    }
}

/// The API name of a model folder or file: its last path component.
fn model_name(dir: &Path) -> String {
    dir.canonicalize()
        .ok()
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_else(|| dir.display().to_string())
}

/// Loads the models and starts their engines.
pub fn load_state(options: &ServeOptions) -> Result<AppState> {
    if options.model.is_none() && options.image_model.is_none() {
        return Err(Error::Invalid(
            "nothing to serve: give --model DIR (text) and/or --image-model DIR".into(),
        ));
    }
    let text = match &options.model {
        Some(path) => {
            let model = LoadedModel::load(
                path,
                options.precision,
                &candle_core::Device::Cpu,
                options.context,
            )?;
            Some(TextService::start(
                model,
                model_name(path),
                options.max_batch,
            ))
        }
        None => None,
    };
    let image = match &options.image_model {
        Some(dir) => {
            let model = ImageModel::load(dir, &candle_core::Device::Cpu)?;
            Some(ImageService::start(model, model_name(dir))?)
        }
        None => None,
    };
    Ok(AppState { text, image })
}

/// The routes, over `state`, refusing bodies over `max_body_bytes`.
pub fn router(state: AppState, max_body_bytes: usize) -> Router {
    Router::new()
        .route("/", get(playground))
        .route("/health", get(health))
        .route("/v1/models", get(models))
        .route("/v1/completions", post(text::completions))
        .route("/v1/chat/completions", post(text::chat_completions))
        .route("/v1/images/generations", post(images::generations))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(max_body_bytes))
        .with_state(Arc::new(state))
}

/// Serves until Ctrl-C; `on_ready` hears the bound address first.
pub fn serve(options: &ServeOptions, on_ready: impl FnOnce(SocketAddr)) -> Result<()> {
    let state = load_state(options)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| Error::Invalid(format!("cannot start the async runtime: {e}")))?;
    runtime.block_on(async {
        let address = format!("{}:{}", options.host, options.port);
        let listener = tokio::net::TcpListener::bind(&address)
            .await
            .map_err(|e| Error::Invalid(format!("cannot listen on {address}: {e}")))?;
        let bound = listener
            .local_addr()
            .map_err(|e| Error::Invalid(format!("cannot read the bound address: {e}")))?;
        on_ready(bound);
        axum::serve(listener, router(state, options.max_body_bytes))
            .with_graceful_shutdown(async {
                let _ = tokio::signal::ctrl_c().await;
            })
            .await
            .map_err(|e| Error::Invalid(format!("the server failed: {e}")))
    })
}

/// Seconds since 1970, for the `created` fields.
pub(crate) fn unix_time() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The request body, or the error for one that could not be read (413 when
/// it is over the limit).
pub(crate) fn read_body(
    body: std::result::Result<Bytes, BytesRejection>,
) -> std::result::Result<Bytes, ApiError> {
    body.map_err(|rejection| {
        let status = rejection.status();
        let error = ApiError::bad_request(format!(
            "cannot read the request body: {}",
            rejection.body_text()
        ));
        if status == StatusCode::PAYLOAD_TOO_LARGE {
            error.with_status(status).with_code("request_too_large")
        } else {
            error
        }
    })
}

async fn playground() -> Html<&'static str> {
    Html(include_str!("playground.html"))
}

async fn health(State(state): State<Arc<AppState>>) -> Json<serde_json::Value> {
    let active = state.text.as_ref().map(|t| t.engine.active());
    Json(serde_json::json!({ "status": "ok", "text_sequences_active": active }))
}

async fn models(State(state): State<Arc<AppState>>) -> Json<serde_json::Value> {
    let entry = |name: &str, kind: &str| serde_json::json!({ "id": name, "object": "model", "created": 0, "owned_by": "seer", "kind": kind });
    let data: Vec<_> = state
        .text
        .iter()
        .map(|t| entry(&t.name, "text"))
        .chain(state.image.iter().map(|i| entry(&i.name, "image")))
        .collect();
    Json(serde_json::json!({ "object": "list", "data": data }))
}

async fn not_found(uri: axum::http::Uri) -> Response {
    ApiError::not_found(format!("no endpoint at {}", uri.path())).into_response()
}

async fn method_not_allowed(method: axum::http::Method, uri: axum::http::Uri) -> Response {
    ApiError::bad_request(format!("{method} is not allowed on {}", uri.path()))
        .with_status(StatusCode::METHOD_NOT_ALLOWED)
        .with_code("method_not_allowed")
        .into_response()
}
