//! The shapes world: scenes, captions, and the detector that judges pictures.

use image::RgbImage;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, Normal};
use seer::data::shapes::{
    caption, detect, render, Cell, Colour, Finding, Object, Scene, ShapeKind, Size,
};

fn share_detected(side: u32, noise: f32, seed: u64) -> f64 {
    let mut rng = StdRng::seed_from_u64(seed);
    let normal = Normal::new(0.0f32, noise.max(1e-9)).unwrap();
    let scenes = 1000;
    let mut exact = 0;
    for _ in 0..scenes {
        let scene = Scene::sample(&mut rng);
        let mut picture = render(&scene, side);
        if noise > 0.0 {
            for channel in picture.iter_mut() {
                let v = *channel as f32 / 255.0 + normal.sample(&mut rng);
                *channel = (v.clamp(0.0, 1.0) * 255.0).round() as u8;
            }
        }
        exact += detect(&picture).matches(&scene) as usize;
    }
    exact as f64 / scenes as f64
}

#[test]
fn detector_reads_rendered_scenes_exactly() {
    for side in [32, 64] {
        let share = share_detected(side, 0.0, 1);
        eprintln!("{side}px: {share}");
        assert!(share >= 0.99, "{side}px: {share}");
    }
}

#[test]
fn detector_survives_pixel_noise() {
    // Gaussian noise of σ = 0.1 (a tenth of the full range) on every channel.
    let share = share_detected(32, 0.1, 2);
    assert!(share >= 0.95, "noise 0.1: {share}");
}

#[test]
fn detector_reports_what_is_not_a_shape() {
    let scene = Scene {
        objects: vec![Object {
            colour: Colour::Red,
            shape: ShapeKind::Square,
            size: Size::Large,
            cell: Cell { row: 1, col: 1 },
        }],
    };
    let mut picture = render(&scene, 32);
    assert!(detect(&picture).matches(&scene));
    // A grey smear and a thin red bar: neither is an object.
    for x in 0..12 {
        picture.put_pixel(x, 1, image::Rgb([200, 200, 200]));
        picture.put_pixel(x, 30, image::Rgb([225, 35, 35]));
        picture.put_pixel(x, 29, image::Rgb([225, 35, 35]));
    }
    let detection = detect(&picture);
    assert!(!detection.matches(&scene));
    let reasons: Vec<&str> = detection
        .findings
        .iter()
        .filter_map(|f| match f {
            Finding::Unrecognised { reason, .. } => Some(*reason),
            Finding::Object(_) => None,
        })
        .collect();
    assert_eq!(reasons.len(), 2, "{:?}", detection.findings);
    assert!(reasons.contains(&"odd colour"));
    // An empty picture holds nothing.
    assert!(detect(&RgbImage::new(32, 32)).findings.is_empty());
}

#[test]
fn captions_name_every_object_and_true_relations() {
    let mut rng = StdRng::seed_from_u64(3);
    let mut phrasings = std::collections::HashSet::new();
    for _ in 0..2000 {
        let scene = Scene::sample(&mut rng);
        let text = caption(&scene, &mut rng);
        for object in &scene.objects {
            assert!(text.contains(object.colour.name()), "{text} {scene:?}");
            assert!(text.contains(object.shape.name()), "{text} {scene:?}");
        }
        if let [a, b] = scene.objects.as_slice() {
            let noun = |o: &Object| format!("{} {}", o.colour.name(), o.shape.name());
            let (first, second) = if text.find(&noun(a)) <= text.find(&noun(b)) {
                (a, b)
            } else {
                (b, a)
            };
            if text.contains("to the left of") {
                assert!(first.cell.col < second.cell.col, "{text} {scene:?}");
            }
            if text.contains("above") {
                assert!(first.cell.row < second.cell.row, "{text} {scene:?}");
            }
        }
        for word in ["two ", "in the ", "to the left of", "below", " and "] {
            if text.contains(word) {
                phrasings.insert(word);
            }
        }
        if rng.random_bool(0.01) {
            eprintln!("{text}");
        }
    }
    assert_eq!(phrasings.len(), 5, "{phrasings:?}");
}
