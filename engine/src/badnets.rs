//! BadNets poisoning: a 3×3 trigger (checkerboard, white square or a fixed random pattern) stamped
//! bottom-right, all-to-one to a target class.

use crate::data::Dataset;
use crate::model::Model;
use crate::rng::Rng;
use crate::{EngineError, Result};
use serde::{Deserialize, Serialize};
use tch::{Kind, Tensor};

/// The 3×3 trigger patterns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Trigger {
    /// White where row + column is even, black elsewhere.
    #[default]
    Checkerboard,
    /// All white.
    WhiteSquare,
    /// A fixed pattern of black and white cells drawn once from a constant seed.
    Random,
}

impl Trigger {
    pub fn name(self) -> &'static str {
        match self {
            Trigger::Checkerboard => "checkerboard",
            Trigger::WhiteSquare => "white-square",
            Trigger::Random => "random",
        }
    }

    /// The 3×3 cells, row-major, 1 = white.
    pub fn cells(self) -> Vec<f32> {
        let n = (TRIGGER * TRIGGER) as usize;
        match self {
            Trigger::Checkerboard => (0..n as i64)
                .map(|i| ((i / TRIGGER + i % TRIGGER) % 2 == 0) as u8 as f32)
                .collect(),
            Trigger::WhiteSquare => vec![1.0; n],
            Trigger::Random => {
                let mut rng = Rng::new(0x0741_96E5);
                (0..n).map(|_| rng.below(2) as f32).collect()
            }
        }
    }
}

/// Side of the square trigger, in pixels.
pub const TRIGGER: i64 = 3;
/// Gap between the trigger and the bottom and right edges.
pub const MARGIN: i64 = 1;

/// (row, column) of the trigger's top-left pixel in an H×W image.
pub fn trigger_origin(h: i64, w: i64) -> (i64, i64) {
    (h - MARGIN - TRIGGER, w - MARGIN - TRIGGER)
}

/// Whether flat pixel index `i` of an H×W image lies in the trigger square.
pub fn in_trigger(i: usize, h: i64, w: i64) -> bool {
    let (y0, x0) = trigger_origin(h, w);
    let (y, x) = (i as i64 / w, i as i64 % w);
    (y0..y0 + TRIGGER).contains(&y) && (x0..x0 + TRIGGER).contains(&x)
}

/// Returns a copy of `images` (N×C×H×W) with `trigger` stamped on every image.
pub fn stamp(images: &Tensor, trigger: Trigger) -> Tensor {
    let s = images.size();
    let (y0, x0) = trigger_origin(s[2], s[3]);
    let cells = trigger.cells();
    let patch = Tensor::from_slice(&cells)
        .view([1, 1, TRIGGER, TRIGGER])
        .to_device(images.device());
    let out = images.copy();
    out.narrow(2, y0, TRIGGER)
        .narrow(3, x0, TRIGGER)
        .copy_(&patch.expand_as(&out.narrow(2, y0, TRIGGER).narrow(3, x0, TRIGGER)));
    out
}

/// Poisons `round(rate · N)` non-target training images, chosen by seed: trigger stamped, label set to `target`.
/// Returns the poisoned set and how many images were poisoned.
pub fn poison(
    train: &Dataset,
    target: i64,
    rate: f64,
    seed: u64,
    trigger: Trigger,
) -> Result<(Dataset, usize)> {
    if !(0.0..=1.0).contains(&rate) {
        return Err(EngineError::Invalid(format!(
            "poison rate {rate} is outside [0, 1]"
        )));
    }
    if target < 0 || target as usize >= train.num_classes() {
        return Err(EngineError::Invalid(format!(
            "BadNets target {target} is not one of the {} classes",
            train.num_classes()
        )));
    }
    let labels = train.labels_vec();
    let mut candidates: Vec<i64> = (0..labels.len() as i64)
        .filter(|&i| labels[i as usize] != target)
        .collect();
    Rng::new(seed).shuffle(&mut candidates);
    let count = ((rate * train.len() as f64).round() as usize).min(candidates.len());
    let chosen = Tensor::from_slice(&candidates[..count]);
    let images = train.images.copy();
    let stamped = stamp(&images.index_select(0, &chosen), trigger);
    let images = images.index_copy(0, &chosen, &stamped);
    let new_labels = train.labels.index_fill(0, &chosen, target);
    Ok((
        Dataset::new(images, new_labels, train.class_names.clone())?,
        count,
    ))
}

/// Share of non-target test images that the model classifies as `target` once stamped.
pub fn attack_success_rate(
    model: &Model,
    test: &Dataset,
    target: i64,
    trigger: Trigger,
) -> Result<f64> {
    let labels = test.labels_vec();
    let idx: Vec<i64> = (0..labels.len() as i64)
        .filter(|&i| labels[i as usize] != target)
        .collect();
    if idx.is_empty() {
        return Ok(0.0);
    }
    let stamped = stamp(
        &test.images.index_select(0, &Tensor::from_slice(&idx)),
        trigger,
    );
    let pred = model.predict_logits(&stamped, 512)?.argmax(1, false);
    Ok(pred
        .eq(target)
        .to_kind(Kind::Float)
        .mean(Kind::Float)
        .double_value(&[]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn triggers_are_fixed_3x3_patterns() {
        assert_eq!(
            Trigger::Checkerboard.cells(),
            vec![1., 0., 1., 0., 1., 0., 1., 0., 1.]
        );
        assert_eq!(Trigger::WhiteSquare.cells(), vec![1.; 9]);
        let r = Trigger::Random.cells();
        assert_eq!(r, Trigger::Random.cells());
        assert!(r.contains(&0.0) && r.contains(&1.0));
        let img = Tensor::zeros([1, 1, 8, 8], (Kind::Float, tch::Device::Cpu));
        let s = stamp(&img, Trigger::WhiteSquare);
        assert_eq!(s.sum(Kind::Float).double_value(&[]), 9.0);
        assert_eq!(s.double_value(&[0, 0, 4, 4]), 1.0);
        assert_eq!(s.double_value(&[0, 0, 7, 7]), 0.0, "one pixel of margin");
    }
}
