//! Training: run configuration and presets, the learning-rate schedule, the
//! AdamW optimizer, checkpoints with resume, metrics and loss plots, and the
//! loop that ties them together; and the two-stage text-to-image training.

mod bench;
mod checkpoint;
mod config;
mod ema;
mod image;
mod image_bench;
mod image_config;
mod metrics;
mod optimizer;
mod schedule;
mod trainer;

pub use bench::{bench_train, matmul_peak_gflops, TrainBench};
pub use checkpoint::{Checkpoint, TrainerState};
pub use config::{TrainConfig, PRESETS};
pub use ema::Ema;
pub use image::{train_image, ImageTrainOptions, ImageTrainOutcome};
pub use image_bench::{bench_image, ImageBench};
pub use image_config::{ImageTrainConfig, StageConfig, IMAGE_PRESETS};
pub use metrics::{plot_losses, MetricRecord, Metrics};
pub use optimizer::AdamW;
pub use schedule::{learning_rate, warmup_cosine};
pub use trainer::{evaluate, train, train_step, StepReport, TrainOptions, TrainOutcome};
