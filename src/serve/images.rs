//! `POST /v1/images/generations`: pictures from a prompt, drawn by the image
//! model on its own thread (one request at a time, all of a request's
//! pictures in one batch) and returned as base64 PNGs.

use super::api::{count, parse, ImageRequest};
use super::error::ApiError;
use super::{read_body, unix_time, AppState};
use crate::diffusion::SamplerKind;
use crate::generate::{generate_images, ImageOptions};
use crate::model::ImageModel;
use crate::threads::on_pool;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::Engine as _;
use image::RgbImage;
use std::sync::mpsc::Sender;
use std::sync::Arc;
use tokio::sync::oneshot;

/// Most pictures one request may ask for.
const MAX_PICTURES: u64 = 8;
/// Most denoising steps one request may ask for.
const MAX_STEPS: u64 = 1000;

/// A drawing job for the image thread.
struct Drawing {
    prompts: Vec<String>,
    options: ImageOptions,
    reply: oneshot::Sender<crate::Result<Vec<RgbImage>>>,
}

/// The image model a server holds.
pub struct ImageService {
    jobs: Sender<Drawing>,
    /// Its name in the API (the model folder's name).
    pub name: String,
    /// Its picture side in pixels.
    pub side: usize,
}

impl ImageService {
    /// Starts the image thread for `model`, named `name`.
    pub fn start(model: ImageModel, name: String) -> crate::Result<Self> {
        let side = model
            .denoiser
            .as_ref()
            .map(|d| d.config().image_size)
            .ok_or_else(|| {
                crate::Error::Invalid(
                    "this image model has no denoiser (stage 2 was not trained): it cannot draw"
                        .into(),
                )
            })?;
        let (jobs, queue) = std::sync::mpsc::channel::<Drawing>();
        std::thread::Builder::new()
            .name("seer-image-engine".into())
            .spawn(move || {
                for job in queue {
                    if job.reply.is_closed() {
                        continue;
                    }
                    let pictures =
                        on_pool(|| generate_images(&model, &job.prompts, &job.options, |_| {}));
                    let _ = job.reply.send(pictures);
                }
            })
            .expect("the image thread starts");
        Ok(Self { jobs, name, side })
    }
}

/// `POST /v1/images/generations`.
pub async fn generations(
    State(state): State<Arc<AppState>>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    draw(&state, body)
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

async fn draw(state: &AppState, body: Result<Bytes, BytesRejection>) -> Result<Response, ApiError> {
    let body = read_body(body)?;
    let request: ImageRequest = parse(&body)?;
    let service = state.image.as_ref().ok_or_else(|| {
        ApiError::not_found(
            "this server has no image model: start it with `seer serve --image-model DIR`",
        )
    })?;
    if let Some(model) = &request.model {
        if *model != service.name {
            return Err(ApiError::unknown_model(model, &state.model_names()));
        }
    }
    let n = count("n", request.n.unwrap_or(1), MAX_PICTURES)?;
    let own_size = format!("{0}x{0}", service.side);
    if let Some(size) = &request.size {
        if *size != own_size {
            return Err(ApiError::invalid(
                "size",
                format!("size {size} is not available: this model draws {own_size}"),
            ));
        }
    }
    match request.response_format.as_deref() {
        None | Some("b64_json") => {}
        Some(other) => {
            return Err(ApiError::invalid(
                "response_format",
                format!("response_format '{other}' is not available: seer returns b64_json"),
            ))
        }
    }
    let steps = count("steps", request.steps.unwrap_or(50), MAX_STEPS)?;
    let guidance = request.guidance.unwrap_or(4.0);
    if !(guidance.is_finite() && (0.0..=20.0).contains(&guidance)) {
        return Err(ApiError::invalid(
            "guidance",
            format!("guidance is {guidance}; it must be in [0, 20]"),
        ));
    }
    let options = ImageOptions {
        steps: steps as usize,
        guidance,
        sampler: SamplerKind::Ddim { eta: 0.0 },
        seed: request.seed.unwrap_or_else(rand::random),
    };
    let (reply, answer) = oneshot::channel();
    let drawing = Drawing {
        prompts: vec![request.prompt.clone(); n as usize],
        options,
        reply,
    };
    service
        .jobs
        .send(drawing)
        .map_err(|_| ApiError::internal("the image engine has stopped"))?;
    let pictures = answer
        .await
        .map_err(|_| ApiError::internal("the image engine stopped"))??;
    let data = pictures
        .iter()
        .map(|picture| {
            let mut png = Vec::new();
            picture
                .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
                .map_err(|e| ApiError::internal(format!("cannot encode PNG: {e}")))?;
            Ok(serde_json::json!({
                "b64_json": base64::engine::general_purpose::STANDARD.encode(&png),
                "revised_prompt": request.prompt,
            }))
        })
        .collect::<Result<Vec<_>, ApiError>>()?;
    Ok(Json(serde_json::json!({ "created": unix_time(), "data": data })).into_response())
}
