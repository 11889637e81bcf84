//! BadNets poisoning: a square trigger (checkerboard, white square, a fixed random black/white
//! pattern, three random colours or one solid colour; 2×2 to 5×5; in a corner or anywhere) stamped
//! on images, all-to-one to a target class.

use crate::data::Dataset;
use crate::model::Model;
pub use crate::poisoner::Poisoner;
use crate::rng::{mix, Rng};
use crate::{EngineError, Result};
use serde::{Deserialize, Serialize};
use tch::{Kind, Tensor};

/// What the trigger's cells look like.
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
    /// Each cell one of three colours, colours and cells drawn from the trigger's seed.
    RandomColours,
    /// One colour (each channel in [0.5, 1]) drawn from the trigger's seed.
    Solid,
}

impl Trigger {
    /// Every kind, in the order populations draw them from.
    pub const ALL: [Trigger; 5] = [
        Trigger::Checkerboard,
        Trigger::WhiteSquare,
        Trigger::Random,
        Trigger::RandomColours,
        Trigger::Solid,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Trigger::Checkerboard => "checkerboard",
            Trigger::WhiteSquare => "white-square",
            Trigger::Random => "random",
            Trigger::RandomColours => "random-colours",
            Trigger::Solid => "solid",
        }
    }

    /// The cells of a `size`×`size` trigger with `channels` channels, channel-major then row-major.
    pub fn cells(self, size: i64, channels: i64, seed: u64) -> Vec<f32> {
        let n = (size * size) as usize;
        let grey =
            |v: Vec<f32>| -> Vec<f32> { (0..channels).flat_map(|_| v.iter().copied()).collect() };
        match self {
            Trigger::Checkerboard => grey(
                (0..n as i64)
                    .map(|i| ((i / size + i % size) % 2 == 0) as u8 as f32)
                    .collect(),
            ),
            Trigger::WhiteSquare => vec![1.0; n * channels as usize],
            Trigger::Random => {
                let mut rng = Rng::new(0x0741_96E5);
                grey((0..n).map(|_| rng.below(2) as f32).collect())
            }
            Trigger::RandomColours => {
                let mut rng = Rng::new(mix(&[seed, 0xC0105]));
                // Three colours far apart in brightness, so a grey image sees three levels too.
                let colours: Vec<Vec<f32>> = [0.0, 0.5, 1.0]
                    .iter()
                    .map(|&base| {
                        (0..channels)
                            .map(|_| (base * 0.8 + 0.2 * rng.unit_f64()) as f32)
                            .collect()
                    })
                    .collect();
                let pick: Vec<usize> = (0..n).map(|_| rng.below(3)).collect();
                (0..channels as usize)
                    .flat_map(|c| pick.iter().map(|&p| colours[p][c]).collect::<Vec<_>>())
                    .collect()
            }
            Trigger::Solid => {
                let mut rng = Rng::new(mix(&[seed, 0x5011D]));
                (0..channels)
                    .flat_map(|_| {
                        let v = (0.5 + 0.5 * rng.unit_f64()) as f32;
                        std::iter::repeat_n(v, n)
                    })
                    .collect()
            }
        }
    }
}

/// Where the trigger sits: a corner (one pixel from both edges), or anywhere, drawn from its seed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Position {
    #[default]
    BottomRight,
    BottomLeft,
    TopLeft,
    TopRight,
    Random,
}

impl Position {
    pub const CORNERS: [Position; 4] = [
        Position::BottomRight,
        Position::BottomLeft,
        Position::TopLeft,
        Position::TopRight,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Position::BottomRight => "bottom-right",
            Position::BottomLeft => "bottom-left",
            Position::TopLeft => "top-left",
            Position::TopRight => "top-right",
            Position::Random => "random",
        }
    }
}

/// Side of the default square trigger, in pixels.
pub const TRIGGER: i64 = 3;
/// Gap between a corner trigger and the image's edges.
pub const MARGIN: i64 = 1;
/// The trigger sides populations may draw.
pub const SIZES: std::ops::RangeInclusive<i64> = 2..=5;

/// A trigger before it meets an image: kind, side, position, and the seed of its colours and of
/// a random position.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TriggerSpec {
    pub kind: Trigger,
    pub size: i64,
    pub position: Position,
    pub seed: u64,
}

impl Default for TriggerSpec {
    fn default() -> Self {
        TriggerSpec::of(Trigger::default())
    }
}

impl TriggerSpec {
    /// The classic trigger: 3×3, bottom-right.
    pub fn of(kind: Trigger) -> Self {
        TriggerSpec {
            kind,
            size: TRIGGER,
            position: Position::BottomRight,
            seed: 0,
        }
    }

    /// The trigger placed on C×H×W images.
    pub fn place(&self, shape: [i64; 3]) -> Result<Placed> {
        let [c, h, w] = shape;
        let s = self.size;
        if s < 1 || s + 2 * MARGIN > h.min(w) {
            return Err(EngineError::Invalid(format!(
                "a {s}×{s} trigger does not fit {h}×{w} images with a margin of {MARGIN}"
            )));
        }
        let (y0, x0) = match self.position {
            Position::BottomRight => (h - MARGIN - s, w - MARGIN - s),
            Position::BottomLeft => (h - MARGIN - s, MARGIN),
            Position::TopLeft => (MARGIN, MARGIN),
            Position::TopRight => (MARGIN, w - MARGIN - s),
            Position::Random => {
                let mut rng = Rng::new(mix(&[self.seed, 0x9051]));
                (
                    rng.below((h - s + 1) as usize) as i64,
                    rng.below((w - s + 1) as usize) as i64,
                )
            }
        };
        Ok(Placed {
            size: s,
            y0,
            x0,
            channels: c,
            width: w,
            cells: self.kind.cells(s, c, self.seed),
        })
    }
}

/// A trigger at its place on C×H×W images.
#[derive(Debug, Clone, PartialEq)]
pub struct Placed {
    pub size: i64,
    /// Row and column of its top-left pixel.
    pub y0: i64,
    pub x0: i64,
    pub channels: i64,
    pub width: i64,
    /// channels × size × size values in [0, 1].
    pub cells: Vec<f32>,
}

impl Placed {
    /// Whether flat pixel index `i` (row-major over H×W) lies in the trigger.
    pub fn contains(&self, i: usize) -> bool {
        let (y, x) = (i as i64 / self.width, i as i64 % self.width);
        (self.y0..self.y0 + self.size).contains(&y) && (self.x0..self.x0 + self.size).contains(&x)
    }

    /// The flat pixel indices (row-major over H×W) the trigger covers, ascending.
    pub fn pixels(&self) -> Vec<usize> {
        (self.y0..self.y0 + self.size)
            .flat_map(|y| {
                (self.x0..self.x0 + self.size).map(move |x| (y * self.width + x) as usize)
            })
            .collect()
    }

    /// A copy of `images` (N×C×H×W) with the trigger stamped on every image.
    pub fn stamp(&self, images: &Tensor) -> Tensor {
        let s = self.size;
        let patch = Tensor::from_slice(&self.cells)
            .view([1, self.channels, s, s])
            .to_device(images.device())
            .to_kind(images.kind());
        let out = images.copy();
        let mut region = out.narrow(2, self.y0, s).narrow(3, self.x0, s);
        region.copy_(&patch.expand_as(&region));
        out
    }
}

impl Poisoner for Placed {
    fn apply(&self, images: &Tensor) -> Tensor {
        self.stamp(images)
    }
    fn pixels(&self) -> Option<Vec<usize>> {
        Some(Placed::pixels(self))
    }
}

/// (row, column) of the default trigger's top-left pixel in an H×W image.
pub fn trigger_origin(h: i64, w: i64) -> (i64, i64) {
    (h - MARGIN - TRIGGER, w - MARGIN - TRIGGER)
}

/// Whether flat pixel index `i` of an H×W image lies in the default (3×3, bottom-right) trigger.
pub fn in_trigger(i: usize, h: i64, w: i64) -> bool {
    let (y0, x0) = trigger_origin(h, w);
    let (y, x) = (i as i64 / w, i as i64 % w);
    (y0..y0 + TRIGGER).contains(&y) && (x0..x0 + TRIGGER).contains(&x)
}

/// Returns a copy of `images` (N×C×H×W) with the default 3×3 `trigger` stamped bottom-right.
pub fn stamp(images: &Tensor, trigger: Trigger) -> Tensor {
    let s = images.size();
    TriggerSpec::of(trigger)
        .place([s[1], s[2], s[3]])
        .expect("a 3×3 trigger fits the image")
        .stamp(images)
}

/// Poisons `round(rate · N)` non-target training images, chosen by seed: trigger applied, label set
/// to `target`. A trigger with a noise mode (WaNet) also replaces twice as many further images by
/// their noisy variant, labels kept. Returns the poisoned set and how many images were poisoned.
pub fn poison<P: Poisoner + ?Sized>(
    train: &Dataset,
    target: i64,
    rate: f64,
    seed: u64,
    trigger: &P,
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
    let mut images = train.images.copy();
    let crossed = &candidates[count..(2 * count).min(candidates.len())];
    if trigger.has_cross() && !crossed.is_empty() {
        let crossed = Tensor::from_slice(crossed);
        if let Some(noisy) = trigger.cross(&images.index_select(0, &crossed), seed) {
            images = images.index_copy(0, &crossed, &noisy);
        }
    }
    let stamped = trigger.apply(&images.index_select(0, &chosen));
    let images = images.index_copy(0, &chosen, &stamped);
    let new_labels = train.labels.index_fill(0, &chosen, target);
    Ok((
        Dataset::new(images, new_labels, train.class_names.clone())?,
        count,
    ))
}

/// Share of non-target test images that the model classifies as `target` once stamped.
pub fn attack_success_rate<P: Poisoner + ?Sized>(
    model: &Model,
    test: &Dataset,
    target: i64,
    trigger: &P,
) -> Result<f64> {
    let labels = test.labels_vec();
    let idx: Vec<i64> = (0..labels.len() as i64)
        .filter(|&i| labels[i as usize] != target)
        .collect();
    if idx.is_empty() {
        return Ok(0.0);
    }
    let stamped = trigger.apply(&test.images.index_select(0, &Tensor::from_slice(&idx)));
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
            Trigger::Checkerboard.cells(3, 1, 0),
            vec![1., 0., 1., 0., 1., 0., 1., 0., 1.]
        );
        assert_eq!(Trigger::WhiteSquare.cells(3, 1, 0), vec![1.; 9]);
        let r = Trigger::Random.cells(3, 1, 0);
        assert_eq!(r, Trigger::Random.cells(3, 1, 5));
        assert!(r.contains(&0.0) && r.contains(&1.0));
        let img = Tensor::zeros([1, 1, 8, 8], (Kind::Float, tch::Device::Cpu));
        let s = stamp(&img, Trigger::WhiteSquare);
        assert_eq!(s.sum(Kind::Float).double_value(&[]), 9.0);
        assert_eq!(s.double_value(&[0, 0, 4, 4]), 1.0);
        assert_eq!(s.double_value(&[0, 0, 7, 7]), 0.0, "one pixel of margin");
    }

    #[test]
    fn placed_triggers_cover_their_box_with_their_colours() {
        for (position, (y0, x0)) in [
            (Position::BottomRight, (5, 5)),
            (Position::BottomLeft, (5, 1)),
            (Position::TopLeft, (1, 1)),
            (Position::TopRight, (1, 5)),
        ] {
            let spec = TriggerSpec {
                kind: Trigger::Solid,
                size: 2,
                position,
                seed: 3,
            };
            let p = spec.place([3, 8, 8]).unwrap();
            assert_eq!((p.y0, p.x0), (y0, x0), "{}", position.name());
            let img = Tensor::zeros([2, 3, 8, 8], (Kind::Float, tch::Device::Cpu));
            let s = p.stamp(&img);
            let lit: Vec<usize> = (0..64)
                .filter(|&i| s.double_value(&[1, 0, i / 8, i % 8]) > 0.0)
                .map(|i| i as usize)
                .collect();
            assert_eq!(lit, p.pixels());
            assert!(lit.iter().all(|&i| p.contains(i)));
            assert!(p.cells.iter().all(|&v| (0.5..=1.0).contains(&v)));
        }
        let colours = TriggerSpec {
            kind: Trigger::RandomColours,
            size: 5,
            position: Position::Random,
            seed: 9,
        };
        let p = colours.place([1, 28, 28]).unwrap();
        assert_eq!(p, colours.place([1, 28, 28]).unwrap(), "seeded");
        assert!(p.y0 + 5 <= 28 && p.x0 + 5 <= 28);
        let mut levels: Vec<i32> = p.cells.iter().map(|v| (v * 10.0) as i32).collect();
        levels.sort();
        levels.dedup();
        assert!(levels.len() >= 2, "more than one colour: {levels:?}");
        assert!(TriggerSpec { size: 9, ..colours }.place([1, 8, 8]).is_err());
    }
}
