//! Attribute binding measured without drawing: the denoiser used as a
//! classifier (as in Li et al., "Your Diffusion Model is Secretly a
//! Zero-Shot Classifier").
//!
//! A picture of two objects of different colours and shapes ("a red circle
//! and a blue square") is noised at a timestep, and the denoiser's error
//! given its caption is compared with its error given the caption with the
//! two colours exchanged ("a blue circle and a red square"), on the same
//! noise. Both captions name the same words, so only a model that ties each
//! colour to its shape predicts better with the true one. Reported per
//! timestep, which shows at what noise level the binding is lost: a cheaper
//! and steadier signal than drawing pictures for the detector. The two
//! objects can also be joined by a relation that holds ("a red circle to
//! the left of a blue square"), to see whether the binding survives the
//! longer caption.

use crate::data::images_to_tensor;
use crate::data::shapes::{
    render, Cell, Colour, Description, Item, Object, Relation, Scene, ShapeKind, Size,
};
use crate::model::{Dit, ImageModel};
use crate::nn::Mode;
use crate::{Error, Result};
use candle_core::{Device, Tensor};
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, StandardNormal};

/// How the true caption fared at one timestep.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct BindingAtTimestep {
    /// The timestep (0: clean, the schedule's length − 1: pure noise).
    pub timestep: usize,
    /// Pictures whose true caption gave the smaller error.
    pub correct: usize,
    /// Pictures probed.
    pub pictures: usize,
    /// Mean of (error with the swapped caption − error with the true one)
    /// / error with the true one.
    pub mean_gap: f64,
}

impl BindingAtTimestep {
    /// `correct` as a percentage.
    pub fn percent(&self) -> f64 {
        100.0 * self.correct as f64 / self.pictures.max(1) as f64
    }
}

/// The binding probe's result.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct BindingReport {
    /// One row per timestep probed, from clean to noisy.
    pub timesteps: Vec<BindingAtTimestep>,
    /// Pictures whose true caption gave the smaller error summed over all
    /// timesteps probed (the diffusion classifier's verdict).
    pub correct: usize,
    /// Pictures probed.
    pub pictures: usize,
}

/// How the probe's captions join their two objects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phrasing {
    /// "a red circle and a blue square".
    And,
    /// "a red circle to the left of a blue square": the first relation (of
    /// left, right, above, below) that the two cells satisfy.
    Relation,
}

/// The timesteps probed for a schedule of `len` steps: `bands` evenly spread
/// band centres.
pub fn probe_timesteps(len: usize, bands: usize) -> Vec<usize> {
    (0..bands)
        .map(|i| ((2 * i + 1) * len) / (2 * bands))
        .collect()
}

/// Probes `model`'s binding on `pictures` two-object scenes drawn from
/// `seed`, captioned with `phrasing`, at each of `timesteps`.
pub fn probe_binding(
    model: &ImageModel,
    pictures: usize,
    timesteps: &[usize],
    seed: u64,
    phrasing: Phrasing,
) -> Result<BindingReport> {
    let dit = model
        .denoiser
        .as_ref()
        .ok_or_else(|| Error::Invalid("the model has no denoiser (stage 2) to probe".into()))?;
    if pictures == 0 {
        return Err(Error::Invalid(
            "the binding probe needs at least one picture".into(),
        ));
    }
    if let Some(&t) = timesteps.iter().find(|&&t| t >= model.schedule.len()) {
        return Err(Error::Invalid(format!(
            "timestep {t} is past the schedule's {} steps",
            model.schedule.len()
        )));
    }
    let device = Device::Cpu;
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let side = model.image_encoder.config().image_size as u32;
    let scenes: Vec<Scene> = (0..pictures).map(|_| two_objects(&mut rng)).collect();
    let images = images_to_tensor(
        &scenes.iter().map(|s| render(s, side)).collect::<Vec<_>>(),
        &device,
    )?;
    // The true captions, then the swapped ones.
    let captions: Vec<Vec<u32>> = [false, true]
        .iter()
        .flat_map(|&swap| scenes.iter().map(move |s| caption(s, swap, phrasing)))
        .map(|text| model.caption_ids(&text).map(|(ids, _)| ids))
        .collect::<Result<_>>()?;
    let features = model.text_encoder.encode(&captions, &mut Mode::Eval)?;
    let mut totals = vec![[0.0f64; 2]; pictures];
    let mut rows = Vec::with_capacity(timesteps.len());
    for &t in timesteps {
        let errors = errors_at(model, dit, &images, &features, t, &mut rng)?;
        let mut row = BindingAtTimestep {
            timestep: t,
            correct: 0,
            pictures,
            mean_gap: 0.0,
        };
        for (i, total) in totals.iter_mut().enumerate() {
            let (right, swapped) = (errors[i], errors[pictures + i]);
            row.correct += usize::from(right < swapped);
            row.mean_gap += (swapped - right) / right.max(1e-12) / pictures as f64;
            total[0] += right;
            total[1] += swapped;
        }
        rows.push(row);
    }
    Ok(BindingReport {
        timesteps: rows,
        correct: totals.iter().filter(|[r, s]| r < s).count(),
        pictures,
    })
}

/// The denoiser's mean squared error on each of `images`, noised at `t`
/// with fresh noise, given each caption of `features`: the first half of
/// the captions for the pictures in order, then the second half.
fn errors_at(
    model: &ImageModel,
    dit: &Dit,
    images: &Tensor,
    features: &crate::model::TextFeatures,
    t: usize,
    rng: &mut impl Rng,
) -> Result<Vec<f64>> {
    let n = images.dim(0)?;
    let noise: Vec<f32> = (0..images.elem_count())
        .map(|_| StandardNormal.sample(rng))
        .collect();
    let noise = Tensor::from_vec(noise, images.shape(), images.device())?;
    let steps = vec![t; n];
    let noisy = model.schedule.add_noise(images, &noise, &steps)?;
    let target = model.schedule.target(images, &noise, &steps)?;
    let (noisy, target) = (
        Tensor::cat(&[&noisy, &noisy], 0)?,
        Tensor::cat(&[&target, &target], 0)?,
    );
    let prediction = dit.forward(&noisy, &vec![t as f32; 2 * n], features)?;
    let errors = (prediction - target)?
        .sqr()?
        .flatten_from(1)?
        .mean(1)?
        .to_dtype(candle_core::DType::F64)?
        .to_vec1::<f64>()?;
    Ok(errors)
}

/// Two objects of different colours and different shapes in two cells.
fn two_objects(rng: &mut impl Rng) -> Scene {
    let colours: Vec<Colour> = Colour::ALL.choose_multiple(rng, 2).copied().collect();
    let shapes: Vec<ShapeKind> = ShapeKind::ALL.choose_multiple(rng, 2).copied().collect();
    let cells: Vec<Cell> = Cell::all()
        .collect::<Vec<_>>()
        .choose_multiple(rng, 2)
        .copied()
        .collect();
    let objects = (0..2)
        .map(|i| Object {
            colour: colours[i],
            shape: shapes[i],
            size: *Size::ALL.choose(rng).expect("two sizes"),
            cell: cells[i],
        })
        .collect();
    Scene { objects }
}

/// "a red circle and a blue square" (or "... to the left of ...") for
/// `scene`, or with the two colours exchanged when `swap`.
fn caption(scene: &Scene, swap: bool, phrasing: Phrasing) -> String {
    let [a, b] = [scene.objects[0], scene.objects[1]];
    let (first, second) = if swap {
        (b.colour, a.colour)
    } else {
        (a.colour, b.colour)
    };
    let item = |colour: Colour, shape: ShapeKind| Item {
        count: 1,
        colour: Some(colour),
        shape,
        size: None,
        cell: None,
    };
    let relation = match phrasing {
        Phrasing::And => None,
        Phrasing::Relation => Relation::ALL.into_iter().find(|r| r.holds(a.cell, b.cell)),
    };
    Description {
        items: vec![item(first, a.shape), item(second, b.shape)],
        relation,
    }
    .text()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn swapped_captions_name_the_same_words_with_the_colours_exchanged() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(4);
        for _ in 0..20 {
            let scene = two_objects(&mut rng);
            let [a, b] = [scene.objects[0], scene.objects[1]];
            assert!(a.colour != b.colour && a.shape != b.shape && a.cell != b.cell);
            let (right, swapped) = (
                caption(&scene, false, Phrasing::And),
                caption(&scene, true, Phrasing::And),
            );
            assert_ne!(right, swapped);
            let words = |s: &str| {
                let mut w: Vec<String> = s.split(' ').map(String::from).collect();
                w.sort();
                w
            };
            assert_eq!(words(&right), words(&swapped));
            let expected = format!(
                "a {} {} and a {} {}",
                b.colour.name(),
                a.shape.name(),
                a.colour.name(),
                b.shape.name()
            );
            assert_eq!(swapped, expected);
            // Joined by a relation that holds: the same words, and the
            // relation's between the same shapes.
            let related = caption(&scene, false, Phrasing::Relation);
            let swapped = caption(&scene, true, Phrasing::Relation);
            assert_eq!(words(&related), words(&swapped));
            let relation = Relation::ALL
                .into_iter()
                .find(|r| r.holds(a.cell, b.cell))
                .unwrap();
            let expected = format!(
                "a {} {} {} a {} {}",
                b.colour.name(),
                a.shape.name(),
                relation.words(),
                a.colour.name(),
                b.shape.name()
            );
            assert_eq!(swapped, expected);
        }
    }

    #[test]
    fn probe_timesteps_are_band_centres() {
        assert_eq!(probe_timesteps(1000, 4), vec![125, 375, 625, 875]);
        assert_eq!(probe_timesteps(1000, 1), vec![500]);
    }
}
