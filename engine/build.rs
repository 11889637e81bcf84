//! The engine's build script: libtorch's folder baked into binaries and tests as RUNPATH (as the
//! workspace's shared `build/rpath.rs` does), and `cxx/inference.cpp` compiled against the same
//! libtorch headers tch's own C++ wrapper uses (torch-sys passes its folder as DEP_TCH_LIBTORCH_LIB).

use std::path::PathBuf;

fn main() {
    println!("cargo:rerun-if-env-changed=DEP_TCH_LIBTORCH_LIB");
    println!("cargo:rerun-if-env-changed=LIBTORCH_CXX11_ABI");
    println!("cargo:rerun-if-changed=cxx/inference.cpp");
    let lib = PathBuf::from(
        std::env::var("DEP_TCH_LIBTORCH_LIB")
            .expect("torch-sys passes libtorch's lib folder as DEP_TCH_LIBTORCH_LIB"),
    );
    println!("cargo:rustc-link-arg=-Wl,-rpath,{}", lib.display());
    let include = lib.parent().map(|p| p.join("include")).unwrap_or_default();
    // PyPI's torch (2.7 and later) is built with the C++11 string ABI; LIBTORCH_CXX11_ABI=0 for
    // an old-ABI libtorch (a mismatch fails at link time, never silently).
    let abi = std::env::var("LIBTORCH_CXX11_ABI").unwrap_or_else(|_| "1".into());
    cc::Build::new()
        .cpp(true)
        .pic(true)
        .warnings(false)
        .include(&include)
        .include(include.join("torch/csrc/api/include"))
        .flag("-std=c++17")
        .flag(format!("-D_GLIBCXX_USE_CXX11_ABI={abi}"))
        .flag("-DGLOG_USE_GLOG_EXPORT")
        .file("cxx/inference.cpp")
        .compile("iscp_inference");
}
