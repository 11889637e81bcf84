//! Backdoor trigger families beyond square patches (sparse pixels, a blended noise pattern, a
//! sinusoidal signal, a smooth warp), each drawn from a seed, as one `Attack` that poisons.

use crate::badnets::{Placed, TriggerSpec};
pub use crate::poisoner::Poisoner;
use crate::rng::{mix, Rng};
use crate::Result;
use serde::{Deserialize, Serialize};
use tch::{Kind, Tensor};

/// A family of triggers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Family {
    /// A square patch (BadNets): its kind, side and position come from the setting's trigger keys.
    #[default]
    Patch,
    /// 5 to 20 scattered pixels set to black or white.
    Sparse,
    /// A fixed uniform-noise image blended over the whole input at α 0.10–0.25 (Chen et al. 2017).
    Blend,
    /// A horizontal sinusoid of amplitude 0.08–0.15 added to the whole input (SIG, Barni et al. 2019).
    Sig,
    /// A smooth random warp of the whole input (WaNet, Nguyen & Tran 2021), trained with its noise
    /// mode: twice as many images as are poisoned are warped with a jittered field, labels kept.
    Warp,
}

impl Family {
    pub const ALL: [Family; 5] = [
        Family::Patch,
        Family::Sparse,
        Family::Blend,
        Family::Sig,
        Family::Warp,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Family::Patch => "patch",
            Family::Sparse => "sparse",
            Family::Blend => "blend",
            Family::Sig => "sig",
            Family::Warp => "warp",
        }
    }
}

/// A trigger of any family, placed on C×H×W images.
#[derive(Debug, Clone, PartialEq)]
pub enum Attack {
    Patch(Placed),
    /// Flat pixel indices and, per pixel, one value per channel.
    Sparse {
        pixels: Vec<usize>,
        values: Vec<f32>,
        shape: [i64; 3],
    },
    /// A C×H×W pattern and its weight.
    Blend {
        pattern: Vec<f32>,
        alpha: f64,
        shape: [i64; 3],
    },
    /// Amplitude and cycles across the width (3 to 8, not a whole number in general, so that no
    /// width samples only its zeros).
    Sig {
        delta: f64,
        cycles: f64,
        shape: [i64; 3],
    },
    /// The sampling grid (H×W×2, x then y in [-1, 1]) and the grid's height, for the jitter.
    Warp {
        grid: Vec<f32>,
        shape: [i64; 3],
    },
}

/// Side of WaNet's control grid and its warp strength.
const WARP_CONTROL: i64 = 4;
const WARP_STRENGTH: [f64; 2] = [2.5, 3.5];

impl Attack {
    /// `family`'s trigger on `shape` images: a patch from `patch`, the others drawn from `seed`.
    pub fn new(family: Family, patch: &TriggerSpec, seed: u64, shape: [i64; 3]) -> Result<Self> {
        let [c, h, w] = shape;
        let mut rng = Rng::new(mix(&[seed, 0xA77AC, family as u64]));
        Ok(match family {
            Family::Patch => Attack::Patch(patch.place(shape)?),
            Family::Sparse => {
                let count = (5 + rng.below(16)).min((h * w) as usize);
                let mut all: Vec<usize> = (0..(h * w) as usize).collect();
                rng.shuffle(&mut all);
                let mut pixels = all[..count].to_vec();
                pixels.sort_unstable();
                let values = (0..count * c as usize)
                    .map(|_| rng.below(2) as f32)
                    .collect();
                Attack::Sparse {
                    pixels,
                    values,
                    shape,
                }
            }
            Family::Blend => Attack::Blend {
                alpha: 0.10 + 0.15 * rng.unit_f64(),
                pattern: (0..c * h * w).map(|_| rng.unit_f64() as f32).collect(),
                shape,
            },
            Family::Sig => Attack::Sig {
                delta: 0.08 + 0.07 * rng.unit_f64(),
                cycles: 3.0 + 5.0 * rng.unit_f64(),
                shape,
            },
            Family::Warp => {
                let [lo, hi] = WARP_STRENGTH;
                let strength = lo + (hi - lo) * rng.unit_f64();
                Attack::Warp {
                    grid: warp_grid(&mut rng, h, w, strength),
                    shape,
                }
            }
        })
    }

    pub fn family(&self) -> Family {
        match self {
            Attack::Patch(_) => Family::Patch,
            Attack::Sparse { .. } => Family::Sparse,
            Attack::Blend { .. } => Family::Blend,
            Attack::Sig { .. } => Family::Sig,
            Attack::Warp { .. } => Family::Warp,
        }
    }

    fn grid_tensor(grid: &[f32], h: i64, w: i64, like: &Tensor) -> Tensor {
        Tensor::from_slice(grid)
            .view([1, h, w, 2])
            .to_device(like.device())
            .to_kind(like.kind())
    }
}

/// WaNet's warp: a 4×4 field of uniform offsets, scaled to mean magnitude 1, upsampled bicubically
/// to H×W and added, times `strength / H`, to the identity grid (clamped to the image).
fn warp_grid(rng: &mut Rng, h: i64, w: i64, strength: f64) -> Vec<f32> {
    let k = WARP_CONTROL;
    let ins: Vec<f64> = (0..2 * k * k).map(|_| rng.unit_f64() * 2.0 - 1.0).collect();
    let mean_abs = ins.iter().map(|v| v.abs()).sum::<f64>() / ins.len() as f64;
    let field = Tensor::from_slice(&ins)
        .to_kind(Kind::Float)
        .view([1, 2, k, k])
        / mean_abs.max(1e-6);
    let noise = field
        .upsample_bicubic2d([h, w], true, None, None)
        .permute([0, 2, 3, 1]);
    let opts = (Kind::Float, tch::Device::Cpu);
    let xs = Tensor::linspace(-1.0, 1.0, w, opts)
        .view([1, w])
        .expand([h, w], false);
    let ys = Tensor::linspace(-1.0, 1.0, h, opts)
        .view([h, 1])
        .expand([h, w], false);
    let identity = Tensor::stack(&[xs, ys], 2).unsqueeze(0);
    let grid = (identity + noise * (strength / h as f64)).clamp(-1.0, 1.0);
    Vec::<f32>::try_from(grid.flatten(0, -1)).expect("a float grid")
}

impl Poisoner for Attack {
    fn apply(&self, images: &Tensor) -> Tensor {
        match self {
            Attack::Patch(p) => p.stamp(images),
            Attack::Sparse {
                pixels,
                values,
                shape: [c, h, w],
            } => {
                let k = pixels.len() as i64;
                let flat = images.flatten(2, 3).copy();
                let idx: Vec<i64> = pixels.iter().map(|&p| p as i64).collect();
                let idx = Tensor::from_slice(&idx)
                    .to_device(images.device())
                    .view([1, 1, k])
                    .expand([flat.size()[0], *c, k], false);
                let src = Tensor::from_slice(values)
                    .view([1, *c, k])
                    .to_device(images.device())
                    .to_kind(images.kind())
                    .expand([flat.size()[0], *c, k], false);
                flat.scatter(2, &idx, &src).view([-1, *c, *h, *w])
            }
            Attack::Blend {
                pattern,
                alpha,
                shape,
            } => {
                let p = Tensor::from_slice(pattern)
                    .view([1, shape[0], shape[1], shape[2]])
                    .to_device(images.device())
                    .to_kind(images.kind());
                images * (1.0 - alpha) + p * *alpha
            }
            Attack::Sig {
                delta,
                cycles,
                shape: [_, _, w],
            } => {
                let wave: Vec<f32> = (0..*w)
                    .map(|j| {
                        let t = 2.0 * std::f64::consts::PI * j as f64 * cycles / *w as f64;
                        (delta * t.sin()) as f32
                    })
                    .collect();
                let wave = Tensor::from_slice(&wave)
                    .view([1, 1, 1, *w])
                    .to_device(images.device())
                    .to_kind(images.kind());
                (images + wave).clamp(0.0, 1.0)
            }
            Attack::Warp {
                grid,
                shape: [_, h, w],
            } => {
                let n = images.size()[0];
                let g = Attack::grid_tensor(grid, *h, *w, images).expand([n, *h, *w, 2], false);
                images.grid_sampler_2d(&g, 0, 0, true)
            }
        }
    }

    fn has_cross(&self) -> bool {
        self.family() == Family::Warp
    }

    fn cross(&self, images: &Tensor, seed: u64) -> Option<Tensor> {
        let Attack::Warp {
            grid,
            shape: [_, h, w],
        } = self
        else {
            return None;
        };
        let n = images.size()[0];
        let mut rng = Rng::new(mix(&[seed, 0xC055]));
        let jitter: Vec<f32> = (0..n * h * w * 2)
            .map(|_| ((rng.unit_f64() * 2.0 - 1.0) / *h as f64) as f32)
            .collect();
        let jitter = Tensor::from_slice(&jitter)
            .view([n, *h, *w, 2])
            .to_device(images.device())
            .to_kind(images.kind());
        let g = (Attack::grid_tensor(grid, *h, *w, images) + jitter).clamp(-1.0, 1.0);
        Some(images.grid_sampler_2d(&g, 0, 0, true))
    }

    fn pixels(&self) -> Option<Vec<usize>> {
        match self {
            Attack::Patch(p) => Some(p.pixels()),
            Attack::Sparse { pixels, .. } => Some(pixels.clone()),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Device;

    fn images() -> Tensor {
        Tensor::rand([3, 1, 12, 12], (Kind::Float, Device::Cpu))
    }

    fn attack(f: Family, seed: u64) -> Attack {
        Attack::new(f, &TriggerSpec::default(), seed, [1, 12, 12]).unwrap()
    }

    #[test]
    fn every_family_is_seeded_keeps_the_range_and_changes_the_image() {
        let x = images();
        for f in Family::ALL {
            let a = attack(f, 7);
            assert_eq!(a, attack(f, 7), "{}", f.name());
            assert_eq!(a.family(), f);
            let y = a.apply(&x);
            assert_eq!(y.size(), x.size());
            assert!(y.min().double_value(&[]) >= 0.0 && y.max().double_value(&[]) <= 1.0);
            let moved = (&y - &x).abs().max().double_value(&[]);
            assert!(moved > 0.01, "{}: {moved}", f.name());
        }
        assert_ne!(attack(Family::Blend, 7), attack(Family::Blend, 8));
    }

    #[test]
    fn sparse_sets_its_pixels_only() {
        let x = images();
        let a = attack(Family::Sparse, 3);
        let px = a.pixels().unwrap();
        assert!((5..=20).contains(&px.len()), "{}", px.len());
        let changed = (a.apply(&x) - &x).abs().flatten(0, -1).gt(0.0);
        let changed = Vec::<bool>::try_from(changed).unwrap();
        for (i, c) in changed.iter().enumerate() {
            if *c {
                assert!(px.contains(&(i % 144)), "pixel {i} changed");
            }
        }
        assert_eq!(attack(Family::Blend, 3).pixels(), None);
    }

    #[test]
    fn warp_moves_pixels_a_little_and_its_noise_mode_differs() {
        let x = images();
        let a = attack(Family::Warp, 5);
        let y = a.apply(&x);
        let diff = (&y - &x).abs().mean(Kind::Float).double_value(&[]);
        assert!(diff > 0.01 && diff < 0.4, "mean change {diff}");
        let z = a.cross(&x, 1).unwrap();
        assert!((&z - &y).abs().max().double_value(&[]) > 1e-3);
        assert!(attack(Family::Sig, 5).cross(&x, 1).is_none());
    }
}
