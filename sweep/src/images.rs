//! PNG pictures of patterns: one per best pattern, and per setting a grid like the paper's figures
//! (a row per class: the canvas, then the pattern at every size), scaled up to be seen.

use crate::{Result, SweepError};
use std::path::Path;

/// One image, C×H×W floats in [0,1].
#[derive(Debug, Clone)]
pub struct Image {
    pub channels: usize,
    pub height: usize,
    pub width: usize,
    pub pixels: Vec<f32>,
}

impl Image {
    /// A C×H×W float tensor as an image.
    pub fn from_tensor(t: &tch::Tensor) -> Result<Image> {
        let s = t.size();
        let [c, h, w] = [s[0], s[1], s[2]].map(|v| v as usize);
        Ok(Image {
            channels: c,
            height: h,
            width: w,
            pixels: Vec::try_from(t.flatten(0, -1))?,
        })
    }

    /// The pattern m ⊙ x_c (zero where the binary mask is 0).
    pub fn pattern(canvas: &Image, mask: &[f32]) -> Image {
        let hw = canvas.height * canvas.width;
        let pixels = canvas
            .pixels
            .iter()
            .enumerate()
            .map(|(i, &v)| v * mask[i % hw])
            .collect();
        Image {
            pixels,
            ..canvas.clone()
        }
    }

    fn rgb(&self, y: usize, x: usize) -> [u8; 3] {
        let hw = self.height * self.width;
        let at = |c: usize| {
            (self.pixels[c * hw + y * self.width + x].clamp(0.0, 1.0) * 255.0).round() as u8
        };
        if self.channels >= 3 {
            [at(0), at(1), at(2)]
        } else {
            [at(0); 3]
        }
    }
}

/// Pixels per image pixel so that an image is at least 96 pixels across.
fn scale_for(img: &Image) -> usize {
    96usize.div_ceil(img.width.max(1)).max(1)
}

const GAP: usize = 4;
const BACKGROUND: [u8; 3] = [40, 44, 72];

struct Picture {
    width: usize,
    height: usize,
    rgb: Vec<u8>,
}

impl Picture {
    fn new(width: usize, height: usize) -> Self {
        let mut rgb = Vec::with_capacity(width * height * 3);
        for _ in 0..width * height {
            rgb.extend_from_slice(&BACKGROUND);
        }
        Picture { width, height, rgb }
    }

    fn draw(&mut self, img: &Image, x0: usize, y0: usize, scale: usize) {
        for y in 0..img.height * scale {
            for x in 0..img.width * scale {
                let at = ((y0 + y) * self.width + x0 + x) * 3;
                self.rgb[at..at + 3].copy_from_slice(&img.rgb(y / scale, x / scale));
            }
        }
    }

    /// The picture as PNG bytes.
    fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        let mut enc = png::Encoder::new(&mut out, self.width as u32, self.height as u32);
        enc.set_color(png::ColorType::Rgb);
        enc.set_depth(png::BitDepth::Eight);
        enc.write_header()
            .and_then(|mut w| w.write_image_data(&self.rgb))
            .expect("an RGB buffer of the header's size encodes into memory");
        out
    }
}

/// Writes PNG bytes to `path`, creating its folder.
pub fn write_png(path: &Path, png: &[u8]) -> Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| SweepError::io(dir, e))?;
    }
    std::fs::write(path, png).map_err(|e| SweepError::io(path, e))
}

/// The canvas and its pattern side by side, as PNG bytes.
pub fn pattern_png(canvas: &Image, mask: &[f32]) -> Vec<u8> {
    let s = scale_for(canvas);
    let (w, h) = (canvas.width * s, canvas.height * s);
    let mut pic = Picture::new(2 * w + 3 * GAP, h + 2 * GAP);
    pic.draw(canvas, GAP, GAP, s);
    pic.draw(&Image::pattern(canvas, mask), 2 * GAP + w, GAP, s);
    pic.encode()
}

/// One row of a grid: its label (class and name), the canvas and one pattern per column (None
/// leaves the cell empty) with the caption under it (its PW); a marked row (a flagged class) is
/// drawn on red.
pub struct GridRow {
    pub label: String,
    pub canvas: Image,
    pub patterns: Vec<Option<Image>>,
    pub captions: Vec<String>,
    pub marked: bool,
}

impl GridRow {
    /// A row with no captions and no mark.
    pub fn new(label: String, canvas: Image, patterns: Vec<Option<Image>>) -> GridRow {
        GridRow {
            label,
            canvas,
            patterns,
            captions: Vec::new(),
            marked: false,
        }
    }
}

/// What a grid says around its cells: a title, a line of details, and a header per pattern
/// column (the canvas column is headed `canvas`).
#[derive(Debug, Clone, Default)]
pub struct GridText {
    pub title: String,
    pub details: String,
    pub headers: Vec<String>,
}

impl Image {
    /// The image as 8-bit RGB (grey images repeated over the three channels).
    pub fn to_rgb(&self) -> iscp_figures::Rgb {
        let mut pixels = Vec::with_capacity(self.height * self.width * 3);
        for y in 0..self.height {
            for x in 0..self.width {
                pixels.extend_from_slice(&self.rgb(y, x));
            }
        }
        iscp_figures::Rgb {
            width: self.width,
            height: self.height,
            pixels,
        }
    }
}

/// The row label of a class: `3 dress`, or `3` when its name is its number.
pub fn class_label(class: i64, name: &str) -> String {
    if name.is_empty() || name == class.to_string() {
        class.to_string()
    } else {
        format!("{class} {name}")
    }
}

/// Rows of (label | canvas | pattern at each column) with their text, as PNG bytes (columns
/// empty in every row left out); None when there are no rows.
pub fn grid_png(text: &GridText, rows: &[GridRow]) -> Result<Option<Vec<u8>>> {
    let mut headers = vec!["canvas".to_string()];
    headers.extend(text.headers.iter().cloned());
    let grid = iscp_figures::Grid {
        title: text.title.clone(),
        details: text.details.clone(),
        headers,
        rows: rows
            .iter()
            .map(|r| {
                let mut cells = vec![Some(iscp_figures::Cell {
                    image: r.canvas.to_rgb(),
                    caption: String::new(),
                })];
                cells.extend(r.patterns.iter().enumerate().map(|(i, p)| {
                    p.as_ref().map(|p| iscp_figures::Cell {
                        image: p.to_rgb(),
                        caption: r.captions.get(i).cloned().unwrap_or_default(),
                    })
                }));
                iscp_figures::Row {
                    label: r.label.clone(),
                    cells,
                    marked: r.marked,
                }
            })
            .collect(),
    };
    Ok(grid.png()?)
}

/// Saves a grid (see `grid_png`). Returns 1, or 0 when there are no rows and nothing is written.
pub fn save_grid(path: &Path, text: &GridText, rows: &[GridRow]) -> Result<usize> {
    match grid_png(text, rows)? {
        Some(png) => write_png(path, &png).map(|_| 1),
        None => Ok(0),
    }
}
