//! Captions for scenes, in several phrasings, each one true of its scene:
//! "a red circle", "a small red circle in the top left", "a red circle to
//! the left of a blue square", "two green triangles".

use super::{Object, Scene};
use rand::Rng;

/// A caption true of `scene`, its phrasing drawn at random.
pub fn caption(scene: &Scene, rng: &mut impl Rng) -> String {
    match scene.objects.as_slice() {
        [one] => single(one, rng.random_bool(0.5), rng.random_bool(0.5)),
        [a, b] if !same_kind(a, b) && rng.random_bool(0.6) => relation(a, b, rng),
        objects => groups(objects, rng),
    }
}

fn same_kind(a: &Object, b: &Object) -> bool {
    a.colour == b.colour && a.shape == b.shape
}

/// "a (small) red circle (in the top left)".
fn single(object: &Object, with_size: bool, with_cell: bool) -> String {
    let mut words = format!("a {}", noun(object, with_size));
    if with_cell {
        words.push_str(&format!(" in the {}", object.cell.name()));
    }
    words
}

fn noun(object: &Object, with_size: bool) -> String {
    let size = if with_size {
        format!("{} ", object.size.name())
    } else {
        String::new()
    };
    format!("{size}{} {}", object.colour.name(), object.shape.name())
}

/// "a red circle to the left of a blue square", one relation that holds.
fn relation(a: &Object, b: &Object, rng: &mut impl Rng) -> String {
    let (first, second) = if rng.random_bool(0.5) { (a, b) } else { (b, a) };
    let mut holds = Vec::new();
    if first.cell.col < second.cell.col {
        holds.push("to the left of");
    }
    if first.cell.col > second.cell.col {
        holds.push("to the right of");
    }
    if first.cell.row < second.cell.row {
        holds.push("above");
    }
    if first.cell.row > second.cell.row {
        holds.push("below");
    }
    let phrase = holds[rng.random_range(0..holds.len())];
    format!(
        "a {} {phrase} a {}",
        noun(first, false),
        noun(second, false)
    )
}

/// Objects of one colour and shape counted together: "two red circles and a
/// blue square", "a red circle, a blue square and a green triangle".
fn groups(objects: &[Object], rng: &mut impl Rng) -> String {
    let mut groups: Vec<(Object, usize)> = Vec::new();
    for object in objects {
        match groups.iter_mut().find(|(o, _)| same_kind(o, object)) {
            Some((_, n)) => *n += 1,
            None => groups.push((*object, 1)),
        }
    }
    let with_size = rng.random_bool(0.3);
    let phrases: Vec<String> = groups
        .iter()
        .map(|(object, n)| match n {
            1 => format!("a {}", noun(object, with_size)),
            n => format!(
                "{} {} {}s",
                ["two", "three"][n - 2],
                object.colour.name(),
                object.shape.name()
            ),
        })
        .collect();
    match phrases.as_slice() {
        [only] => only.clone(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
        [] => String::new(),
    }
}
