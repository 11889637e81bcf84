//! Side-by-side pictures like the paper's Figure 6 (UAP, ours, ours + TV, Grad-CAM) and Figure 18
//! (fixed vs learned canvas), a row per class, at one pattern size.

use super::evaluate::search_canvas;
use super::{group_name, Files, Inputs};
use crate::images::{grid_png, GridRow, Image};
use crate::tables::PatternRow;
use crate::Result;
use arrow_array::cast::AsArray;
use arrow_array::types::{Float32Type, Float64Type, Int64Type};
use arrow_array::Array;
use iscp_engine::data::Dataset;
use iscp_engine::pattern::binarize;

struct Baseline {
    class: i64,
    method: String,
    eps: Option<f64>,
    canvas_index: Option<i64>,
    best: bool,
    pattern: Vec<f32>,
}

fn read_baselines(inputs: &Inputs, baselines: &[String]) -> Result<Vec<Baseline>> {
    let mut out = Vec::new();
    for u in baselines {
        let Some(batches) = inputs.batches("baselines", u)? else {
            continue;
        };
        for b in batches {
            let class = b
                .column_by_name("class")
                .expect("class")
                .as_primitive::<Int64Type>();
            let method = b
                .column_by_name("method")
                .expect("method")
                .as_string::<i32>();
            let eps = b
                .column_by_name("epsilon")
                .expect("epsilon")
                .as_primitive::<Float64Type>();
            let index = b
                .column_by_name("canvas_index")
                .expect("canvas_index")
                .as_primitive::<Int64Type>();
            let best = b.column_by_name("is_best").expect("is_best").as_boolean();
            let pattern = b
                .column_by_name("pattern")
                .expect("pattern")
                .as_list::<i32>();
            for i in 0..b.num_rows() {
                out.push(Baseline {
                    class: class.value(i),
                    method: method.value(i).to_string(),
                    eps: eps.is_valid(i).then(|| eps.value(i)),
                    canvas_index: index.is_valid(i).then(|| index.value(i)),
                    best: best.value(i),
                    pattern: pattern
                        .value(i)
                        .as_primitive::<Float32Type>()
                        .values()
                        .to_vec(),
                });
            }
        }
    }
    Ok(out)
}

/// Draws `images/<setting>-alpha<α>-<objective>-figure6.png` and, with learned canvases,
/// `…-figure18.png`, from the setting's evaluations and baselines that succeeded.
pub fn draw_comparisons(
    inputs: &Inputs,
    setting: &str,
    evaluations: &[String],
    baselines: &[String],
    test: &Dataset,
    sizes: &[f64],
) -> Result<Files> {
    let size = if sizes.contains(&0.05) {
        0.05
    } else {
        sizes[sizes.len() / 2]
    };
    let mut best: Vec<PatternRow> = Vec::new();
    for u in evaluations {
        if let Some(rows) = inputs.patterns(u)? {
            best.extend(rows.into_iter().filter(|r| r.is_best && r.size == size));
        }
    }
    let baselines = read_baselines(inputs, baselines)?;
    let mut groups: Vec<(f64, String)> = Vec::new();
    for r in &best {
        if !groups.contains(&(r.alpha, r.objective.clone())) {
            groups.push((r.alpha, r.objective.clone()));
        }
    }
    let mut written = Files::new();
    let mut classes: Vec<i64> = best.iter().map(|r| r.class).collect();
    classes.sort();
    classes.dedup();
    for (alpha, objective) in groups {
        let cell = |class: i64, variant: &str| -> Result<Option<(Image, Image)>> {
            let Some(r) = best.iter().find(|r| {
                r.class == class
                    && r.alpha == alpha
                    && r.objective == objective
                    && r.variant == variant
            }) else {
                return Ok(None);
            };
            let s = inputs.search(&r.search_id)?;
            let canvas = Image::from_tensor(&search_canvas(test, &s)?)?;
            let pattern = Image::pattern(&canvas, &binarize(&s.mask, r.k as usize));
            Ok(Some((canvas, pattern)))
        };
        let (mut fig6, mut fig18) = (Vec::new(), Vec::new());
        for &class in &classes {
            let Some((canvas, ours)) = cell(class, "base")? else {
                continue;
            };
            let tv = best
                .iter()
                .filter(|r| r.class == class && r.variant == "tv")
                .map(|r| r.variant.clone())
                .next()
                .map(|v| cell(class, &v))
                .transpose()?
                .flatten();
            let uap = baselines
                .iter()
                .filter(|b| b.class == class && b.method == "uap")
                .max_by(|a, b| a.eps.unwrap_or(0.0).total_cmp(&b.eps.unwrap_or(0.0)))
                .map(|b| {
                    let eps = b.eps.unwrap_or(1.0);
                    let pixels = b
                        .pattern
                        .iter()
                        .map(|d| 0.5 + d / (2.0 * eps as f32))
                        .collect();
                    Image {
                        pixels,
                        ..canvas.clone()
                    }
                });
            let gradcam = match baselines
                .iter()
                .find(|b| b.class == class && b.method == "gradcam" && b.best)
            {
                Some(b) => {
                    let c = Image::from_tensor(&iscp_engine::canvas::canvas_image(
                        test,
                        b.canvas_index.unwrap_or(-1),
                    )?)?;
                    Some(Image::pattern(&c, &b.pattern))
                }
                None => None,
            };
            fig6.push(GridRow {
                canvas: canvas.clone(),
                patterns: vec![uap, Some(ours.clone()), tv.map(|t| t.1), gradcam],
                marked: false,
            });
            if let Some((learned_canvas, learned)) = cell(class, "learned-canvas")? {
                fig18.push(GridRow {
                    canvas,
                    patterns: vec![Some(ours), Some(learned_canvas), Some(learned)],
                    marked: false,
                });
            }
        }
        let stem = group_name(setting, alpha, &objective, None);
        for (name, rows) in [("figure6", &fig6), ("figure18", &fig18)] {
            if let Some(png) = grid_png(rows) {
                written.push((format!("images/{stem}-{name}.png"), png));
            }
        }
    }
    Ok(written)
}
