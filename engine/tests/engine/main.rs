//! The engine's tests as one binary (libtorch is linked once), a module per area. Tests that run
//! batched searches hold `common::lanes_serial()`: the lanes change libtorch's thread count (MKL's
//! too, process-wide), so so does any test that compares two runs bit for bit (`amp`).
//! `memory_chunks` and `adversarial` stay binaries of their own: one sets a process-wide memory
//! override, the other needs torch's generator to itself.

#[path = "../common/mod.rs"]
mod common;

mod amp;
mod bad_files;
mod baselines;
mod batched;
mod cleanse;
mod evaluation;
mod families;
mod imagefolder;
mod inference;
mod models;
mod non_finite;
mod precision;
mod recovery;
mod resume;
mod robust_data;
mod stem;
mod update_rules;
mod variants;
