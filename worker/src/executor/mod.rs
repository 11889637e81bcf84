//! The compute side of a device slot: on its own thread, it keeps the specs, datasets and model of
//! the last units it ran (each cache keyed by what it holds, so units of two sweeps never mix), and
//! runs leased units with the engine (searches that share a model as one batched optimisation),
//! turning each into Parquet parts or a typed failure. The caches are in `cache`, each kind of unit
//! in its own file.

use iscp_engine::data::DataSplits;
use iscp_proto::v1::{FailureReason, LeasedUnit};
use iscp_proto::Table;
use iscp_proto::UnitKey;
use iscp_sweep::spec::SettingSpec;
use iscp_sweep::tables;
use iscp_sweep::units::{id_of, unit_id, PrepareParams, Received, UnitKind, UnitParams};
use iscp_sweep::work::guarded;
use iscp_sweep::SweepError;
use std::collections::VecDeque;
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::Arc;
use tch::Device;

mod cache;
mod evaluate;
mod finishing;
mod prepare;
mod search;

use cache::{ModelCtx, SpecCtx};

/// What a unit produced: its parts, the files a pictures unit drew, the model a prepare unit made
/// ready (its sha256), and the artifact to upload when it trained one.
#[derive(Debug, Default)]
pub struct Output {
    pub parts: Vec<(String, Vec<u8>)>,
    pub files: iscp_sweep::work::Files,
    pub model_sha256: Option<String>,
    pub artifact: Option<(String, PathBuf)>,
}

impl Output {
    /// Rows of one table.
    fn part(part: (String, Vec<u8>)) -> Self {
        Output {
            parts: vec![part],
            ..Output::default()
        }
    }
}

/// A unit's error and why it happened (which decides whether another attempt may succeed).
#[derive(Debug)]
pub struct Failure {
    pub error: String,
    pub reason: FailureReason,
}

impl Failure {
    pub fn new(reason: FailureReason, error: impl ToString) -> Self {
        Failure {
            error: error.to_string(),
            reason,
        }
    }

    /// The error with what was being done, keeping its reason.
    fn context(what: &str, e: SweepError) -> Self {
        Failure::new(e.reason(), format!("{what}: {e}"))
    }

    pub fn retryable(&self) -> bool {
        self.reason.retryable()
    }
}

/// How failures name a setting's model: its setting and the start of its hash.
fn model_label(setting: &SettingSpec, sha: &str) -> String {
    format!(
        "the model of setting `{}` (sha256 {})",
        setting.name,
        &sha[..sha.len().min(12)]
    )
}

impl From<SweepError> for Failure {
    fn from(e: SweepError) -> Self {
        Failure::new(e.reason(), e)
    }
}

impl From<iscp_engine::EngineError> for Failure {
    fn from(e: iscp_engine::EngineError) -> Self {
        SweepError::from(e).into()
    }
}

pub type Outcome = Result<Output, Failure>;

/// A training checkpoint written on this worker, to be uploaded so another attempt can resume it.
#[derive(Debug, Clone)]
pub struct CheckpointReport {
    pub key: UnitKey,
    /// Epochs finished.
    pub epochs_done: usize,
    pub model: PathBuf,
    pub stats_json: String,
}

pub use crate::shared::ProgressMap;

pub struct Executor {
    pub device: Device,
    pub device_name: String,
    pub worker_name: String,
    /// Model artifacts and training checkpoints.
    pub artifacts: PathBuf,
    pub progress: ProgressMap,
    /// Where notes go (logged when None).
    pub notes: Option<std::sync::mpsc::Sender<String>>,
    /// Where training checkpoints are announced (uploaded by the slot's async side).
    pub checkpoints: Option<tokio::sync::mpsc::UnboundedSender<CheckpointReport>>,
    /// The worker was given a thread count: the spec's `run.threads` does not override it.
    pub threads_fixed: bool,
    /// Where finishing units read the parts of the units they depend on (None: only what the
    /// lease carries, as in tests that run units by hand).
    pub parts: Option<crate::parts::PartSource>,
    /// Where a spec's text comes from, by the hash a lease names (FetchSpec).
    pub specs: Option<crate::specs::SpecSource>,
    /// Parsed specs by hash, most recently used first, at most `SPECS_KEPT`.
    spec_cache: VecDeque<(String, Rc<SpecCtx>)>,
    /// Most recently used first, at most `DATASETS_KEPT`.
    datasets: VecDeque<(String, Rc<DataSplits>)>,
    model: Option<ModelCtx>,
    /// The precisions asked for that this device lacks, already said once.
    precision_said: std::collections::HashSet<iscp_engine::amp::Precision>,
}

/// The same failure for each of `n` units (a whole lease that could not run).
pub fn all_failed(n: usize, reason: FailureReason, error: impl ToString) -> Vec<Outcome> {
    let error = error.to_string();
    (0..n).map(|_| Err(Failure::new(reason, &error))).collect()
}

pub(crate) fn encode(
    table: Table,
    batch: &arrow_array::RecordBatch,
) -> Result<(String, Vec<u8>), Failure> {
    tables::encode_parquet(batch)
        .map(|b| (table.name().to_string(), b))
        .map_err(|e| Failure::new(FailureReason::Internal, format!("encoding `{table}`: {e}")))
}

impl Executor {
    pub fn new(device: Device, device_name: &str, worker_name: &str, artifacts: PathBuf) -> Self {
        Executor {
            device,
            device_name: device_name.to_string(),
            worker_name: worker_name.to_string(),
            artifacts,
            progress: Arc::default(),
            notes: None,
            checkpoints: None,
            threads_fixed: false,
            parts: None,
            spec_cache: VecDeque::new(),
            specs: None,
            datasets: VecDeque::new(),
            model: None,
            precision_said: Default::default(),
        }
    }

    /// Runs leased units that share a spec and model; one outcome per unit, in order.
    pub fn run(&mut self, units: &[LeasedUnit]) -> Vec<Outcome> {
        let Some(first) = units.first() else {
            return vec![];
        };
        if first.kind() == UnitKind::Noop {
            return units.iter().map(|_| Ok(Output::default())).collect();
        }
        let ctx = match guarded(|| self.spec(first)) {
            Ok(ctx) => ctx,
            Err(e) => {
                let f = Failure::context("loading its spec and data", e);
                return all_failed(units.len(), f.reason, f.error);
            }
        };
        if let (Some(t), false) = (ctx.spec.spec.run.threads, self.threads_fixed) {
            tch::set_num_threads(t as i32);
        }
        let data = ctx.data.clone();
        match first.kind() {
            UnitKind::DeriveData => units.iter().map(|u| self.derive(&ctx, &data, u)).collect(),
            UnitKind::PrepareModel => units.iter().map(|u| self.prepare(&ctx, &data, u)).collect(),
            UnitKind::Search => self.searches(&ctx, &data, units),
            UnitKind::Evaluate
            | UnitKind::Baseline
            | UnitKind::Cleanse
            | UnitKind::MaxMargin
            | UnitKind::UapScan => units.iter().map(|u| self.one(&ctx, &data, u)).collect(),
            UnitKind::Pictures | UnitKind::Scan | UnitKind::Transfer | UnitKind::Audit => units
                .iter()
                .map(|u| self.finishing(&ctx, &data, u))
                .collect(),
            k => units
                .iter()
                .map(|_| {
                    Err(Failure::new(
                        FailureReason::VersionSkew,
                        format!(
                            "unknown unit kind `{k}`: this worker is older than the coordinator"
                        ),
                    ))
                })
                .collect(),
        }
    }

    /// The unit as its lease describes it: its parameters (checked against its id: they are what
    /// the id hashes) and its setting, taken from the spec by name. Nothing is re-planned.
    fn resolve<'a>(
        ctx: &'a SpecCtx,
        u: &LeasedUnit,
    ) -> Result<(&'a SettingSpec, Received), Failure> {
        let skew = |what: String| {
            Failure::new(
                FailureReason::VersionSkew,
                format!(
                    "unit {} ({}): {what} (this worker: iscp {}, protocol {})",
                    u.unit_id,
                    u.kind(),
                    env!("CARGO_PKG_VERSION"),
                    iscp_proto::PROTOCOL_VERSION
                ),
            )
        };
        let kind = u.kind();
        if matches!(kind, UnitKind::Unspecified | UnitKind::Noop) {
            return Err(skew("a kind this worker does not know".into()));
        }
        if u.params_json.is_empty() {
            return Err(skew(
                "the lease carries no parameters (a coordinator or ledger from before version 2: \
                 submit the spec again)"
                    .into(),
            ));
        }
        let computed = id_of(&u.params_json);
        if computed != u.unit_id {
            return Err(skew(format!(
                "its parameters hash to {computed}, not to the id {} the coordinator planned",
                u.unit_id
            )));
        }
        let received = Received::decode(kind, &u.params_json).map_err(skew)?;
        if let (Received::Audit(_), Some(first)) = (&received, ctx.settings.first()) {
            // The audit reads the whole population and names no setting; it uses none.
            return Ok((first, received));
        }
        let name = received.setting();
        let Some(setting) = ctx.settings.iter().find(|s| s.name == name) else {
            return Err(Failure::new(
                FailureReason::InvalidInput,
                format!("unit {}: no setting `{name}` in its spec", u.unit_id),
            ));
        };
        if kind == UnitKind::PrepareModel {
            // The setting found by name is the one planned only if it gives the same id.
            let s = &ctx.spec.spec;
            let params: UnitParams = UnitParams::Prepare(PrepareParams {
                setting: Box::new(setting.clone()),
                data: serde_json::to_value(&s.data).unwrap_or_default(),
                seed: s.seed,
            });
            let here = unit_id(kind, &params);
            if here != u.unit_id {
                return Err(skew(format!(
                    "the spec's setting `{name}` plans as {here} on this worker"
                )));
            }
        }
        Ok((setting, received))
    }

    fn note(&self, line: String) {
        match &self.notes {
            Some(tx) => {
                let _ = tx.send(line);
            }
            None => tracing::info!("{line}"),
        }
    }

    fn set_progress(progress: &ProgressMap, keys: &[UnitKey], step: usize, total: usize) {
        let mut p = progress.lock().unwrap_or_else(|e| e.into_inner());
        for k in keys {
            p.insert(k.clone(), (step as u64, total as u64));
        }
    }
}
