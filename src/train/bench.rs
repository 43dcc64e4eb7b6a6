//! Training speed: ms per iteration, tokens per second and model FLOPs
//! utilisation (MFU) against the machine's measured f32 matrix-multiply peak.

use super::{train_step, AdamW, TrainConfig};
use crate::model::Gpt;
use crate::Result;
use candle_core::{DType, Device, Tensor};
use rand::{Rng, SeedableRng};
use std::time::Instant;

/// What `bench_train` measured.
#[derive(Debug, Clone)]
pub struct TrainBench {
    /// Median milliseconds per optimizer step after warm-up.
    pub median_ms: f64,
    /// Every timed step, in milliseconds.
    pub step_ms: Vec<f64>,
    /// Median milliseconds in forward passes, backward passes and the optimizer.
    pub phase_ms: [f64; 3],
    /// Training tokens per second at the median.
    pub tokens_per_s: f64,
    /// Model FLOPs per step (nanoGPT's estimate: 6N + 12·L·C·T per token).
    pub flops_per_step: f64,
    /// Parameters (position embeddings excluded, as nanoGPT counts them).
    pub params: usize,
}

/// GFLOP/s of the best of `reps` f32 `n×n×n` matrix multiplications, after
/// two untimed ones (the machine is shared, so the best run is the peak).
pub fn matmul_peak_gflops(n: usize, reps: usize, device: &Device) -> Result<f64> {
    let a = Tensor::randn(0f32, 1.0, (n, n), device)?;
    let b = Tensor::randn(0f32, 1.0, (n, n), device)?;
    for _ in 0..2 {
        a.matmul(&b)?;
    }
    let mut best = f64::MAX;
    for _ in 0..reps {
        let t0 = Instant::now();
        let c = a.matmul(&b)?;
        device.synchronize()?;
        best = best.min(t0.elapsed().as_secs_f64());
        drop(c);
    }
    Ok(2.0 * (n as f64).powi(3) / best / 1e9)
}

/// Times `iters` training steps of `config` on random tokens from a
/// vocabulary of `vocab_size`, after `warmup` untimed steps.
pub fn bench_train(
    config: &TrainConfig,
    vocab_size: usize,
    warmup: usize,
    iters: usize,
    device: &Device,
) -> Result<TrainBench> {
    config.validate()?;
    let model = Gpt::new(&config.model(vocab_size), config.seed, DType::F32, device)?;
    let mut optimizer = AdamW::new(
        model.params(),
        config.beta1,
        config.beta2,
        config.weight_decay,
    )?;
    let mut rng = rand::rngs::StdRng::seed_from_u64(config.seed);
    let (b, t) = (config.batch_size, config.block_size);
    let mut random_batch = || -> Result<(Tensor, Tensor)> {
        let ids: Vec<u32> = (0..b * (t + 1))
            .map(|_| rng.random_range(0..vocab_size as u32))
            .collect();
        let all = Tensor::from_vec(ids, (b, t + 1), device)?;
        Ok((
            all.narrow(1, 0, t)?.contiguous()?,
            all.narrow(1, 1, t)?.contiguous()?,
        ))
    };
    let mut step_ms = Vec::with_capacity(iters);
    let mut phases: [Vec<f64>; 3] = Default::default();
    for step in 0..(warmup + iters) as u64 {
        let batches = (0..config.grad_accum)
            .map(|_| random_batch())
            .collect::<Result<Vec<_>>>()?;
        let t0 = Instant::now();
        let report = train_step(&model, &mut optimizer, config, step, &batches)?;
        device.synchronize()?;
        if step as usize >= warmup {
            step_ms.push(t0.elapsed().as_secs_f64() * 1e3);
            for (list, s) in
                phases
                    .iter_mut()
                    .zip([report.forward_s, report.backward_s, report.optimizer_s])
            {
                list.push(s * 1e3);
            }
        }
    }
    let mut sorted = step_ms.clone();
    sorted.sort_by(f64::total_cmp);
    let median_ms = if sorted.is_empty() {
        f64::NAN
    } else {
        sorted[sorted.len() / 2]
    };
    let params = model.params().count() - config.block_size * config.n_embd;
    let tokens = (b * t * config.grad_accum) as f64;
    let per_token = 6.0 * params as f64 + 12.0 * (config.n_layer * config.n_embd * t) as f64;
    Ok(TrainBench {
        median_ms,
        step_ms,
        phase_ms: phases.map(|p| median(&p)),
        tokens_per_s: tokens / (median_ms / 1e3),
        flops_per_step: per_token * tokens,
        params,
    })
}

/// The median of `values` (NaN when empty).
fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted.get(sorted.len() / 2).copied().unwrap_or(f64::NAN)
}
