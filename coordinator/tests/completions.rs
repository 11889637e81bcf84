//! A completion is checked before anything of it is written: parts in their table's schema, rows
//! of the unit sending them (an evaluation names only searches it read), the model hash its
//! completion names, finite masks; parts in the codecs pandas, polars and pyarrow write are read,
//! and a part polars wrote (large strings, zstd) lands in the table's own schema.

mod common;

use arrow_array::{ArrayRef, Int64Array, RecordBatch};
use common::{
    claim, complete_model, key, lease_one, models_part, open, open_with, part, submit, unit, MODEL,
};
use iscp_coordinator::scheduler::{Leased, Scheduler};
use iscp_sweep::tables::{decode_parquet, read_batches, read_pattern_rows, read_search_rows};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, GzipLevel, ZstdLevel};
use parquet::file::properties::WriterProperties;
use std::path::Path;
use std::sync::Arc;

/// Every file under `dir`, relative.
fn files(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p.strip_prefix(dir).unwrap().display().to_string());
            }
        }
    }
    out.sort();
    out
}

/// The same rows, written again with another codec.
fn recode(bytes: &[u8], codec: Compression) -> Vec<u8> {
    let batches = decode_parquet(bytes).unwrap();
    let props = WriterProperties::builder().set_compression(codec).build();
    let mut out = Vec::new();
    let mut w = ArrowWriter::try_new(&mut out, batches[0].schema(), Some(props)).unwrap();
    for b in &batches {
        w.write(b).unwrap();
    }
    w.close().unwrap();
    out
}

fn one_column() -> Vec<u8> {
    let b =
        RecordBatch::try_from_iter(vec![("x", Arc::new(Int64Array::from(vec![1])) as ArrayRef)])
            .unwrap();
    iscp_sweep::tables::encode_parquet(&b).unwrap()
}

#[test]
fn completions_are_checked_before_anything_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let results = dir.path().join("results/s");
    let mut core = open_with(
        dir.path(),
        vec![
            unit("p", "prepare-model", "", &[]),
            unit("s1", "search", "p", &["p"]),
            unit("s2", "search", "p", &["p"]),
            unit("e", "evaluate", "p", &["s1"]),
        ],
    );
    // Refused with `why`, and the results folder is as it was before the call.
    let refuse = |core: &mut Scheduler, l: &Leased, table: &str, bytes: Vec<u8>, why: &str| {
        let before = files(&results);
        let c = claim("w", &l.lease_id, l.attempt);
        let model = (table == "models").then_some(MODEL).flatten();
        let err = core
            .complete(&key(&l.unit_id), c, vec![(table.into(), bytes)], model)
            .expect_err(why)
            .to_string();
        assert!(err.contains(why), "{err} (wanted `{why}`)");
        assert_eq!(files(&results), before, "{why}: something written");
    };

    // The model: a wrong schema, a row of another unit, another model's hash.
    let p = lease_one(&mut core, "w");
    refuse(
        &mut core,
        &p,
        "models",
        part("searches", "p", ""),
        "is not in the table",
    );
    refuse(&mut core, &p, "models", models_part("q"), "names unit `q`");
    let other_model = part("models", "p", "");
    refuse(&mut core, &p, "models", other_model, "names checkpoint x");
    complete_model(&mut core, "w", &p);

    // The searches: one column `x`, another unit's row, a NaN mask; then gzip and zstd parts.
    let mut searches = [lease_one(&mut core, "w"), lease_one(&mut core, "w")];
    searches.sort_by(|a, b| a.unit_id.cmp(&b.unit_id));
    let s1 = &searches[0];
    assert_eq!(s1.unit_id, "s1");
    refuse(
        &mut core,
        s1,
        "searches",
        one_column(),
        "column `x` is not in the table",
    );
    refuse(
        &mut core,
        s1,
        "searches",
        part("searches", "s2", ""),
        "names unit `s2`",
    );
    let mut nan = read_search_rows_bytes(&part("searches", "s1", ""));
    nan[0].mask = vec![f32::NAN];
    let nan =
        iscp_sweep::tables::encode_parquet(&iscp_sweep::tables::searches_batch(&nan)).unwrap();
    refuse(&mut core, s1, "searches", nan, "not finite");
    let two = vec![
        ("searches".to_string(), part("searches", "s1", "")),
        ("searches".to_string(), part("searches", "s1", "")),
    ];
    let c = claim("w", &s1.lease_id, s1.attempt);
    assert!(core.complete(&key("s1"), c, two, None).is_err());
    for (l, codec) in searches.iter().zip([
        Compression::GZIP(GzipLevel::default()),
        Compression::ZSTD(ZstdLevel::default()),
    ]) {
        let c = claim("w", &l.lease_id, l.attempt);
        let bytes = recode(&part("searches", &l.unit_id, ""), codec);
        core.complete(&key(&l.unit_id), c, vec![("searches".into(), bytes)], None)
            .unwrap();
        let path = results.join(format!("searches/part-{}.parquet", l.unit_id));
        assert_eq!(read_search_rows(&path).unwrap()[0].unit_id, l.unit_id);
    }

    // The evaluation names only the searches it read; lz4 is read too.
    let e = lease_one(&mut core, "w");
    let c = claim("w", &e.lease_id, e.attempt);
    let foreign = part("patterns", "e", "s2");
    let err = core
        .complete(&key("e"), c, vec![("patterns".into(), foreign)], None)
        .unwrap_err()
        .to_string();
    assert!(err.contains("did not read"), "{err}");
    let lz4 = recode(&part("patterns", "e", "s1"), Compression::LZ4_RAW);
    core.complete(&key("e"), c, vec![("patterns".into(), lz4)], None)
        .unwrap();
    let rows = read_pattern_rows(&results.join("patterns/part-e.parquet")).unwrap();
    assert_eq!(rows[0].search_id, "s1");
}

fn read_search_rows_bytes(bytes: &[u8]) -> Vec<iscp_sweep::tables::SearchRow> {
    iscp_sweep::tables::search_rows_from_bytes(bytes, "sample").unwrap()
}

/// A part polars rewrote with its defaults (zstd; large or view strings and lists) is accepted and
/// stored in the table's own types, so the whole table still reads as one.
#[test]
fn a_part_written_by_polars_lands_in_the_tables_schema() {
    let python = std::env::var("ISCP_PYREAD_PYTHON")
        .expect("ISCP_PYREAD_PYTHON (set by `make test`) names a python with polars");
    let dir = tempfile::tempdir().unwrap();
    let mut core = open(dir.path());
    submit(
        &mut core,
        "t",
        vec![
            unit("p", "prepare-model", "", &[]),
            unit("s1", "search", "p", &["p"]),
        ],
    );
    let tkey = |id: &str| iscp_coordinator::scheduler::UnitKey::new("t", id);
    let p = lease_one(&mut core, "w");
    assert_eq!(p.sweep, "t");
    complete_model(&mut core, "w", &p);
    let s1 = lease_one(&mut core, "w");
    assert_eq!(s1.unit_id, "s1");
    let ours = dir.path().join("ours.parquet");
    let theirs = dir.path().join("theirs.parquet");
    std::fs::write(&ours, part("searches", "s1", "")).unwrap();
    let status = std::process::Command::new(&python)
        .args([
            "-c",
            "import sys, polars as pl; pl.read_parquet(sys.argv[1]).write_parquet(sys.argv[2])",
        ])
        .arg(&ours)
        .arg(&theirs)
        .status()
        .unwrap();
    assert!(status.success());
    let bytes = std::fs::read(&theirs).unwrap();
    let c = claim("w", &s1.lease_id, s1.attempt);
    core.complete(&tkey("s1"), c, vec![("searches".into(), bytes)], None)
        .unwrap();
    let stored = dir.path().join("results/t/searches/part-s1.parquet");
    let schema = read_batches(&stored).unwrap()[0].schema();
    let want = iscp_sweep::part_check::table_schema(iscp_proto::Table::Searches);
    for f in want.fields() {
        assert_eq!(
            schema.field_with_name(f.name()).unwrap().data_type(),
            f.data_type(),
            "{}",
            f.name()
        );
    }
    assert_eq!(read_search_rows(&stored).unwrap()[0].unit_id, "s1");
}
