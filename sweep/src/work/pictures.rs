//! Draws a setting's pictures from its tables: every best pattern beside its canvas, and grids
//! (rows = classes, columns = canvas then each size) of the best patterns and of the white canvas.

use super::{fmt_num, group_name, Files, Inputs};
use crate::images::{grid_png, pattern_png, GridRow, Image};
use crate::tables::{PatternRow, SearchRow};
use crate::Result;
use iscp_engine::data::Dataset;
use iscp_engine::pattern::binarize;
use std::collections::HashMap;

fn image_of(test: &Dataset, s: &SearchRow) -> Result<Image> {
    Image::from_tensor(&super::evaluate::search_canvas(test, s)?)
}

/// Draws every picture of one setting from its evaluations that succeeded (`images/<setting>/…`
/// per pattern, `images/<setting>-…-best.png` and `-white.png` grids).
pub fn draw_setting(
    inputs: &Inputs,
    setting: &str,
    evaluations: &[String],
    test: &Dataset,
    sizes: &[f64],
) -> Result<Files> {
    let mut written = Files::new();
    let mut search_cache: HashMap<String, SearchRow> = HashMap::new();
    // "-alpha<α>-<objective>-<variant>" → one list of pattern rows per class
    type Groups = Vec<(String, Vec<Vec<PatternRow>>)>;
    let mut groups: Groups = Vec::new();
    for unit in evaluations {
        let Some(rows) = inputs.patterns(unit)? else {
            continue;
        };
        let Some(first) = rows.first() else { continue };
        let key = group_name("", first.alpha, &first.objective, Some(&first.variant));
        match groups.iter_mut().find(|(k, _)| *k == key) {
            Some((_, v)) => v.push(rows),
            None => groups.push((key, vec![rows])),
        }
    }
    for (tail, classes) in &groups {
        let mut best_rows = Vec::new();
        let mut white_rows = Vec::new();
        for rows in classes {
            let mut load = |id: &str| -> Result<SearchRow> {
                if let Some(r) = search_cache.get(id) {
                    return Ok(r.clone());
                }
                let r = inputs.search(id)?;
                search_cache.insert(id.to_string(), r.clone());
                Ok(r)
            };
            let class = &rows[0];
            let mut best_cells = Vec::new();
            let mut best_canvas: Option<Image> = None;
            for &size in sizes {
                let Some(best) = rows.iter().find(|r| r.is_best && r.size == size) else {
                    best_cells.push(None);
                    continue;
                };
                let s = load(&best.search_id)?;
                let canvas = image_of(test, &s)?;
                let bin = binarize(&s.mask, best.k as usize);
                let name = format!("class{}{tail}-size{}.png", class.class, fmt_num(size));
                written.push((
                    format!("images/{setting}/{name}"),
                    pattern_png(&canvas, &bin),
                ));
                best_cells.push(Some(Image::pattern(&canvas, &bin)));
                best_canvas.get_or_insert(canvas);
            }
            if let Some(canvas) = best_canvas {
                best_rows.push(GridRow {
                    canvas,
                    patterns: best_cells,
                    marked: false,
                });
            }
            if let Some(w) = rows.iter().find(|r| r.canvas_kind == "white") {
                let s = load(&w.search_id)?;
                let canvas = image_of(test, &s)?;
                let cells = sizes
                    .iter()
                    .map(|&size| {
                        rows.iter()
                            .find(|r| r.search_id == w.search_id && r.size == size)
                            .map(|r| Image::pattern(&canvas, &binarize(&s.mask, r.k as usize)))
                    })
                    .collect();
                white_rows.push(GridRow {
                    canvas,
                    patterns: cells,
                    marked: false,
                });
            }
        }
        let stem = format!("{setting}{tail}");
        for (name, rows) in [("best", &best_rows), ("white", &white_rows)] {
            if let Some(png) = grid_png(rows) {
                written.push((format!("images/{stem}-{name}.png"), png));
            }
        }
    }
    Ok(written)
}
