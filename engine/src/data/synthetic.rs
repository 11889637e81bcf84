//! A synthetic dataset with known ground truth: one distinct bright shape per class on dark noise.
//!
//! Deterministic from its seed, small enough for a 2-core CPU, and learnable in seconds, so tests can
//! check what a search recovers (a BadNets trigger, say) against what is known to be there.

use super::{DataSplits, Dataset};
use crate::rng::{mix, Rng};
use crate::{EngineError, Result};
use tch::Tensor;

/// What to generate.
#[derive(Debug, Clone, PartialEq)]
pub struct SyntheticConfig {
    pub classes: usize,
    pub size: usize,
    pub channels: usize,
    pub train: usize,
    pub test: usize,
    pub seed: u64,
}

impl Default for SyntheticConfig {
    fn default() -> Self {
        SyntheticConfig {
            classes: 10,
            size: 32,
            channels: 1,
            train: 3000,
            test: 1000,
            seed: 0,
        }
    }
}

const SHAPE_NAMES: [&str; 10] = [
    "hbar", "vbar", "square", "disk", "plus", "cross", "ring", "triangle", "dots", "corner",
];

/// Whether normalised coordinates (u right, v down, both in [-1,1]) fall inside class `c`'s shape.
fn inside(c: usize, u: f64, v: f64) -> bool {
    let r = (u * u + v * v).sqrt();
    match c {
        0 => v.abs() < 0.18 && u.abs() < 0.7,
        1 => u.abs() < 0.18 && v.abs() < 0.7,
        2 => (0.42..0.65).contains(&u.abs().max(v.abs())),
        3 => r < 0.5,
        4 => (u.abs() < 0.15 && v.abs() < 0.65) || (v.abs() < 0.15 && u.abs() < 0.65),
        5 => (u.abs() - v.abs()).abs() < 0.15 && u.abs() < 0.65,
        6 => (0.42..0.65).contains(&r),
        7 => v > -0.5 && v < 0.5 && u.abs() < (v + 0.5) * 0.6,
        8 => ((u + 0.4).powi(2) + v * v).sqrt() < 0.25 || ((u - 0.4).powi(2) + v * v).sqrt() < 0.25,
        _ => {
            ((-0.6..-0.35).contains(&u) && v.abs() < 0.6)
                || ((0.35..0.6).contains(&v) && u.abs() < 0.6)
        }
    }
}

fn generate(cfg: &SyntheticConfig, n: usize, stream: u64) -> Result<Dataset> {
    let (s, ch) = (cfg.size, cfg.channels);
    let mut rng = Rng::new(mix(&[cfg.seed, stream]));
    let mut pixels = vec![0f32; n * ch * s * s];
    let mut labels = Vec::with_capacity(n);
    for i in 0..n {
        let class = i % cfg.classes;
        labels.push(class as i64);
        let (du, dv) = (rng.unit_f64() * 0.3 - 0.15, rng.unit_f64() * 0.3 - 0.15);
        let scale = 0.75 + rng.unit_f64() * 0.25;
        let level = 0.7 + rng.unit_f64() * 0.3;
        let img = &mut pixels[i * ch * s * s..(i + 1) * ch * s * s];
        for y in 0..s {
            for x in 0..s {
                let u = ((x as f64 + 0.5) / s as f64 * 2.0 - 1.0 - du) / scale;
                let v = ((y as f64 + 0.5) / s as f64 * 2.0 - 1.0 - dv) / scale;
                let on = inside(class, u, v);
                for c in 0..ch {
                    let noise = rng.unit_f64();
                    img[c * s * s + y * s + x] = if on {
                        (level - 0.1 * noise) as f32
                    } else {
                        (0.35 * noise) as f32
                    };
                }
            }
        }
    }
    let images = Tensor::from_slice(&pixels).view([n as i64, ch as i64, s as i64, s as i64]);
    Dataset::new(
        images,
        Tensor::from_slice(&labels),
        SHAPE_NAMES[..cfg.classes]
            .iter()
            .map(|s| s.to_string())
            .collect(),
    )
}

/// Generates the training and test sets (classes balanced, interleaved).
pub fn synthetic(cfg: &SyntheticConfig) -> Result<DataSplits> {
    if !(2..=10).contains(&cfg.classes) {
        return Err(EngineError::Invalid(format!(
            "synthetic data has 2 to 10 classes, not {}",
            cfg.classes
        )));
    }
    if cfg.size < 8 || !(cfg.channels == 1 || cfg.channels == 3) || cfg.train == 0 || cfg.test == 0
    {
        return Err(EngineError::Invalid(
            "synthetic data needs size ≥ 8, 1 or 3 channels, and non-empty train and test sets"
                .into(),
        ));
    }
    Ok(DataSplits {
        train: generate(cfg, cfg.train, 1)?,
        test: generate(cfg, cfg.test, 2)?,
    })
}
