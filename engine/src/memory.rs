//! How many searches fit on a device at once: its free memory over an estimate of what one image of
//! a search step holds (activations kept for the backward pass, and their gradients).

use crate::model::{Arch, ModelMeta};
use tch::Device;

/// Share of the free memory a batch of searches may take (the rest: the model, the search subset,
/// the allocator's slack, other processes).
pub const USABLE_SHARE: f64 = 0.6;

/// Bytes one image of a search step holds on the device, estimated from the architecture: the
/// activations the backward pass keeps (float32, max-pool indices as int64) plus the transient
/// gradients, per input pixel. Rough (within a factor of about 2); `iscp bench --device cuda`
/// prints the memory actually used so that the factors can be checked.
pub fn bytes_per_image(meta: &ModelMeta) -> u64 {
    let [_, h, w] = meta.input_shape;
    let pixels = (h.max(1) * w.max(1)) as u64;
    // Floats kept per input pixel, counted layer by layer (see docs/method.md's notes on K), times 1.5
    // for the gradients alive during the backward pass.
    let floats_per_pixel: u64 = match meta.arch {
        // stem 16, pool 4 (+ int64 indices 8), ReLU 4, conv 8, ReLU 8, pool 2 (+4), patches 9·C.
        Arch::SmallCnn => 100 + 9 * meta.input_shape[0].max(1) as u64,
        // conv 16 and its ReLU and pool at full size, then 32 at 1/4 and 64 at 1/16.
        Arch::GapCnn => 120 + 9 * meta.input_shape[0].max(1) as u64,
        // 16 channels at full size through the stem and one block (about 9 tensors), then less.
        Arch::ResnetSmall => 400,
        // 64 channels at full size (17 tensors), then 128/256/512 at 1/4, 1/16, 1/64.
        Arch::Resnet18 => 3_000,
        // Bottlenecks with 4× expansion: about 10,900 floats per pixel forwards.
        Arch::Resnet50 | Arch::Torchscript => 16_400,
    };
    floats_per_pixel * pixels * 4
}

/// Overrides the free memory searches plan with, in bytes (to leave room on a shared device).
pub const MEMORY_ENV: &str = "ISCP_SEARCH_MEMORY_BYTES";

/// Free memory of `device` in bytes, when it can be read: `ISCP_SEARCH_MEMORY_BYTES` when set, else
/// `MemAvailable` from /proc/meminfo for the CPU, the CUDA runtime's `cudaMemGetInfo` for a CUDA
/// device (`cuda::mem_info`: the device libtorch calls N, also under `CUDA_VISIBLE_DEVICES`).
pub fn free_bytes(device: Device) -> Option<u64> {
    if let Some(bytes) = std::env::var(MEMORY_ENV)
        .ok()
        .and_then(|v| v.trim().parse().ok())
    {
        return Some(bytes);
    }
    match device {
        Device::Cpu => {
            let info = std::fs::read_to_string("/proc/meminfo").ok()?;
            parse_meminfo(&info)
        }
        Device::Cuda(i) => crate::cuda::mem_info(i).map(|(free, _)| free),
        _ => None,
    }
}

/// `MemAvailable` in bytes from the text of /proc/meminfo.
pub fn parse_meminfo(info: &str) -> Option<u64> {
    let line = info.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// How many searches of minibatch `batch` fit in `free` bytes for this model (at least 1).
pub fn searches_that_fit(meta: &ModelMeta, batch: usize, free: u64) -> usize {
    let per_search = bytes_per_image(meta)
        .saturating_mul(batch.max(1) as u64)
        .max(1);
    ((free as f64 * USABLE_SHARE) as u64 / per_search).max(1) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(arch: Arch, shape: [i64; 3]) -> ModelMeta {
        ModelMeta {
            arch,
            class_names: vec!["a".into(), "b".into()],
            input_shape: shape,
            normalize: None,
            test_accuracy: None,
        }
    }

    #[test]
    fn bigger_models_and_images_fit_fewer_searches() {
        let gib = 1u64 << 30;
        let small = searches_that_fit(&meta(Arch::SmallCnn, [1, 28, 28]), 4, 8 * gib);
        let r18 = searches_that_fit(&meta(Arch::Resnet18, [3, 32, 32]), 4, 8 * gib);
        let r50 = searches_that_fit(&meta(Arch::Resnet50, [3, 32, 32]), 4, 8 * gib);
        assert!(small > r18 && r18 > r50, "{small} {r18} {r50}");
        // ResNet-50 at 32×32: about 67 MB an image, so 4.8 GiB holds about 19 searches of 4.
        assert!((15..=25).contains(&r50), "{r50}");
        let big = searches_that_fit(&meta(Arch::Resnet50, [3, 224, 224]), 4, 8 * gib);
        assert_eq!(big, 1, "never fewer than one");
        assert_eq!(
            searches_that_fit(&meta(Arch::Resnet18, [3, 32, 32]), 8, 8 * gib),
            r18 / 2
        );
    }

    #[test]
    fn meminfo_available_is_read_in_bytes() {
        let info = "MemTotal:       24000000 kB\nMemFree:  100 kB\nMemAvailable:   2048 kB\n";
        assert_eq!(parse_meminfo(info), Some(2048 * 1024));
        assert_eq!(parse_meminfo("MemTotal: 1 kB\n"), None);
        assert!(free_bytes(Device::Cpu).is_some_and(|b| b > 0));
    }
}
