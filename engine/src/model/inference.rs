//! A TorchScript model's inference copy, for the passes that need no gradient (evaluation, clean
//! predictions): the same file loaded again, frozen by libtorch (parameters become constants,
//! BatchNorm folds into the convolution before it) and, on a CPU in float32, rewritten by
//! `optimize_for_inference` so that convolutions, ReLUs and pooling run in oneDNN's blocked layout
//! without converting between layers. On a 3-conv BatchNorm CNN (batches of 1,000 28×28 images,
//! 2 cores) that forward pass takes about half the time of the scripted module's. Gradients still
//! go through the scripted module (`Model::logits` chooses by whether the input needs one).
//!
//! tch has no binding for `torch::jit::freeze`; `cxx/inference.cpp` is the few lines of C++ that
//! call it, compiled by the engine's build script against the same libtorch.

use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::path::Path;
use tch::{Device, Kind, Tensor};

extern "C" {
    fn iscp_infer_load(
        path: *const c_char,
        device: c_int,
        bf16: c_int,
        channels_last: c_int,
        optimize: c_int,
        err: *mut *mut c_char,
    ) -> *mut c_void;
    fn iscp_infer_forward(
        module: *mut c_void,
        input: *const c_void,
        err: *mut *mut c_char,
    ) -> *mut c_void;
    fn iscp_infer_free(module: *mut c_void);
    fn iscp_infer_free_message(message: *mut c_char);
}

/// Takes over a message the C++ side allocated.
fn message(err: *mut c_char) -> String {
    if err.is_null() {
        return "no message".into();
    }
    // SAFETY: a non-null `err` is a NUL-terminated string from copy_message, freed once here.
    let s = unsafe { CStr::from_ptr(err) }
        .to_string_lossy()
        .into_owned();
    unsafe { iscp_infer_free_message(err) };
    s
}

/// How the inference copy was made (for notes and benchmarks).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InferenceForm {
    /// Frozen only (BatchNorm folded, constants in the graph).
    Frozen,
    /// Frozen and rewritten for oneDNN (a CPU in float32).
    Optimized,
}

/// A frozen TorchScript module that runs forward passes without gradients.
pub struct InferenceModule {
    ptr: *mut c_void,
    form: InferenceForm,
    kind: Kind,
}

// SAFETY: the module is owned by this handle alone, so moving it to another thread moves its only
// user. It is not Sync: a module that writes an attribute in `forward` (kept, not folded, by
// freezing) must not run on two threads at once.
unsafe impl Send for InferenceModule {}

impl InferenceModule {
    /// Loads `path` again as an inference copy on `device` in `kind` (float32 or bfloat16):
    /// frozen everywhere, optimised for oneDNN on a CPU in float32 (in bfloat16 the blocked layout
    /// was slower than channels-last on an AMD EPYC; on CUDA only freezing is applied, as it is the
    /// well-trodden path there).
    pub fn load(path: &Path, device: Device, kind: Kind) -> Result<InferenceModule, String> {
        let cpath = CString::new(path.to_string_lossy().as_bytes())
            .map_err(|_| "a path with a NUL byte".to_string())?;
        let dev = match device {
            Device::Cpu => -1,
            Device::Cuda(i) => i as c_int,
            other => return Err(format!("no inference copy on {other:?}")),
        };
        let bf16 = kind == Kind::BFloat16;
        let cpu = device == Device::Cpu;
        let form = if cpu && !bf16 {
            InferenceForm::Optimized
        } else {
            InferenceForm::Frozen
        };
        let mut err: *mut c_char = std::ptr::null_mut();
        // SAFETY: every pointer is valid for the call; the C++ side catches its exceptions.
        let ptr = unsafe {
            iscp_infer_load(
                cpath.as_ptr(),
                dev,
                bf16 as c_int,
                cpu as c_int,
                (form == InferenceForm::Optimized) as c_int,
                &mut err,
            )
        };
        if ptr.is_null() {
            return Err(message(err));
        }
        Ok(InferenceModule { ptr, form, kind })
    }

    pub fn form(&self) -> InferenceForm {
        self.form
    }

    /// The arithmetic it runs in: its input is cast to this.
    pub fn kind(&self) -> Kind {
        self.kind
    }

    /// The module's forward pass on `x` (already normalised and cast), without gradients.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor, String> {
        let mut err: *mut c_char = std::ptr::null_mut();
        // SAFETY: `x.as_ptr()` is a live tensor handle (an `at::Tensor*`) for the call; a non-null
        // result is a new `at::Tensor*` that the returned Tensor owns and frees.
        let out = unsafe { iscp_infer_forward(self.ptr, x.as_ptr() as *const c_void, &mut err) };
        if out.is_null() {
            return Err(message(err));
        }
        Ok(unsafe { Tensor::from_ptr(out as *mut _) })
    }
}

impl Drop for InferenceModule {
    fn drop(&mut self) {
        // SAFETY: `ptr` came from iscp_infer_load and is freed once.
        unsafe { iscp_infer_free(self.ptr) }
    }
}
