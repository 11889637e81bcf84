//! Classifiers the engine searches: built-in architectures trained here, or TorchScript files.
//!
//! A `Model` always takes pixels in [0,1]; any mean/std normalisation is applied inside it.

mod artifact;
mod gap_cnn;
mod inference;
mod resnet;
mod small_cnn;
mod stem;

pub(crate) use artifact::write_synced;
pub use artifact::{
    artifact_bytes, is_artifact, load_artifact, model_from_artifact, save_artifact, sha256_file,
};
pub use gap_cnn::gap_cnn;
pub use inference::{InferenceForm, InferenceModule};
pub use resnet::{resnet18, resnet50, resnet_small};
pub use small_cnn::small_cnn;
pub use stem::{Stem, StemPass};

use crate::{EngineError, Result};
use serde::{Deserialize, Serialize};
use std::path::Path;
use tch::{nn, nn::ModuleT, Device, Kind, Tensor};

/// Per-channel normalisation applied after mixing, inside the model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Normalize {
    pub mean: Vec<f64>,
    pub std: Vec<f64>,
}

/// Built-in architectures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Arch {
    SmallCnn,
    /// Three convolutions without BatchNorm, global average pooling, one linear layer.
    GapCnn,
    /// A small ResNet for 28×28 images: one basic block per stage, widths 16 to 128.
    ResnetSmall,
    Resnet18,
    Resnet50,
    Torchscript,
}

impl Arch {
    pub fn name(self) -> &'static str {
        match self {
            Arch::SmallCnn => "small-cnn",
            Arch::GapCnn => "gap-cnn",
            Arch::ResnetSmall => "resnet-small",
            Arch::Resnet18 => "resnet18",
            Arch::Resnet50 => "resnet50",
            Arch::Torchscript => "torchscript",
        }
    }
}

/// What is stored with a model: enough to rebuild and use it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelMeta {
    pub arch: Arch,
    pub class_names: Vec<String>,
    /// (C, H, W)
    pub input_shape: [i64; 3],
    pub normalize: Option<Normalize>,
    pub test_accuracy: Option<f64>,
}

/// Maps last-block activations to logits.
pub type FeatureHead<'a> = Box<dyn Fn(&Tensor) -> Result<Tensor> + 'a>;

enum Net {
    Builtin {
        vs: nn::VarStore,
        body: Box<dyn ModuleT>,
        head: Box<dyn ModuleT>,
        /// The first layer with hand-computed input gradients (the small CNN only).
        stem: Option<Stem>,
    },
    Script(tch::CModule),
}

/// A classifier in eval mode with frozen parameters (except while the trainer holds it).
pub struct Model {
    net: Net,
    pub meta: ModelMeta,
    device: Device,
    norm: Option<(Tensor, Tensor)>,
    /// TorchScript only: exported (features, head) methods for Grad-CAM.
    feature_methods: Option<(String, String)>,
    /// The arithmetic of its forward and backward passes: float32, or bfloat16 after
    /// `set_precision` (inputs are cast on entry, logits and features back to float32).
    compute: Kind,
    /// TorchScript only: the file, and its frozen inference copy for passes without gradients
    /// (`None` where freezing failed, disagreed with the module, or is switched off).
    script: Option<ScriptInference>,
}

/// A TorchScript model's file and inference copy (see `inference.rs`), or why it has none.
struct ScriptInference {
    path: std::path::PathBuf,
    copy: std::result::Result<InferenceModule, String>,
}

impl std::fmt::Debug for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Model")
            .field("meta", &self.meta)
            .field("device", &self.device)
            .finish()
    }
}

/// A network split at its last convolutional block: logits = head(body(x)).
pub type BodyHead = (Box<dyn ModuleT>, Box<dyn ModuleT>);

/// Builds the layers of a built-in architecture under `root`, with its stem where it has one.
pub fn build_arch(
    root: &nn::Path,
    arch: Arch,
    shape: [i64; 3],
    classes: i64,
) -> Result<(BodyHead, Option<Stem>)> {
    fn boxed(p: (impl ModuleT + 'static, impl ModuleT + 'static)) -> BodyHead {
        (Box::new(p.0), Box::new(p.1))
    }
    match arch {
        Arch::SmallCnn => {
            let (body, head, stem) = small_cnn(root, shape, classes);
            Ok((boxed((body, head)), Some(stem)))
        }
        Arch::GapCnn => Ok((boxed(gap_cnn(root, shape[0], classes)), None)),
        Arch::ResnetSmall => Ok((boxed(resnet_small(root, shape[0], classes)), None)),
        Arch::Resnet18 => Ok((boxed(resnet18(root, shape[0], classes)), None)),
        Arch::Resnet50 => Ok((boxed(resnet50(root, shape[0], classes)), None)),
        Arch::Torchscript => Err(EngineError::Invalid(
            "a TorchScript model is loaded, not built".into(),
        )),
    }
}

/// A TorchScript module's 4-D parameters (its convolutions' weights) in channels-last layout, the
/// same values: libtorch then runs those convolutions, and the layers after them, in NHWC through
/// oneDNN, which on a CPU is about 1.5× faster in float32 and 2.5× in bfloat16 than the NCHW
/// layout a scripted module is saved in (a 3-conv BatchNorm CNN, batches of 1,024 28×28 images).
fn channels_last_params(m: &tch::CModule) -> std::result::Result<(), tch::TchError> {
    for (_, mut p) in m.named_parameters()? {
        if p.dim() == 4 {
            let cl = p.permute([0, 2, 3, 1]).contiguous().permute([0, 3, 1, 2]);
            p.f_set_data(&cl)?;
        }
    }
    Ok(())
}

/// Whether the inference copy gives the scripted module's answers on `probe` (already normalised
/// and cast): the same argmax, logits within 1e-3 (float32) or 0.1 (bfloat16) of the largest.
/// NaN logits compare false, so a NaN anywhere refuses the copy.
fn copy_agrees(
    module: &tch::CModule,
    copy: &InferenceModule,
    probe: &Tensor,
    compute: Kind,
) -> std::result::Result<(), String> {
    let to = |k: Kind| match probe.kind() == k {
        true => probe.shallow_clone(),
        false => probe.to_kind(k),
    };
    let want = module
        .forward_ts(&[to(compute)])
        .map_err(|e| e.to_string())?
        .to_kind(Kind::Float);
    let got = copy.forward(&to(copy.kind()))?.to_kind(Kind::Float);
    if got.size() != want.size() {
        return Err(format!(
            "its copy returns shape {:?} where the module returns {:?}",
            got.size(),
            want.size()
        ));
    }
    let scale = 1.0 + want.abs().max().double_value(&[]);
    let diff = (&got - &want).abs().max().double_value(&[]);
    let tolerance = if compute == Kind::Float { 1e-3 } else { 0.1 };
    let close = diff <= tolerance * scale;
    if !close || !got.argmax(1, false).equal(&want.argmax(1, false)) {
        return Err(format!(
            "its frozen copy disagrees with the module (logits {diff:.3e} apart)"
        ));
    }
    Ok(())
}

fn norm_tensors(meta: &ModelMeta, device: Device) -> Result<Option<(Tensor, Tensor)>> {
    let Some(n) = &meta.normalize else {
        return Ok(None);
    };
    let c = meta.input_shape[0] as usize;
    if n.mean.len() != c || n.std.len() != c || n.std.iter().any(|&s| s <= 0.0) {
        return Err(EngineError::Invalid(format!(
            "normalize needs {c} means and {c} positive stds for {c}-channel input, got {:?} / {:?}",
            n.mean, n.std
        )));
    }
    let t = |v: &[f64]| {
        Tensor::from_slice(v)
            .to_kind(Kind::Float)
            .view([1, c as i64, 1, 1])
            .to_device(device)
    };
    Ok(Some((t(&n.mean), t(&n.std))))
}

impl Model {
    /// A fresh, randomly initialised built-in model (seed libtorch first for reproducibility).
    pub fn new_builtin(meta: ModelMeta, device: Device) -> Result<Model> {
        let vs = nn::VarStore::new(device);
        let ((body, head), stem) = build_arch(
            &vs.root(),
            meta.arch,
            meta.input_shape,
            meta.class_names.len() as i64,
        )?;
        let norm = norm_tensors(&meta, device)?;
        Ok(Model {
            net: Net::Builtin {
                vs,
                body,
                head,
                stem,
            },
            meta,
            device,
            norm,
            feature_methods: None,
            compute: Kind::Float,
            script: None,
        })
    }

    /// Wraps any module built under `vs` (tests use it for hand-made models); its features are
    /// its logits.
    pub fn from_module(vs: nn::VarStore, net: Box<dyn ModuleT>, meta: ModelMeta) -> Result<Model> {
        let head: Box<dyn ModuleT> = Box::new(nn::func_t(|x, _| x.shallow_clone()));
        Self::from_parts(vs, (net, head), meta)
    }

    /// Wraps a body and a head built under `vs`: logits = head(body(x)).
    pub fn from_parts(vs: nn::VarStore, (body, head): BodyHead, meta: ModelMeta) -> Result<Model> {
        let device = vs.device();
        let norm = norm_tensors(&meta, device)?;
        let mut m = Model {
            net: Net::Builtin {
                vs,
                body,
                head,
                stem: None,
            },
            meta,
            device,
            norm,
            feature_methods: None,
            compute: Kind::Float,
            script: None,
        };
        m.freeze();
        Ok(m)
    }

    /// Loads a TorchScript file that maps pixels in [0,1] (after `meta.normalize`) to logits.
    pub fn load_torchscript(path: &Path, meta: ModelMeta, device: Device) -> Result<Model> {
        if !path.exists() {
            return Err(EngineError::bad_file(path, "not found"));
        }
        let mut m = tch::CModule::load_on_device(path, device).map_err(|e| {
            EngineError::bad_file(path, format!("not a loadable TorchScript module: {e}"))
        })?;
        m.set_eval();
        if device == Device::Cpu {
            channels_last_params(&m)
                .map_err(|e| EngineError::bad_file(path, format!("its parameters: {e}")))?;
        }
        let norm = norm_tensors(&meta, device)?;
        let mut model = Model {
            net: Net::Script(m),
            meta,
            device,
            norm,
            feature_methods: None,
            compute: Kind::Float,
            script: Some(ScriptInference {
                path: path.to_path_buf(),
                copy: Err("not made yet".into()),
            }),
        };
        model.freeze();
        let probe = Tensor::zeros(
            [
                1,
                model.meta.input_shape[0],
                model.meta.input_shape[1],
                model.meta.input_shape[2],
            ],
            (Kind::Float, device),
        );
        let out = model.logits(&probe).map_err(|e| {
            EngineError::bad_file(
                path,
                format!(
                    "forward on a {:?} input failed: {e}",
                    model.meta.input_shape
                ),
            )
        })?;
        let k = model.meta.class_names.len() as i64;
        if out.size() != [1, k] {
            return Err(EngineError::bad_file(
                path,
                format!("returns shape {:?}, expected [1, {k}] logits", out.size()),
            ));
        }
        model.rebuild_inference();
        Ok(model)
    }

    pub fn device(&self) -> Device {
        self.device
    }

    /// Converts the parameters for searches and evaluations in `precision` on this device (only
    /// bf16 converts: fp16 is CUDA autocast, decided per pass). Call after anything that needs
    /// float32 logits (clean predictions) and never before training or saving. Returns the
    /// precision it runs in, and why it differs from the one asked for (see `Precision::on`).
    pub fn set_precision(
        &mut self,
        precision: crate::precision::Precision,
    ) -> (crate::precision::Precision, Option<String>) {
        let (p, why) = precision.on(self.device);
        self.set_compute_kind(match p {
            crate::precision::Precision::Bf16 => Kind::BFloat16,
            _ => Kind::Float,
        });
        (p, why)
    }

    /// Converts the parameters to `kind` (float32 or bfloat16) whatever the device supports:
    /// libtorch emulates bf16 on CPUs without its instructions, slower but with the same numbers
    /// (tests use that). Runs choose through `set_precision`.
    pub fn set_compute_kind(&mut self, kind: Kind) {
        if kind != self.compute {
            match &mut self.net {
                Net::Builtin { vs, .. } => vs.set_kind(kind),
                Net::Script(m) => m.to(self.device, kind, false),
            }
            self.compute = kind;
            self.rebuild_inference();
        }
    }

    /// (Re)makes a TorchScript model's inference copy in the current arithmetic, and keeps it only
    /// if it agrees with the scripted module on a probe batch (argmax equal, logits within a
    /// tolerance), so that a module freezing changes the meaning of is run as it was written.
    /// `ISCP_FROZEN_INFERENCE=0` in the environment switches the copy off.
    fn rebuild_inference(&mut self) {
        let Some(path) = self.script.as_ref().map(|s| s.path.clone()) else {
            return;
        };
        let copy = self.inference_copy(&path);
        if let Some(script) = &mut self.script {
            script.copy = copy;
        }
    }

    /// A new inference copy of the TorchScript file `path` this model runs, checked against it.
    fn inference_copy(&self, path: &Path) -> std::result::Result<InferenceModule, String> {
        let Net::Script(module) = &self.net else {
            return Err("not a TorchScript model".into());
        };
        if std::env::var("ISCP_FROZEN_INFERENCE").is_ok_and(|v| v == "0") {
            return Err("switched off by ISCP_FROZEN_INFERENCE=0".into());
        }
        let copy = InferenceModule::load(path, self.device, self.copy_kind())
            .map_err(|e| format!("libtorch could not freeze it: {e}"))?;
        let [c, h, w] = self.meta.input_shape;
        tch::no_grad(|| {
            // Four images of spread-out pixels, normalised as `logits` does (each side casts).
            let x = Tensor::arange(4 * c * h * w, (Kind::Float, self.device))
                .view([4, c, h, w])
                .g_mul_scalar(0.618_034)
                .frac();
            copy_agrees(module, &copy, &self.normalised(&x), self.compute)
        })?;
        Ok(copy)
    }

    /// The arithmetic of the inference copy: the model's, except on a CPU in bf16 without AMX,
    /// where the float32 oneDNN copy (`optimize_for_inference`, float32 only) evaluates faster than
    /// a bf16 one (AMD EPYC Zen 4, avx512_bf16: 124 ms per 1,000 images of the bench model
    /// against ~150 ms for the frozen bf16 copy and 97 ms for eager oneDNN bf16), and its
    /// decisions are float32's. The searches still run in bf16.
    fn copy_kind(&self) -> Kind {
        match (self.device, self.compute) {
            (Device::Cpu, Kind::BFloat16) if !crate::precision::cpu_has_amx_bf16() => Kind::Float,
            (_, k) => k,
        }
    }

    /// How a TorchScript model's passes without gradients run: `Ok(form)` through its inference
    /// copy, `Err(why)` through the scripted module; `None` for a built-in model.
    pub fn inference_form(&self) -> Option<std::result::Result<InferenceForm, String>> {
        let script = self.script.as_ref()?;
        Some(script.copy.as_ref().map(|c| c.form()).map_err(Clone::clone))
    }

    /// The arithmetic its passes run in (`Kind::Float` unless `set_precision` chose bf16).
    pub fn compute_kind(&self) -> Kind {
        self.compute
    }

    /// `x` cast to the model's arithmetic.
    fn entry(&self, x: Tensor) -> Tensor {
        match self.compute {
            Kind::Float => x,
            k => x.to_kind(k),
        }
    }

    /// `y` back in float32.
    fn exit(&self, y: Tensor) -> Tensor {
        match self.compute {
            Kind::Float => y,
            _ => y.to_kind(Kind::Float),
        }
    }

    pub fn num_classes(&self) -> usize {
        self.meta.class_names.len()
    }

    /// Stops gradients flowing into the parameters (searches only differentiate the input).
    pub fn freeze(&mut self) {
        match &mut self.net {
            Net::Builtin { vs, .. } => vs.freeze(),
            Net::Script(m) => {
                if let Ok(params) = m.named_parameters() {
                    for (_, mut p) in params {
                        let _ = p.requires_grad_(false);
                    }
                }
            }
        }
    }

    /// The variable store of a built-in model (for the trainer and saving).
    pub fn var_store_mut(&mut self) -> Option<&mut nn::VarStore> {
        match &mut self.net {
            Net::Builtin { vs, .. } => Some(vs),
            Net::Script(_) => None,
        }
    }

    pub fn var_store(&self) -> Option<&nn::VarStore> {
        match &self.net {
            Net::Builtin { vs, .. } => Some(vs),
            Net::Script(_) => None,
        }
    }

    fn normalised(&self, x: &Tensor) -> Tensor {
        match &self.norm {
            Some((mean, std)) => (x - mean) / std,
            None => x.shallow_clone(),
        }
    }

    /// Logits in eval mode (BatchNorm on running statistics); differentiable w.r.t. `x`.
    pub fn logits(&self, x: &Tensor) -> Result<Tensor> {
        let x = self.normalised(x);
        let copy = self.script.as_ref().and_then(|s| s.copy.as_ref().ok());
        if let Some(copy) = copy.filter(|_| !x.requires_grad()) {
            // In the copy's own arithmetic (float32 for a bf16 model on most CPUs).
            let x = match copy.kind() == x.kind() {
                true => x,
                false => x.to_kind(copy.kind()),
            };
            let y = copy
                .forward(&x)
                .map_err(|e| EngineError::Torch(tch::TchError::Torch(e)))?;
            return Ok(match y.kind() {
                Kind::Float => y,
                _ => y.to_kind(Kind::Float),
            });
        }
        let x = self.entry(x);
        let y = match &self.net {
            Net::Builtin { body, head, .. } => head.forward_t(&body.forward_t(&x, false), false),
            Net::Script(m) => m.forward_ts(&[x])?,
        };
        Ok(self.exit(y))
    }

    /// On the CPU, for a model with a stem (the small CNN): the logits of `x`, with autograd from
    /// the first layer's output on, and the means to get the input gradient by hand (see `Stem`).
    /// `None` elsewhere: use `logits` and autograd.
    pub fn stem_pass(&self, x: &Tensor) -> Option<StemPass<'_>> {
        match &self.net {
            Net::Builtin {
                head,
                stem: Some(stem),
                ..
            } if self.device == Device::Cpu => Some(stem.pass(
                &self.entry(self.normalised(x)),
                head.as_ref(),
                self.norm_std(),
            )),
            _ => None,
        }
    }

    fn norm_std(&self) -> Option<Tensor> {
        self.norm.as_ref().map(|(_, std)| std.shallow_clone())
    }

    /// Logits in training mode (built-in models only).
    pub fn logits_train(&self, x: &Tensor) -> Tensor {
        let x = self.normalised(x);
        match &self.net {
            Net::Builtin { body, head, .. } => head.forward_t(&body.forward_t(&x, true), true),
            Net::Script(m) => m.forward_ts(&[x]).expect("TorchScript forward"),
        }
    }

    /// The last convolutional block's activations and a function from them to logits (eval mode;
    /// built-in models only): what Grad-CAM needs.
    /// A TorchScript model exposes them through two exported methods (see `set_feature_methods`).
    pub fn features(&self, x: &Tensor) -> Result<(Tensor, FeatureHead<'_>)> {
        match (&self.net, &self.feature_methods) {
            (Net::Builtin { body, head, .. }, _) => {
                let a = self.exit(body.forward_t(&self.entry(self.normalised(x)), false));
                let compute = self.compute;
                Ok((
                    a,
                    Box::new(move |a: &Tensor| {
                        Ok(head
                            .forward_t(&a.to_kind(compute), false)
                            .to_kind(Kind::Float))
                    }),
                ))
            }
            (Net::Script(m), Some((features, head))) => {
                let a = self.exit(m.method_ts(features, &[self.entry(self.normalised(x))])?);
                let compute = self.compute;
                Ok((
                    a,
                    Box::new(move |a: &Tensor| {
                        Ok(m.method_ts(head, &[a.to_kind(compute)])?.to_kind(Kind::Float))
                    }),
                ))
            }
            (Net::Script(_), None) => Err(EngineError::Invalid(
                "Grad-CAM on a TorchScript model needs the names of its exported feature and head methods (`gradcam_methods` in the spec)".into(),
            )),
        }
    }

    /// The representation D_R and D_NR are built on, one row per image: for the ResNets and the
    /// GAP CNN the penultimate layer (the last block's activations averaged over space, what the final
    /// linear layer reads); for the small CNN the last convolutional block, flattened (the input
    /// of its two-layer head); for TorchScript the exported `features` method, averaged over
    /// space when it is a feature map.
    pub fn representation(&self, x: &Tensor) -> Result<Tensor> {
        let (a, _) = self.features(x)?;
        let pooled = matches!(
            self.meta.arch,
            Arch::GapCnn | Arch::ResnetSmall | Arch::Resnet18 | Arch::Resnet50 | Arch::Torchscript
        ) && a.dim() == 4;
        Ok(if pooled {
            a.mean_dim([2i64, 3].as_slice(), false, Kind::Float)
        } else {
            a.flatten(1, -1)
        })
    }

    /// Names two methods a TorchScript module exports with `@torch.jit.export`: `features(x)`
    /// returning the last convolutional block's activations (N×K×h×w) from normalised input, and
    /// `head(a)` mapping them to logits. libtorch offers no forward hooks through tch, so Grad-CAM
    /// reaches inside a scripted model this way.
    pub fn set_feature_methods(&mut self, features: &str, head: &str) -> Result<()> {
        let Net::Script(m) = &self.net else {
            return Err(EngineError::Invalid(
                "feature methods are for TorchScript models".into(),
            ));
        };
        let probe = Tensor::zeros(
            [
                1,
                self.meta.input_shape[0],
                self.meta.input_shape[1],
                self.meta.input_shape[2],
            ],
            (Kind::Float, self.device),
        );
        let a = m.method_ts(features, &[probe]).map_err(|e| {
            EngineError::Invalid(format!("the TorchScript method `{features}` failed: {e}"))
        })?;
        if a.dim() != 4 {
            return Err(EngineError::Invalid(format!(
                "`{features}` returns shape {:?}, expected N×K×h×w",
                a.size()
            )));
        }
        let logits = m.method_ts(head, &[a]).map_err(|e| {
            EngineError::Invalid(format!("the TorchScript method `{head}` failed: {e}"))
        })?;
        if logits.size() != [1, self.num_classes() as i64] {
            return Err(EngineError::Invalid(format!(
                "`{head}` returns shape {:?}, expected [1, {}]",
                logits.size(),
                self.num_classes()
            )));
        }
        self.feature_methods = Some((features.to_string(), head.to_string()));
        Ok(())
    }

    /// No-grad logits of a CPU image tensor, `batch` at a time, returned on the CPU; an error
    /// (`NonFinite`) when any logit is NaN or infinite.
    pub fn predict_logits(&self, images: &Tensor, batch: i64) -> Result<Tensor> {
        let n = images.size()[0];
        let mut outs = Vec::new();
        tch::no_grad(|| -> Result<()> {
            let mut start = 0;
            while start < n {
                let len = batch.min(n - start);
                let x = images.narrow(0, start, len).to_device(self.device);
                outs.push(self.logits(&x)?.to_device(Device::Cpu));
                start += len;
            }
            Ok(())
        })?;
        if outs.is_empty() {
            return Ok(Tensor::zeros(
                [0, self.num_classes() as i64],
                (Kind::Float, Device::Cpu),
            ));
        }
        let logits = Tensor::cat(&outs, 0);
        crate::finite::check_finite(&logits, || format!("the logits of {n} images"))?;
        Ok(logits)
    }

    /// Accuracy of predictions on (images, labels).
    pub fn accuracy(&self, images: &Tensor, labels: &Tensor) -> Result<f64> {
        if images.size()[0] == 0 {
            return Ok(0.0);
        }
        let pred = self.predict_logits(images, 512)?.argmax(1, false);
        Ok(pred
            .eq_tensor(labels)
            .to_kind(Kind::Float)
            .mean(Kind::Float)
            .double_value(&[]))
    }
}
