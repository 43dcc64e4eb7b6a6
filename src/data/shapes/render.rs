//! Draws a scene: each object a flat colour on black, centred in its grid
//! cell, a pixel painted when its centre lies inside the shape.

use super::{Object, Scene, ShapeKind};
use image::{Rgb, RgbImage};

/// The scene as a `side × side` RGB picture.
pub fn render(scene: &Scene, side: u32) -> RgbImage {
    let mut picture = RgbImage::new(side, side);
    for object in &scene.objects {
        paint(&mut picture, object);
    }
    picture
}

/// Where an object sits in a picture of `side` pixels: centre and half-width.
pub(super) fn placement(object: &Object, side: u32) -> (f32, f32, f32) {
    let cell = side as f32 / 3.0;
    let cx = (object.cell.col as f32 + 0.5) * cell;
    let cy = (object.cell.row as f32 + 0.5) * cell;
    (cx, cy, object.size.extent() * side as f32 / 2.0)
}

fn paint(picture: &mut RgbImage, object: &Object) {
    let side = picture.width();
    let (cx, cy, half) = placement(object, side);
    let colour = Rgb(object.colour.rgb());
    let lo = |c: f32| (c - half - 1.0).max(0.0) as u32;
    let hi = |c: f32| ((c + half + 1.0) as u32).min(side - 1);
    for y in lo(cy)..=hi(cy) {
        for x in lo(cx)..=hi(cx) {
            let (dx, dy) = (x as f32 + 0.5 - cx, y as f32 + 0.5 - cy);
            if inside(object.shape, dx, dy, half) {
                picture.put_pixel(x, y, colour);
            }
        }
    }
}

/// Whether the offset `(dx, dy)` from the centre lies inside the shape.
fn inside(shape: ShapeKind, dx: f32, dy: f32, half: f32) -> bool {
    match shape {
        ShapeKind::Circle => dx * dx + dy * dy <= half * half,
        ShapeKind::Square => dx.abs() <= half && dy.abs() <= half,
        // Apex at the top centre, base along the bottom edge.
        ShapeKind::Triangle => dy <= half && dx.abs() <= (dy + half) / 2.0,
    }
}
