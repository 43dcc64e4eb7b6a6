//! The GenEval-style table: for each category's fixed prompts, generate a
//! picture and let the detector judge it strictly (exactly the objects
//! asked for, each recognised, nothing else).

use crate::data::shapes::{detect, prompts, Category, Detection};
use crate::generate::{generate_images, ImageOptions};
use crate::model::ImageModel;
use crate::Result;

/// Pictures generated per batch.
const BATCH: usize = 32;

/// One category's result.
#[derive(Debug, Clone, serde::Serialize)]
pub struct CategoryScore {
    /// The category's name.
    pub category: &'static str,
    /// Pictures that passed.
    pub passed: usize,
    /// Pictures judged.
    pub total: usize,
    /// Why pictures failed: each failed picture counts once under each
    /// reason it shows (a blob the detector rejects, with the detector's
    /// reason, or "wrong objects": recognised shapes that are not what the
    /// prompt asked for).
    pub failures: std::collections::BTreeMap<&'static str, usize>,
}

impl CategoryScore {
    /// The share that passed, in percent.
    pub fn percent(&self) -> f64 {
        100.0 * self.passed as f64 / self.total.max(1) as f64
    }
}

/// The whole table.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ImageReport {
    /// One row per category.
    pub rows: Vec<CategoryScore>,
    /// The mean of the categories' percentages.
    pub overall: f64,
}

/// Generates `per_category` pictures for each category (prompt set fixed by
/// `prompt_seed`) and scores them; `examples` receives each prompt, its
/// picture and whether it passed.
pub fn evaluate_images(
    model: &ImageModel,
    per_category: usize,
    prompt_seed: u64,
    options: &ImageOptions,
    mut examples: impl FnMut(Category, &str, &image::RgbImage, bool),
) -> Result<ImageReport> {
    let mut rows = Vec::new();
    for category in Category::ALL {
        let descriptions = prompts(category, per_category, prompt_seed);
        let mut passed = 0;
        let mut failures = std::collections::BTreeMap::new();
        for (batch_index, chunk) in descriptions.chunks(BATCH).enumerate() {
            let texts: Vec<String> = chunk.iter().map(|d| d.text()).collect();
            let batch_options = ImageOptions {
                seed: options.seed.wrapping_add(batch_index as u64),
                ..*options
            };
            let pictures = generate_images(model, &texts, &batch_options, |_| {})?;
            for ((description, text), picture) in chunk.iter().zip(&texts).zip(&pictures) {
                let detection = detect(picture);
                let ok = detection.is_clean() && description.satisfied_by(&detection.objects());
                passed += ok as usize;
                if !ok {
                    for reason in failure_reasons(&detection) {
                        *failures.entry(reason).or_insert(0) += 1;
                    }
                }
                examples(category, text, picture, ok);
            }
        }
        rows.push(CategoryScore {
            category: category.name(),
            passed,
            total: descriptions.len(),
            failures,
        });
    }
    let overall = rows.iter().map(CategoryScore::percent).sum::<f64>() / rows.len() as f64;
    Ok(ImageReport { rows, overall })
}

/// The distinct reasons a failed picture shows: the detector's reason for
/// each blob it rejects, or "wrong objects" when every blob is a recognised
/// shape but they are not the prompt's.
fn failure_reasons(detection: &Detection) -> Vec<&'static str> {
    let mut reasons: Vec<&'static str> = detection.rejections().collect();
    reasons.sort_unstable();
    reasons.dedup();
    if reasons.is_empty() {
        reasons.push("wrong objects");
    }
    reasons
}
