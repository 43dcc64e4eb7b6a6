//! MNIST handwritten digits from the idx files (gzip-compressed or not):
//! 28×28 grey digits with their labels, drawn as RGB pictures centred on a
//! larger black square, with captions such as "a handwritten digit seven".
//! The 10,000 test digits are built into seer.

use crate::{Error, Result};
use image::RgbImage;
use rand::Rng;
use std::io::Read;
use std::path::Path;

const IMAGES_MAGIC: u32 = 0x0803;
const LABELS_MAGIC: u32 = 0x0801;
/// Side of an MNIST digit in pixels.
pub const DIGIT_SIDE: usize = 28;

/// The built-in digits the image models train on.
pub const GENERATOR_DIGITS: std::ops::Range<usize> = 0..5000;
/// The built-in digits the judging classifier trains on (never seen by the generator).
pub const CLASSIFIER_DIGITS: std::ops::Range<usize> = 5000..9500;
/// The built-in digits that measure the judging classifier's own accuracy.
pub const CLASSIFIER_TEST_DIGITS: std::ops::Range<usize> = 9500..10000;

/// The English word for each digit.
pub const DIGIT_WORDS: [&str; 10] = [
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine",
];

/// Digits and their labels.
#[derive(Debug, Clone)]
pub struct Mnist {
    pixels: Vec<u8>,
    labels: Vec<u8>,
}

impl Mnist {
    /// MNIST's 10,000 test digits, built into the binary.
    pub fn builtin() -> Result<Self> {
        let images = include_bytes!("../../data/mnist/t10k-images-idx3-ubyte.gz");
        let labels = include_bytes!("../../data/mnist/t10k-labels-idx1-ubyte.gz");
        let path = Path::new("data/mnist");
        Self::parse(&gunzip(images, path)?, &gunzip(labels, path)?, path)
    }

    /// Reads `images` and `labels` idx files (`.gz` or raw).
    pub fn load(images: &Path, labels: &Path) -> Result<Self> {
        let read = |path: &Path| -> Result<Vec<u8>> {
            let bytes = std::fs::read(path).map_err(Error::io(path))?;
            if bytes.starts_with(&[0x1f, 0x8b]) {
                gunzip(&bytes, path)
            } else {
                Ok(bytes)
            }
        };
        let images_bytes = read(images)?;
        let labels_bytes = read(labels)?;
        Self::parse(&images_bytes, &labels_bytes, images)
    }

    fn parse(images: &[u8], labels: &[u8], path: &Path) -> Result<Self> {
        let bad = |reason: String| Error::bad_file(path, reason);
        let word = |bytes: &[u8], i: usize| -> Option<u32> {
            bytes
                .get(4 * i..4 * i + 4)
                .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
        };
        if word(images, 0) != Some(IMAGES_MAGIC) || word(labels, 0) != Some(LABELS_MAGIC) {
            return Err(bad("not MNIST idx files (wrong magic numbers)".into()));
        }
        let n = word(images, 1).unwrap_or(0) as usize;
        let (rows, cols) = (word(images, 2), word(images, 3));
        if rows != Some(DIGIT_SIDE as u32) || cols != Some(DIGIT_SIDE as u32) {
            return Err(bad(format!("digits are {rows:?}×{cols:?}, not 28×28")));
        }
        if word(labels, 1) != Some(n as u32)
            || images.len() != 16 + n * DIGIT_SIDE * DIGIT_SIDE
            || labels.len() != 8 + n
        {
            return Err(bad(format!("truncated: expected {n} digits and labels")));
        }
        let labels = labels[8..].to_vec();
        if labels.iter().any(|&l| l > 9) {
            return Err(bad("a label is not a digit 0-9".into()));
        }
        Ok(Self {
            pixels: images[16..].to_vec(),
            labels,
        })
    }

    /// Number of digits.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// The label of digit `i`.
    pub fn label(&self, i: usize) -> u8 {
        self.labels[i]
    }

    /// Digit `i` as white on black, centred in a `side × side` RGB picture
    /// (`side` ≥ 28).
    pub fn picture(&self, i: usize, side: u32) -> RgbImage {
        let digit = &self.pixels[i * DIGIT_SIDE * DIGIT_SIDE..(i + 1) * DIGIT_SIDE * DIGIT_SIDE];
        let offset = (side as usize).saturating_sub(DIGIT_SIDE) / 2;
        RgbImage::from_fn(side, side, |x, y| {
            let (x, y) = (x as usize, y as usize);
            let inside = (offset..offset + DIGIT_SIDE).contains(&x)
                && (offset..offset + DIGIT_SIDE).contains(&y);
            let v = if inside {
                digit[(y - offset) * DIGIT_SIDE + (x - offset)]
            } else {
                0
            };
            image::Rgb([v, v, v])
        })
    }
}

/// A caption for a picture of `digit`, its phrasing drawn at random.
pub fn digit_caption(digit: u8, rng: &mut impl Rng) -> String {
    let word = DIGIT_WORDS[digit as usize];
    match rng.random_range(0..4) {
        0 => format!("a handwritten digit {word}"),
        1 => format!("the number {digit}"),
        2 => format!("the digit {word}"),
        _ => format!("a handwritten {word}"),
    }
}

fn gunzip(bytes: &[u8], path: &Path) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(bytes)
        .read_to_end(&mut out)
        .map_err(|e| Error::bad_file(path, format!("cannot decompress: {e}")))?;
    Ok(out)
}
