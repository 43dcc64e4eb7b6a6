//! Pictures drawn with plotters (loss curves, attention heatmaps, embedding
//! maps): drawn in memory with the built-in font, saved as PNG atomically.

use crate::{Error, Result};
use image::RgbImage;
use plotters::coord::Shift;
use plotters::prelude::*;
use std::path::Path;

/// The drawing area a picture is painted on.
pub type Canvas<'a> = DrawingArea<BitMapBackend<'a>, Shift>;

/// What painting can fail with.
pub type PaintError = Box<dyn std::error::Error>;

/// Registers the built-in DejaVu Sans as plotters' "sans-serif" (once).
fn register_font() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let font: &'static [u8] = include_bytes!("../assets/DejaVuSans.ttf");
        // The font is valid and built in; registration can only fail on bad bytes.
        let _ = plotters::style::register_font("sans-serif", FontStyle::Normal, font);
    });
}

/// A `width × height` picture on white, painted by `paint`.
pub fn draw(
    width: u32,
    height: u32,
    paint: impl FnOnce(&Canvas) -> std::result::Result<(), PaintError>,
) -> Result<RgbImage> {
    register_font();
    let mut buffer = vec![255u8; width as usize * height as usize * 3];
    {
        let root = BitMapBackend::with_buffer(&mut buffer, (width, height)).into_drawing_area();
        paint(&root).map_err(|e| Error::Invalid(format!("cannot draw the picture: {e}")))?;
        root.present()
            .map_err(|e| Error::Invalid(format!("cannot draw the picture: {e}")))?;
    }
    Ok(RgbImage::from_raw(width, height, buffer).expect("buffer holds width × height pixels"))
}

/// Writes `picture` to `path` as a PNG, atomically.
pub fn save_png(picture: &RgbImage, path: &Path) -> Result<()> {
    let mut bytes = Vec::new();
    picture
        .write_to(
            &mut std::io::Cursor::new(&mut bytes),
            image::ImageFormat::Png,
        )
        .map_err(|e| Error::bad_file(path, format!("cannot encode PNG: {e}")))?;
    crate::atomic::write_atomic(path, &bytes)
}
