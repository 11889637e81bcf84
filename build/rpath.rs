//! Build script shared by the workspace's crates: bakes libtorch's folder into binaries and tests
//! (as RUNPATH) so they run without exported variables; LD_LIBRARY_PATH still overrides it on a GPU host.

fn main() {
    println!("cargo:rerun-if-env-changed=DEP_TCH_LIBTORCH_LIB");
    if let Ok(lib) = std::env::var("DEP_TCH_LIBTORCH_LIB") {
        println!("cargo:rustc-link-arg=-Wl,-rpath,{lib}");
    }
}
