//! CLIP on held-out shapes pairs: retrieval (text→image and image→text
//! recall@1 and @5) and hard negatives (does the picture sit closer to its
//! true caption than to the same caption with colours swapped, the relation
//! or cell flipped, the count changed, or one of two objects' shape
//! changed?).
//!
//! Many pictures fit a short caption ("a red circle" fits every picture of
//! one red circle), so a retrieval counts as correct when the retrieved
//! picture (or caption) is one the caption describes, as the shapes world
//! can check; the strict figure (only the paired item counts) is reported too.

use crate::data::images_to_tensor;
use crate::data::shapes::{render, Description, Scene, NEGATIVES};
use crate::model::{normalize, ImageModel};
use crate::nn::Mode;
use crate::Result;
use candle_core::{Device, Tensor};
use rand::SeedableRng;

/// Pairs encoded per batch.
const BATCH: usize = 250;

/// CLIP's scores on held-out pairs.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ClipReport {
    /// Held-out pairs.
    pub pairs: usize,
    /// Text→image recall@1 (a described picture ranked first), percent.
    pub text_to_image_r1: f64,
    /// Text→image recall@5, percent.
    pub text_to_image_r5: f64,
    /// Image→text recall@1, percent.
    pub image_to_text_r1: f64,
    /// Image→text recall@5, percent.
    pub image_to_text_r5: f64,
    /// Text→image recall@1 counting only the paired picture, percent.
    pub strict_text_to_image_r1: f64,
    /// Hard-negative accuracy per kind: (kind, correct share in percent, cases).
    pub hard_negatives: Vec<(String, f64, usize)>,
}

/// Encodes captions in batches: `[n, embed]`, normalised.
fn embed_captions(model: &ImageModel, texts: &[String]) -> Result<Tensor> {
    let mut parts = Vec::new();
    for chunk in texts.chunks(BATCH) {
        let ids = chunk
            .iter()
            .map(|t| Ok(model.caption_ids(t)?.0))
            .collect::<Result<Vec<_>>>()?;
        parts.push(model.text_encoder.encode(&ids, &mut Mode::Eval)?.pooled);
    }
    normalize(&Tensor::cat(&parts, 0)?)
}

/// Evaluates on `pairs` scenes drawn from `seed` (pictures of `side` pixels).
pub fn evaluate_clip(model: &ImageModel, pairs: usize, side: u32, seed: u64) -> Result<ClipReport> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let scenes: Vec<Scene> = (0..pairs).map(|_| Scene::sample(&mut rng)).collect();
    let descriptions: Vec<Description> = scenes
        .iter()
        .map(|s| Description::of(s, &mut rng))
        .collect();
    let texts: Vec<String> = descriptions.iter().map(Description::text).collect();
    let mut image_parts = Vec::new();
    for chunk in scenes.chunks(BATCH) {
        let pictures: Vec<_> = chunk.iter().map(|s| render(s, side)).collect();
        let images = images_to_tensor(&pictures, &Device::Cpu)?;
        image_parts.push(model.image_encoder.encode(&images, &mut Mode::Eval)?);
    }
    let images = normalize(&Tensor::cat(&image_parts, 0)?)?;
    let captions = embed_captions(model, &texts)?;
    let similarity: Vec<Vec<f32>> = captions.matmul(&images.t()?)?.to_vec2()?;
    let ranked = |scores: Vec<f32>| -> Vec<usize> {
        let mut order: Vec<usize> = (0..scores.len()).collect();
        order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
        order
    };
    let (mut t2i1, mut t2i5, mut i2t1, mut i2t5, mut strict) = (0, 0, 0, 0, 0);
    for (i, row) in similarity.iter().enumerate() {
        let order = ranked(row.clone());
        let fits = |j: &usize| descriptions[i].satisfied_by(&scenes[*j].objects);
        t2i1 += fits(&order[0]) as usize;
        t2i5 += order.iter().take(5).any(fits) as usize;
        strict += (order[0] == i) as usize;
    }
    for j in 0..pairs {
        let order = ranked(similarity.iter().map(|row| row[j]).collect());
        let fits = |i: &usize| descriptions[*i].satisfied_by(&scenes[j].objects);
        i2t1 += fits(&order[0]) as usize;
        i2t5 += order.iter().take(5).any(fits) as usize;
    }
    let percent = |n: usize| 100.0 * n as f64 / pairs.max(1) as f64;
    let mut hard_negatives = Vec::new();
    for (kind, make) in NEGATIVES {
        let mut cases = Vec::new();
        for (i, description) in descriptions.iter().enumerate() {
            if let Some(negative) = make(description, &mut rng) {
                if !negative.satisfied_by(&scenes[i].objects) {
                    cases.push((i, negative.text()));
                }
            }
        }
        let negatives: Vec<String> = cases.iter().map(|(_, t)| t.clone()).collect();
        if negatives.is_empty() {
            continue;
        }
        let embedded = embed_captions(model, &negatives)?;
        let mut correct = 0;
        for (k, (i, _)) in cases.iter().enumerate() {
            let image = images.get(*i)?;
            let negative = (embedded.get(k)? * &image)?.sum_all()?.to_scalar::<f32>()?;
            correct += (similarity[*i][*i] > negative) as usize;
        }
        hard_negatives.push((
            kind.to_string(),
            100.0 * correct as f64 / cases.len() as f64,
            cases.len(),
        ));
    }
    Ok(ClipReport {
        pairs,
        text_to_image_r1: percent(t2i1),
        text_to_image_r5: percent(t2i5),
        image_to_text_r1: percent(i2t1),
        image_to_text_r5: percent(i2t5),
        strict_text_to_image_r1: percent(strict),
        hard_negatives,
    })
}
