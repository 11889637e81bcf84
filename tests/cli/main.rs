//! Integration tests of the `iscp` binary, a module per area, on data the tests build themselves.

mod baselines;
mod bench_model;
mod chaos;
mod checkpoint;
mod cluster;
mod convert;
mod deploy;
mod derived;
mod disk_full;
mod exit_codes;
mod fuzz_specs;
mod gpu_check;
mod helpers;
mod hostile;
mod non_finite;
mod plan;
mod population;
mod progress;
mod report;
mod resume;
mod scan;
mod slurm;
mod spec_refusal;
mod tensor_data;
mod torchscript;
mod variants;
