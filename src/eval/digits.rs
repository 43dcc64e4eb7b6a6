//! Judging generated MNIST digits: a ViT classifier that seer trains on
//! digits the image model never saw, its own accuracy on other unseen
//! digits, and the share of generated digits it reads as the prompted one.

use crate::data::images_to_tensor;
use crate::data::mnist::{Mnist, CLASSIFIER_DIGITS, CLASSIFIER_TEST_DIGITS, DIGIT_WORDS};
use crate::generate::{generate_images, ImageOptions};
use crate::kernels::cross_entropy;
use crate::model::{ImageEncoder, ImageEncoderConfig, ImageModel};
use crate::nn::Mode;
use crate::train::{warmup_cosine, AdamW};
use crate::Result;
use candle_core::{DType, Device, Tensor, D};
use image::RgbImage;
use rand::{Rng, SeedableRng};

/// Digits per classifier training step.
const BATCH: usize = 64;

/// A digit classifier: a ViT whose ten outputs are the digits' logits.
pub struct DigitClassifier {
    encoder: ImageEncoder,
    /// Accuracy on the held-out test digits, in percent.
    pub test_accuracy: f64,
}

impl DigitClassifier {
    /// Trains on the built-in classifier digits for `steps` steps (pictures
    /// of `side` pixels) and measures accuracy on the test digits.
    pub fn train(mnist: &Mnist, side: u32, steps: u64, seed: u64) -> Result<Self> {
        let device = Device::Cpu;
        let config = ImageEncoderConfig {
            image_size: side as usize,
            channels: 3,
            patch_size: 4,
            width: 96,
            layers: 3,
            heads: 4,
            embed_dim: 10,
        };
        let encoder = ImageEncoder::new(&config, seed, DType::F32, &device)?;
        let mut optimizer = AdamW::new(encoder.params(), 0.9, 0.999, 0.05)?;
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        for step in 0..steps {
            let picks: Vec<usize> = (0..BATCH)
                .map(|_| rng.random_range(CLASSIFIER_DIGITS))
                .collect();
            let pictures: Vec<RgbImage> = picks
                .iter()
                .map(|&i| shifted(mnist, i, side, &mut rng))
                .collect();
            let labels: Vec<u32> = picks.iter().map(|&i| mnist.label(i) as u32).collect();
            let logits = encoder.encode(&images_to_tensor(&pictures, &device)?, &mut Mode::Eval)?;
            let loss = cross_entropy(&logits, &Tensor::new(labels, &device)?)?;
            let lr = warmup_cosine(2e-3, 1e-4, steps / 20, steps, step);
            optimizer.step(&loss.backward()?, lr, 1.0)?;
        }
        let mut classifier = Self {
            encoder,
            test_accuracy: 0.0,
        };
        let test: Vec<usize> = CLASSIFIER_TEST_DIGITS.collect();
        let pictures: Vec<RgbImage> = test.iter().map(|&i| mnist.picture(i, side)).collect();
        let predicted = classifier.classify(&pictures)?;
        let correct = test
            .iter()
            .zip(&predicted)
            .filter(|(&i, &p)| mnist.label(i) == p)
            .count();
        classifier.test_accuracy = 100.0 * correct as f64 / test.len() as f64;
        Ok(classifier)
    }

    /// The digit each picture shows, by the classifier.
    pub fn classify(&self, pictures: &[RgbImage]) -> Result<Vec<u8>> {
        let mut labels = Vec::with_capacity(pictures.len());
        for chunk in pictures.chunks(256) {
            let logits = self
                .encoder
                .encode(&images_to_tensor(chunk, &Device::Cpu)?, &mut Mode::Eval)?;
            let best: Vec<u32> = logits.argmax(D::Minus1)?.to_vec1()?;
            labels.extend(best.into_iter().map(|d| d as u8));
        }
        Ok(labels)
    }
}

/// Digit `i`, moved by up to two pixels each way (so that the classifier
/// does not rely on MNIST's exact centring, which generated digits may lack).
fn shifted(mnist: &Mnist, i: usize, side: u32, rng: &mut impl Rng) -> RgbImage {
    let picture = mnist.picture(i, side);
    let (dx, dy) = (rng.random_range(-2i64..=2), rng.random_range(-2i64..=2));
    let mut out = RgbImage::new(side, side);
    image::imageops::replace(&mut out, &picture, dx, dy);
    out
}

/// Generates `per_digit` pictures for each digit ("a handwritten digit
/// seven") and returns the share, in percent, that `classifier` reads as
/// the prompted digit, with the pictures.
pub fn evaluate_digits(
    model: &ImageModel,
    classifier: &DigitClassifier,
    per_digit: usize,
    options: &ImageOptions,
) -> Result<(f64, Vec<RgbImage>)> {
    let mut prompts = Vec::new();
    let mut wanted = Vec::new();
    for (digit, word) in DIGIT_WORDS.iter().enumerate() {
        for _ in 0..per_digit {
            prompts.push(format!("a handwritten digit {word}"));
            wanted.push(digit as u8);
        }
    }
    let mut pictures = Vec::with_capacity(prompts.len());
    for (batch, chunk) in prompts.chunks(40).enumerate() {
        let batch_options = ImageOptions {
            seed: options.seed.wrapping_add(batch as u64),
            ..*options
        };
        pictures.extend(generate_images(model, chunk, &batch_options, |_| {})?);
    }
    let read = classifier.classify(&pictures)?;
    let correct = read.iter().zip(&wanted).filter(|(a, b)| a == b).count();
    Ok((
        100.0 * correct as f64 / wanted.len().max(1) as f64,
        pictures,
    ))
}
