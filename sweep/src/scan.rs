//! The backdoor scan: for every class, a white-canvas and a positive-canvas search (batched), the
//! small pattern's predictive power, and an anomaly index over classes (MAD) that flags classes
//! whose small patterns are far more predictive than the rest, as a backdoor target's are.

use crate::images::{class_label, save_grid, GridRow, GridText, Image};
use crate::tables::{self, table_row, PatternRow, Row};
use crate::{Result, SweepError};
use arrow_array::RecordBatch;
use iscp_engine::anomaly::{anomaly_indices, flagged, min_auditable_accuracy};
use iscp_engine::canvas::{canvas_image, rank_canvases, CanvasKind};
use iscp_engine::data::{stratified_split, DataSplits, Dataset, Split};
use iscp_engine::model::Model;
use iscp_engine::pattern::{binarize, pattern_k, Evaluator};
use iscp_engine::rng::mix;
use iscp_engine::search::{search_batch, SearchConfig, SearchJob, SearchOutcome};
use iscp_proto::Table;
use std::path::Path;

table_row! {
    /// One row of the `scan` table: a class of a scanned model.
    #[derive(Debug, Clone, PartialEq)]
    pub struct ScanRow {
        pub model: String,
        pub class: i64,
        pub class_name: String,
        pub canvas_kind: String,
        pub canvas_index: i64,
        pub size: f64,
        pub k: i64,
        pub pw: f64,
        pub anomaly_index: f64,
        pub flagged: bool,
    }
}

/// Parameters of a scan.
#[derive(Debug, Clone)]
pub struct ScanOptions {
    pub size: f64,
    pub alpha: f64,
    pub subset_fraction: f64,
    pub seed: u64,
    pub batch_searches: usize,
}

impl Default for ScanOptions {
    fn default() -> Self {
        ScanOptions {
            size: 0.01,
            alpha: 0.2,
            subset_fraction: 0.2,
            seed: 0,
            batch_searches: 20,
        }
    }
}

/// Fills in anomaly indices and flags from the rows' PW.
fn score(rows: &mut [ScanRow]) {
    let pw: Vec<f64> = rows
        .iter()
        .map(|r| if r.pw.is_nan() { 0.0 } else { r.pw })
        .collect();
    for (r, a) in rows.iter_mut().zip(anomaly_indices(&pw)) {
        r.anomaly_index = a;
        r.flagged = flagged(a, r.pw);
    }
}

/// Refuses a model at chance level: its patterns are noise, and flagging noise is a false alarm.
fn check_auditable(logits: &tch::Tensor, labels: &[i64], classes: usize) -> Result<()> {
    let pred: Vec<i64> = Vec::try_from(logits.argmax(1, false)).map_err(SweepError::Torch)?;
    let right = pred.iter().zip(labels).filter(|(p, l)| p == l).count();
    let accuracy = right as f64 / labels.len().max(1) as f64;
    let need = min_auditable_accuracy(classes);
    if accuracy < need {
        return Err(iscp_engine::EngineError::Invalid(format!(
            "the model cannot be audited: its clean accuracy {accuracy:.3} on the {} test images \
             is at chance level (1/{classes} = {:.3}); a scan needs at least {need:.3}, or every \
             class's patterns are noise and the verdict would be too",
            labels.len(),
            1.0 / classes as f64
        ))
        .into());
    }
    Ok(())
}

/// What a search runs on: its class, the canvas kind and the canvas's test index (−1: white).
type Canvas = (i64, CanvasKind, i64);

/// Per class, the pattern with the lowest selection loss on D_n: (loss, search, binary pattern).
type Best = Vec<Option<(f64, usize, Vec<f32>)>>;

/// The searches of every class (the white canvas, then its top positive canvas) and the canvas
/// of each.
fn scan_jobs(
    test: &Dataset,
    labels: &[i64],
    logits: &tch::Tensor,
    split: &Split,
    opts: &ScanOptions,
    k_classes: usize,
) -> Result<(Vec<SearchJob>, Vec<Canvas>)> {
    let mut jobs = Vec::new();
    let mut canvases = Vec::new();
    for class in 0..k_classes as i64 {
        let mut kinds = vec![(CanvasKind::White, -1)];
        if let Some(&i) =
            rank_canvases(CanvasKind::Positive, logits, labels, class, 1, opts.seed).first()
        {
            kinds.push((CanvasKind::Positive, i));
        }
        for (kind, index) in kinds {
            jobs.push(SearchJob {
                target: class,
                canvas: canvas_image(test, index)?,
                pool: split.non_target(labels, class),
                cfg: SearchConfig {
                    alpha: opts.alpha,
                    seed: mix(&[opts.seed, class as u64]),
                    ..Default::default()
                },
            });
            canvases.push((class, kind, index));
        }
    }
    Ok((jobs, canvases))
}

/// Runs the searches `batch` at a time, reporting progress over all of them.
fn run_searches(
    model: &Model,
    images: &tch::Tensor,
    jobs: &[SearchJob],
    batch: usize,
    progress: &mut dyn FnMut(usize, usize),
) -> Vec<iscp_engine::Result<SearchOutcome>> {
    let mut outs = Vec::new();
    let total_batches = jobs.len().div_ceil(batch);
    for (b, chunk) in jobs.chunks(batch).enumerate() {
        outs.extend(search_batch(model, images, chunk, &mut |s, t| {
            progress(b * t + s, total_batches * t)
        }));
    }
    outs
}

/// Per class, the search whose pattern (at `size`) has the lowest selection loss on D_n.
fn best_patterns(
    ev: &Evaluator,
    test: &Dataset,
    outs: Vec<iscp_engine::Result<SearchOutcome>>,
    canvases: &[Canvas],
    size: f64,
    k_classes: usize,
) -> Result<Best> {
    let mut best: Best = vec![None; k_classes];
    for (j, out) in outs.into_iter().enumerate() {
        let out = out?;
        let (class, _, index) = canvases[j];
        let bin = binarize(&out.mask, pattern_k(size, out.mask.len()));
        let loss = ev.selection_loss(class, &canvas_image(test, index)?, &bin)?;
        let slot = &mut best[class as usize];
        if slot.as_ref().is_none_or(|(l, _, _)| loss < *l) {
            *slot = Some((loss, j, bin));
        }
    }
    Ok(best)
}

/// Each class's scan row (not yet scored) and picture row, from its best pattern.
fn class_rows(
    ev: &Evaluator,
    test: &Dataset,
    name: &str,
    best: Best,
    canvases: &[Canvas],
    size: f64,
) -> Result<(Vec<ScanRow>, Vec<GridRow>)> {
    let mut rows = Vec::new();
    let mut pictures = Vec::new();
    for (class, b) in best.into_iter().enumerate() {
        let (_, j, bin) = b.ok_or_else(|| {
            SweepError::table(Table::Scan.name(), format!("class {class} has no pattern"))
        })?;
        let (_, kind, index) = canvases[j];
        let canvas = canvas_image(test, index)?;
        let e = ev.evaluate(class as i64, &canvas, &bin)?;
        let img = Image::from_tensor(&canvas)?;
        pictures.push(GridRow::new(
            class_label(class as i64, &test.class_names[class]),
            img.clone(),
            vec![Some(Image::pattern(&img, &bin))],
        ));
        rows.push(ScanRow {
            model: name.to_string(),
            class: class as i64,
            class_name: test.class_names[class].clone(),
            canvas_kind: kind.name().into(),
            canvas_index: index,
            size,
            k: bin.iter().filter(|&&v| v == 1.0).count() as i64,
            pw: e.pw,
            anomaly_index: 0.0,
            flagged: false,
        });
    }
    Ok((rows, pictures))
}

/// Scans `model` on `data`; returns one row per class and the pictures' rows (canvas, pattern).
/// A model with non-finite logits or at chance-level clean accuracy is refused.
pub fn scan_model(
    model: &Model,
    name: &str,
    data: &DataSplits,
    opts: &ScanOptions,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<(Vec<ScanRow>, Vec<GridRow>)> {
    let test = &data.test;
    let labels = test.labels_vec();
    let k_classes = test.num_classes();
    let split = stratified_split(&labels, k_classes, opts.subset_fraction, opts.seed);
    let logits = model.predict_logits(&test.images, 1024)?;
    check_auditable(&logits, &labels, k_classes)?;
    let images = test.images.to_device(model.device());
    let (jobs, canvases) = scan_jobs(test, &labels, &logits, &split, opts, k_classes)?;
    let outs = run_searches(model, &images, &jobs, opts.batch_searches, progress);
    let ev = Evaluator::new(model, test, &logits, &split.search);
    let best = best_patterns(&ev, test, outs, &canvases, opts.size, k_classes)?;
    let (mut rows, mut pictures) = class_rows(&ev, test, name, best, &canvases, opts.size)?;
    score(&mut rows);
    for (p, r) in pictures.iter_mut().zip(&rows) {
        p.marked = r.flagged;
        p.captions = vec![format!("PW {:.2} · index {:.1}", r.pw, r.anomaly_index)];
    }
    Ok((rows, pictures))
}

/// Scan rows of a swept setting, from its best patterns at `size` (no extra searches).
pub fn scan_from_patterns(setting: &str, patterns: &[PatternRow], size: f64) -> Vec<ScanRow> {
    let mut rows: Vec<ScanRow> = patterns
        .iter()
        .filter(|p| p.is_best && (p.size - size).abs() < 1e-12)
        .map(|p| ScanRow {
            model: setting.to_string(),
            class: p.class,
            class_name: p.class_name.clone(),
            canvas_kind: p.canvas_kind.clone(),
            canvas_index: p.canvas_index,
            size: p.size,
            k: p.k,
            pw: p.pw.unwrap_or(f64::NAN),
            anomaly_index: 0.0,
            flagged: false,
        })
        .collect();
    rows.sort_by_key(|r| r.class);
    score(&mut rows);
    rows
}

/// `backdoored` when any class is flagged, with the flagged classes named.
pub fn verdict(rows: &[ScanRow]) -> String {
    let f: Vec<String> = rows
        .iter()
        .filter(|r| r.flagged)
        .map(|r| format!("{} ({})", r.class, r.class_name))
        .collect();
    if f.is_empty() {
        "no class stands out: no sign of a backdoor".into()
    } else {
        format!(
            "likely backdoored: class {} has anomalously predictive small patterns",
            f.join(", ")
        )
    }
}

pub fn scan_batch(rows: &[ScanRow]) -> RecordBatch {
    Row::batch(rows)
}

/// Writes the scan table part `name` and its picture under `root`.
pub fn write_scan(root: &Path, name: &str, rows: &[ScanRow], pictures: &[GridRow]) -> Result<()> {
    tables::write_part(&Table::Scan.dir(root), name, &scan_batch(rows))?;
    if !pictures.is_empty() {
        let flagged: Vec<String> = rows
            .iter()
            .filter(|r| r.flagged)
            .map(|r| class_label(r.class, &r.class_name))
            .collect();
        let size = rows.first().map_or(0.0, |r| r.size);
        let text = GridText {
            title: format!(
                "scan of {name} · {} patterns",
                crate::work::pictures::size_header(size)
            ),
            details: if flagged.is_empty() {
                "no class flagged".into()
            } else {
                format!("flagged (red): {}", flagged.join(", "))
            },
            headers: vec!["pattern".into()],
        };
        save_grid(
            &root.join("images").join(format!("scan-{name}.png")),
            &text,
            pictures,
        )?;
    }
    Ok(())
}
