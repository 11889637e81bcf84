//! Draws a setting's pictures from its tables: every best pattern beside its canvas, and labelled
//! grids (a row per class, named; columns = canvas then each size, headed; the PW under each
//! pattern; the title says experiment, setting, α, objective, variant and the model's scores) of
//! the best patterns and of the white canvas.

use super::{fmt_num, group_name, Files, Inputs};
use crate::images::{class_label, grid_png, pattern_png, GridRow, GridText, Image};
use crate::tables::{ModelRow, PatternRow, SearchRow};
use crate::units::PicturesParams;
use crate::Result;
use iscp_engine::data::Dataset;
use iscp_engine::pattern::binarize;
use std::collections::HashMap;

fn image_of(test: &Dataset, s: &SearchRow) -> Result<Image> {
    Image::from_tensor(&super::evaluate::search_canvas(test, s)?)
}

/// A pattern size as a column header: `1%`, `0.5%`.
pub(crate) fn size_header(size: f64) -> String {
    let pct = (size * 100.0 * 1000.0).round() / 1000.0;
    format!("{pct}%")
}

/// The PW under a cell: `PW 0.93`, with the held-out PW when it differs in print.
pub(crate) fn pw_caption(r: &PatternRow) -> String {
    match (r.pw, r.pw_heldout) {
        (Some(pw), Some(h)) if format!("{pw:.2}") != format!("{h:.2}") => {
            format!("PW {pw:.2} ({h:.2})")
        }
        (Some(pw), _) => format!("PW {pw:.2}"),
        _ => String::new(),
    }
}

/// The line under a grid's title: the model's clean accuracy and attack success rate.
pub(crate) fn model_details(m: Option<&ModelRow>) -> String {
    let Some(m) = m else {
        return String::new();
    };
    let mut s = format!(
        "{} model, clean accuracy {:.3}",
        m.architecture, m.clean_accuracy
    );
    if let Some(asr) = m.attack_success_rate {
        s.push_str(&format!(", attack success {asr:.3}"));
        if let Some(t) = m.poison_target {
            s.push_str(&format!(" (target class {t})"));
        }
    }
    s
}

/// A grid's title: `fashion-mnist · natural · α 0.2 · loss · base`.
pub(crate) fn group_title(experiment: &str, setting: &str, first: &PatternRow) -> String {
    format!(
        "{experiment} · {setting} · α {} · {} · {}",
        first.alpha, first.objective, first.variant
    )
}

/// "-alpha<α>-<objective>-<variant>" → one list of pattern rows per class.
type Groups = Vec<(String, Vec<Vec<PatternRow>>)>;

/// The pattern rows of the evaluations that succeeded, grouped by α, objective and variant in
/// first-seen order.
fn pattern_groups(inputs: &Inputs, evaluations: &[String]) -> Result<Groups> {
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
    Ok(groups)
}

/// One setting's pictures being drawn: what they are drawn from and the files so far.
struct Drawing<'a> {
    inputs: &'a Inputs,
    test: &'a Dataset,
    setting: &'a str,
    sizes: &'a [f64],
    search_cache: HashMap<String, SearchRow>,
    written: Files,
}

impl Drawing<'_> {
    /// The search of a unit, read once.
    fn load(&mut self, id: &str) -> Result<SearchRow> {
        if let Some(r) = self.search_cache.get(id) {
            return Ok(r.clone());
        }
        let r = self.inputs.search(id)?;
        self.search_cache.insert(id.to_string(), r.clone());
        Ok(r)
    }

    /// The class's row of best patterns (one per size), writing each pattern's own picture;
    /// None when it has no best pattern.
    fn best_row(
        &mut self,
        tail: &str,
        rows: &[PatternRow],
        label: String,
    ) -> Result<Option<GridRow>> {
        let (setting, sizes, test) = (self.setting, self.sizes, self.test);
        let class = &rows[0];
        let mut best_cells = Vec::new();
        let mut captions = Vec::new();
        let mut best_canvas: Option<Image> = None;
        for &size in sizes {
            let Some(best) = rows.iter().find(|r| r.is_best && r.size == size) else {
                best_cells.push(None);
                captions.push(String::new());
                continue;
            };
            let s = self.load(&best.search_id)?;
            let canvas = image_of(test, &s)?;
            let bin = binarize(&s.mask, best.k as usize);
            let name = format!("class{}{tail}-size{}.png", class.class, fmt_num(size));
            self.written.push((
                format!("images/{setting}/{name}"),
                pattern_png(&canvas, &bin),
            ));
            best_cells.push(Some(Image::pattern(&canvas, &bin)));
            captions.push(pw_caption(best));
            best_canvas.get_or_insert(canvas);
        }
        let Some(canvas) = best_canvas else {
            return Ok(None);
        };
        let mut row = GridRow::new(label, canvas, best_cells);
        row.captions = captions;
        Ok(Some(row))
    }

    /// The class's row of patterns on the white canvas (one per size); None without one.
    fn white_row(&mut self, rows: &[PatternRow], label: String) -> Result<Option<GridRow>> {
        let Some(w) = rows.iter().find(|r| r.canvas_kind == "white") else {
            return Ok(None);
        };
        let s = self.load(&w.search_id)?;
        let canvas = image_of(self.test, &s)?;
        let sizes = self.sizes;
        let at = |size: f64| {
            rows.iter()
                .find(|r| r.search_id == w.search_id && r.size == size)
        };
        let cells = sizes
            .iter()
            .map(|&size| {
                at(size).map(|r| Image::pattern(&canvas, &binarize(&s.mask, r.k as usize)))
            })
            .collect();
        let mut row = GridRow::new(label, canvas, cells);
        row.captions = sizes
            .iter()
            .map(|&s| at(s).map(pw_caption).unwrap_or_default())
            .collect();
        Ok(Some(row))
    }

    /// Draws one group's pictures: each best pattern, then the `-best.png` and `-white.png`
    /// grids (a row per class, in class order).
    fn draw_group(
        &mut self,
        experiment: &str,
        details: &str,
        tail: &str,
        classes: &mut [Vec<PatternRow>],
    ) -> Result<()> {
        classes.sort_by_key(|rows| rows[0].class);
        let mut best_rows = Vec::new();
        let mut white_rows = Vec::new();
        for rows in classes.iter() {
            let class = &rows[0];
            let label = class_label(class.class, &class.class_name);
            if let Some(row) = self.best_row(tail, rows, label.clone())? {
                best_rows.push(row);
            }
            if let Some(row) = self.white_row(rows, label)? {
                white_rows.push(row);
            }
        }
        let setting = self.setting;
        let stem = format!("{setting}{tail}");
        let title = group_title(experiment, setting, &classes[0][0]);
        let headers: Vec<String> = self.sizes.iter().map(|&s| size_header(s)).collect();
        for (name, rows, what) in [
            ("best", &best_rows, "best canvas per class"),
            (
                "white",
                &white_rows,
                "white canvas (PW where it is the best)",
            ),
        ] {
            let text = GridText {
                title: format!("{title} · {what}"),
                details: details.to_string(),
                headers: headers.clone(),
            };
            if let Some(png) = grid_png(&text, rows)? {
                self.written
                    .push((format!("images/{stem}-{name}.png"), png));
            }
        }
        Ok(())
    }
}

/// Draws every picture of one setting from its evaluations that succeeded (`images/<setting>/…`
/// per pattern, `images/<setting>-…-best.png` and `-white.png` grids).
pub fn draw_setting(
    inputs: &Inputs,
    experiment: &str,
    p: &PicturesParams,
    test: &Dataset,
) -> Result<Files> {
    let model = inputs.model(&p.prepare_id)?;
    let details = model_details(model.as_ref());
    let mut groups = pattern_groups(inputs, &p.evaluations)?;
    let mut drawing = Drawing {
        inputs,
        test,
        setting: p.setting.as_str(),
        sizes: &p.sizes[..],
        search_cache: HashMap::new(),
        written: Files::new(),
    };
    for (tail, classes) in &mut groups {
        drawing.draw_group(experiment, &details, tail.as_str(), classes)?;
    }
    Ok(drawing.written)
}
