//! The training loop: batches, forward, loss, backward, AdamW, evaluation,
//! metrics, checkpoints, resume and a clean stop on Ctrl-C.

use super::{
    learning_rate, plot_losses, AdamW, Checkpoint, MetricRecord, Metrics, TrainConfig, TrainerState,
};
use crate::data::{mix, BatchSampler, PreparedData, Split};
use crate::model::Gpt;
use crate::nn::Mode;
use crate::{Error, Result};
use candle_core::backprop::GradStore;
use candle_core::{DType, Device, Tensor};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

/// What `train` needs.
pub struct TrainOptions {
    /// Folder made by `seer prepare`.
    pub data: PathBuf,
    /// Run folder to write.
    pub out: PathBuf,
    /// Settings; `None` with `resume` takes the checkpoint's.
    pub config: Option<TrainConfig>,
    /// Continue the checkpoint in `out`.
    pub resume: bool,
    /// Replace a run already in `out`.
    pub overwrite: bool,
    /// Show a progress bar and print evaluations.
    pub verbose: bool,
    /// Device to train on.
    pub device: Device,
}

/// How a training run ended.
#[derive(Debug, Clone, PartialEq)]
pub enum TrainOutcome {
    /// All steps done.
    Finished {
        /// Validation loss at the end.
        val_loss: f64,
        /// Seconds of training (evaluation included), over all sessions of the run.
        elapsed_s: f64,
    },
    /// Stopped early on request; a checkpoint at `step` was saved.
    Interrupted {
        /// Steps completed.
        step: u64,
    },
}

/// Files a run folder holds, removed by `--overwrite`.
const RUN_FILES: [&str; 8] = [
    "config.json",
    "model.safetensors",
    "tokenizer.json",
    "optimizer.safetensors",
    "trainer_state.json",
    "metrics.jsonl",
    "loss.png",
    "best",
];

fn batch_tensors(
    sampler: &BatchSampler,
    split: Split,
    step: u64,
    index: u64,
    device: &Device,
) -> Result<(Tensor, Tensor)> {
    let batch = sampler.batch(split, step, index);
    let shape = (batch.batch, batch.block);
    Ok((
        Tensor::from_vec(batch.inputs, shape, device)?,
        Tensor::from_vec(batch.targets, shape, device)?,
    ))
}

/// What one optimizer step did, and where its time went.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StepReport {
    /// Mean loss over the micro-batches.
    pub loss: f64,
    /// Global gradient norm before clipping.
    pub grad_norm: f64,
    /// Seconds in forward passes (loss included).
    pub forward_s: f64,
    /// Seconds in backward passes and gradient accumulation.
    pub backward_s: f64,
    /// Seconds in clipping and the AdamW update.
    pub optimizer_s: f64,
}

/// One optimizer step over `micro_batches` (inputs, targets), accumulating
/// their gradients.
pub fn train_step(
    model: &Gpt,
    optimizer: &mut AdamW,
    config: &TrainConfig,
    step: u64,
    micro_batches: &[(Tensor, Tensor)],
) -> Result<StepReport> {
    let mut total: Option<GradStore> = None;
    let (mut loss_sum, mut forward_s, mut backward_s) = (0.0, 0.0, 0.0);
    let n = micro_batches.len() as f64;
    for (micro, (x, y)) in micro_batches.iter().enumerate() {
        let t0 = Instant::now();
        let mut mode = Mode::train(mix(&[config.seed, 0xd20, step, micro as u64]));
        let loss = Gpt::loss(&model.forward(x, &mut mode)?, y)?;
        loss_sum += loss.to_dtype(DType::F64)?.to_scalar::<f64>()?;
        let t1 = Instant::now();
        let grads = (loss / n)?.backward()?;
        total = Some(match total {
            None => grads,
            Some(mut acc) => {
                for (_, var) in model.params().iter() {
                    if let Some(g) = grads.get(var.as_tensor()) {
                        let sum = match acc.get(var.as_tensor()) {
                            Some(a) => (a + g)?,
                            None => g.clone(),
                        };
                        acc.insert(var.as_tensor(), sum);
                    }
                }
                acc
            }
        });
        forward_s += (t1 - t0).as_secs_f64();
        backward_s += t1.elapsed().as_secs_f64();
    }
    let grads =
        total.ok_or_else(|| Error::Invalid("a step needs at least one micro-batch".into()))?;
    let t0 = Instant::now();
    let grad_norm = optimizer.step(&grads, learning_rate(config, step), config.grad_clip)?;
    Ok(StepReport {
        loss: loss_sum / n,
        grad_norm,
        forward_s,
        backward_s,
        optimizer_s: t0.elapsed().as_secs_f64(),
    })
}

/// Mean loss over `iters` batches of `split`, drawn for evaluation at `step`.
pub fn evaluate(
    model: &Gpt,
    sampler: &BatchSampler,
    split: Split,
    iters: u64,
    step: u64,
    device: &Device,
) -> Result<f64> {
    let mut sum = 0.0;
    for i in 0..iters {
        let (x, y) = batch_tensors(sampler, split, step, i, device)?;
        let logits = model.forward(&x, &mut Mode::Eval)?.detach();
        sum += Gpt::loss(&logits, &y)?
            .to_dtype(DType::F64)?
            .to_scalar::<f64>()?;
    }
    Ok(sum / iters as f64)
}

/// Trains (or resumes) a run; stops cleanly, with a checkpoint, when `stop` is set.
pub fn train(options: &TrainOptions, stop: &AtomicBool) -> Result<TrainOutcome> {
    let data = PreparedData::open(&options.data)?;
    let out = &options.out;
    let (model, mut optimizer, mut state) = if options.resume {
        resume(options)?
    } else {
        start(options, &data)?
    };
    let config = state.config.clone();
    config.validate()?;
    if model.config().vocab_size != data.meta.vocab_size {
        return Err(Error::Invalid(format!(
            "the model's vocabulary ({}) does not match the data's tokenizer ({}) in {}",
            model.config().vocab_size,
            data.meta.vocab_size,
            options.data.display()
        )));
    }
    let device = &options.device;
    let sampler = BatchSampler::open(
        &options.data,
        config.batch_size,
        config.block_size,
        config.seed,
    )?;
    let mut metrics = Metrics::open(&out.join("metrics.jsonl"), state.step)?;
    let tokens_per_step = (config.batch_size * config.block_size * config.grad_accum) as u64;
    let bar = progress_bar(options.verbose, config.max_iters, state.step);
    let session_start = Instant::now();
    let elapsed_before = state.elapsed_s;
    let elapsed = |start: &Instant| elapsed_before + start.elapsed().as_secs_f64();
    let mut val_loss = f64::NAN;
    loop {
        let step = state.step;
        let at_end = step >= config.max_iters;
        if (step % config.eval_interval == 0 || at_end) && state.last_eval_step != Some(step) {
            val_loss = evaluate(
                &model,
                &sampler,
                Split::Val,
                config.eval_iters,
                step,
                device,
            )?;
            state.last_eval_step = Some(step);
            state.elapsed_s = elapsed(&session_start);
            metrics.push(MetricRecord {
                step,
                split: "val".into(),
                loss: val_loss,
                lr: None,
                grad_norm: None,
                tokens_per_s: None,
                elapsed_s: state.elapsed_s,
            })?;
            if options.verbose {
                // `suspend` prints even when the bar is hidden (output not a terminal).
                bar.suspend(|| println!("step {step:>6}: val loss {val_loss:.4}"));
            }
            if state.best_val_loss.is_none_or(|best| val_loss < best) {
                state.best_val_loss = Some(val_loss);
                model.save(&out.join("best"), Some(&data.tokenizer))?;
            }
            plot_losses(metrics.records(), &out.join("loss.png"))?;
            Checkpoint::save(out, &model, &optimizer, &data.tokenizer, &state)?;
        } else if step > 0
            && config.checkpoint_interval > 0
            && step % config.checkpoint_interval == 0
        {
            state.elapsed_s = elapsed(&session_start);
            Checkpoint::save(out, &model, &optimizer, &data.tokenizer, &state)?;
        }
        if at_end {
            break;
        }
        let t0 = Instant::now();
        let micro_batches = (0..config.grad_accum as u64)
            .map(|micro| batch_tensors(&sampler, Split::Train, step, micro, device))
            .collect::<Result<Vec<_>>>()?;
        let report = train_step(&model, &mut optimizer, &config, step, &micro_batches)?;
        let (loss, norm) = (report.loss, report.grad_norm);
        if !loss.is_finite() {
            return Err(Error::Invalid(format!(
                "the loss became {loss} at step {step}; lower --lr or raise --warmup-iters"
            )));
        }
        let tokens_per_s = tokens_per_step as f64 / t0.elapsed().as_secs_f64();
        state.step = step + 1;
        state.tokens_seen += tokens_per_step;
        let lr = learning_rate(&config, step);
        if step % config.log_interval == 0 || state.step == config.max_iters {
            metrics.push(MetricRecord {
                step,
                split: "train".into(),
                loss,
                lr: Some(lr),
                grad_norm: Some(norm),
                tokens_per_s: Some(tokens_per_s),
                elapsed_s: elapsed(&session_start),
            })?;
        }
        bar.set_position(state.step);
        bar.set_message(format!(
            "loss {loss:.4} lr {lr:.2e} {:.0} tok/s",
            tokens_per_s
        ));
        if stop.load(Ordering::SeqCst) {
            state.elapsed_s = elapsed(&session_start);
            Checkpoint::save(out, &model, &optimizer, &data.tokenizer, &state)?;
            plot_losses(metrics.records(), &out.join("loss.png"))?;
            bar.abandon();
            return Ok(TrainOutcome::Interrupted { step: state.step });
        }
    }
    bar.finish_and_clear();
    Ok(TrainOutcome::Finished {
        val_loss,
        elapsed_s: state.elapsed_s,
    })
}

fn start(options: &TrainOptions, data: &PreparedData) -> Result<(Gpt, AdamW, TrainerState)> {
    let out = &options.out;
    let config = options
        .config
        .clone()
        .ok_or_else(|| Error::Invalid("a new run needs a --preset or --config".into()))?;
    config.validate()?;
    if out.exists()
        && std::fs::read_dir(out)
            .map_err(Error::io(out))?
            .next()
            .is_some()
    {
        if !options.overwrite {
            return Err(Error::Invalid(format!(
                "run folder {} already exists: pass --resume to continue it or --overwrite to start over",
                out.display()
            )));
        }
        for name in RUN_FILES {
            let path = out.join(name);
            if path.is_dir() {
                std::fs::remove_dir_all(&path).map_err(Error::io(&path))?;
            } else if path.exists() {
                std::fs::remove_file(&path).map_err(Error::io(&path))?;
            }
        }
    }
    std::fs::create_dir_all(out).map_err(Error::io(out))?;
    let model = Gpt::new(
        &config.model(data.meta.vocab_size),
        config.seed,
        DType::F32,
        &options.device,
    )?;
    let optimizer = AdamW::new(
        model.params(),
        config.beta1,
        config.beta2,
        config.weight_decay,
    )?;
    let state = TrainerState {
        step: 0,
        best_val_loss: None,
        last_eval_step: None,
        tokens_seen: 0,
        elapsed_s: 0.0,
        config,
        data: options.data.clone(),
    };
    Ok((model, optimizer, state))
}

fn resume(options: &TrainOptions) -> Result<(Gpt, AdamW, TrainerState)> {
    let out = &options.out;
    if !Checkpoint::exists(out) {
        return Err(Error::Invalid(format!(
            "--resume: {} holds no checkpoint (trainer_state.json); start a new run without --resume",
            out.display()
        )));
    }
    let mut checkpoint = Checkpoint::load(out, &options.device)?;
    if let Some(config) = &options.config {
        if let Some((field, saved, given)) = checkpoint.state.config.first_difference(config) {
            return Err(Error::Invalid(format!(
                "--resume: setting '{field}' is {given} but the checkpoint in {} was trained with {saved}; \
                 resume with the same settings (only max_iters may change)",
                out.display()
            )));
        }
        checkpoint.state.config.max_iters = config.max_iters;
    }
    Ok((checkpoint.model, checkpoint.optimizer, checkpoint.state))
}

fn progress_bar(visible: bool, len: u64, position: u64) -> indicatif::ProgressBar {
    if !visible {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(len).with_style(
        indicatif::ProgressStyle::with_template("step {pos}/{len} [{bar:30}] {msg} eta {eta}")
            .expect("valid template")
            .progress_chars("=> "),
    );
    bar.set_position(position);
    bar.reset_eta();
    bar
}
