//! The learning-rate schedule: linear warm-up, then cosine decay to a floor (nanoGPT's).

use super::TrainConfig;

/// The learning rate for optimizer step `step` (0-based) of a GPT run.
pub fn learning_rate(config: &TrainConfig, step: u64) -> f64 {
    warmup_cosine(
        config.lr,
        config.min_lr,
        config.warmup_iters,
        config.lr_decay_iters,
        step,
    )
}

/// `lr` reached linearly over `warmup` steps, then a cosine decay that
/// reaches `min_lr` at step `decay` and stays there.
pub fn warmup_cosine(lr: f64, min_lr: f64, warmup: u64, decay: u64, step: u64) -> f64 {
    if step < warmup {
        return lr * (step + 1) as f64 / (warmup + 1) as f64;
    }
    if step > decay || decay <= warmup {
        return min_lr;
    }
    let progress = (step - warmup) as f64 / (decay - warmup) as f64;
    let coeff = 0.5 * (1.0 + (std::f64::consts::PI * progress).cos());
    min_lr + coeff * (lr - min_lr)
}
