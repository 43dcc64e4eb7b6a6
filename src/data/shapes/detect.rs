//! The detector: reads the objects out of any RGB picture of the shapes
//! world, rendered or generated, and judges strictly. Every blob of colour
//! big enough not to be pixel noise is reported, either as a recognised
//! object (colour, shape, size, cell) or as unrecognised (a fragment, a
//! smear, an odd colour), so a picture with extra pieces never passes.

use super::{Cell, Colour, Object, Scene, ShapeKind, Size};
use image::RgbImage;

/// Brightness (largest channel, 0–1) below which a pixel is background.
const BACKGROUND: f32 = 0.3;
/// Cosine similarity to a palette colour needed to count as that colour.
const SAME_HUE: f32 = 0.95;
/// Largest width/height ratio of a shape's bounding box.
const MAX_ASPECT: f32 = 1.45;

/// One blob the detector found.
#[derive(Debug, Clone, PartialEq)]
pub enum Finding {
    /// A whole shape it recognises.
    Object(Object),
    /// A blob that is no recognisable object, with the reason.
    Unrecognised {
        /// The cell its bounding box is centred in.
        cell: Cell,
        /// Its area in pixels.
        area: usize,
        /// Why it is not an object: "odd colour", "too small", ...
        reason: &'static str,
    },
}

/// Everything the detector found in one picture.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Detection {
    /// The blobs, in scan order.
    pub findings: Vec<Finding>,
}

impl Detection {
    /// The recognised objects, sorted.
    pub fn objects(&self) -> Vec<Object> {
        let mut objects: Vec<Object> = self
            .findings
            .iter()
            .filter_map(|f| match f {
                Finding::Object(o) => Some(*o),
                Finding::Unrecognised { .. } => None,
            })
            .collect();
        objects.sort();
        objects
    }

    /// The detector's reason for each blob it did not recognise, in scan order.
    pub fn rejections(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.findings.iter().filter_map(|f| match f {
            Finding::Unrecognised { reason, .. } => Some(*reason),
            Finding::Object(_) => None,
        })
    }

    /// Whether every blob was recognised as an object.
    pub fn is_clean(&self) -> bool {
        self.findings
            .iter()
            .all(|f| matches!(f, Finding::Object(_)))
    }

    /// Whether the picture holds exactly the scene's objects and nothing else.
    pub fn matches(&self, scene: &Scene) -> bool {
        self.is_clean() && self.objects() == scene.sorted()
    }
}

/// Finds the objects in `picture` (square, any side).
pub fn detect(picture: &RgbImage) -> Detection {
    let side = picture.width().min(picture.height()) as usize;
    let labels = label_pixels(picture, side);
    let floor = (0.003 * (side * side) as f32).round().max(3.0) as usize;
    let findings = components(&labels, side)
        .into_iter()
        .filter(|blob| blob.pixels.len() >= floor)
        .map(|blob| classify(&blob, side))
        .collect();
    Detection { findings }
}

/// Per pixel: `None` for background, `Some(i)` for palette colour `i`, and
/// `Some(Colour::ALL.len())` for a bright pixel of no palette colour.
fn label_pixels(picture: &RgbImage, side: usize) -> Vec<Option<usize>> {
    let palette: Vec<[f32; 3]> = Colour::ALL.iter().map(|c| unit(c.rgb())).collect();
    let mut labels = vec![None; side * side];
    for y in 0..side {
        for x in 0..side {
            let rgb = picture.get_pixel(x as u32, y as u32).0;
            if rgb.iter().copied().max().unwrap_or(0) as f32 / 255.0 < BACKGROUND {
                continue;
            }
            let direction = unit(rgb);
            let (best, similarity) = palette
                .iter()
                .map(|p| p.iter().zip(&direction).map(|(a, b)| a * b).sum::<f32>())
                .enumerate()
                .fold(
                    (0, f32::MIN),
                    |acc, (i, s)| if s > acc.1 { (i, s) } else { acc },
                );
            labels[y * side + x] = Some(if similarity >= SAME_HUE {
                best
            } else {
                palette.len()
            });
        }
    }
    labels
}

fn unit(rgb: [u8; 3]) -> [f32; 3] {
    let v = rgb.map(|c| c as f32);
    let norm = v.iter().map(|c| c * c).sum::<f32>().sqrt().max(1e-6);
    v.map(|c| c / norm)
}

/// A connected blob of one label.
struct Blob {
    label: usize,
    pixels: Vec<(usize, usize)>,
}

/// The 8-connected components of equal labels.
fn components(labels: &[Option<usize>], side: usize) -> Vec<Blob> {
    let mut seen = vec![false; labels.len()];
    let mut blobs = Vec::new();
    for start in 0..labels.len() {
        let Some(label) = labels[start] else { continue };
        if seen[start] {
            continue;
        }
        seen[start] = true;
        let mut stack = vec![start];
        let mut pixels = Vec::new();
        while let Some(i) = stack.pop() {
            let (x, y) = (i % side, i / side);
            pixels.push((x, y));
            for ny in y.saturating_sub(1)..=(y + 1).min(side - 1) {
                for nx in x.saturating_sub(1)..=(x + 1).min(side - 1) {
                    let j = ny * side + nx;
                    if !seen[j] && labels[j] == Some(label) {
                        seen[j] = true;
                        stack.push(j);
                    }
                }
            }
        }
        blobs.push(Blob { label, pixels });
    }
    blobs
}

fn classify(blob: &Blob, side: usize) -> Finding {
    let (mut x0, mut y0, mut x1, mut y1) = (usize::MAX, usize::MAX, 0, 0);
    for &(x, y) in &blob.pixels {
        (x0, y0, x1, y1) = (x0.min(x), y0.min(y), x1.max(x), y1.max(y));
    }
    let (w, h) = ((x1 - x0 + 1) as f32, (y1 - y0 + 1) as f32);
    let (cx, cy) = ((x0 + x1 + 1) as f32 / 2.0, (y0 + y1 + 1) as f32 / 2.0);
    let cell_of = |c: f32| ((c * 3.0 / side as f32) as u8).min(2);
    let cell = Cell {
        row: cell_of(cy),
        col: cell_of(cx),
    };
    let area = blob.pixels.len();
    let unrecognised = |reason| Finding::Unrecognised { cell, area, reason };
    let Some(&colour) = Colour::ALL.get(blob.label) else {
        return unrecognised("odd colour");
    };
    let extent = w.max(h) / side as f32;
    let (small, large) = (Size::Small.extent(), Size::Large.extent());
    if extent < 0.6 * small {
        return unrecognised("too small");
    }
    if extent > 1.35 * large {
        return unrecognised("too large");
    }
    if w.max(h) / w.min(h) > MAX_ASPECT {
        return unrecognised("not shape-like: stretched");
    }
    let Some(shape) = shape_of(blob, area as f32 / (w * h), cy) else {
        return unrecognised("not shape-like: outline");
    };
    let size = if extent < (small + large) / 2.0 {
        Size::Small
    } else {
        Size::Large
    };
    Finding::Object(Object {
        colour,
        shape,
        size,
        cell,
    })
}

/// The shape from the blob's fill of its bounding box and how its area
/// splits between the box's upper and lower halves (a triangle pointing up
/// holds about a quarter of its area in the upper half).
fn shape_of(blob: &Blob, fill: f32, centre_y: f32) -> Option<ShapeKind> {
    let (mut upper, mut lower) = (0.0f32, 0.0f32);
    for &(_, y) in &blob.pixels {
        let row_centre = y as f32 + 0.5;
        if row_centre < centre_y {
            upper += 1.0;
        } else if row_centre > centre_y {
            lower += 1.0;
        }
    }
    let lean = (lower - upper) / blob.pixels.len() as f32;
    if lean > 0.25 && (0.35..0.75).contains(&fill) {
        Some(ShapeKind::Triangle)
    } else if lean.abs() > 0.15 {
        None
    } else if fill >= 0.9 {
        Some(ShapeKind::Square)
    } else if (0.65..0.9).contains(&fill) {
        Some(ShapeKind::Circle)
    } else {
        None
    }
}
