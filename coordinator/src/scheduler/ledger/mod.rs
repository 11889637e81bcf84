//! The durable ledger (SQLite in WAL mode, synchronous FULL): sweeps and their specs, every unit's
//! state and fencing token, and the result parts that hold finished units. Every state change of the
//! scheduler is written here before it is acknowledged.

mod artifacts;

use rusqlite::{params, Connection, OptionalExtension};
use std::path::Path;

#[derive(Debug, thiserror::Error)]
#[error("ledger: {0}")]
pub struct LedgerError(#[from] rusqlite::Error);

pub type LResult<T> = std::result::Result<T, LedgerError>;

/// A unit as the ledger keeps it.
#[derive(Debug, Clone, PartialEq)]
pub struct UnitRow {
    pub sweep: String,
    pub id: String,
    pub kind: iscp_proto::v1::UnitKind,
    /// The prepare unit whose model this unit needs (empty for prepare and noop units).
    pub prepare_id: String,
    pub deps: Vec<String>,
    pub spec_sha: String,
    pub state: super::state::UnitState,
    /// The attempt of the latest lease: the fencing token.
    pub attempt: u64,
    /// Failed attempts of its own (reported errors), counted against `max_attempts`.
    pub failures: u32,
    /// Leases that expired (its worker died or stopped heartbeating), counted against
    /// `max_expiries`.
    pub expiries: u32,
    pub lease_id: String,
    pub worker: String,
    pub error: String,
    pub ord: i64,
    /// Its estimated work (`iscp_sweep::cost::unit_work`: millions of multiply-adds), for progress.
    pub work: u64,
}

pub struct Ledger {
    conn: Connection,
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS specs (sha TEXT PRIMARY KEY, sweep TEXT NOT NULL, file TEXT NOT NULL,
    source TEXT NOT NULL, submitted_ms INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS sweeps (name TEXT PRIMARY KEY, spec_sha TEXT NOT NULL,
    submitted_ms INTEGER NOT NULL, finalized INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS units (sweep TEXT NOT NULL, id TEXT NOT NULL, kind TEXT NOT NULL,
    model_unit TEXT NOT NULL, deps TEXT NOT NULL, spec_sha TEXT NOT NULL, state TEXT NOT NULL,
    attempt INTEGER NOT NULL, failures INTEGER NOT NULL, lease_id TEXT NOT NULL,
    worker TEXT NOT NULL, error TEXT NOT NULL, ord INTEGER NOT NULL, expiries INTEGER NOT NULL
    DEFAULT 0, work INTEGER NOT NULL DEFAULT 0, PRIMARY KEY (sweep, id));
CREATE TABLE IF NOT EXISTS parts (path TEXT PRIMARY KEY, sweep TEXT NOT NULL, unit_id TEXT NOT NULL,
    tbl TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS artifacts (sha TEXT PRIMARY KEY, path TEXT NOT NULL, bytes INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS checkpoints (sweep TEXT NOT NULL, unit_id TEXT NOT NULL,
    epoch INTEGER NOT NULL, sha TEXT NOT NULL, stats TEXT NOT NULL, PRIMARY KEY (sweep, unit_id));
CREATE TABLE IF NOT EXISTS unit_params (id TEXT PRIMARY KEY, params TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS class_names (sweep TEXT PRIMARY KEY, names TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS models (sweep TEXT NOT NULL, unit_id TEXT NOT NULL, sha TEXT NOT NULL,
    PRIMARY KEY (sweep, unit_id));
";

/// The last training checkpoint of a unit: (epoch, artifact sha256, per-epoch stats JSON).
pub type Checkpoint = (u64, String, String);

/// The one statement that writes a unit's changing fields.
fn write_unit(conn: &Connection, u: &UnitRow) -> rusqlite::Result<usize> {
    conn.execute(
        "UPDATE units SET state = ?3, attempt = ?4, failures = ?5, lease_id = ?6, worker = ?7,
         error = ?8, expiries = ?9 WHERE sweep = ?1 AND id = ?2",
        params![
            u.sweep,
            u.id,
            u.state,
            u.attempt as i64,
            u.failures,
            u.lease_id,
            u.worker,
            u.error,
            u.expiries
        ],
    )
}

fn put_model(conn: &Connection, sweep: &str, unit: &str, sha: &str) -> rusqlite::Result<usize> {
    conn.execute(
        "INSERT OR REPLACE INTO models VALUES (?1, ?2, ?3)",
        params![sweep, unit, sha],
    )
}

impl Ledger {
    pub fn open(path: &Path) -> LResult<Ledger> {
        let conn = Connection::open(path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        // Commits are appended to the WAL without waiting for the disk; the service syncs the WAL
        // once for every group of commits before answering any of them (`durable`).
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.execute_batch(SCHEMA)?;
        // A ledger from before expiries were counted apart.
        let has_expiries = conn
            .prepare("SELECT 1 FROM pragma_table_info('units') WHERE name = 'expiries'")?
            .exists([])?;
        if !has_expiries {
            conn.execute_batch("ALTER TABLE units ADD COLUMN expiries INTEGER NOT NULL DEFAULT 0")?;
        }
        // A ledger from before units carried their work estimate (resubmitting fills it in).
        let has_work = conn
            .prepare("SELECT 1 FROM pragma_table_info('units') WHERE name = 'work'")?
            .exists([])?;
        if !has_work {
            conn.execute_batch("ALTER TABLE units ADD COLUMN work INTEGER NOT NULL DEFAULT 0")?;
        }
        Ok(Ledger { conn })
    }

    /// Rows changed since the ledger was opened: a call that changed none committed nothing.
    pub fn total_changes(&self) -> u64 {
        self.conn.total_changes()
    }

    pub fn put_spec(
        &self,
        sha: &str,
        sweep: &str,
        file: &str,
        source: &str,
        now: i64,
    ) -> LResult<()> {
        self.conn.execute(
            "INSERT OR IGNORE INTO specs VALUES (?1, ?2, ?3, ?4, ?5)",
            params![sha, sweep, file, source, now],
        )?;
        self.conn.execute(
            "INSERT INTO sweeps VALUES (?1, ?2, ?3, 0) ON CONFLICT(name) DO UPDATE SET
             spec_sha = excluded.spec_sha, submitted_ms = excluded.submitted_ms, finalized = 0",
            params![sweep, sha, now],
        )?;
        Ok(())
    }

    /// (file, source) of a stored spec.
    pub fn spec(&self, sha: &str) -> LResult<Option<(String, String)>> {
        Ok(self
            .conn
            .query_row(
                "SELECT file, source FROM specs WHERE sha = ?1",
                [sha],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?)
    }

    /// (name, spec sha, finalized) of every sweep.
    pub fn sweeps(&self) -> LResult<Vec<(String, String, bool)>> {
        let mut st = self
            .conn
            .prepare("SELECT name, spec_sha, finalized FROM sweeps ORDER BY submitted_ms")?;
        let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get::<_, i64>(2)? != 0)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    pub fn set_finalized(&self, sweep: &str, finalized: bool) -> LResult<()> {
        self.conn.execute(
            "UPDATE sweeps SET finalized = ?2 WHERE name = ?1",
            params![sweep, finalized as i64],
        )?;
        Ok(())
    }

    /// Inserts new units and points existing ones at the latest spec, in one transaction, with
    /// each unit's parameters (the JSON its id hashes; by id, since equal ids mean equal
    /// parameters in every sweep).
    pub fn add_units(&mut self, units: &[UnitRow], params: &[(&str, &str)]) -> LResult<()> {
        let tx = self.conn.transaction()?;
        {
            let mut st = tx.prepare("INSERT OR IGNORE INTO unit_params VALUES (?1, ?2)")?;
            for (id, json) in params {
                if !json.is_empty() {
                    st.execute(params![id, json])?;
                }
            }
        }
        {
            let mut st = tx.prepare(
                "INSERT INTO units (sweep, id, kind, model_unit, deps, spec_sha, state, attempt,
                 failures, lease_id, worker, error, ord, expiries, work)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)
                 ON CONFLICT(sweep, id) DO UPDATE SET spec_sha = excluded.spec_sha,
                 ord = excluded.ord, work = excluded.work",
            )?;
            for u in units {
                st.execute(params![
                    u.sweep,
                    u.id,
                    u.kind.name(),
                    u.prepare_id,
                    u.deps.join(","),
                    u.spec_sha,
                    u.state,
                    u.attempt as i64,
                    u.failures,
                    u.lease_id,
                    u.worker,
                    u.error,
                    u.ord,
                    u.expiries,
                    u.work as i64
                ])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Records a sweep's class names (progress names classes with them).
    pub fn put_class_names(&self, sweep: &str, names: &[String]) -> LResult<()> {
        self.conn.execute(
            "INSERT INTO class_names VALUES (?1, ?2) ON CONFLICT(sweep) DO UPDATE SET names = excluded.names",
            params![sweep, serde_json::to_string(names).unwrap_or_default()],
        )?;
        Ok(())
    }

    /// Every sweep's class names.
    pub fn class_names(&self) -> LResult<Vec<(String, Vec<String>)>> {
        let mut st = self.conn.prepare("SELECT sweep, names FROM class_names")?;
        let rows = st.query_map([], |r| {
            let names: String = r.get(1)?;
            // Unreadable names are only a loss of words in progress lines.
            Ok((
                r.get::<_, String>(0)?,
                serde_json::from_str(&names).unwrap_or_default(),
            ))
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    pub fn units(&self) -> LResult<Vec<UnitRow>> {
        let mut st = self.conn.prepare(
            "SELECT sweep, id, kind, model_unit, deps, spec_sha, state, attempt, failures,
             lease_id, worker, error, ord, expiries, work FROM units ORDER BY sweep, ord",
        )?;
        let rows = st.query_map([], |r| {
            let deps: String = r.get(4)?;
            Ok(UnitRow {
                sweep: r.get(0)?,
                id: r.get(1)?,
                kind: {
                    let k: String = r.get(2)?;
                    iscp_proto::v1::UnitKind::parse(&k).ok_or_else(|| {
                        rusqlite::Error::FromSqlConversionFailure(
                            2,
                            rusqlite::types::Type::Text,
                            format!("unit kind `{k}` (a ledger of a newer iscp?)").into(),
                        )
                    })?
                },
                prepare_id: r.get(3)?,
                deps: deps
                    .split(',')
                    .filter(|s| !s.is_empty())
                    .map(String::from)
                    .collect(),
                spec_sha: r.get(5)?,
                state: r.get(6)?,
                attempt: r.get::<_, i64>(7)? as u64,
                failures: r.get(8)?,
                lease_id: r.get(9)?,
                worker: r.get(10)?,
                error: r.get(11)?,
                ord: r.get(12)?,
                expiries: r.get(13)?,
                work: r.get::<_, i64>(14)?.max(0) as u64,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Writes a unit's state, fencing token, lease holder and error.
    pub fn update_unit(&self, u: &UnitRow) -> LResult<()> {
        write_unit(&self.conn, u)?;
        Ok(())
    }

    /// Many updates in one transaction (a lease of several units, a cascade).
    pub fn update_units(&mut self, units: &[&UnitRow]) -> LResult<()> {
        let tx = self.conn.transaction()?;
        for u in units {
            write_unit(&tx, u)?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Marks a unit done with its parts and, for a prepare unit, its model's hash, in one
    /// transaction: the step that makes a result count.
    pub fn commit_done(
        &mut self,
        u: &UnitRow,
        parts: &[(String, String)],
        model_sha: Option<&str>,
    ) -> LResult<()> {
        let tx = self.conn.transaction()?;
        for (table, path) in parts {
            tx.execute(
                "INSERT OR REPLACE INTO parts VALUES (?1, ?2, ?3, ?4)",
                params![path, u.sweep, u.id, table],
            )?;
        }
        if let Some(sha) = model_sha {
            put_model(&tx, &u.sweep, &u.id, sha)?;
        }
        write_unit(&tx, u)?;
        tx.commit()?;
        Ok(())
    }

    /// Records a prepared model's hash learned otherwise (a ledger from before it kept them).
    pub fn put_model(&self, sweep: &str, unit: &str, sha: &str) -> LResult<()> {
        put_model(&self.conn, sweep, unit, sha)?;
        Ok(())
    }

    /// The parameters (JSON) of the unit `id`, if the ledger holds them.
    pub fn params(&self, id: &str) -> LResult<Option<String>> {
        Ok(self
            .conn
            .query_row("SELECT params FROM unit_params WHERE id = ?1", [id], |r| {
                r.get(0)
            })
            .optional()?)
    }

    /// ((sweep, prepare unit), model sha256) of every prepared model.
    pub fn models(&self) -> LResult<Vec<((String, String), String)>> {
        let mut st = self
            .conn
            .prepare("SELECT sweep, unit_id, sha FROM models")?;
        let rows = st.query_map([], |r| Ok(((r.get(0)?, r.get(1)?), r.get(2)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// (path, sweep, unit id, table) of every recorded part.
    pub fn parts(&self) -> LResult<Vec<(String, String, String, String)>> {
        let mut st = self
            .conn
            .prepare("SELECT path, sweep, unit_id, tbl FROM parts")?;
        let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    pub fn forget_parts_of(&self, sweep: &str, unit: &str) -> LResult<()> {
        self.conn.execute(
            "DELETE FROM parts WHERE sweep = ?1 AND unit_id = ?2",
            params![sweep, unit],
        )?;
        Ok(())
    }
}
