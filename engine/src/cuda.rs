//! The CUDA backend at run time: loads libtorch's CUDA library (the linker drops it from the binary,
//! which uses none of its symbols) and reads a device's free memory from the CUDA runtime.
//!
//! PyTorch splits its backend into `libtorch_cpu.so` and `libtorch_cuda.so`; the CUDA one registers
//! its kernels when it is loaded. With `--as-needed` linking (the default) the binary does not list
//! it, so `tch` sees no GPU even on a GPU host (tch-rs issue 980). Loading it by name, found through
//! `LD_LIBRARY_PATH` (the `lib` folder of the torch the binary runs with), before the first CUDA
//! call fixes that without making the binary need it on CPU hosts.

use crate::{EngineError, Result};
use std::ffi::{c_char, c_int, c_void, CStr};
use std::sync::OnceLock;
use tch::Device;

/// The library that holds libtorch's CUDA kernels.
pub const TORCH_CUDA_LIB: &str = "libtorch_cuda.so";

static BACKEND: OnceLock<std::result::Result<(), String>> = OnceLock::new();

fn dlerror() -> String {
    // SAFETY: dlerror returns a thread-local C string or null.
    let e = unsafe { libc::dlerror() };
    if e.is_null() {
        "unknown dlopen error".into()
    } else {
        // SAFETY: non-null, NUL-terminated, valid until the next dl call on this thread.
        unsafe { CStr::from_ptr(e) }.to_string_lossy().into_owned()
    }
}

fn dlopen_global(name: &str) -> std::result::Result<*mut c_void, String> {
    let c = std::ffi::CString::new(name).map_err(|e| e.to_string())?;
    // SAFETY: dlopen with a valid C string; RTLD_GLOBAL makes the kernels' registrations and the
    // CUDA runtime's symbols visible to the libraries already loaded.
    let h = unsafe { libc::dlopen(c.as_ptr(), libc::RTLD_NOW | libc::RTLD_GLOBAL) };
    if h.is_null() {
        Err(dlerror())
    } else {
        Ok(h)
    }
}

/// Loads `libtorch_cuda.so` once per process (later calls return the first answer).
pub fn load_backend() -> std::result::Result<(), String> {
    BACKEND
        .get_or_init(|| dlopen_global(TORCH_CUDA_LIB).map(|_| ()))
        .clone()
}

/// Makes `device` usable: nothing for the CPU; for `cuda:N`, libtorch's CUDA library loaded and a
/// GPU N visible, or an error that says what is missing.
pub fn ensure(device: Device) -> Result<()> {
    let Device::Cuda(i) = device else {
        return Ok(());
    };
    load_backend().map_err(|e| {
        EngineError::Invalid(format!(
            "cuda:{i} was asked for, but libtorch's CUDA library could not be loaded ({e}); point \
             LD_LIBRARY_PATH at the lib folder of a CUDA build of torch 2.11.0"
        ))
    })?;
    let n = tch::Cuda::device_count();
    if i as i64 >= n {
        return Err(EngineError::Invalid(format!(
            "cuda:{i} was asked for, but libtorch sees {n} CUDA device(s) (CUDA_VISIBLE_DEVICES={})",
            std::env::var("CUDA_VISIBLE_DEVICES").unwrap_or_else(|_| "unset".into())
        )));
    }
    Ok(())
}

type GetDevice = unsafe extern "C" fn(*mut c_int) -> c_int;
type SetDevice = unsafe extern "C" fn(c_int) -> c_int;
type MemGetInfo = unsafe extern "C" fn(*mut usize, *mut usize) -> c_int;

fn symbol<T>(name: &CStr) -> Option<T> {
    // SAFETY: RTLD_DEFAULT searches the libraries loaded globally; the caller names a C function
    // whose signature is T (a function pointer type of the same size as a data pointer).
    let p = unsafe { libc::dlsym(libc::RTLD_DEFAULT, name.as_ptr() as *const c_char) };
    if p.is_null() {
        return None;
    }
    // SAFETY: see above.
    Some(unsafe { std::mem::transmute_copy::<*mut c_void, T>(&p) })
}

/// (free, total) bytes of CUDA device `ordinal` from the CUDA runtime libtorch loaded
/// (`cudaMemGetInfo` on that device; the thread's current device is put back). The ordinal is the
/// one libtorch uses, so it is right under `CUDA_VISIBLE_DEVICES`. None without a CUDA runtime or
/// device. Memory libtorch's caching allocator holds but does not use counts as taken.
pub fn mem_info(ordinal: usize) -> Option<(u64, u64)> {
    load_backend().ok()?;
    let get: GetDevice = symbol(c"cudaGetDevice")?;
    let set: SetDevice = symbol(c"cudaSetDevice")?;
    let info: MemGetInfo = symbol(c"cudaMemGetInfo")?;
    let (mut prev, mut free, mut total) = (0 as c_int, 0usize, 0usize);
    // SAFETY: CUDA runtime calls with valid out-pointers; errors are returned as codes.
    unsafe {
        if get(&mut prev) != 0 {
            return None;
        }
        if prev != ordinal as c_int && set(ordinal as c_int) != 0 {
            return None;
        }
        let rc = info(&mut free, &mut total);
        if prev != ordinal as c_int {
            set(prev);
        }
        (rc == 0).then_some((free as u64, total as u64))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cpu_needs_nothing_and_a_missing_gpu_is_named() {
        assert!(ensure(Device::Cpu).is_ok());
        if tch::Cuda::device_count() == 0 {
            let e = ensure(Device::Cuda(0)).unwrap_err().to_string();
            assert!(e.contains("cuda:0"), "{e}");
            assert_eq!(mem_info(0), None);
        }
    }
}
