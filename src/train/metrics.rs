//! `metrics.jsonl` (one JSON object per record) and `loss.png` (train and
//! val curves, drawn with plotters).

use crate::{Error, Result};
use plotters::prelude::*;
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::{Path, PathBuf};

/// One line of `metrics.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricRecord {
    /// Optimizer step: for `train`, the step just taken; for `val`, the
    /// number of steps taken before evaluating.
    pub step: u64,
    /// `train` (one step's loss) or `val` (mean over `eval_iters` batches).
    pub split: String,
    /// Cross-entropy loss.
    pub loss: f64,
    /// Learning rate of the step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lr: Option<f64>,
    /// Gradient norm before clipping.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grad_norm: Option<f64>,
    /// Training throughput of the step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokens_per_s: Option<f64>,
    /// Seconds of training so far.
    pub elapsed_s: f64,
}

/// The metrics log of a run.
pub struct Metrics {
    path: PathBuf,
    records: Vec<MetricRecord>,
}

impl Metrics {
    /// Opens `path`, keeping only the records a run resumed at `step` has
    /// already made (train steps before it, evaluations up to it).
    pub fn open(path: &Path, step: u64) -> Result<Self> {
        let mut records = Vec::new();
        if path.exists() {
            let text = std::fs::read_to_string(path).map_err(Error::io(path))?;
            for line in text.lines().filter(|l| !l.trim().is_empty()) {
                let Ok(record) = serde_json::from_str::<MetricRecord>(line) else {
                    continue; // a line cut short by a kill
                };
                let keep = if record.split == "val" {
                    record.step <= step
                } else {
                    record.step < step
                };
                if keep {
                    records.push(record);
                }
            }
        }
        let mut text = String::new();
        for r in &records {
            text.push_str(&serde_json::to_string(r).expect("record serialises"));
            text.push('\n');
        }
        crate::atomic::write_atomic(path, text.as_bytes())?;
        Ok(Self {
            path: path.to_path_buf(),
            records,
        })
    }

    /// The records so far.
    pub fn records(&self) -> &[MetricRecord] {
        &self.records
    }

    /// Appends a record to memory and to the file.
    pub fn push(&mut self, record: MetricRecord) -> Result<()> {
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(&self.path)
            .map_err(Error::io(&self.path))?;
        let line = serde_json::to_string(&record).expect("record serialises");
        writeln!(file, "{line}").map_err(Error::io(&self.path))?;
        self.records.push(record);
        Ok(())
    }
}

/// Draws train and val loss against step into a PNG at `path` (atomically).
pub fn plot_losses(records: &[MetricRecord], path: &Path) -> Result<()> {
    let series = |split: &str| -> Vec<(f64, f64)> {
        records
            .iter()
            .filter(|r| r.split == split && r.loss.is_finite())
            .map(|r| (r.step as f64, r.loss))
            .collect()
    };
    let (train, val) = (series("train"), series("val"));
    let all = train.iter().chain(&val);
    let max_step = all.clone().map(|p| p.0).fold(1.0, f64::max);
    let (lo, hi) = all.fold((f64::MAX, f64::MIN), |(lo, hi), p| {
        (lo.min(p.1), hi.max(p.1))
    });
    let (lo, hi) = if lo > hi {
        (0.0, 1.0)
    } else {
        (lo * 0.95, hi * 1.05 + 1e-9)
    };
    let picture = crate::plot::draw(900, 540, |root| {
        let mut chart = ChartBuilder::on(root)
            .caption("loss", ("sans-serif", 24))
            .margin(16)
            .x_label_area_size(40)
            .y_label_area_size(56)
            .build_cartesian_2d(0.0..max_step, lo..hi)?;
        chart
            .configure_mesh()
            .x_desc("step")
            .y_desc("cross-entropy")
            .draw()?;
        for (points, colour, name) in [(&train, BLUE, "train"), (&val, RED, "val")] {
            chart
                .draw_series(LineSeries::new(
                    points.iter().copied(),
                    colour.stroke_width(2),
                ))?
                .label(name)
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 20, y)], colour.stroke_width(2))
                });
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()?;
        Ok(())
    })?;
    crate::plot::save_png(&picture, path)
}
