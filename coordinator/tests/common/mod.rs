//! What the scheduler tests share: a scheduler on a temporary folder with short timeouts, a clock
//! moved by hand (`now`, `advance`: no test sleeps past a lease or a backoff), hand-made units,
//! lease claims and a model part.
#![allow(dead_code)]

use arrow_array::builder::{Float32Builder, ListBuilder};
use arrow_array::{ArrayRef, BooleanArray, Float64Array, Int64Array, RecordBatch, StringArray};
use arrow_schema::DataType;
use iscp_coordinator::scheduler::{
    LeaseClaim, Leased, NewUnit, Now, Scheduler, SchedulerConfig, UnitKey,
};
use iscp_proto::v1::FailureReason;
use iscp_sweep::part_check::table_schema;
use iscp_sweep::tables::{encode_parquet, models_batch, ModelRow};
use std::cell::Cell;
use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

thread_local! {
    /// This test's clock (each test runs on a thread of its own).
    static CLOCK: Cell<Option<Now>> = const { Cell::new(None) };
}

/// The test's time: the system's at its first call, then moved only by `advance`.
pub fn now() -> Now {
    CLOCK.with(|c| {
        let t = c.get().unwrap_or_else(Now::system);
        c.set(Some(t));
        t
    })
}

/// Moves the test's clock on by `d`.
pub fn advance(d: Duration) {
    let t = now().after(d);
    CLOCK.with(|c| c.set(Some(t)));
}

pub fn config(dir: &std::path::Path) -> SchedulerConfig {
    let mut c = SchedulerConfig::new(dir.join("state"), dir.join("results"));
    c.lease_ttl = Duration::from_millis(100);
    c.backoff_base = Duration::from_millis(1);
    c.max_attempts = 2;
    c
}

pub fn open(dir: &std::path::Path) -> Scheduler {
    open_config(config(dir))
}

/// A scheduler with the configuration `cfg`, opened at the test's time.
pub fn open_config(cfg: SchedulerConfig) -> Scheduler {
    let (tx, _) = tokio::sync::broadcast::channel(16);
    Scheduler::open(cfg, tx, now()).unwrap()
}

/// Submits `units` as sweep `sweep` (spec sha `sha`, file `f`, no text) at the test's time.
pub fn submit(core: &mut Scheduler, sweep: &str, units: Vec<NewUnit>) {
    core.submit(sweep, "sha", "f", "", units, now()).unwrap();
}

/// `open`, with `units` submitted as sweep `s`.
pub fn open_with(dir: &Path, units: Vec<NewUnit>) -> Scheduler {
    let mut core = open(dir);
    submit(&mut core, "s", units);
    core
}

/// The one unit `worker` leases now, holding no model.
pub fn lease_one(core: &mut Scheduler, worker: &str) -> Leased {
    let mut l = core.lease(worker, 1, &HashSet::new(), now()).unwrap();
    assert_eq!(l.len(), 1, "one unit to lease");
    l.remove(0)
}

/// The claim of `worker` on its lease `l`.
pub fn claim_of<'a>(worker: &'a str, l: &'a Leased) -> LeaseClaim<'a> {
    claim(worker, &l.lease_id, l.attempt)
}

/// The key of the unit `l` leased.
pub fn key_of(l: &Leased) -> UnitKey {
    UnitKey::new(l.sweep.as_str(), l.unit_id.as_str())
}

/// Completes `worker`'s lease `l` with a `models` part of its unit naming `MODEL`.
pub fn complete_model(core: &mut Scheduler, worker: &str, l: &Leased) {
    let parts = vec![("models".to_string(), models_part(&l.unit_id))];
    core.complete(&key_of(l), claim_of(worker, l), parts, MODEL)
        .unwrap();
}

/// Fails `worker`'s lease `l` with `error` for `reason` (counted: not a hand-back).
pub fn fail_lease(
    core: &mut Scheduler,
    worker: &str,
    l: &Leased,
    error: &str,
    reason: FailureReason,
) {
    core.fail(&key_of(l), claim_of(worker, l), error, reason, false, now())
        .unwrap();
}

pub fn unit(id: &str, kind: &str, model: &str, deps: &[&str]) -> NewUnit {
    NewUnit {
        id: id.into(),
        kind: iscp_proto::v1::UnitKind::parse(kind).expect("a unit kind"),
        params: String::new(),
        prepare_id: model.into(),
        deps: deps.iter().map(|s| s.to_string()).collect(),
        work: 10,
    }
}

/// The model hash a prepare unit's completion names.
pub const MODEL: Option<&str> =
    Some("abababababababababababababababababababababababababababababababab");

pub fn models_part(unit: &str) -> Vec<u8> {
    models_part_of(unit, &"ab".repeat(32))
}

/// A `models` part of `unit` naming the checkpoint `sha`.
pub fn models_part_of(unit: &str, sha: &str) -> Vec<u8> {
    let row = ModelRow {
        unit_id: unit.into(),
        setting: "natural".into(),
        setting_kind: "natural".into(),
        architecture: "small-cnn".into(),
        source: "trained".into(),
        checkpoint_sha256: sha.into(),
        clean_accuracy: 0.9,
        attack_success_rate: None,
        poison_target: None,
        trigger: None,
        trigger_family: None,
        trigger_row: None,
        trigger_col: None,
        trigger_size: None,
        attack_failed: None,
        robust_accuracy: None,
        poison_rate: None,
        poisoned_images: None,
        train_epochs: Some(1),
        training_s: 1.0,
        forward_images_per_s: None,
        search_images_per_s: None,
        train_images_per_s: None,
    };
    encode_parquet(&models_batch(&[row])).unwrap()
}

pub fn claim<'a>(worker: &'a str, lease_id: &'a str, attempt: u64) -> LeaseClaim<'a> {
    LeaseClaim {
        worker,
        lease_id,
        attempt,
    }
}

pub fn key(id: &str) -> UnitKey {
    UnitKey::new("s", id)
}

/// A one-row part of any result table, in its schema: `unit_id` is `unit`, `search_id` is
/// `search`, other strings `x`, numbers 0.5 or 0, lists `[0.5]`.
pub fn part(table: &str, unit: &str, search: &str) -> Vec<u8> {
    let schema = table_schema(iscp_proto::Table::parse(table).expect("a result table"));
    let columns: Vec<ArrayRef> = schema
        .fields()
        .iter()
        .map(|f| -> ArrayRef {
            match f.data_type() {
                DataType::Utf8 => Arc::new(StringArray::from(vec![match f.name().as_str() {
                    "unit_id" => unit,
                    "search_id" => search,
                    _ => "x",
                }])),
                DataType::Int64 => Arc::new(Int64Array::from(vec![0])),
                DataType::Float64 => Arc::new(Float64Array::from(vec![0.5])),
                DataType::Boolean => Arc::new(BooleanArray::from(vec![false])),
                DataType::List(_) => {
                    let mut l = ListBuilder::new(Float32Builder::new());
                    l.values().append_value(0.5);
                    l.append(true);
                    Arc::new(l.finish())
                }
                t => panic!("no sample for {t}"),
            }
        })
        .collect();
    encode_parquet(&RecordBatch::try_new(schema, columns).unwrap()).unwrap()
}
