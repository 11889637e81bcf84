//! What poisoning a training set and measuring attack success need of a trigger, whatever its
//! family.

use tch::Tensor;

/// What poisoning and attack success need of a trigger.
pub trait Poisoner {
    /// A copy of `images` (N×C×H×W, values in [0, 1]) with the trigger applied to every image.
    fn apply(&self, images: &Tensor) -> Tensor;
    /// Whether a poisoned training set also carries images under their own labels (`cross`).
    fn has_cross(&self) -> bool {
        false
    }
    /// Those images (WaNet's noise mode), when the trigger has them.
    fn cross(&self, _images: &Tensor, _seed: u64) -> Option<Tensor> {
        None
    }
    /// The flat pixel indices (row-major over H×W) the trigger covers, when it covers few.
    fn pixels(&self) -> Option<Vec<usize>>;
}
