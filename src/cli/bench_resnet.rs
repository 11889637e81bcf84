//! `iscp bench --resnets`: batched searches per minute for the CIFAR ResNet-18 and ResNet-50 at
//! 32×32 (untrained weights, random images: the cost does not depend on them), and the GPU memory
//! memory they take beside `memory.rs`'s estimate.

use iscp_engine::model::{Arch, Model, ModelMeta};
use iscp_engine::search::{search_batch, SearchConfig, SearchJob};
use std::time::Instant;
use tch::{Device, Kind, Tensor};

/// Steps of one paper-default search on CIFAR-10: T = 5 epochs over |D_n| = 1,800 in minibatches of 4.
pub const STEPS_PER_SEARCH: usize = 5 * 1800 / 4;

/// Device memory in use on `device` in MiB, from the CUDA runtime (total − free; it includes what
/// libtorch's caching allocator holds, so after a batch it is the batch's peak plus the model).
fn gpu_memory_used_mib(device: Device) -> Option<u64> {
    let Device::Cuda(i) = device else {
        return None;
    };
    iscp_engine::cuda::mem_info(i).map(|(free, total)| (total - free) >> 20)
}

/// Times `steps` steps of each K of `ks` batched searches (B = 4) on each CIFAR ResNet and prints
/// searches per minute, extrapolated to full searches of `STEPS_PER_SEARCH` steps, with the device
/// memory the batch took (on CUDA) and `memory::bytes_per_image`'s estimate of it.
pub fn resnet_figures(device: Device, ks: &[usize], steps: usize) -> anyhow::Result<()> {
    let batch = 4;
    let pool = (steps * batch) as i64;
    tch::manual_seed(0);
    let images = Tensor::rand([pool, 3, 32, 32], (Kind::Float, Device::Cpu)).to_device(device);
    for arch in [Arch::Resnet18, Arch::Resnet50] {
        let meta = ModelMeta {
            arch,
            class_names: (0..10).map(|c| c.to_string()).collect(),
            input_shape: [3, 32, 32],
            normalize: None,
            test_accuracy: None,
        };
        let model = Model::new_builtin(meta.clone(), device)?;
        let per_image = iscp_engine::memory::bytes_per_image(&meta);
        // Ascending K: the caching allocator only grows, so each reading is that K's peak.
        let mut ks = ks.to_vec();
        ks.sort_unstable();
        let base = gpu_memory_used_mib(device);
        for &k in &ks {
            let jobs: Vec<SearchJob> = (0..k)
                .map(|j| SearchJob {
                    target: (j % 10) as i64,
                    canvas: Tensor::rand([3, 32, 32], (Kind::Float, Device::Cpu)),
                    pool: (0..pool).collect(),
                    cfg: SearchConfig {
                        epochs: 1,
                        batch,
                        seed: j as u64,
                        ..Default::default()
                    },
                })
                .collect();
            // One warm-up step (cuDNN picks its algorithms), then the timed steps.
            let warm = SearchJob {
                target: 0,
                canvas: jobs[0].canvas.shallow_clone(),
                pool: (0..batch as i64).collect(),
                cfg: jobs[0].cfg.clone(),
            };
            search_batch(&model, &images, std::slice::from_ref(&warm), &mut |_, _| {});
            let t = Instant::now();
            let mut ran_with = k;
            for r in search_batch(&model, &images, &jobs, &mut |_, _| {}) {
                ran_with = ran_with.min(r?.ran_with);
            }
            let per_step = t.elapsed().as_secs_f64() / steps as f64;
            let per_minute = 60.0 / (per_step * STEPS_PER_SEARCH as f64) * k as f64;
            let estimate = (per_image * (ran_with * batch) as u64) >> 20;
            let memory = match (gpu_memory_used_mib(device), base) {
                (Some(m), Some(b)) => format!(
                    ", device memory taken {} MiB (estimate {estimate} MiB)",
                    m.saturating_sub(b)
                ),
                _ => format!(", estimated memory {estimate} MiB"),
            };
            let split = match ran_with < k {
                true => format!(" (ran {ran_with} at a time)"),
                false => String::new(),
            };
            println!(
                "{}: K={k} searches batched{split}, {:.1} ms a step of {} images: {per_minute:.2} \
             searches/min (T=5, B=4, |D_n|=1,800){memory}",
                arch.name(),
                per_step * 1e3,
                k * batch
            );
        }
    }
    Ok(())
}
