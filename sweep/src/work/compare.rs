//! Side-by-side pictures like the paper's Figure 6 (UAP, ours, ours + TV, Grad-CAM) and Figure 18
//! (fixed vs learned canvas), a row per class, at one pattern size.

use super::evaluate::search_canvas;
use super::pictures::{model_details, pw_caption, size_header};
use super::{group_name, Files, Inputs};
use crate::images::{class_label, grid_png, GridRow, GridText, Image};
use crate::tables::PatternRow;
use crate::units::PicturesParams;
use crate::Result;
use arrow_array::cast::AsArray;
use arrow_array::types::{Float32Type, Float64Type, Int64Type};
use arrow_array::Array;
use iscp_engine::data::Dataset;
use iscp_engine::pattern::binarize;
use iscp_proto::Table;

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
        let Some(batches) = inputs.batches(Table::Baselines, u)? else {
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
    experiment: &str,
    p: &PicturesParams,
    test: &Dataset,
) -> Result<Files> {
    let (setting, evaluations, baselines, sizes) = (
        p.setting.as_str(),
        &p.evaluations,
        &p.baselines,
        &p.sizes[..],
    );
    if sizes.is_empty() {
        return Ok(Files::new());
    }
    let details = model_details(inputs.model(&p.setting_id)?.as_ref());
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
        let cell = |class: i64, variant: &str| -> Result<Option<(Image, Image, String)>> {
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
            Ok(Some((canvas, pattern, pw_caption(r))))
        };
        let (mut fig6, mut fig18) = (Vec::new(), Vec::new());
        for &class in &classes {
            let Some((canvas, ours, ours_pw)) = cell(class, "base")? else {
                continue;
            };
            let name = best
                .iter()
                .find(|r| r.class == class)
                .map_or(String::new(), |r| r.class_name.clone());
            let label = class_label(class, &name);
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
            let tv_pw = tv.as_ref().map_or(String::new(), |t| t.2.clone());
            let mut row = GridRow::new(
                label.clone(),
                canvas.clone(),
                vec![uap, Some(ours.clone()), tv.map(|t| t.1), gradcam],
            );
            row.captions = vec![String::new(), ours_pw.clone(), tv_pw, String::new()];
            fig6.push(row);
            if let Some((learned_canvas, learned, learned_pw)) = cell(class, "learned-canvas")? {
                let mut row = GridRow::new(
                    label,
                    canvas,
                    vec![Some(ours), Some(learned_canvas), Some(learned)],
                );
                row.captions = vec![ours_pw, String::new(), learned_pw];
                fig18.push(row);
            }
        }
        let stem = group_name(setting, alpha, &objective, None);
        let title = format!(
            "{experiment} · {setting} · α {alpha} · {objective} · {} patterns",
            size_header(size)
        );
        let figures = [
            (
                "figure6",
                &fig6,
                "UAP, ours, ours + TV, Grad-CAM",
                ["UAP", "ours", "ours + TV", "Grad-CAM"]
                    .map(String::from)
                    .to_vec(),
            ),
            (
                "figure18",
                &fig18,
                "fixed vs learned canvas",
                ["ours", "learned canvas", "ours on it"]
                    .map(String::from)
                    .to_vec(),
            ),
        ];
        for (name, rows, what, headers) in figures {
            let text = GridText {
                title: format!("{title} · {what}"),
                details: details.clone(),
                headers,
            };
            if let Some(png) = grid_png(&text, rows)? {
                written.push((format!("images/{stem}-{name}.png"), png));
            }
        }
    }
    Ok(written)
}
