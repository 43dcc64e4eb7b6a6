//! The inspection views as pictures: an attention heatmap with the tokens on
//! both axes, and a map of words in the embedding's first two principal
//! components.

use crate::plot::draw;
use crate::Result;
use image::RgbImage;
use plotters::prelude::*;

/// A heatmap of `map[query][key]` (weights in `[0, 1]`), queries down the
/// side and keys along the bottom, each labelled with its token.
pub fn attention_heatmap(map: &[Vec<f32>], tokens: &[String], title: &str) -> Result<RgbImage> {
    let n = tokens.len();
    // plotters' integer ranges include their end: 0..=last is n segments.
    let last = n.saturating_sub(1);
    let cell = (900 / n.max(1)).clamp(8, 36) as u32;
    let longest = tokens.iter().map(|t| t.chars().count()).max().unwrap_or(1) as u32;
    let label_area = (longest * 9 + 16).clamp(40, 180);
    let side = n as u32 * cell;
    let (width, height) = (side + label_area + 40, side + label_area + 60);
    draw(width, height, |root| {
        let mut chart = ChartBuilder::on(root)
            .caption(title, ("sans-serif", 20))
            .margin(12)
            .x_label_area_size(label_area)
            .y_label_area_size(label_area)
            .build_cartesian_2d((0..last).into_segmented(), (0..last).into_segmented())?;
        let label = |v: &SegmentValue<usize>| match v {
            SegmentValue::CenterOf(i) if *i < n => tokens[n - 1 - *i].clone(),
            _ => String::new(),
        };
        let key_label = |v: &SegmentValue<usize>| match v {
            SegmentValue::CenterOf(i) if *i < n => tokens[*i].clone(),
            _ => String::new(),
        };
        chart
            .configure_mesh()
            .disable_mesh()
            .x_labels(n)
            .y_labels(n)
            .x_label_formatter(&key_label)
            .y_label_formatter(&label)
            .x_label_style(
                ("sans-serif", 14)
                    .into_font()
                    .transform(FontTransform::Rotate90),
            )
            .y_label_style(("sans-serif", 14))
            .draw()?;
        chart.draw_series((0..n).flat_map(|q| {
            (0..n).map(move |k| {
                let y = n - 1 - q;
                Rectangle::new(
                    [
                        (SegmentValue::Exact(k), SegmentValue::Exact(y)),
                        (SegmentValue::Exact(k + 1), SegmentValue::Exact(y + 1)),
                    ],
                    weight_colour(map[q][k]).filled(),
                )
            })
        }))?;
        Ok(())
    })
}

/// White for 0 to dark blue for 1.
fn weight_colour(weight: f32) -> RGBColor {
    let w = weight.clamp(0.0, 1.0) as f64;
    let mix = |light: f64, dark: f64| (light + (dark - light) * w).round() as u8;
    RGBColor(mix(255.0, 8.0), mix(255.0, 48.0), mix(255.0, 107.0))
}

/// Words placed at their 2-D coordinates (`points[i]` for `labels[i]`).
pub fn word_map(points: &[[f64; 2]], labels: &[String], title: &str) -> Result<RgbImage> {
    let range = |k: usize| {
        let (lo, hi) = points.iter().fold((f64::MAX, f64::MIN), |(lo, hi), p| {
            (lo.min(p[k]), hi.max(p[k]))
        });
        let pad = ((hi - lo) * 0.15).max(1e-3);
        (lo - pad)..(hi + pad)
    };
    let (xs, ys) = (range(0), range(1));
    draw(800, 640, |root| {
        let mut chart = ChartBuilder::on(root)
            .caption(title, ("sans-serif", 20))
            .margin(16)
            .x_label_area_size(36)
            .y_label_area_size(48)
            .build_cartesian_2d(xs, ys)?;
        chart
            .configure_mesh()
            .x_desc("principal component 1")
            .y_desc("principal component 2")
            .draw()?;
        chart.draw_series(points.iter().zip(labels).map(|(p, label)| {
            EmptyElement::at((p[0], p[1]))
                + Circle::new((0, 0), 4, BLUE.filled())
                + Text::new(label.clone(), (6, -8), ("sans-serif", 16))
        }))?;
        Ok(())
    })
}

/// Soft background colours that tell neighbouring tokens apart.
const TOKEN_COLOURS: [RGBColor; 5] = [
    RGBColor(255, 214, 153),
    RGBColor(178, 223, 219),
    RGBColor(197, 202, 233),
    RGBColor(255, 205, 210),
    RGBColor(220, 237, 200),
];

/// The text as a row of coloured boxes, one per token (`labels`, whitespace
/// made visible), each with its id beneath, wrapped into lines.
pub fn token_boxes(labels: &[String], ids: &[u32], title: &str) -> Result<RgbImage> {
    const WIDTH: i32 = 960;
    const MARGIN: i32 = 16;
    const LINE: i32 = 56;
    // Lay the boxes out first, with the font's own measure of each label.
    let measure = |text: &str| -> i32 {
        let font = ("sans-serif", 20).into_font();
        font.box_size(text)
            .map_or(12 * text.len() as i32, |(w, _)| w as i32)
    };
    let mut placed = Vec::with_capacity(labels.len());
    let (mut x, mut y) = (MARGIN, 48);
    for label in labels {
        let width = measure(label).max(14) + 10;
        if x + width > WIDTH - MARGIN && x > MARGIN {
            (x, y) = (MARGIN, y + LINE);
        }
        placed.push((x, y, width));
        x += width + 3;
    }
    let height = (y + LINE + MARGIN) as u32;
    draw(WIDTH as u32, height, |root| {
        root.draw(&Text::new(
            title.to_string(),
            (MARGIN, 12),
            ("sans-serif", 18),
        ))?;
        for (i, ((label, id), &(x, y, width))) in labels.iter().zip(ids).zip(&placed).enumerate() {
            let colour = TOKEN_COLOURS[i % TOKEN_COLOURS.len()];
            root.draw(&Rectangle::new(
                [(x, y), (x + width, y + 30)],
                colour.filled(),
            ))?;
            root.draw(&Text::new(
                label.clone(),
                (x + 5, y + 4),
                ("sans-serif", 20),
            ))?;
            root.draw(&Text::new(
                id.to_string(),
                (x + 2, y + 33),
                ("sans-serif", 12).into_font().color(&RGBColor(90, 90, 90)),
            ))?;
        }
        Ok(())
    })
}

/// A horizontal bar for each candidate next token (`labels[i]` with
/// probability `probs[i]`, most likely first).
pub fn probability_bars(labels: &[String], probs: &[f64], title: &str) -> Result<RgbImage> {
    let n = labels.len();
    let last = n.saturating_sub(1);
    let top = probs.iter().copied().fold(0.0, f64::max).max(1e-9) * 1.15;
    let height = (80 + 30 * n as u32).max(200);
    draw(800, height, |root| {
        let mut chart = ChartBuilder::on(root)
            .caption(title, ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(140)
            .build_cartesian_2d(0.0..top, (0..last).into_segmented())?;
        let label = |v: &SegmentValue<usize>| match v {
            SegmentValue::CenterOf(i) if *i < n => labels[n - 1 - *i].clone(),
            _ => String::new(),
        };
        chart
            .configure_mesh()
            .disable_y_mesh()
            .y_labels(n)
            .y_label_formatter(&label)
            .y_label_style(("sans-serif", 16))
            .x_desc("probability")
            .draw()?;
        chart.draw_series(probs.iter().enumerate().map(|(i, &p)| {
            let y = n - 1 - i;
            let mut bar = Rectangle::new(
                [
                    (0.0, SegmentValue::Exact(y)),
                    (p, SegmentValue::Exact(y + 1)),
                ],
                RGBColor(8, 81, 156).mix(0.8).filled(),
            );
            bar.set_margin(4, 4, 0, 0);
            bar
        }))?;
        chart.draw_series(probs.iter().enumerate().map(|(i, &p)| {
            Text::new(
                format!("{:.1}%", 100.0 * p),
                (p + top * 0.01, SegmentValue::CenterOf(n - 1 - i)),
                ("sans-serif", 14),
            )
        }))?;
        Ok(())
    })
}
