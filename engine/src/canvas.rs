//! Canvas sampling: positive, negative, random and white canvases, ranked as the paper defines them.

use crate::data::Dataset;
use crate::rng::{mix, Rng};
use crate::{EngineError, Result};
use serde::{Deserialize, Serialize};
use tch::{Kind, Tensor};

/// The four canvas strategies of the paper (§3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "kebab-case")]
pub enum CanvasKind {
    /// Target-class test images the model classifies correctly, by target logit, highest first.
    Positive,
    /// Non-target test images the model misclassifies as the target, by target logit, highest first.
    Negative,
    /// Seeded random target-class test images.
    Random,
    /// All ones; its dataset index is −1.
    White,
}

impl CanvasKind {
    pub fn name(self) -> &'static str {
        match self {
            CanvasKind::Positive => "positive",
            CanvasKind::Negative => "negative",
            CanvasKind::Random => "random",
            CanvasKind::White => "white",
        }
    }
}

/// Dataset indices of up to `n` canvases of `kind` for `target`, best rank first (`[-1]` for white).
/// `logits` are the model's clean test-set logits (N×K, CPU).
pub fn rank_canvases(
    kind: CanvasKind,
    logits: &Tensor,
    labels: &[i64],
    target: i64,
    n: usize,
    seed: u64,
) -> Vec<i64> {
    if kind == CanvasKind::White {
        return vec![-1];
    }
    let pred: Vec<i64> = Vec::try_from(logits.argmax(1, false)).unwrap_or_default();
    let score: Vec<f32> =
        Vec::try_from(logits.select(1, target).to_kind(Kind::Float)).unwrap_or_default();
    let mut idx: Vec<i64> = (0..labels.len() as i64)
        .filter(|&i| {
            let (l, p) = (labels[i as usize], pred[i as usize]);
            match kind {
                CanvasKind::Positive => l == target && p == target,
                CanvasKind::Negative => l != target && p == target,
                _ => l == target,
            }
        })
        .collect();
    if kind == CanvasKind::Random {
        Rng::new(mix(&[seed, target as u64])).shuffle(&mut idx);
    } else {
        // Highest target logit first; ties by lower index (stable sort).
        idx.sort_by(|&a, &b| score[b as usize].total_cmp(&score[a as usize]));
    }
    idx.truncate(n);
    idx
}

/// The canvas image (C×H×W) at dataset `index` of `test`, or the white canvas for −1.
pub fn canvas_image(test: &Dataset, index: i64) -> Result<Tensor> {
    let [c, h, w] = test.image_shape();
    if index == -1 {
        return Ok(Tensor::ones([c, h, w], (Kind::Float, tch::Device::Cpu)));
    }
    if index < 0 || index as usize >= test.len() {
        return Err(EngineError::Invalid(format!(
            "canvas index {index} is outside the {} test images",
            test.len()
        )));
    }
    Ok(test.images.get(index))
}
