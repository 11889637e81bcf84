//! Generates the tonic client and server from `iscp.proto` with a vendored `protoc`, so no system
//! protoc is needed.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protoc = protoc_bin_vendored::protoc_bin_path()?;
    // SAFETY: build scripts are single-threaded; prost-build reads PROTOC from the environment.
    unsafe { std::env::set_var("PROTOC", protoc) };
    println!("cargo:rerun-if-changed=iscp.proto");
    tonic_prost_build::configure().compile_protos(&["iscp.proto"], &["."])?;
    Ok(())
}
