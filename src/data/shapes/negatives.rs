//! Hard negatives: descriptions that differ from a true one in a single
//! detail (the colours swapped between two objects, the relation or cell
//! flipped, the count changed, one of two objects' shape changed), so they
//! name nearly the same words yet are false of the scene. CLIP's
//! evaluation scores a picture against them, and stage 1 can train against
//! them (as NegCLIP does), since in-batch negatives almost never differ
//! from a caption only in which colour goes with which shape.

use super::{Cell, Colour, Description, Relation, Scene, ShapeKind};
use rand::Rng;

/// Makes a hard negative of a description, where its kind applies.
pub type Negative = fn(&Description, &mut dyn rand::RngCore) -> Option<Description>;

/// The kind of hard negative that exchanges two objects' colours: false
/// only for a model that does not tie each colour to its shape.
pub const COLOURS_SWAPPED: &str = "colours swapped";

/// The kind of hard negative that reverses the relation between two
/// objects ("right of" for "left of"), or mirrors a lone object's cell.
pub const POSITION_SWAPPED: &str = "position swapped";

/// The kind of hard negative that gives one of two objects another shape
/// ("a red square and a blue square" for "a red circle and a blue square").
pub const SHAPE_CHANGED: &str = "shape changed";

/// The kinds of hard negative and how each is made from a true description.
pub const NEGATIVES: [(&str, Negative); 5] = [
    (COLOURS_SWAPPED, swap_colours),
    ("colour changed", change_colour),
    (POSITION_SWAPPED, swap_position),
    ("count changed", change_count),
    (SHAPE_CHANGED, change_shape),
];

/// Every kind of hard negative of `description` that is false of `scene`,
/// with its kind, in the order of [`NEGATIVES`].
pub fn hard_negatives(
    description: &Description,
    scene: &Scene,
    rng: &mut dyn rand::RngCore,
) -> Vec<(&'static str, Description)> {
    NEGATIVES
        .iter()
        .filter_map(|(kind, make)| Some((*kind, make(description, rng)?)))
        .filter(|(_, negative)| !negative.satisfied_by(&scene.objects))
        .collect()
}

/// The first two items' colours exchanged, where they differ.
fn swap_colours(d: &Description, _: &mut dyn rand::RngCore) -> Option<Description> {
    let mut out = d.clone();
    match out.items.as_mut_slice() {
        [a, b, ..] if a.colour != b.colour && a.colour.is_some() && b.colour.is_some() => {
            std::mem::swap(&mut a.colour, &mut b.colour);
            Some(out)
        }
        _ => None,
    }
}

/// A single item's colour replaced by another.
fn change_colour(d: &Description, rng: &mut dyn rand::RngCore) -> Option<Description> {
    let mut out = d.clone();
    let [only] = out.items.as_mut_slice() else {
        return None;
    };
    let current = only.colour?;
    let others: Vec<_> = Colour::ALL.into_iter().filter(|c| *c != current).collect();
    only.colour = Some(others[rng.random_range(0..others.len())]);
    Some(out)
}

/// The relation reversed, or the first item's cell mirrored.
fn swap_position(d: &Description, _: &mut dyn rand::RngCore) -> Option<Description> {
    let mut out = d.clone();
    if let Some(relation) = out.relation {
        out.relation = Some(match relation {
            Relation::LeftOf => Relation::RightOf,
            Relation::RightOf => Relation::LeftOf,
            Relation::Above => Relation::Below,
            Relation::Below => Relation::Above,
        });
        return Some(out);
    }
    let item = out.items.first_mut()?;
    let cell = item.cell?;
    let mirrored = if cell.col != 1 {
        Cell {
            col: 2 - cell.col,
            ..cell
        }
    } else {
        Cell {
            row: 2 - cell.row,
            ..cell
        }
    };
    if mirrored == cell {
        return None;
    }
    item.cell = Some(mirrored);
    Some(out)
}

/// The first item's count changed (1 → 2, 2 → 3, 3 → 2).
fn change_count(d: &Description, _: &mut dyn rand::RngCore) -> Option<Description> {
    let mut out = d.clone();
    if out.relation.is_some() {
        return None;
    }
    let item = out.items.first_mut()?;
    item.count = match item.count {
        1 => 2,
        2 => 3,
        _ => 2,
    };
    item.cell = None;
    Some(out)
}

/// One of two items (chosen at random) given another shape.
fn change_shape(d: &Description, rng: &mut dyn rand::RngCore) -> Option<Description> {
    let mut out = d.clone();
    if out.items.len() != 2 {
        return None;
    }
    let item = &mut out.items[rng.random_range(0..2)];
    let others: Vec<_> = ShapeKind::ALL
        .into_iter()
        .filter(|s| *s != item.shape)
        .collect();
    item.shape = others[rng.random_range(0..others.len())];
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    /// Every negative is false of its scene and, but for a changed shape,
    /// shares the caption's shapes; a two-colour caption always yields its
    /// colour swap.
    #[test]
    fn hard_negatives_are_false_of_their_scene() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(9);
        let (mut swaps, mut shape_changes) = (0, 0);
        for _ in 0..500 {
            let scene = Scene::sample(&mut rng);
            let description = Description::of(&scene, &mut rng);
            assert!(description.satisfied_by(&scene.objects));
            let negatives = hard_negatives(&description, &scene, &mut rng);
            for (kind, negative) in &negatives {
                assert!(
                    !negative.satisfied_by(&scene.objects),
                    "{}",
                    negative.text()
                );
                let shapes = |d: &Description| d.items.iter().map(|i| i.shape).collect::<Vec<_>>();
                let changed = shapes(negative)
                    .iter()
                    .zip(shapes(&description))
                    .filter(|(a, b)| **a != *b)
                    .count();
                let expected = usize::from(*kind == SHAPE_CHANGED);
                assert_eq!(changed, expected, "{kind}: {}", negative.text());
            }
            let colours: Vec<_> = description.items.iter().map(|i| i.colour).collect();
            if let [Some(a), Some(b), ..] = colours.as_slice() {
                if a != b && description.items[0].shape != description.items[1].shape {
                    let swapped = negatives.iter().any(|(kind, n)| {
                        *kind == COLOURS_SWAPPED
                            && n.items[0].colour == Some(*b)
                            && n.items[1].colour == Some(*a)
                    });
                    assert!(swapped, "{}", description.text());
                    swaps += 1;
                }
            }
            shape_changes += negatives
                .iter()
                .filter(|(k, _)| *k == SHAPE_CHANGED)
                .count();
        }
        assert!(swaps > 50, "only {swaps} two-colour captions");
        assert!(shape_changes > 50, "only {shape_changes} shape changes");
    }
}
