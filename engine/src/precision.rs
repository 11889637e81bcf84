//! The arithmetic of the model's passes in searches, evaluations and detectors (`run.precision`),
//! and whether a device has it.

use tch::Device;

/// The arithmetic of searches' and evaluations' forward and backward passes through the model.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "kebab-case")]
pub enum Precision {
    /// float32 throughout.
    #[default]
    Fp32,
    /// On CUDA, autocast: convolutions and matrix products in float16, the mask, its update, the
    /// losses and everything else in float32. The same as `fp32` on a CPU.
    Fp16,
    /// bfloat16 through the model (its parameters converted, its input cast on entry, its logits
    /// cast back to float32); the mask, its update and the losses stay float32. On CPUs with bf16
    /// instructions (AVX-512 BF16, AMX) and on CUDA; elsewhere runs fall back to fp32
    /// (see [`bf16_supported`]).
    Bf16,
}

impl Precision {
    pub fn name(self) -> &'static str {
        match self {
            Precision::Fp32 => "fp32",
            Precision::Fp16 => "fp16",
            Precision::Bf16 => "bf16",
        }
    }

    /// The precision a run on `device` gets when it asks for `self`, and why it differs when it
    /// does: fp16 needs CUDA, bf16 CUDA or a CPU with bf16 instructions.
    pub fn on(self, device: Device) -> (Precision, Option<String>) {
        match self {
            Precision::Fp16 if !device.is_cuda() => (
                Precision::Fp32,
                Some("fp16 autocast needs a CUDA device: running fp32".into()),
            ),
            Precision::Bf16 if !device.is_cuda() && !bf16_supported() => (
                Precision::Fp32,
                Some(
                    "this CPU has no bf16 instructions (avx512_bf16 or amx_bf16): running fp32"
                        .into(),
                ),
            ),
            p => (p, None),
        }
    }
}

/// Whether this CPU has bfloat16 arithmetic that oneDNN uses (x86: AVX-512 BF16 or AMX-BF16; arm64:
/// the BF16 extension), from the kernel's CPU flags. Without it libtorch emulates bf16, slower than
/// fp32.
pub fn bf16_supported() -> bool {
    std::fs::read_to_string("/proc/cpuinfo")
        .map(|s| cpu_flags_have_bf16(&s))
        .unwrap_or(false)
}

/// Whether this CPU has AMX's bf16 tile instructions (Intel Sapphire Rapids and later), where
/// oneDNN's bf16 convolutions are many times its fp32 rate; with avx512_bf16 alone (AMD Zen 4) a
/// bf16 forward pass is no faster than fp32's oneDNN path (see `Model::inference_copy`).
pub fn cpu_has_amx_bf16() -> bool {
    std::fs::read_to_string("/proc/cpuinfo").is_ok_and(|s| cpu_flags_have(&s, &["amx_bf16"]))
}

/// Whether `/proc/cpuinfo` text lists one of `flags` (on x86 `flags` lines, arm64 `Features`).
fn cpu_flags_have(cpuinfo: &str, flags: &[&str]) -> bool {
    cpuinfo
        .lines()
        .filter(|l| l.starts_with("flags") || l.starts_with("Features"))
        .flat_map(|l| l.split_whitespace())
        .any(|f| flags.contains(&f))
}

/// Whether `/proc/cpuinfo` text lists a bf16 flag (`avx512_bf16`, `amx_bf16`, or arm64's `bf16`).
pub fn cpu_flags_have_bf16(cpuinfo: &str) -> bool {
    cpu_flags_have(cpuinfo, &["avx512_bf16", "amx_bf16", "bf16"])
}
