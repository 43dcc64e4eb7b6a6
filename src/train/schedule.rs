//! The learning-rate schedule: linear warm-up, then cosine decay to a floor (nanoGPT's).

use super::TrainConfig;

/// The learning rate for optimizer step `step` (0-based).
pub fn learning_rate(config: &TrainConfig, step: u64) -> f64 {
    let (warmup, decay) = (config.warmup_iters, config.lr_decay_iters);
    if step < warmup {
        return config.lr * (step + 1) as f64 / (warmup + 1) as f64;
    }
    if step > decay || decay <= warmup {
        return config.min_lr;
    }
    let progress = (step - warmup) as f64 / (decay - warmup) as f64;
    let coeff = 0.5 * (1.0 + (std::f64::consts::PI * progress).cos());
    config.min_lr + coeff * (config.lr - config.min_lr)
}
