//! The shapes world: procedural scenes of coloured circles, squares and
//! triangles on a 3×3 grid, the renderer that draws them, the descriptions
//! (captions and prompts) that say what they hold, and the detector that
//! reads them back out of any picture, rendered or generated.

mod benchmark;
mod describe;
mod detect;
mod negatives;
mod render;

pub use benchmark::{prompts, Category};
pub use describe::{caption, Description, Item, Relation};
pub use detect::{detect, Detection, Finding};
pub use negatives::{
    hard_negatives, Negative, COLOURS_SWAPPED, NEGATIVES, POSITION_SWAPPED, SHAPE_CHANGED,
};
pub use render::render;

use rand::seq::IndexedRandom;
use rand::Rng;

/// The named colours of the shapes world, with the RGB each is drawn in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Colour {
    /// Red.
    Red,
    /// Green.
    Green,
    /// Blue.
    Blue,
    /// Yellow.
    Yellow,
    /// Purple.
    Purple,
    /// Cyan.
    Cyan,
}

impl Colour {
    /// Every colour, in a fixed order.
    pub const ALL: [Colour; 6] = [
        Colour::Red,
        Colour::Green,
        Colour::Blue,
        Colour::Yellow,
        Colour::Purple,
        Colour::Cyan,
    ];

    /// The colour's word in captions.
    pub fn name(self) -> &'static str {
        match self {
            Colour::Red => "red",
            Colour::Green => "green",
            Colour::Blue => "blue",
            Colour::Yellow => "yellow",
            Colour::Purple => "purple",
            Colour::Cyan => "cyan",
        }
    }

    /// The RGB the renderer paints with.
    pub fn rgb(self) -> [u8; 3] {
        match self {
            Colour::Red => [225, 35, 35],
            Colour::Green => [30, 200, 50],
            Colour::Blue => [40, 70, 235],
            Colour::Yellow => [240, 225, 30],
            Colour::Purple => [165, 50, 215],
            Colour::Cyan => [30, 215, 225],
        }
    }
}

/// The kinds of shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ShapeKind {
    /// A filled disc.
    Circle,
    /// A filled axis-aligned square.
    Square,
    /// A filled triangle pointing up.
    Triangle,
}

impl ShapeKind {
    /// Every shape, in a fixed order.
    pub const ALL: [ShapeKind; 3] = [ShapeKind::Circle, ShapeKind::Square, ShapeKind::Triangle];

    /// The shape's word in captions (singular).
    pub fn name(self) -> &'static str {
        match self {
            ShapeKind::Circle => "circle",
            ShapeKind::Square => "square",
            ShapeKind::Triangle => "triangle",
        }
    }
}

/// The two object sizes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Size {
    /// About a fifth of the image across.
    Small,
    /// About three tenths of the image across.
    Large,
}

impl Size {
    /// Both sizes.
    pub const ALL: [Size; 2] = [Size::Small, Size::Large];

    /// The size's word in captions.
    pub fn name(self) -> &'static str {
        match self {
            Size::Small => "small",
            Size::Large => "large",
        }
    }

    /// The object's width (and height) as a fraction of the image side.
    pub fn extent(self) -> f32 {
        match self {
            Size::Small => 0.19,
            Size::Large => 0.29,
        }
    }
}

/// A cell of the 3×3 grid, row 0 at the top, column 0 at the left.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Cell {
    /// Row, 0..3 from the top.
    pub row: u8,
    /// Column, 0..3 from the left.
    pub col: u8,
}

impl Cell {
    /// All nine cells, row by row.
    pub fn all() -> impl Iterator<Item = Cell> {
        (0..9).map(|i| Cell {
            row: i / 3,
            col: i % 3,
        })
    }

    /// The cell's name in captions ("top left", "center", ...).
    pub fn name(self) -> &'static str {
        const NAMES: [&str; 9] = [
            "top left",
            "top middle",
            "top right",
            "middle left",
            "center",
            "middle right",
            "bottom left",
            "bottom middle",
            "bottom right",
        ];
        NAMES[(self.row * 3 + self.col) as usize]
    }
}

/// One object of a scene.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Object {
    /// Its colour.
    pub colour: Colour,
    /// Its shape.
    pub shape: ShapeKind,
    /// Its size.
    pub size: Size,
    /// The grid cell it is centred in.
    pub cell: Cell,
}

/// A scene: one to three objects, each in its own cell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scene {
    /// The objects, in the order they were placed.
    pub objects: Vec<Object>,
}

impl Scene {
    /// A random scene: one to three objects in distinct cells. A third of
    /// the scenes with several objects repeat one colour and shape, so that
    /// counting captions ("two green triangles") have pictures to match.
    pub fn sample(rng: &mut impl Rng) -> Scene {
        let count = rng.random_range(1..=3);
        let mut cells: Vec<Cell> = Cell::all().collect();
        let repeat = count > 1 && rng.random_bool(1.0 / 3.0);
        let first = random_object(rng, Cell { row: 0, col: 0 });
        let objects = (0..count)
            .map(|_| {
                let cell = cells.swap_remove(rng.random_range(0..cells.len()));
                if repeat {
                    Object {
                        cell,
                        size: *Size::ALL.choose(rng).expect("two sizes"),
                        ..first
                    }
                } else {
                    random_object(rng, cell)
                }
            })
            .collect();
        Scene { objects }
    }

    /// The objects sorted, for comparing scenes regardless of order.
    pub fn sorted(&self) -> Vec<Object> {
        let mut objects = self.objects.clone();
        objects.sort();
        objects
    }
}

fn random_object(rng: &mut impl Rng, cell: Cell) -> Object {
    Object {
        colour: *Colour::ALL.choose(rng).expect("six colours"),
        shape: *ShapeKind::ALL.choose(rng).expect("three shapes"),
        size: *Size::ALL.choose(rng).expect("two sizes"),
        cell,
    }
}
