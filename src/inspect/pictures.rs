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
