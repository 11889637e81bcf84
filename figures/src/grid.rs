//! A labelled grid of patterns, like the paper's figures: a title (and a line of details), a
//! header per column, a label per row, and a caption (the PW) under each cell. Columns empty in
//! every row are left out. The PNG carries its labels as text chunks too (`labels`).

use crate::font::{ensure, FAMILY};
use crate::{png_out, Error, Result};
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

/// An RGB image, `width × height × 3` bytes.
#[derive(Debug, Clone, PartialEq)]
pub struct Rgb {
    pub width: usize,
    pub height: usize,
    pub pixels: Vec<u8>,
}

/// One cell: its image and the line under it (e.g. `PW 0.93`; empty for none).
#[derive(Debug, Clone)]
pub struct Cell {
    pub image: Rgb,
    pub caption: String,
}

/// One row: its label (e.g. `3 dress`), a cell per column (None: empty) and whether it is marked
/// (a flagged class, drawn on red).
#[derive(Debug, Clone)]
pub struct Row {
    pub label: String,
    pub cells: Vec<Option<Cell>>,
    pub marked: bool,
}

/// A whole grid.
#[derive(Debug, Clone, Default)]
pub struct Grid {
    pub title: String,
    /// A second line under the title (the model's accuracy, say); may be empty.
    pub details: String,
    pub headers: Vec<String>,
    pub rows: Vec<Row>,
}

const GAP: usize = 6;
const TITLE_PX: f64 = 17.0;
const TEXT_PX: f64 = 13.0;
const LINE: usize = 18;
const BACKGROUND: [u8; 3] = [40, 44, 72];
const MARK: [u8; 3] = [150, 28, 28];
const INK: RGBColor = RGBColor(235, 235, 240);
const SOFT: RGBColor = RGBColor(190, 195, 215);

/// Pixels per image pixel so that an image is at least 96 pixels across.
fn scale_for(img: &Rgb) -> usize {
    96usize.div_ceil(img.width.max(1)).max(1)
}

struct Buffer {
    width: usize,
    height: usize,
    rgb: Vec<u8>,
}

impl Buffer {
    fn fill(&mut self, x0: usize, y0: usize, w: usize, h: usize, rgb: [u8; 3]) {
        for y in y0..(y0 + h).min(self.height) {
            for x in x0..(x0 + w).min(self.width) {
                let at = (y * self.width + x) * 3;
                self.rgb[at..at + 3].copy_from_slice(&rgb);
            }
        }
    }

    fn draw(&mut self, img: &Rgb, x0: usize, y0: usize, scale: usize) {
        for y in 0..img.height * scale {
            for x in 0..img.width * scale {
                let (sx, sy) = (x / scale, y / scale);
                let from = (sy * img.width + sx) * 3;
                let at = ((y0 + y) * self.width + x0 + x) * 3;
                if at + 3 <= self.rgb.len() && from + 3 <= img.pixels.len() {
                    self.rgb[at..at + 3].copy_from_slice(&img.pixels[from..from + 3]);
                }
            }
        }
    }
}

/// Where a grid's parts go, in pixels.
struct Layout {
    /// The columns drawn (those that hold a cell in some row).
    columns: Vec<usize>,
    /// A cell's width and height.
    cw: usize,
    ch: usize,
    label_w: usize,
    title_h: usize,
    header_h: usize,
    row_h: usize,
    width: usize,
    height: usize,
}

impl Layout {
    /// The left edge of the `i`-th drawn column.
    fn col_x(&self, i: usize) -> usize {
        self.label_w + i * (self.cw + GAP)
    }

    /// The top of row `r`.
    fn row_y(&self, r: usize) -> usize {
        self.title_h + self.header_h + r * self.row_h
    }
}

impl Grid {
    /// The columns that hold a cell in some row.
    fn used_columns(&self) -> Vec<usize> {
        let n = self
            .rows
            .iter()
            .map(|r| r.cells.len())
            .max()
            .unwrap_or(0)
            .max(self.headers.len());
        (0..n)
            .filter(|&c| {
                self.rows
                    .iter()
                    .any(|r| r.cells.get(c).is_some_and(|x| x.is_some()))
            })
            .collect()
    }

    /// The headers of the columns drawn.
    pub fn drawn_headers(&self) -> Vec<String> {
        self.used_columns()
            .into_iter()
            .map(|c| self.headers.get(c).cloned().unwrap_or_default())
            .collect()
    }

    /// The width the title band needs and the label column's width (its longest label, measured
    /// with the real font), margins included.
    fn text_widths(&self) -> Result<(usize, usize)> {
        let text = |px: f64| (FAMILY, px).into_font().color(&INK);
        let mut one = [0u8; 3];
        let probe = BitMapBackend::with_buffer(&mut one, (1, 1)).into_drawing_area();
        let measure = |s: &str, bold: bool| {
            let font = if bold {
                (FAMILY, TITLE_PX, FontStyle::Bold).into_font()
            } else {
                (FAMILY, TEXT_PX).into_font()
            };
            probe
                .estimate_text_size(s, &font.color(&INK))
                .map(|(w, _)| w as usize)
                .map_err(|e| Error::draw("a title", e))
        };
        let text_w = measure(&self.title, true)?.max(measure(&self.details, false)?) + 2 * GAP;
        let label_w = {
            self.rows
                .iter()
                .map(|r| {
                    probe
                        .estimate_text_size(&r.label, &text(TEXT_PX))
                        .map(|(w, _)| w)
                })
                .collect::<std::result::Result<Vec<u32>, _>>()
                .map_err(|e| Error::draw("a row label", e))?
                .into_iter()
                .max()
                .unwrap_or(0) as usize
                + 2 * GAP
        };
        Ok((text_w, label_w))
    }

    /// Where the grid's parts go; None when no row has a cell.
    fn layout(&self) -> Result<Option<Layout>> {
        let columns = self.used_columns();
        let Some(first) = self
            .rows
            .iter()
            .flat_map(|r| r.cells.iter().flatten())
            .map(|c| &c.image)
            .next()
        else {
            return Ok(None);
        };
        let s = scale_for(first);
        let (cw, ch) = (first.width * s, first.height * s);
        let (text_w, label_w) = self.text_widths()?;
        let title_h = GAP + LINE + 4 + if self.details.is_empty() { 0 } else { LINE } + GAP;
        let header_h = LINE + 2;
        let has_captions = self
            .rows
            .iter()
            .any(|r| r.cells.iter().flatten().any(|c| !c.caption.is_empty()));
        let row_h = ch + GAP + if has_captions { LINE } else { 0 };
        let width = (label_w + columns.len() * (cw + GAP) + GAP)
            .max(text_w)
            .max(360);
        let height = title_h + header_h + self.rows.len() * row_h + GAP;
        Ok(Some(Layout {
            columns,
            cw,
            ch,
            label_w,
            title_h,
            header_h,
            row_h,
            width,
            height,
        }))
    }

    /// The background, with the marked rows' bands and every drawn cell's image.
    fn paint_cells(&self, l: &Layout) -> Buffer {
        let mut buf = Buffer {
            width: l.width,
            height: l.height,
            rgb: BACKGROUND.repeat(l.width * l.height),
        };
        for (r, row) in self.rows.iter().enumerate() {
            let y = l.row_y(r);
            if row.marked {
                buf.fill(0, y - GAP / 2, l.width, l.row_h, MARK);
            }
            for (i, &c) in l.columns.iter().enumerate() {
                if let Some(Some(cell)) = row.cells.get(c) {
                    buf.draw(&cell.image, l.col_x(i), y, scale_for(&cell.image));
                }
            }
        }
        buf
    }

    /// Draws the title, the details, the column headers, the row labels and the captions onto
    /// the grid's pixels (`l.width × l.height × 3` bytes).
    fn draw_text(&self, l: &Layout, rgb: &mut [u8]) -> Result<()> {
        let area =
            BitMapBackend::with_buffer(rgb, (l.width as u32, l.height as u32)).into_drawing_area();
        let e = |e| Error::draw("grid text", e);
        let bold = (FAMILY, TITLE_PX, FontStyle::Bold).into_font().color(&INK);
        area.draw_text(&self.title, &bold, (GAP as i32, GAP as i32))
            .map_err(e)?;
        if !self.details.is_empty() {
            let soft = (FAMILY, TEXT_PX).into_font().color(&SOFT);
            area.draw_text(&self.details, &soft, (GAP as i32, (GAP + LINE + 4) as i32))
                .map_err(e)?;
        }
        let centred = |px: f64, color: &RGBColor| {
            (FAMILY, px)
                .into_font()
                .color(color)
                .pos(Pos::new(HPos::Center, VPos::Top))
        };
        for (i, &c) in l.columns.iter().enumerate() {
            let h = self.headers.get(c).map_or("", |s| s.as_str());
            let x = (l.col_x(i) + l.cw / 2) as i32;
            area.draw_text(h, &centred(TEXT_PX, &INK), (x, l.title_h as i32))
                .map_err(e)?;
        }
        for (r, row) in self.rows.iter().enumerate() {
            let y = l.row_y(r);
            let mid = (FAMILY, TEXT_PX)
                .into_font()
                .color(&INK)
                .pos(Pos::new(HPos::Left, VPos::Center));
            area.draw_text(&row.label, &mid, (GAP as i32, (y + l.ch / 2) as i32))
                .map_err(e)?;
            for (i, &c) in l.columns.iter().enumerate() {
                let Some(Some(cell)) = row.cells.get(c) else {
                    continue;
                };
                if cell.caption.is_empty() {
                    continue;
                }
                let x = (l.col_x(i) + l.cw / 2) as i32;
                area.draw_text(
                    &cell.caption,
                    &centred(12.0, &SOFT),
                    (x, (y + l.ch + 2) as i32),
                )
                .map_err(e)?;
            }
        }
        area.present().map_err(e)?;
        Ok(())
    }

    /// The PNG's text chunks: the title, the details, and tab-separated lists of the drawn
    /// columns' headers and of the row labels.
    fn text_chunks(&self) -> [(&'static str, String); 4] {
        // Tab-separated lists: a tab or newline inside a label would split it.
        let field = |s: &str| -> String {
            s.chars()
                .map(|c| if c.is_control() { ' ' } else { c })
                .collect()
        };
        [
            ("Title", field(&self.title)),
            ("iscp:details", self.details.clone()),
            (
                "iscp:columns",
                self.drawn_headers()
                    .iter()
                    .map(|h| field(h))
                    .collect::<Vec<_>>()
                    .join("\t"),
            ),
            (
                "iscp:rows",
                self.rows
                    .iter()
                    .map(|r| field(&r.label))
                    .collect::<Vec<_>>()
                    .join("\t"),
            ),
        ]
    }

    /// The grid as PNG bytes; None when no row has a cell.
    pub fn png(&self) -> Result<Option<Vec<u8>>> {
        ensure();
        let Some(layout) = self.layout()? else {
            return Ok(None);
        };
        let mut buf = self.paint_cells(&layout);
        self.draw_text(&layout, &mut buf.rgb)?;
        let texts = self.text_chunks();
        Ok(Some(png_out::encode(
            layout.width as u32,
            layout.height as u32,
            &buf.rgb,
            &texts,
        )))
    }
}

/// The labels a grid's PNG carries: title, details, the drawn columns' headers, the row labels.
pub fn labels(png_bytes: &[u8]) -> Vec<(String, String)> {
    png_out::texts(png_bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn img(v: u8) -> Rgb {
        Rgb {
            width: 8,
            height: 8,
            pixels: vec![v; 8 * 8 * 3],
        }
    }

    fn cell(v: u8, caption: &str) -> Option<Cell> {
        Some(Cell {
            image: img(v),
            caption: caption.into(),
        })
    }

    #[test]
    fn a_tab_or_newline_in_a_label_does_not_split_the_png_text_lists() {
        let g = Grid {
            title: "t".into(),
            details: String::new(),
            headers: vec!["canvas".into()],
            rows: ["0 a\tb", "1 c\nd"]
                .into_iter()
                .map(|l| Row {
                    label: l.into(),
                    cells: vec![cell(100, "")],
                    marked: false,
                })
                .collect(),
        };
        let png = g.png().unwrap().expect("rows with cells draw");
        let rows = labels(&png)
            .into_iter()
            .find(|(k, _)| k == "iscp:rows")
            .map(|(_, v)| v)
            .unwrap();
        assert_eq!(rows.split('\t').collect::<Vec<_>>(), ["0 a b", "1 c d"]);
    }

    #[test]
    fn empty_columns_are_left_out_and_labels_travel_in_the_png() {
        let g = Grid {
            title: "natural · α 0.2".into(),
            details: "clean accuracy 0.91".into(),
            headers: vec!["canvas".into(), "UAP".into(), "1%".into(), "5%".into()],
            rows: vec![
                Row {
                    label: "0 t-shirt/top".into(),
                    cells: vec![cell(200, ""), None, cell(10, "PW 0.93"), None],
                    marked: true,
                },
                Row {
                    label: "3 dress".into(),
                    cells: vec![cell(100, ""), None, cell(20, "PW 0.41"), cell(30, "PW 0.7")],
                    marked: false,
                },
            ],
        };
        assert_eq!(g.drawn_headers(), ["canvas", "1%", "5%"]);
        let png = g.png().unwrap().expect("rows with cells draw");
        let labels = labels(&png);
        let get = |k: &str| {
            labels
                .iter()
                .find(|(key, _)| key == k)
                .map(|(_, v)| v.clone())
        };
        assert_eq!(get("Title").as_deref(), Some("natural · α 0.2"));
        assert_eq!(get("iscp:columns").as_deref(), Some("canvas\t1%\t5%"));
        assert_eq!(get("iscp:rows").as_deref(), Some("0 t-shirt/top\t3 dress"));
        // Text was drawn: the title band is not plain background.
        let d = png::Decoder::new(std::io::Cursor::new(&png));
        let mut r = d.read_info().unwrap();
        let mut px = vec![0; r.output_buffer_size()];
        let info = r.next_frame(&mut px).unwrap();
        let band = &px[..info.width as usize * 3 * 20];
        assert!(
            band.chunks(3).any(|p| p[0] > 200 && p[1] > 200),
            "the title's ink is in the top band"
        );
        assert!(Grid::default().png().unwrap().is_none());
    }
}
