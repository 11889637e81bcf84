//! ImageFolder datasets (one sub-folder per class, as ImageNet's validation set is usually laid
//! out): JPEG or PNG files decoded, the shorter side resized to `resize`, a centred `crop`×`crop`
//! square cut out, RGB in [0,1].

use super::Dataset;
use crate::{EngineError, Result};
use image::imageops::FilterType;
use std::path::{Path, PathBuf};
use tch::{Kind, Tensor};

/// How an ImageFolder is read.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageFolderConfig {
    /// The shorter side is resized to this many pixels (bilinear)...
    pub resize: u32,
    /// ... then a centred square of this side is kept.
    pub crop: u32,
    /// Only the first `classes` class folders in name order (None: all).
    pub classes: Option<usize>,
    /// At most this many images per class, in file-name order (None: all).
    pub per_class: Option<usize>,
}

impl Default for ImageFolderConfig {
    fn default() -> Self {
        ImageFolderConfig {
            resize: 256,
            crop: 224,
            classes: None,
            per_class: None,
        }
    }
}

fn sorted_entries(dir: &Path, want_dirs: bool) -> Result<Vec<PathBuf>> {
    let rd = std::fs::read_dir(dir).map_err(|e| EngineError::io(dir, e))?;
    let mut out: Vec<PathBuf> = rd
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir() == want_dirs)
        .filter(|p| {
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
            if want_dirs {
                return !name.starts_with('.');
            }
            let ext = p.extension().and_then(|x| x.to_str()).unwrap_or("");
            matches!(ext.to_ascii_lowercase().as_str(), "jpg" | "jpeg" | "png")
        })
        .collect();
    out.sort();
    Ok(out)
}

/// Decodes one image to C×H×W floats in [0,1] (RGB), resized and centre-cropped.
pub fn load_image(path: &Path, cfg: &ImageFolderConfig) -> Result<Vec<f32>> {
    let img = image::ImageReader::open(path)
        .map_err(|e| EngineError::io(path, e))?
        .with_guessed_format()
        .map_err(|e| EngineError::io(path, e))?
        .decode()
        .map_err(|e| EngineError::bad_file(path, e.to_string()))?
        .to_rgb8();
    let (w, h) = img.dimensions();
    if w == 0 || h == 0 {
        return Err(EngineError::bad_file(path, "empty image"));
    }
    let scale = cfg.resize as f64 / w.min(h) as f64;
    let (nw, nh) = (
        ((w as f64 * scale).round() as u32).max(cfg.crop),
        ((h as f64 * scale).round() as u32).max(cfg.crop),
    );
    let resized = image::imageops::resize(&img, nw, nh, FilterType::Triangle);
    let (x0, y0) = ((nw - cfg.crop) / 2, (nh - cfg.crop) / 2);
    let c = cfg.crop as usize;
    let mut out = vec![0f32; 3 * c * c];
    for y in 0..c {
        for x in 0..c {
            let p = resized.get_pixel(x0 + x as u32, y0 + y as u32);
            for ch in 0..3 {
                out[ch * c * c + y * c + x] = p[ch] as f32 / 255.0;
            }
        }
    }
    Ok(out)
}

/// A folder name as a class name: control characters (a newline or an escape sequence in a
/// folder name) become U+FFFD, so they cannot reach terminals, logs or PNG text raw.
pub fn printable(name: &str) -> String {
    name.chars()
        .map(|c| if c.is_control() { '\u{fffd}' } else { c })
        .collect()
}

/// Reads `dir/<class>/<image>` files; classes are the folder names in name order.
pub fn load_image_folder(dir: &Path, cfg: &ImageFolderConfig) -> Result<Dataset> {
    if cfg.crop == 0 || cfg.resize < cfg.crop {
        return Err(EngineError::Invalid(format!(
            "resize {} must be at least crop {} (and crop above 0)",
            cfg.resize, cfg.crop
        )));
    }
    let mut classes = sorted_entries(dir, true)?;
    if let Some(n) = cfg.classes {
        if n > classes.len() {
            return Err(EngineError::bad_file(
                dir,
                format!(
                    "{n} classes asked for, {} class folders found",
                    classes.len()
                ),
            ));
        }
        classes.truncate(n);
    }
    if classes.is_empty() {
        return Err(EngineError::bad_file(dir, "no class folders"));
    }
    let mut pixels = Vec::new();
    let mut labels = Vec::new();
    let mut names = Vec::new();
    for (k, class_dir) in classes.iter().enumerate() {
        let mut files = sorted_entries(class_dir, false)?;
        if let Some(n) = cfg.per_class {
            files.truncate(n);
        }
        if files.is_empty() {
            return Err(EngineError::bad_file(class_dir, "no JPEG or PNG images"));
        }
        for f in files {
            pixels.extend(load_image(&f, cfg)?);
            labels.push(k as i64);
        }
        names.push(
            class_dir
                .file_name()
                .map(|n| printable(&n.to_string_lossy()))
                .unwrap_or_default(),
        );
    }
    let c = cfg.crop as i64;
    let images = Tensor::from_slice(&pixels).view([labels.len() as i64, 3, c, c]);
    Dataset::new(
        images,
        Tensor::from_slice(&labels).to_kind(Kind::Int64),
        names,
    )
}
