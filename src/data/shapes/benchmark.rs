//! The GenEval-style prompt sets of the shapes world: fixed prompts per
//! category, each a description the detector's findings are judged against.

use super::{Cell, Colour, Description, Item, Relation, ShapeKind};
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};

/// What a prompt set tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Category {
    /// "a circle": one object of the shape, any colour.
    Single,
    /// "a red circle": one object of the shape and colour.
    Colour,
    /// "a red circle in the top left": one object in a named cell.
    Position,
    /// "a red circle and a blue square": two objects, each colour on its shape.
    Binding,
    /// "a red circle to the left of a blue square".
    Relation,
    /// "two red circles", "three blue squares".
    Counting,
}

impl Category {
    /// Every category, in report order.
    pub const ALL: [Category; 6] = [
        Category::Single,
        Category::Colour,
        Category::Position,
        Category::Binding,
        Category::Relation,
        Category::Counting,
    ];

    /// The category's name in reports.
    pub fn name(self) -> &'static str {
        match self {
            Category::Single => "single object",
            Category::Colour => "colour",
            Category::Position => "position",
            Category::Binding => "two objects (binding)",
            Category::Relation => "relative position",
            Category::Counting => "counting",
        }
    }
}

fn one(colour: Option<Colour>, shape: ShapeKind, cell: Option<Cell>) -> Item {
    Item {
        count: 1,
        colour,
        shape,
        size: None,
        cell,
    }
}

/// `count` prompts of `category`, the same every time for the same `seed`.
pub fn prompts(category: Category, count: usize, seed: u64) -> Vec<Description> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed ^ category as u64);
    let shape = |rng: &mut rand::rngs::StdRng| *ShapeKind::ALL.choose(rng).expect("shapes");
    let colour = |rng: &mut rand::rngs::StdRng| *Colour::ALL.choose(rng).expect("colours");
    (0..count)
        .map(|_| {
            let items = match category {
                Category::Single => vec![one(None, shape(&mut rng), None)],
                Category::Colour => vec![one(Some(colour(&mut rng)), shape(&mut rng), None)],
                Category::Position => {
                    let cell = Cell {
                        row: rng.random_range(0..3),
                        col: rng.random_range(0..3),
                    };
                    vec![one(Some(colour(&mut rng)), shape(&mut rng), Some(cell))]
                }
                Category::Binding | Category::Relation => {
                    let a = one(Some(colour(&mut rng)), shape(&mut rng), None);
                    let mut b = a;
                    while b.colour == a.colour {
                        b = one(Some(colour(&mut rng)), shape(&mut rng), None);
                    }
                    vec![a, b]
                }
                Category::Counting => vec![Item {
                    count: rng.random_range(2..=3),
                    ..one(Some(colour(&mut rng)), shape(&mut rng), None)
                }],
            };
            let relation = (category == Category::Relation)
                .then(|| *Relation::ALL.choose(&mut rng).expect("relations"));
            Description { items, relation }
        })
        .collect()
}
