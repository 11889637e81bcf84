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

/// The pattern size the comparisons are drawn at: 5% when swept, else the middle size.
fn comparison_size(sizes: &[f64]) -> f64 {
    if sizes.contains(&0.05) {
        0.05
    } else {
        sizes[sizes.len() / 2]
    }
}

/// The best pattern rows of the evaluations that succeeded, at one size.
fn best_at(inputs: &Inputs, evaluations: &[String], size: f64) -> Result<Vec<PatternRow>> {
    let mut best: Vec<PatternRow> = Vec::new();
    for u in evaluations {
        if let Some(rows) = inputs.patterns(u)? {
            best.extend(rows.into_iter().filter(|r| r.is_best && r.size == size));
        }
    }
    Ok(best)
}

/// The (α, objective) pairs of the rows, in first-seen order.
fn groups_of(best: &[PatternRow]) -> Vec<(f64, String)> {
    let mut groups: Vec<(f64, String)> = Vec::new();
    for r in best {
        if !groups.contains(&(r.alpha, r.objective.clone())) {
            groups.push((r.alpha, r.objective.clone()));
        }
    }
    groups
}

/// The class's strongest UAP perturbation drawn over the canvas's shape, if any.
fn uap_image(baselines: &[Baseline], class: i64, canvas: &Image) -> Option<Image> {
    baselines
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
        })
}

/// The class's best Grad-CAM pattern over its own canvas, if any.
fn gradcam_image(baselines: &[Baseline], class: i64, test: &Dataset) -> Result<Option<Image>> {
    let Some(b) = baselines
        .iter()
        .find(|b| b.class == class && b.method == "gradcam" && b.best)
    else {
        return Ok(None);
    };
    let c = Image::from_tensor(&iscp_engine::canvas::canvas_image(
        test,
        b.canvas_index.unwrap_or(-1),
    )?)?;
    Ok(Some(Image::pattern(&c, &b.pattern)))
}

/// One (α, objective) group of the best patterns at the drawn size.
struct Group<'a> {
    inputs: &'a Inputs,
    test: &'a Dataset,
    best: &'a [PatternRow],
    alpha: f64,
    objective: &'a str,
}

impl Group<'_> {
    /// The canvas, pattern and PW caption of the class's best pattern of a variant, if any.
    fn cell(&self, class: i64, variant: &str) -> Result<Option<(Image, Image, String)>> {
        let Some(r) = self.best.iter().find(|r| {
            r.class == class
                && r.alpha == self.alpha
                && r.objective == self.objective
                && r.variant == variant
        }) else {
            return Ok(None);
        };
        let s = self.inputs.search(&r.search_id)?;
        let canvas = Image::from_tensor(&search_canvas(self.test, &s)?)?;
        let pattern = Image::pattern(&canvas, &binarize(&s.mask, r.k as usize));
        Ok(Some((canvas, pattern, pw_caption(r))))
    }

    /// The class's Figure 6 row and, with a learned canvas, its Figure 18 row; None without a
    /// base pattern.
    fn class_rows(
        &self,
        class: i64,
        baselines: &[Baseline],
    ) -> Result<Option<(GridRow, Option<GridRow>)>> {
        let Some((canvas, ours, ours_pw)) = self.cell(class, "base")? else {
            return Ok(None);
        };
        let name = self
            .best
            .iter()
            .find(|r| r.class == class)
            .map_or(String::new(), |r| r.class_name.clone());
        let label = class_label(class, &name);
        let tv = self
            .best
            .iter()
            .filter(|r| r.class == class && r.variant == "tv")
            .map(|r| r.variant.clone())
            .next()
            .map(|v| self.cell(class, &v))
            .transpose()?
            .flatten();
        let uap = uap_image(baselines, class, &canvas);
        let gradcam = gradcam_image(baselines, class, self.test)?;
        let tv_pw = tv.as_ref().map_or(String::new(), |t| t.2.clone());
        let mut fig6 = GridRow::new(
            label.clone(),
            canvas.clone(),
            vec![uap, Some(ours.clone()), tv.map(|t| t.1), gradcam],
        );
        fig6.captions = vec![String::new(), ours_pw.clone(), tv_pw, String::new()];
        let fig18 = match self.cell(class, "learned-canvas")? {
            Some((learned_canvas, learned, learned_pw)) => {
                let mut row = GridRow::new(
                    label,
                    canvas,
                    vec![Some(ours), Some(learned_canvas), Some(learned)],
                );
                row.captions = vec![ours_pw, String::new(), learned_pw];
                Some(row)
            }
            None => None,
        };
        Ok(Some((fig6, fig18)))
    }

    /// The group's Figure 6 and Figure 18 rows, a row per class in order.
    fn rows(
        &self,
        classes: &[i64],
        baselines: &[Baseline],
    ) -> Result<(Vec<GridRow>, Vec<GridRow>)> {
        let (mut fig6, mut fig18) = (Vec::new(), Vec::new());
        for &class in classes {
            let Some((row6, row18)) = self.class_rows(class, baselines)? else {
                continue;
            };
            fig6.push(row6);
            fig18.extend(row18);
        }
        Ok((fig6, fig18))
    }
}

/// The `images/<stem>-figure6.png` and `-figure18.png` grids of a group that have rows.
fn figure_files(
    stem: &str,
    title: &str,
    details: &str,
    fig6: &[GridRow],
    fig18: &[GridRow],
) -> Result<Files> {
    let mut written = Files::new();
    let figures = [
        (
            "figure6",
            fig6,
            "UAP, ours, ours + TV, Grad-CAM",
            ["UAP", "ours", "ours + TV", "Grad-CAM"]
                .map(String::from)
                .to_vec(),
        ),
        (
            "figure18",
            fig18,
            "fixed vs learned canvas",
            ["ours", "learned canvas", "ours on it"]
                .map(String::from)
                .to_vec(),
        ),
    ];
    for (name, rows, what, headers) in figures {
        let text = GridText {
            title: format!("{title} · {what}"),
            details: details.to_string(),
            headers,
        };
        if let Some(png) = grid_png(&text, rows)? {
            written.push((format!("images/{stem}-{name}.png"), png));
        }
    }
    Ok(written)
}

/// Draws `images/<setting>-alpha<α>-<objective>-figure6.png` and, with learned canvases,
/// `…-figure18.png`, from the setting's evaluations and baselines that succeeded.
pub fn draw_comparisons(
    inputs: &Inputs,
    experiment: &str,
    p: &PicturesParams,
    test: &Dataset,
) -> Result<Files> {
    let (setting, sizes) = (p.setting.as_str(), &p.sizes[..]);
    if sizes.is_empty() {
        return Ok(Files::new());
    }
    let details = model_details(inputs.model(&p.prepare_id)?.as_ref());
    let size = comparison_size(sizes);
    let best = best_at(inputs, &p.evaluations, size)?;
    let baselines = read_baselines(inputs, &p.baselines)?;
    let groups = groups_of(&best);
    let mut written = Files::new();
    let mut classes: Vec<i64> = best.iter().map(|r| r.class).collect();
    classes.sort();
    classes.dedup();
    for (alpha, objective) in groups {
        let group = Group {
            inputs,
            test,
            best: &best,
            alpha,
            objective: &objective,
        };
        let (fig6, fig18) = group.rows(&classes, &baselines)?;
        let stem = group_name(setting, alpha, &objective, None);
        let title = format!(
            "{experiment} · {setting} · α {alpha} · {objective} · {} patterns",
            size_header(size)
        );
        written.extend(figure_files(&stem, &title, &details, &fig6, &fig18)?);
    }
    Ok(written)
}
