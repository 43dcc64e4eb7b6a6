//! The shapes world: scenes, captions, and the detector that judges pictures.

use image::RgbImage;
use rand::rngs::StdRng;
use rand::SeedableRng;
use rand_distr::{Distribution, Normal};
use seer::data::shapes::{
    detect, render, Cell, Colour, Description, Item, Object, Relation, Scene, ShapeKind, Size,
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
    let reasons: Vec<&str> = detection.rejections().collect();
    assert_eq!(reasons.len(), 2, "{:?}", detection.findings);
    assert!(reasons.contains(&"odd colour"));
    // An empty picture holds nothing.
    assert!(detect(&RgbImage::new(32, 32)).findings.is_empty());
}

#[test]
fn descriptions_are_true_of_their_scenes_and_false_of_others() {
    let mut rng = StdRng::seed_from_u64(3);
    let mut phrasings = std::collections::HashSet::new();
    let mut rejected = 0;
    for _ in 0..2000 {
        let scene = Scene::sample(&mut rng);
        let description = Description::of(&scene, &mut rng);
        let text = description.text();
        assert!(description.satisfied_by(&scene.objects), "{text} {scene:?}");
        let other = Scene::sample(&mut rng);
        if other.sorted() != scene.sorted() && !description.satisfied_by(&other.objects) {
            rejected += 1;
        }
        // One object too many never satisfies a description.
        let mut more = scene.objects.clone();
        more.push(Object {
            cell: Cell { row: 9, col: 9 },
            ..scene.objects[0]
        });
        assert!(!description.satisfied_by(&more), "{text}");
        for word in [
            "two ",
            "three ",
            "in the ",
            "to the left of",
            "below",
            " and ",
            "small ",
        ] {
            if text.contains(word) {
                phrasings.insert(word);
            }
        }
    }
    assert_eq!(phrasings.len(), 7, "{phrasings:?}");
    assert!(
        rejected > 1800,
        "only {rejected} of 2000 random scenes rejected"
    );
}

#[test]
fn a_quarter_of_single_object_captions_name_no_colour() {
    let mut rng = StdRng::seed_from_u64(5);
    let (mut single, mut colourless, mut bare) = (0, 0, 0);
    while single < 4000 {
        let scene = Scene::sample(&mut rng);
        let description = Description::of(&scene, &mut rng);
        if let [item] = description.items.as_slice() {
            if item.count == 1 {
                single += 1;
                colourless += usize::from(item.colour.is_none());
                // The single-object benchmark's form: "a circle", no more.
                bare += usize::from(
                    item.colour.is_none() && item.size.is_none() && item.cell.is_none(),
                );
            }
        }
    }
    let share = colourless as f64 / single as f64;
    assert!(
        (0.22..0.28).contains(&share),
        "{colourless} of {single} colourless"
    );
    let bare_share = bare as f64 / single as f64;
    assert!(
        (0.045..0.08).contains(&bare_share),
        "{bare} of {single} bare"
    );
}

#[test]
fn descriptions_judge_colour_binding_and_relations() {
    let object = |colour, shape, row, col| Object {
        colour,
        shape,
        size: Size::Small,
        cell: Cell { row, col },
    };
    let red_circle_left = object(Colour::Red, ShapeKind::Circle, 1, 0);
    let blue_square_right = object(Colour::Blue, ShapeKind::Square, 1, 2);
    let item = |colour, shape| Item {
        count: 1,
        colour: Some(colour),
        shape,
        size: None,
        cell: None,
    };
    let left_of = Description {
        items: vec![
            item(Colour::Red, ShapeKind::Circle),
            item(Colour::Blue, ShapeKind::Square),
        ],
        relation: Some(Relation::LeftOf),
    };
    assert_eq!(left_of.text(), "a red circle to the left of a blue square");
    assert!(left_of.satisfied_by(&[blue_square_right, red_circle_left]));
    let swapped_places = [
        Object {
            cell: Cell { row: 1, col: 2 },
            ..red_circle_left
        },
        Object {
            cell: Cell { row: 1, col: 0 },
            ..blue_square_right
        },
    ];
    assert!(!left_of.satisfied_by(&swapped_places));
    let swapped_colours = [
        Object {
            colour: Colour::Blue,
            ..red_circle_left
        },
        Object {
            colour: Colour::Red,
            ..blue_square_right
        },
    ];
    assert!(!left_of.satisfied_by(&swapped_colours));
    let two = Description {
        items: vec![Item {
            count: 2,
            ..item(Colour::Red, ShapeKind::Circle)
        }],
        relation: None,
    };
    assert_eq!(two.text(), "two red circles");
    assert!(two.satisfied_by(&[
        red_circle_left,
        Object {
            cell: Cell { row: 0, col: 0 },
            ..red_circle_left
        }
    ]));
    assert!(!two.satisfied_by(&[red_circle_left]));
}
