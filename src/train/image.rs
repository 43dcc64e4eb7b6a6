//! Training a text-to-image model in two stages, as DALL-E 2 does: stage 1
//! trains the caption and image encoders contrastively (CLIP); stage 2
//! trains the DiT to denoise pictures, conditioned on the (frozen, unless
//! asked) caption encoder, with some captions dropped so that
//! classifier-free guidance works.

use super::image_config::{ImageTrainConfig, StageConfig};
use super::schedule::warmup_cosine;
use super::{AdamW, Ema, MetricRecord, Metrics};
use crate::data::{mix, HardNegative, PairSource};
use crate::diffusion::NoiseSchedule;
use crate::model::{caption_ids, contrastive_loss, Dit, ImageEncoder, ImageModel, TextEncoder};
use crate::nn::{Mode, Params};
use crate::tokenize::{train_bpe, Tokenizer};
use crate::{Error, Result};
use candle_core::{DType, Device, Tensor};
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, StandardNormal};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

/// Captions sampled to train the caption tokenizer.
const TOKENIZER_CORPUS: usize = 20_000;

/// What to train and where.
pub struct ImageTrainOptions {
    /// The run's settings.
    pub config: ImageTrainConfig,
    /// The training pairs.
    pub source: PairSource,
    /// The model folder to write.
    pub out: PathBuf,
    /// Reuse stage 1 (tokenizer and encoders) from this image model folder.
    pub text_encoder: Option<PathBuf>,
    /// Train the reused encoders of `text_encoder` further with stage 1
    /// (a new optimizer, warm-up and cosine decay over its steps) instead
    /// of taking them as they are.
    pub continue_clip: bool,
    /// Start stage 2 from the denoiser in this image model folder (its
    /// sampled, averaged weights) instead of fresh weights: training goes on
    /// with a new optimizer, warm-up and cosine decay over the stage's steps.
    pub continue_denoiser: Option<PathBuf>,
    /// Show progress bars.
    pub progress: bool,
    /// Stop after stage 1 (`seer train clip`): the folder holds the
    /// tokenizer and the encoders, no denoiser.
    pub clip_only: bool,
}

/// How a run went.
#[derive(Debug, Clone)]
pub struct ImageTrainOutcome {
    /// Mean contrastive loss of stage 1's last logged steps (None if reused).
    pub clip_loss: Option<f64>,
    /// Mean denoising loss of stage 2's last logged steps (NaN without stage 2).
    pub diffusion_loss: f64,
    /// Seconds spent in stage 1.
    pub clip_seconds: f64,
    /// Seconds spent in stage 2.
    pub diffusion_seconds: f64,
    /// Whether a stop request (Ctrl-C) cut the run short.
    pub interrupted: bool,
}

/// Trains both stages (or stage 2 on a reused stage 1) and saves the model.
pub fn train_image(options: &ImageTrainOptions, stop: &AtomicBool) -> Result<ImageTrainOutcome> {
    let config = &options.config;
    config.validate()?;
    if options.source.side() as usize != config.image_size {
        return Err(Error::Invalid(format!(
            "the data's pictures are {0}×{0} but the config's image_size is {1}",
            options.source.side(),
            config.image_size
        )));
    }
    if (config.hard_negatives || config.contrasts())
        && !matches!(options.source, PairSource::Shapes { .. })
    {
        return Err(Error::Invalid(
            "hard_negatives and the caption, position and shape contrasts need the shapes world's captions (--data shapes)"
                .into(),
        ));
    }
    let device = Device::Cpu;
    std::fs::create_dir_all(&options.out).map_err(Error::io(&options.out))?;
    let mut metrics = Metrics::open(&options.out.join("metrics.jsonl"), 0)?;
    let started = Instant::now();
    // Stage 1: reused (and trained further when asked) or made and trained.
    let (tokenizer, text_encoder, image_encoder, train_stage_one) = match &options.text_encoder {
        Some(dir) => {
            let reused = ImageModel::load(dir, &device)?;
            (
                reused.tokenizer,
                reused.text_encoder,
                reused.image_encoder,
                options.continue_clip,
            )
        }
        None => {
            let mut rng = rand::rngs::StdRng::seed_from_u64(mix(&[config.seed, 0x70c]));
            let corpus = options.source.caption_corpus(TOKENIZER_CORPUS, &mut rng);
            let tokenizer = train_bpe(&corpus, config.vocab_size)?;
            let mut text_config = config.text_encoder.clone();
            text_config.vocab_size = tokenizer.vocab_size();
            let text = TextEncoder::new(&text_config, mix(&[config.seed, 1]), DType::F32, &device)?;
            let image = ImageEncoder::new(
                &config.image_encoder,
                mix(&[config.seed, 2]),
                DType::F32,
                &device,
            )?;
            (tokenizer, text, image, true)
        }
    };
    let clip_loss = if train_stage_one {
        let mut run = Run {
            options,
            metrics: &mut metrics,
            stop,
        };
        Some(train_clip(
            &mut run,
            &tokenizer,
            &text_encoder,
            &image_encoder,
        )?)
    } else {
        None
    };
    let clip_seconds = started.elapsed().as_secs_f64();
    let mut model = ImageModel {
        tokenizer,
        text_encoder,
        image_encoder,
        denoiser: None,
        schedule: NoiseSchedule::new(config.scheduler.clone())?,
    };
    model.save(&options.out)?;
    if options.clip_only {
        return Ok(ImageTrainOutcome {
            clip_loss,
            diffusion_loss: f64::NAN,
            clip_seconds,
            diffusion_seconds: 0.0,
            interrupted: stop.load(Ordering::SeqCst),
        });
    }
    // The model keeps the moving average of the weights being trained.
    let (live, average) = match &options.continue_denoiser {
        Some(dir) => {
            let denoiser = dir.join("denoiser");
            let (live, average) = (
                Dit::load(&denoiser, &device)?,
                Dit::load(&denoiser, &device)?,
            );
            let (text, read) = (model.text_encoder.config(), live.config());
            if (read.context_dim, read.pooled_dim) != (text.width, text.embed_dim) {
                return Err(Error::Invalid(format!(
                    "{} reads captions of width {} (pooled {}), but the text encoder gives {} (pooled {})",
                    denoiser.display(),
                    read.context_dim,
                    read.pooled_dim,
                    text.width,
                    text.embed_dim
                )));
            }
            // A wider caption window in the run's config adds a caption mix.
            let mut grown = live.config().clone();
            grown.caption_window = grown.caption_window.max(config.denoiser.caption_window);
            if grown == *live.config() {
                (live, average)
            } else {
                let seed = mix(&[config.seed, 3]);
                (
                    live.extended(&grown, seed)?,
                    average.extended(&grown, seed)?,
                )
            }
        }
        None => {
            let mut denoiser_config = config.denoiser.clone();
            denoiser_config.context_dim = model.text_encoder.config().width;
            denoiser_config.pooled_dim = model.text_encoder.config().embed_dim;
            (
                Dit::new(
                    &denoiser_config,
                    mix(&[config.seed, 3]),
                    DType::F32,
                    &device,
                )?,
                Dit::new(&denoiser_config, 0, DType::F32, &device)?,
            )
        }
    };
    model.denoiser = Some(average);
    let diffusion_loss = if stop.load(Ordering::SeqCst) {
        f64::NAN
    } else {
        let mut run = Run {
            options,
            metrics: &mut metrics,
            stop,
        };
        train_denoiser(&mut run, &model, &live)?
    };
    model.save(&options.out)?;
    Ok(ImageTrainOutcome {
        clip_loss,
        diffusion_loss,
        clip_seconds,
        diffusion_seconds: started.elapsed().as_secs_f64() - clip_seconds,
        interrupted: stop.load(Ordering::SeqCst),
    })
}

/// Caption ids for a batch, with the captions to drop replaced by "".
fn batch_ids(
    tokenizer: &Tokenizer,
    captions: &[String],
    context_length: usize,
    drop: impl Fn(usize) -> bool,
) -> Result<Vec<Vec<u32>>> {
    captions
        .iter()
        .enumerate()
        .map(|(i, text)| {
            let text = if drop(i) { "" } else { text.as_str() };
            Ok(caption_ids(tokenizer, text, context_length)?.0)
        })
        .collect()
}

fn progress(visible: bool, len: u64, name: &str) -> indicatif::ProgressBar {
    if !visible {
        return indicatif::ProgressBar::hidden();
    }
    indicatif::ProgressBar::new(len).with_style(
        indicatif::ProgressStyle::with_template(&format!(
            "{name} {{pos}}/{{len}} [{{bar:30}}] {{msg}} {{per_sec}} eta {{eta}}"
        ))
        .expect("valid template")
        .progress_chars("=> "),
    )
}

/// What every stage shares: the run's options, its metrics log and the stop flag.
struct Run<'a> {
    options: &'a ImageTrainOptions,
    metrics: &'a mut Metrics,
    stop: &'a AtomicBool,
}

/// One stage's loop: `step_loss` computes the loss of step `i`; the
/// optimizer, schedule, logging and stop requests are handled here, and
/// `after_step` is called with the number of steps taken after each. Returns the mean of the last
/// logged losses.
fn run_stage(
    run: &mut Run,
    name: &str,
    stage: &StageConfig,
    params: &Params,
    mut step_loss: impl FnMut(u64) -> Result<Tensor>,
    mut after_step: impl FnMut(u64) -> Result<()>,
) -> Result<f64> {
    let (options, stop) = (run.options, run.stop);
    let mut optimizer = AdamW::new(params, 0.9, 0.999, stage.weight_decay)?;
    let bar = progress(options.progress, stage.iters, name);
    let started = Instant::now();
    let (mut recent, mut count) = (0.0, 0u64);
    let mut last = f64::NAN;
    for step in 0..stage.iters {
        if stop.load(Ordering::SeqCst) {
            break;
        }
        let loss = step_loss(step)?;
        let value = loss.to_dtype(DType::F64)?.to_scalar::<f64>()?;
        if !value.is_finite() {
            return Err(Error::Invalid(format!(
                "{name} loss became {value} at step {step}: lower the learning rate"
            )));
        }
        let grads = loss.backward()?;
        let lr = warmup_cosine(
            stage.lr,
            stage.min_lr,
            stage.warmup_iters,
            stage.iters,
            step,
        );
        let grad_norm = optimizer.step(&grads, lr, stage.grad_clip)?;
        recent += value;
        count += 1;
        let interval = options.config.log_interval.max(1);
        if (step + 1) % interval == 0 || step + 1 == stage.iters {
            last = recent / count as f64;
            run.metrics.push(MetricRecord {
                step: step + 1,
                split: name.to_string(),
                loss: last,
                lr: Some(lr),
                grad_norm: Some(grad_norm),
                tokens_per_s: None,
                elapsed_s: started.elapsed().as_secs_f64(),
            })?;
            bar.set_message(format!("loss {last:.4}"));
            (recent, count) = (0.0, 0);
        }
        after_step(step + 1)?;
        bar.inc(1);
    }
    bar.finish_and_clear();
    Ok(last)
}

fn train_clip(
    run: &mut Run,
    tokenizer: &Tokenizer,
    text: &TextEncoder,
    image: &ImageEncoder,
) -> Result<f64> {
    let options = run.options;
    let config = &options.config;
    let params = Params::joined(&[
        ("text_encoder", text.params()),
        ("image_encoder", image.params()),
    ]);
    let context = text.config().context_length;
    let seed = config.seed;
    run_stage(
        run,
        "clip",
        &config.clip,
        &params,
        |step| {
            let mut rng = rand::rngs::StdRng::seed_from_u64(mix(&[seed, 0xc11b, step]));
            let pairs = options.source.sample_with(
                config.clip.batch_size,
                config.hard_negatives,
                &mut rng,
                &Device::Cpu,
            )?;
            // The true captions and their hard negatives, encoded together.
            let negatives = pairs.hard_negatives.iter().map(|n| n.text.clone());
            let texts: Vec<String> = pairs.captions.iter().cloned().chain(negatives).collect();
            let ids = batch_ids(tokenizer, &texts, context, |_| false)?;
            let pooled = text.encode(&ids, &mut Mode::Eval)?.pooled;
            let b = pairs.captions.len();
            let (captions, negatives) = (
                pooled.narrow(0, 0, b)?,
                pooled.narrow(0, b, texts.len() - b)?,
            );
            let i = image.encode(&pairs.images, &mut Mode::Eval)?;
            Ok(contrastive_loss(&captions, Some(&negatives), &i, text.logit_scale())?.0)
        },
        |_| Ok(()),
    )
}

/// Trains `dit`; `model.denoiser` follows it as the moving average of its weights.
fn train_denoiser(run: &mut Run, model: &ImageModel, dit: &Dit) -> Result<f64> {
    let options = run.options;
    let config = &options.config;
    let average = model.denoiser.as_ref().expect("the denoiser was just made");
    let ema = Ema::new(dit.params(), average.params(), config.ema_decay)?;
    let params = if config.finetune_text_encoder {
        Params::joined(&[
            ("denoiser", dit.params()),
            ("text_encoder", model.text_encoder.params()),
        ])
    } else {
        Params::joined(&[("denoiser", dit.params())])
    };
    run_stage(
        run,
        "diffusion",
        &config.diffusion,
        &params,
        |step| diffusion_loss(model, dit, options, step),
        |step| {
            ema.update(step - 1)?;
            if step % config.checkpoint_interval.max(1) == 0 {
                model.save(&options.out)?;
            }
            Ok(())
        },
    )
}

/// How much worse, relative to its error with the true caption, the
/// denoiser's error with a contrasted twin of the caption must be before
/// the contrast ([`ImageTrainConfig::contrast_weight`]) stops pushing them
/// apart.
const CONTRAST_MARGIN: f64 = 0.1;

/// The denoising loss of stage-2 step `step`: a batch of pairs (some
/// captions dropped), noised at random timesteps, and the mean squared
/// error of `dit`'s prediction against the scheduler's target (weighted by
/// Min-SNR-γ when asked); with the caption contrasts, plus their hinges on
/// the pictures whose captions have twins of the contrasted kinds (each
/// hinge times its kind's weight).
pub(crate) fn diffusion_loss(
    model: &ImageModel,
    dit: &Dit,
    options: &ImageTrainOptions,
    step: u64,
) -> Result<Tensor> {
    let config = &options.config;
    let schedule = &model.schedule;
    let device = Device::Cpu;
    let mut rng = rand::rngs::StdRng::seed_from_u64(mix(&[config.seed, 0xd1f, step]));
    let b = config.diffusion.batch_size;
    let pairs = options
        .source
        .sample_with(b, config.contrasts(), &mut rng, &device)?;
    let dropped: Vec<bool> = (0..b)
        .map(|_| rng.random_bool(config.caption_dropout))
        .collect();
    // Each kept caption's twins of the contrasted kinds, denoised on its
    // picture's noisy input after the batch's own.
    let twins: Vec<&HardNegative> = pairs
        .hard_negatives
        .iter()
        .filter(|n| config.contrast_weight(n.kind) > 0.0 && !dropped[n.picture])
        .collect();
    let of_picture: Vec<usize> = (0..b).chain(twins.iter().map(|n| n.picture)).collect();
    let texts: Vec<String> = pairs
        .captions
        .iter()
        .cloned()
        .chain(twins.iter().map(|n| n.text.clone()))
        .collect();
    let context = model.text_encoder.config().context_length;
    let ids = batch_ids(&model.tokenizer, &texts, context, |i| i < b && dropped[i])?;
    let features = model.text_encoder.encode(&ids, &mut Mode::Eval)?;
    let mut features = if config.finetune_text_encoder {
        features
    } else {
        features.detach()
    };
    if config.pooled_dropout > 0.0 {
        let kept: Vec<f32> = (0..b)
            .map(|_| f32::from(!rng.random_bool(config.pooled_dropout) as u8))
            .collect();
        let kept: Vec<f32> = of_picture.iter().map(|&i| kept[i]).collect();
        let kept = Tensor::from_vec(kept, (of_picture.len(), 1), &device)?
            .to_dtype(features.pooled.dtype())?;
        features.pooled = features.pooled.broadcast_mul(&kept)?;
    }
    let t: Vec<usize> = (0..b)
        .map(|_| {
            training_timestep(
                schedule.len(),
                config.logit_normal_std,
                config.timestep_shift,
                &mut rng,
            )
        })
        .collect();
    let count = pairs.images.elem_count();
    let noise: Vec<f32> = (0..count)
        .map(|_| StandardNormal.sample(&mut rng))
        .collect();
    let noise = Tensor::from_vec(noise, pairs.images.shape(), &device)?;
    let noisy = schedule.add_noise(&pairs.images, &noise, &t)?;
    let target = schedule.target(&pairs.images, &noise, &t)?;
    let index = Tensor::from_vec(
        of_picture.iter().map(|&i| i as u32).collect::<Vec<_>>(),
        of_picture.len(),
        &device,
    )?;
    let (noisy, target) = if twins.is_empty() {
        (noisy, target)
    } else {
        (
            noisy.index_select(&index, 0)?,
            target.index_select(&index, 0)?,
        )
    };
    let times: Vec<f32> = of_picture.iter().map(|&i| t[i] as f32).collect();
    let prediction = dit.forward(&noisy, &times, &features)?;
    let per_picture = (prediction - target)?.sqr()?.flatten_from(1)?.mean(1)?;
    let weights: Vec<f32> = of_picture
        .iter()
        .map(|&i| match config.min_snr_gamma {
            gamma if gamma > 0.0 => schedule.min_snr_weight(t[i], gamma) as f32,
            _ => 1.0,
        })
        .collect();
    let weights = Tensor::from_vec(weights, of_picture.len(), &device)?;
    let weighted = (per_picture * weights)?;
    let loss = weighted.narrow(0, 0, b)?.mean_all()?;
    if twins.is_empty() {
        return Ok(loss);
    }
    // The hinge: a twin's error must exceed its picture's by the margin.
    let own = weighted.index_select(&index.narrow(0, b, twins.len())?, 0)?;
    let twin = weighted.narrow(0, b, twins.len())?;
    let hinge = ((own * (1.0 + CONTRAST_MARGIN))? - twin)?.relu()?;
    let twin_weights: Vec<f32> = twins
        .iter()
        .map(|n| config.contrast_weight(n.kind) as f32)
        .collect();
    let twin_weights = Tensor::from_vec(twin_weights, twins.len(), &device)?;
    let contrast = ((hinge * twin_weights)?.sum_all()? / b as f64)?;
    Ok((loss + contrast)?)
}

/// A stage-2 run of `config` on the shapes world, ready for its first step:
/// a caption tokenizer trained on `captions` captions, fresh encoders, and a
/// fresh denoiser (`config.seed`'s, as `seer train image` draws it).
pub(crate) fn fresh_stage_two(
    config: &ImageTrainConfig,
    captions: usize,
) -> Result<(ImageModel, Dit, ImageTrainOptions)> {
    let device = Device::Cpu;
    let source = PairSource::Shapes {
        side: config.image_size as u32,
    };
    let mut rng = rand::rngs::StdRng::seed_from_u64(config.seed);
    let tokenizer = train_bpe(
        &source.caption_corpus(captions, &mut rng),
        config.vocab_size,
    )?;
    let mut text_config = config.text_encoder.clone();
    text_config.vocab_size = tokenizer.vocab_size();
    let dit = Dit::new(
        &config.denoiser,
        mix(&[config.seed, 3]),
        DType::F32,
        &device,
    )?;
    let model = ImageModel {
        tokenizer,
        text_encoder: TextEncoder::new(&text_config, 1, DType::F32, &device)?,
        image_encoder: ImageEncoder::new(&config.image_encoder, 2, DType::F32, &device)?,
        denoiser: None,
        schedule: NoiseSchedule::new(config.scheduler.clone())?,
    };
    let options = ImageTrainOptions {
        config: config.clone(),
        source,
        out: std::env::temp_dir(),
        text_encoder: None,
        continue_clip: false,
        continue_denoiser: None,
        progress: false,
        clip_only: false,
    };
    Ok((model, dit, options))
}

/// A training timestep below `len`: a fraction of the schedule drawn
/// uniformly when `logit_normal_std` is 0, else as `sigmoid(u)` with
/// `u ~ N(0, logit_normal_std)`; then moved towards the noisy end by `shift`
/// (`f ↦ shift·f / (1 + (shift − 1)·f)`, none at 1).
fn training_timestep(len: usize, logit_normal_std: f64, shift: f64, rng: &mut impl Rng) -> usize {
    if logit_normal_std <= 0.0 && shift == 1.0 {
        return rng.random_range(0..len);
    }
    let fraction = if logit_normal_std <= 0.0 {
        rng.random::<f64>()
    } else {
        let u: f64 = StandardNormal.sample(rng);
        1.0 / (1.0 + (-u * logit_normal_std).exp())
    };
    let shifted = shift * fraction / (1.0 + (shift - 1.0) * fraction);
    ((shifted * len as f64) as usize).min(len - 1)
}

#[cfg(test)]
mod tests {
    use super::{diffusion_loss, fresh_stage_two, training_timestep};
    use crate::train::ImageTrainConfig;
    use rand::SeedableRng;

    /// The squared gradient of the denoiser's pooled-caption input layer
    /// after one tiny step with `pooled_dropout`.
    fn pooled_input_gradient(pooled_dropout: f64) -> f64 {
        let mut config = ImageTrainConfig::preset("tiny").unwrap();
        config.pooled_dropout = pooled_dropout;
        config.finetune_text_encoder = true;
        let (model, dit, options) = fresh_stage_two(&config, 200).unwrap();
        // Off the zero initialisation, where adaLN-Zero passes no gradient
        // to the conditioning at all.
        for (_, var) in dit.params().iter() {
            let noise = var.as_tensor().randn_like(0.0, 0.1).unwrap();
            var.set(&(var.as_tensor() + noise).unwrap()).unwrap();
        }
        let grads = diffusion_loss(&model, &dit, &options, 0)
            .unwrap()
            .backward()
            .unwrap();
        let weight = dit.params().get("caption_in.weight").unwrap();
        let grad = grads.get(weight.as_tensor()).unwrap();
        grad.sqr()
            .unwrap()
            .sum_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap() as f64
    }

    /// With every pooled embedding dropped the denoiser learns nothing
    /// through its pooled-caption input; with none dropped it does.
    #[test]
    fn dropped_pooled_captions_reach_the_denoiser_only_through_cross_attention() {
        assert_eq!(pooled_input_gradient(1.0), 0.0);
        assert!(pooled_input_gradient(0.0) > 0.0);
    }

    /// At the start the denoiser ignores its caption (adaLN-Zero), so a
    /// twin's error equals its picture's and each contrast adds its weight
    /// times the margin on those pictures: at most a tenth of the loss per
    /// unit of weight, linear in each weight, and the kinds add up. (All
    /// against the batch's own loss with the twins made, found from two
    /// weights, since making the twins takes random draws.)
    #[test]
    fn the_caption_contrasts_add_the_margin_for_a_caption_blind_denoiser() {
        let mut config = ImageTrainConfig::preset("tiny").unwrap();
        config.diffusion.batch_size = 32;
        config.caption_dropout = 0.0;
        let (model, dit, mut options) = fresh_stage_two(&config, 200).unwrap();
        let mut loss = |[colours, position, shape]: [f64; 3]| -> f64 {
            options.config.caption_contrast = colours;
            options.config.position_contrast = position;
            options.config.shape_contrast = shape;
            diffusion_loss(&model, &dit, &options, 3)
                .unwrap()
                .to_scalar::<f32>()
                .unwrap() as f64
        };
        let kinds = [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]];
        let once: Vec<f64> = kinds.iter().map(|&w| loss(w)).collect();
        let twice: Vec<f64> = kinds.iter().map(|w| loss(w.map(|x| 2.0 * x))).collect();
        let base = 2.0 * once[0] - twice[0];
        for (k, (&one, &two)) in once.iter().zip(&twice).enumerate() {
            let added = (one - base) / base;
            assert!(
                added > 0.0 && added <= 0.1 * (1.0 + 1e-5),
                "kind {k}: {added}"
            );
            assert!(
                (two - base - 2.0 * (one - base)).abs() < 1e-6 * two,
                "kind {k}"
            );
        }
        let all = loss([2.0, 1.0, 0.5]);
        let expected = base + 2.0 * (once[0] - base) + (once[1] - base) + 0.5 * (once[2] - base);
        assert!(
            (all - expected).abs() < 1e-6 * all,
            "{all} against {expected}"
        );
    }

    /// Logit-normal timesteps stay in range and gather in the middle of the
    /// schedule: with s = 1, P(|u| < ln 3) ≈ 72.8% fall in [T/4, 3T/4),
    /// against 50% when uniform.
    #[test]
    fn logit_normal_timesteps_gather_in_the_middle() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let share = |std: f64, rng: &mut rand::rngs::StdRng| {
            let draws: Vec<usize> = (0..20_000)
                .map(|_| training_timestep(1000, std, 1.0, rng))
                .collect();
            assert!(draws.iter().all(|&t| t < 1000));
            draws.iter().filter(|&&t| (250..750).contains(&t)).count() as f64 / 20_000.0
        };
        let middle = share(1.0, &mut rng);
        assert!((middle - 0.728).abs() < 0.015, "logit-normal: {middle}");
        let uniform = share(0.0, &mut rng);
        assert!((uniform - 0.5).abs() < 0.015, "uniform: {uniform}");
    }

    /// A shift of 3 makes the noisiest timesteps three times as frequent:
    /// `3f / (1 + 2f) ≥ 3/4` exactly when `f ≥ 1/2`, so half of the draws
    /// fall in the noisiest quarter (a quarter without the shift), and
    /// `≤ 1/4` when `f ≤ 1/10`.
    #[test]
    fn shifted_timesteps_favour_the_noisy_end() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(11);
        let draws: Vec<usize> = (0..20_000)
            .map(|_| training_timestep(1000, 0.0, 3.0, &mut rng))
            .collect();
        assert!(draws.iter().all(|&t| t < 1000));
        let share = |range: std::ops::Range<usize>| {
            draws.iter().filter(|&&t| range.contains(&t)).count() as f64 / 20_000.0
        };
        let noisy = share(750..1000);
        assert!((noisy - 0.5).abs() < 0.015, "noisiest quarter: {noisy}");
        let clean = share(0..250);
        assert!((clean - 0.1).abs() < 0.01, "cleanest quarter: {clean}");
    }
}
