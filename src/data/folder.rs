//! A folder of captioned pictures, as Hugging Face's `imagefolder` reads
//! one: PNG or JPEG files with the caption in a same-named `.txt` file, or
//! in a `metadata.jsonl` of `{"file_name": ..., "text": ...}` lines. Every
//! picture is centre-cropped to a square and resized; files that cannot be
//! read are skipped and counted, not fatal.

use crate::{Error, Result};
use image::imageops::FilterType;
use image::RgbImage;
use std::collections::HashMap;
use std::path::Path;

/// The pictures of a folder, ready for training.
#[derive(Debug, Clone)]
pub struct ImageFolder {
    /// Square pictures with their captions.
    pub pairs: Vec<(RgbImage, String)>,
    /// Files skipped: unreadable, not an image, or without a caption.
    pub skipped: Vec<(String, String)>,
}

/// Reads every captioned PNG/JPEG in `dir`, as `side × side` pictures.
pub fn load_folder(dir: &Path, side: u32) -> Result<ImageFolder> {
    let entries = std::fs::read_dir(dir).map_err(Error::io(dir))?;
    let metadata = read_metadata(dir)?;
    let mut files: Vec<_> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            let ext = p
                .extension()
                .and_then(|e| e.to_str())
                .unwrap_or("")
                .to_ascii_lowercase();
            matches!(ext.as_str(), "png" | "jpg" | "jpeg")
        })
        .collect();
    files.sort();
    let mut pairs = Vec::new();
    let mut skipped = Vec::new();
    for path in files {
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("")
            .to_string();
        let caption = match metadata.get(&name) {
            Some(text) => Some(text.clone()),
            None => std::fs::read_to_string(path.with_extension("txt"))
                .ok()
                .map(|t| t.trim().to_string()),
        };
        let Some(caption) = caption else {
            skipped.push((name, "no caption (.txt or metadata.jsonl)".into()));
            continue;
        };
        match image::open(&path) {
            Ok(picture) => pairs.push((square(&picture.to_rgb8(), side), caption)),
            Err(e) => skipped.push((name, e.to_string())),
        }
    }
    if pairs.is_empty() {
        return Err(Error::bad_file(
            dir,
            format!(
                "no usable captioned images (PNG or JPEG with a .txt caption or metadata.jsonl); {} skipped",
                skipped.len()
            ),
        ));
    }
    Ok(ImageFolder { pairs, skipped })
}

/// `metadata.jsonl`'s captions by file name (empty when there is none).
fn read_metadata(dir: &Path) -> Result<HashMap<String, String>> {
    let path = dir.join("metadata.jsonl");
    if !path.exists() {
        return Ok(HashMap::new());
    }
    let text = std::fs::read_to_string(&path).map_err(Error::io(&path))?;
    #[derive(serde::Deserialize)]
    struct Line {
        file_name: String,
        text: String,
    }
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            let line: Line = serde_json::from_str(l).map_err(|e| {
                Error::bad_file(
                    &path,
                    format!("line {}: {e} (need file_name and text)", i + 1),
                )
            })?;
            Ok((line.file_name, line.text))
        })
        .collect()
}

/// The largest centred square of `picture`, resized to `side`.
fn square(picture: &RgbImage, side: u32) -> RgbImage {
    let (w, h) = picture.dimensions();
    let s = w.min(h);
    let cropped = image::imageops::crop_imm(picture, (w - s) / 2, (h - s) / 2, s, s).to_image();
    image::imageops::resize(&cropped, side, side, FilterType::Triangle)
}
