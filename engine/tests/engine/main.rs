//! The engine's tests as one binary (libtorch is linked once), a module per area. Tests that run
//! batched searches hold `common::lanes_serial()`: the lanes change libtorch's thread count (MKL's
//! too, process-wide), so so does any test that compares two runs bit for bit (`amp`).
//! `memory_chunks` stays a binary of its own: it sets a process-wide memory override.

#[path = "../common/mod.rs"]
mod common;

mod adversarial;
mod amp;
mod bad_files;
mod baselines;
mod batched;
mod evaluation;
mod imagefolder;
mod models;
mod recovery;
mod robust_data;
mod stem;
mod update_rules;
mod variants;
