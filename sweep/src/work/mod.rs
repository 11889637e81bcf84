//! What units compute, shared by every worker: deriving D_R / D_NR shards, preparing a model (with
//! checkpoints), searches and their rows, evaluations, baselines, and the units that finish a
//! sweep (pictures, scan, transfer) from the parts their lease carries.

mod baseline_unit;
mod checkpoint;
mod cleanse_unit;
mod compare;
mod data;
mod derive;
mod evaluate;
mod files;
mod guard;
mod inputs;
mod margin_unit;
pub(crate) mod pictures;
mod prepare;
mod search_unit;
mod sweep_scan;
mod transfer;
mod uap_scan_unit;

pub use baseline_unit::run_baseline;
pub use checkpoint::{Checkpoints, Saved};
pub use cleanse_unit::{argmax, run_cleanse, ORIGINAL_EPOCHS};
pub use compare::draw_comparisons;
pub use data::load_data;
pub use derive::{assemble_derived, derive_shard, start_index};
pub use evaluate::{mark_best, run_evaluate};
pub use files::{refuse_output_path, stage_output_file, write_output_file, Files, StagedFile};
pub use guard::guarded;
pub use inputs::Inputs;
pub use margin_unit::{run_margin, P_FLAG};
pub use pictures::draw_setting;
pub use prepare::{artifact_path, load_prepared, prepare, PrepareHooks, Prepared};
pub use search_unit::{search_job, search_row, RunFacts, SearchContext};
pub use sweep_scan::{detect_setting, scan_setting};
pub use transfer::{transfer_batch, transfer_rows, TransferRow};
pub use uap_scan_unit::run_uap_scan;

/// A number for a file name: `.` written as `p` (0.2 → `0p2`).
pub(crate) fn fmt_num(v: f64) -> String {
    format!("{v}").replace('.', "p")
}

/// The name of an evaluation group in file names: `<setting>-alpha<α>-<objective>[-<variant>]`,
/// the variant's `+` written as `-`.
pub(crate) fn group_name(
    setting: &str,
    alpha: f64,
    objective: &str,
    variant: Option<&str>,
) -> String {
    let base = format!("{setting}-alpha{}-{objective}", fmt_num(alpha));
    match variant {
        Some(v) => format!("{base}-{}", v.replace('+', "-")),
        None => base,
    }
}
