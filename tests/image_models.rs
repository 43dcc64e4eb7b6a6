//! The image models at tiny sizes: patches, CLIP's encoders and loss, the
//! DiT; gradients against finite differences, padding, save and load.

mod common;

use candle_core::{DType, Device, Tensor, Var};
use common::central_difference;
use rand::{Rng, SeedableRng};
use seer::model::{
    contrastive_loss, Dit, DitConfig, ImageEncoder, ImageEncoderConfig, TextEncoder,
    TextEncoderConfig,
};
use seer::nn::{patchify, unpatchify, Mode, Params};

fn text_config() -> TextEncoderConfig {
    TextEncoderConfig {
        vocab_size: 11,
        context_length: 6,
        width: 8,
        layers: 2,
        heads: 2,
        embed_dim: 4,
    }
}

fn image_config() -> ImageEncoderConfig {
    ImageEncoderConfig {
        image_size: 4,
        channels: 3,
        patch_size: 2,
        width: 8,
        layers: 1,
        heads: 2,
        embed_dim: 4,
    }
}

fn dit_config() -> DitConfig {
    DitConfig {
        image_size: 4,
        channels: 3,
        patch_size: 2,
        patch_overlap: 0,
        width: 8,
        layers: 2,
        heads: 2,
        context_dim: 8,
        pooled_dim: 4,
        caption_window: 2,
    }
}

fn captions() -> Vec<Vec<u32>> {
    vec![vec![3, 1, 4, 10], vec![5, 10], vec![9, 2, 6, 5, 10]]
}

fn randn(shape: &[usize], dtype: DType, seed: u64) -> Tensor {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let n = shape.iter().product();
    let values: Vec<f64> = (0..n).map(|_| rng.random_range(-1.0..1.0)).collect();
    Tensor::from_vec(values, shape, &Device::Cpu)
        .unwrap()
        .to_dtype(dtype)
        .unwrap()
}

/// Moves every parameter off its initial value (zero-initialised layers
/// would otherwise hide whole paths from the check).
fn scramble(params: &Params, seed: u64) {
    for (i, (_, var)) in params.iter().enumerate() {
        let noise = randn(var.dims(), var.dtype(), seed + i as u64);
        var.set(&(var.as_tensor() + (noise * 0.3).unwrap()).unwrap())
            .unwrap();
    }
}

/// Checks the analytic gradient of `loss` against central differences for
/// a sample of elements of every parameter in `params` but those `unused`.
fn check_gradients(params: &[&Params], unused: &[&str], loss: impl Fn() -> Tensor) {
    let grads = loss().backward().unwrap();
    let mut rng = rand::rngs::StdRng::seed_from_u64(9);
    let mut checked = 0;
    let used = params
        .iter()
        .flat_map(|p| p.iter())
        .filter(|(name, _)| !unused.contains(&name.as_str()));
    for (name, var) in used {
        let grad = grads
            .get(var.as_tensor())
            .unwrap_or_else(|| panic!("{name} has no gradient"));
        let analytic: Vec<f64> = grad.flatten_all().unwrap().to_vec1().unwrap();
        let original: Vec<f64> = var.flatten_all().unwrap().to_vec1().unwrap();
        for _ in 0..3 {
            let i = rng.random_range(0..original.len());
            let numeric = central_difference(var, &original, i, 1e-5, || {
                loss().to_scalar::<f64>().unwrap()
            });
            let error =
                (analytic[i] - numeric).abs() / (analytic[i].abs() + numeric.abs()).max(1e-6);
            assert!(
                error < 1e-4,
                "{name}[{i}]: analytic {} numeric {numeric}",
                analytic[i]
            );
            checked += 1;
        }
        restore(var, original);
    }
    assert!(checked > 30, "only {checked} elements checked");
}

fn restore(var: &Var, original: Vec<f64>) {
    var.set(&Tensor::from_vec(original, var.shape(), &Device::Cpu).unwrap())
        .unwrap();
}

#[test]
fn patches_round_trip_in_row_major_order() {
    let images = randn(&[2, 3, 8, 8], DType::F32, 1);
    let tokens = patchify(&images, 4).unwrap();
    assert_eq!(tokens.dims(), &[2, 4, 48]);
    // Token 1 is the top-right patch; its first values are pixel (0, 4)'s channels.
    let first: Vec<f32> = tokens
        .get(0)
        .unwrap()
        .get(1)
        .unwrap()
        .narrow(0, 0, 3)
        .unwrap()
        .to_vec1()
        .unwrap();
    let pixel: Vec<f32> = images
        .get(0)
        .unwrap()
        .narrow(1, 0, 1)
        .unwrap()
        .narrow(2, 4, 1)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1()
        .unwrap();
    assert_eq!(first, pixel);
    let back = unpatchify(&tokens, 4, 3).unwrap();
    let diff = (back - &images)
        .unwrap()
        .abs()
        .unwrap()
        .max_all()
        .unwrap()
        .to_scalar::<f32>()
        .unwrap();
    assert_eq!(diff, 0.0);
    assert!(patchify(&images, 3).is_err());
}

#[test]
fn contrastive_loss_matches_a_hand_computed_case() {
    let device = Device::Cpu;
    let text = Tensor::new(&[[2.0f64, 0.0], [0.0, 3.0]], &device).unwrap();
    let image = Tensor::new(&[[1.0f64, 0.0], [1.0, 1.0]], &device).unwrap();
    let scale = Tensor::new(2.0f64.ln(), &device).unwrap();
    let (loss, _) = contrastive_loss(&text, None, &image, &scale).unwrap();
    // Cosines: text 0 vs images (1, 1/√2); text 1 vs (0, 1/√2); logits ×2.
    let r = 1.0 / 2f64.sqrt();
    let logits = [[2.0, 2.0 * r], [0.0, 2.0 * r]];
    let ce = |row: [f64; 2], target: usize| -> f64 {
        let lse = (row[0].exp() + row[1].exp()).ln();
        lse - row[target]
    };
    let t2i = (ce(logits[0], 0) + ce(logits[1], 1)) / 2.0;
    let i2t = (ce([logits[0][0], logits[1][0]], 0) + ce([logits[0][1], logits[1][1]], 1)) / 2.0;
    let expected = (t2i + i2t) / 2.0;
    let got = loss.to_scalar::<f64>().unwrap();
    assert!((got - expected).abs() < 1e-12, "{got} vs {expected}");
    // A hard negative caption [1, 1] joins each image's candidates only:
    // cosines (1/√2, 1) with the two images, logits ×2.
    let negative = Tensor::new(&[[1.0f64, 1.0]], &device).unwrap();
    let (loss, _) = contrastive_loss(&text, Some(&negative), &image, &scale).unwrap();
    let lse3 = |row: [f64; 3]| row.iter().map(|v| v.exp()).sum::<f64>().ln();
    let i2t = (lse3([logits[0][0], logits[1][0], 2.0 * r]) - logits[0][0]
        + lse3([logits[0][1], logits[1][1], 2.0])
        - logits[1][1])
        / 2.0;
    let expected = (t2i + i2t) / 2.0;
    let got = loss.to_scalar::<f64>().unwrap();
    assert!((got - expected).abs() < 1e-12, "{got} vs {expected}");
}

#[test]
fn clip_gradients_match_finite_differences() {
    let device = Device::Cpu;
    let text = TextEncoder::new(&text_config(), 1, DType::F64, &device).unwrap();
    let image = ImageEncoder::new(&image_config(), 2, DType::F64, &device).unwrap();
    scramble(text.params(), 10);
    scramble(image.params(), 20);
    let images = randn(&[3, 3, 4, 4], DType::F64, 3);
    let loss = || {
        let t = text.encode(&captions(), &mut Mode::Eval).unwrap();
        let i = image.encode(&images, &mut Mode::Eval).unwrap();
        contrastive_loss(&t.pooled, None, &i, text.logit_scale())
            .unwrap()
            .0
    };
    check_gradients(&[text.params(), image.params()], &[], loss);
    // The third caption as a hard negative of the first two pairs.
    let with_negative = || {
        let t = text.encode(&captions(), &mut Mode::Eval).unwrap().pooled;
        let i = image
            .encode(&images.narrow(0, 0, 2).unwrap(), &mut Mode::Eval)
            .unwrap();
        let (pairs, negative) = (t.narrow(0, 0, 2).unwrap(), t.narrow(0, 2, 1).unwrap());
        contrastive_loss(&pairs, Some(&negative), &i, text.logit_scale())
            .unwrap()
            .0
    };
    check_gradients(&[text.params(), image.params()], &[], with_negative);
}

#[test]
fn dit_gradients_match_finite_differences() {
    let device = Device::Cpu;
    let text = TextEncoder::new(&text_config(), 1, DType::F64, &device).unwrap();
    let dit = Dit::new(&dit_config(), 4, DType::F64, &device).unwrap();
    scramble(text.params(), 30);
    scramble(dit.params(), 40);
    let x = randn(&[3, 3, 4, 4], DType::F64, 5);
    let target = randn(&[3, 3, 4, 4], DType::F64, 6);
    let loss = || {
        let caption = text.encode(&captions(), &mut Mode::Eval).unwrap();
        let out = dit.forward(&x, &[3.0, 500.0, 999.0], &caption).unwrap();
        (out - &target).unwrap().sqr().unwrap().mean_all().unwrap()
    };
    check_gradients(&[dit.params(), text.params()], &["logit_scale"], loss);
}

#[test]
fn overlapping_patches_have_correct_gradients_and_shapes() {
    let device = Device::Cpu;
    let text = TextEncoder::new(&text_config(), 1, DType::F64, &device).unwrap();
    let config = DitConfig {
        patch_overlap: 1,
        ..dit_config()
    };
    let dit = Dit::new(&config, 4, DType::F64, &device).unwrap();
    scramble(text.params(), 30);
    scramble(dit.params(), 40);
    let x = randn(&[3, 3, 4, 4], DType::F64, 5);
    let target = randn(&[3, 3, 4, 4], DType::F64, 6);
    let caption = text.encode(&captions(), &mut Mode::Eval).unwrap().detach();
    let loss = || {
        let out = dit.forward(&x, &[3.0, 500.0, 999.0], &caption).unwrap();
        assert_eq!(out.dims(), &[3, 3, 4, 4]);
        (out - &target).unwrap().sqr().unwrap().mean_all().unwrap()
    };
    check_gradients(&[dit.params()], &[], loss);
    assert_eq!(
        dit.params().get("patch_embed.weight").unwrap().dims(),
        &[8, 3, 4, 4]
    );
}

#[test]
fn padding_does_not_change_a_captions_encoding() {
    let device = Device::Cpu;
    let text = TextEncoder::new(&text_config(), 1, DType::F32, &device).unwrap();
    let batch = text.encode(&captions(), &mut Mode::Eval).unwrap();
    let alone = text.encode(&captions()[1..2], &mut Mode::Eval).unwrap();
    let pooled = |t: &Tensor, i: usize| -> Vec<f32> { t.get(i).unwrap().to_vec1().unwrap() };
    let (a, b) = (pooled(&batch.pooled, 1), pooled(&alone.pooled, 0));
    for (x, y) in a.iter().zip(&b) {
        assert!((x - y).abs() < 1e-5, "{a:?} vs {b:?}");
    }
    assert_eq!(batch.lengths, vec![4, 2, 5]);
    let too_long = vec![vec![1u32; 7]];
    assert!(text.encode(&too_long, &mut Mode::Eval).is_err());
}

#[test]
fn models_save_and_load_to_the_same_outputs() {
    let device = Device::Cpu;
    let dir = tempfile::tempdir().unwrap();
    let text = TextEncoder::new(&text_config(), 1, DType::F32, &device).unwrap();
    let dit = Dit::new(&dit_config(), 4, DType::F32, &device).unwrap();
    scramble(dit.params(), 50);
    text.save(&dir.path().join("text_encoder")).unwrap();
    dit.save(&dir.path().join("denoiser")).unwrap();
    let text2 = TextEncoder::load(&dir.path().join("text_encoder"), &device).unwrap();
    let dit2 = Dit::load(&dir.path().join("denoiser"), &device).unwrap();
    let x = randn(&[3, 3, 4, 4], DType::F32, 5);
    let run = |t: &TextEncoder, d: &Dit| -> Vec<f32> {
        let c = t.encode(&captions(), &mut Mode::Eval).unwrap();
        d.forward(&x, &[1.0, 2.0, 3.0], &c)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap()
    };
    let (a, b) = (run(&text, &dit), run(&text2, &dit2));
    assert_eq!(a, b);
    assert!(
        a.iter().any(|v| *v != 0.0),
        "a scrambled DiT predicts something"
    );
    std::fs::remove_file(dir.path().join("denoiser/model.safetensors")).unwrap();
    let err = Dit::load(&dir.path().join("denoiser"), &device)
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("model.safetensors"), "{err}");
}

#[test]
fn a_tiny_denoiser_overfits_a_handful_of_pictures() {
    use rand::SeedableRng;
    use seer::data::images_to_tensor;
    use seer::data::shapes::{render, Scene};
    use seer::diffusion::{NoiseSchedule, SchedulerConfig};
    use seer::train::AdamW;
    let device = Device::Cpu;
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let pictures: Vec<_> = (0..4)
        .map(|_| render(&Scene::sample(&mut rng), 16))
        .collect();
    let x0 = images_to_tensor(&pictures, &device).unwrap();
    let text = TextEncoder::new(&text_config(), 1, DType::F32, &device).unwrap();
    let config = DitConfig {
        image_size: 16,
        patch_size: 4,
        width: 32,
        ..dit_config()
    };
    let dit = Dit::new(&config, 2, DType::F32, &device).unwrap();
    let schedule = NoiseSchedule::new(SchedulerConfig::default()).unwrap();
    let captions = vec![vec![1, 10], vec![2, 10], vec![3, 10], vec![4, 10]];
    let noise = randn(&[4, 3, 16, 16], DType::F32, 8);
    let t = [100, 300, 500, 700];
    let noisy = schedule.add_noise(&x0, &noise, &t).unwrap();
    let target = schedule.target(&x0, &noise, &t).unwrap();
    let times: Vec<f32> = t.iter().map(|&t| t as f32).collect();
    let features = text.encode(&captions, &mut Mode::Eval).unwrap().detach();
    let loss = || {
        let out = dit.forward(&noisy, &times, &features).unwrap();
        (out - &target).unwrap().sqr().unwrap().mean_all().unwrap()
    };
    let mut optimizer = AdamW::new(dit.params(), 0.9, 0.999, 0.0).unwrap();
    let first = loss().to_scalar::<f32>().unwrap();
    for _ in 0..300 {
        let grads = loss().backward().unwrap();
        optimizer.step(&grads, 3e-3, 1.0).unwrap();
    }
    let last = loss().to_scalar::<f32>().unwrap();
    eprintln!("loss {first} → {last}");
    assert!(last * 10.0 < first, "loss {first} → {last}");
}

#[test]
fn the_moving_average_follows_the_weights() {
    use seer::nn::{Init, ParamSource};
    use seer::train::Ema;
    let make = || {
        let source = ParamSource::init(0, DType::F32, &Device::Cpu);
        source.builder().get(&[2], "w", Init::Zeros).unwrap();
        source.into_params()
    };
    let (live, shadow) = (make(), make());
    live.get("w")
        .unwrap()
        .set(&Tensor::new(&[4.0f32, -4.0], &Device::Cpu).unwrap())
        .unwrap();
    let ema = Ema::new(&live, &shadow, 0.5).unwrap();
    let read = || -> Vec<f32> { shadow.get("w").unwrap().as_tensor().to_vec1().unwrap() };
    assert_eq!(read(), vec![4.0, -4.0], "starts as a copy");
    live.get("w")
        .unwrap()
        .set(&Tensor::new(&[8.0f32, 0.0], &Device::Cpu).unwrap())
        .unwrap();
    ema.update(100).unwrap();
    assert_eq!(read(), vec![6.0, -2.0]);
    // Early steps use a smaller decay: (1 + 0) / (10 + 0) = 0.1.
    ema.update(0).unwrap();
    let after = read();
    assert!(
        (after[0] - 7.8).abs() < 1e-5 && (after[1] + 0.2).abs() < 1e-5,
        "{after:?}"
    );
    assert!(Ema::new(&live, &shadow, 1.0).is_err());
}

#[test]
fn a_pictures_prediction_does_not_depend_on_its_batch() {
    let device = Device::Cpu;
    let text = TextEncoder::new(&text_config(), 1, DType::F32, &device).unwrap();
    let dit = Dit::new(&dit_config(), 4, DType::F32, &device).unwrap();
    scramble(dit.params(), 50);
    let x = randn(&[3, 3, 4, 4], DType::F32, 5);
    let times = [7.0, 300.0, 900.0];
    let together = {
        let c = text.encode(&captions(), &mut Mode::Eval).unwrap();
        dit.forward(&x, &times, &c).unwrap()
    };
    for i in 0..3 {
        let c = text.encode(&captions()[i..i + 1], &mut Mode::Eval).unwrap();
        let alone = dit
            .forward(&x.narrow(0, i, 1).unwrap(), &times[i..i + 1], &c)
            .unwrap();
        let diff = (together.narrow(0, i, 1).unwrap() - alone)
            .unwrap()
            .abs()
            .unwrap()
            .max_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        assert!(
            diff < 1e-5,
            "picture {i}: batched and alone differ by {diff}"
        );
    }
}

#[test]
fn sampling_keeps_no_autograd_graph_between_steps() {
    use seer::data::shapes::Scene;
    use seer::diffusion::{NoiseSchedule, SamplerKind, SchedulerConfig};
    use seer::generate::{generate_images, ImageOptions};
    use seer::model::ImageModel;
    use seer::tokenize::train_bpe;
    let device = Device::Cpu;
    let mut rng = rand::rngs::StdRng::seed_from_u64(1);
    let corpus: Vec<String> = (0..200)
        .map(|_| seer::data::shapes::caption(&Scene::sample(&mut rng), &mut rng))
        .collect();
    let tokenizer = train_bpe(&corpus, 300).unwrap();
    let text_config = TextEncoderConfig {
        vocab_size: tokenizer.vocab_size(),
        context_length: 24,
        ..text_config()
    };
    let model = ImageModel {
        tokenizer,
        text_encoder: TextEncoder::new(&text_config, 1, DType::F32, &device).unwrap(),
        image_encoder: ImageEncoder::new(&image_config(), 2, DType::F32, &device).unwrap(),
        denoiser: Some(Dit::new(&dit_config(), 3, DType::F32, &device).unwrap()),
        schedule: NoiseSchedule::new(SchedulerConfig::default()).unwrap(),
    };
    let options = ImageOptions {
        steps: 3,
        guidance: 2.0,
        sampler: SamplerKind::Ddim { eta: 0.0 },
        seed: 0,
    };
    let mut steps = 0;
    generate_images(&model, &["a red circle".to_string()], &options, |step| {
        // A sample that tracked its graph would keep every earlier step's
        // activations alive.
        let out = step.output;
        assert!(!out.prev_sample.track_op() && !out.pred_original.track_op());
        steps += 1;
    })
    .unwrap();
    assert_eq!(steps, 3);
}
