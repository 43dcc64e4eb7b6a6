//! Descriptions of scenes: what a caption or prompt asks for, as data. A
//! description renders to text ("a small red circle in the top left", "two
//! green triangles", "a red circle to the left of a blue square") and judges
//! whether a set of objects is exactly what it asks for, so the captions the
//! models learn from and the prompts they are scored on share one grammar.

use super::{Cell, Colour, Object, Scene, ShapeKind, Size};
use rand::Rng;

/// Share of single-object captions that leave the colour out ("a circle",
/// "a small square in the center"): enough that a prompt naming only a
/// shape is something the models have seen often, not a rarity to guess at.
const COLOURLESS_SINGLE: f64 = 0.25;

/// Objects of one shape (and colour, size or cell where given), `count` of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Item {
    /// How many such objects: 1 to 3.
    pub count: u8,
    /// Their colour, when the description names one.
    pub colour: Option<Colour>,
    /// Their shape.
    pub shape: ShapeKind,
    /// Their size, when named.
    pub size: Option<Size>,
    /// Their cell, when named (only for a single object).
    pub cell: Option<Cell>,
}

/// Where the first item sits relative to the second.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Relation {
    /// In a column further left.
    LeftOf,
    /// In a column further right.
    RightOf,
    /// In a row further up.
    Above,
    /// In a row further down.
    Below,
}

impl Relation {
    /// Every relation.
    pub const ALL: [Relation; 4] = [
        Relation::LeftOf,
        Relation::RightOf,
        Relation::Above,
        Relation::Below,
    ];

    /// The relation as a caption says it ("to the left of").
    pub fn words(self) -> &'static str {
        match self {
            Relation::LeftOf => "to the left of",
            Relation::RightOf => "to the right of",
            Relation::Above => "above",
            Relation::Below => "below",
        }
    }

    /// Whether an object in cell `a` stands so to one in cell `b`.
    pub fn holds(self, a: Cell, b: Cell) -> bool {
        match self {
            Relation::LeftOf => a.col < b.col,
            Relation::RightOf => a.col > b.col,
            Relation::Above => a.row < b.row,
            Relation::Below => a.row > b.row,
        }
    }
}

/// What a caption or prompt asks for: items, and optionally a relation
/// between the first two (each then a single object).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Description {
    /// The kinds of object asked for, each with a distinct colour and shape.
    pub items: Vec<Item>,
    /// How `items[0]` stands to `items[1]`.
    pub relation: Option<Relation>,
}

impl Description {
    /// A description true of `scene`, its phrasing drawn at random.
    pub fn of(scene: &Scene, rng: &mut impl Rng) -> Description {
        match scene.objects.as_slice() {
            [one] => {
                let size = rng.random_bool(0.5).then_some(one.size);
                let cell = rng.random_bool(0.5).then_some(one.cell);
                let colour = (!rng.random_bool(COLOURLESS_SINGLE)).then_some(one.colour);
                Description {
                    items: vec![item(one, 1, colour, size, cell)],
                    relation: None,
                }
            }
            [a, b] if !same_kind(a, b) && rng.random_bool(0.6) => {
                let (first, second) = if rng.random_bool(0.5) { (a, b) } else { (b, a) };
                let holds: Vec<Relation> = Relation::ALL
                    .into_iter()
                    .filter(|r| r.holds(first.cell, second.cell))
                    .collect();
                Description {
                    items: vec![
                        item(first, 1, Some(first.colour), None, None),
                        item(second, 1, Some(second.colour), None, None),
                    ],
                    relation: Some(holds[rng.random_range(0..holds.len())]),
                }
            }
            objects => {
                let with_size = rng.random_bool(0.3);
                let mut items: Vec<Item> = Vec::new();
                for object in objects {
                    match items
                        .iter_mut()
                        .find(|i| i.colour == Some(object.colour) && i.shape == object.shape)
                    {
                        Some(existing) => {
                            existing.count += 1;
                            existing.size = None;
                        }
                        None => items.push(item(
                            object,
                            1,
                            Some(object.colour),
                            with_size.then_some(object.size),
                            None,
                        )),
                    }
                }
                Description {
                    items,
                    relation: None,
                }
            }
        }
    }

    /// The description in words.
    pub fn text(&self) -> String {
        let phrases: Vec<String> = self.items.iter().map(phrase).collect();
        match (self.relation, phrases.as_slice()) {
            (Some(relation), [a, b]) => format!("{a} {} {b}", relation.words()),
            (_, [only]) => only.clone(),
            (_, [init @ .., last]) => format!("{} and {last}", init.join(", ")),
            (_, []) => String::new(),
        }
    }

    /// Whether `objects` are exactly what is asked for: every object
    /// belongs to one item, every item has its count, and the relation holds.
    pub fn satisfied_by(&self, objects: &[Object]) -> bool {
        let total: usize = self.items.iter().map(|i| i.count as usize).sum();
        if objects.len() != total {
            return false;
        }
        let mut claimed = vec![false; objects.len()];
        let mut firsts = Vec::new();
        for item in &self.items {
            let mut found = 0;
            for (object, taken) in objects.iter().zip(claimed.iter_mut()) {
                if !*taken && item.matches(object) {
                    *taken = true;
                    found += 1;
                    if found == 1 {
                        firsts.push(object.cell);
                    }
                }
            }
            if found != item.count {
                return false;
            }
        }
        match (self.relation, firsts.as_slice()) {
            (Some(relation), [a, b, ..]) => relation.holds(*a, *b),
            (Some(_), _) => false,
            (None, _) => true,
        }
    }
}

impl Item {
    fn matches(&self, object: &Object) -> bool {
        self.shape == object.shape
            && self.colour.is_none_or(|c| c == object.colour)
            && self.size.is_none_or(|s| s == object.size)
            && self.cell.is_none_or(|c| c == object.cell)
    }
}

fn same_kind(a: &Object, b: &Object) -> bool {
    a.colour == b.colour && a.shape == b.shape
}

fn item(
    object: &Object,
    count: u8,
    colour: Option<Colour>,
    size: Option<Size>,
    cell: Option<Cell>,
) -> Item {
    Item {
        count,
        colour,
        shape: object.shape,
        size,
        cell,
    }
}

/// "a small red circle in the top left", "two green triangles".
fn phrase(item: &Item) -> String {
    let mut words = vec![match item.count {
        1 => "a",
        2 => "two",
        _ => "three",
    }
    .to_string()];
    words.extend(item.size.map(|s| s.name().to_string()));
    words.extend(item.colour.map(|c| c.name().to_string()));
    let plural = if item.count > 1 { "s" } else { "" };
    words.push(format!("{}{plural}", item.shape.name()));
    if let Some(cell) = item.cell {
        words.push(format!("in the {}", cell.name()));
    }
    words.join(" ")
}

/// A caption true of `scene`, its phrasing drawn at random.
pub fn caption(scene: &Scene, rng: &mut impl Rng) -> String {
    Description::of(scene, rng).text()
}
