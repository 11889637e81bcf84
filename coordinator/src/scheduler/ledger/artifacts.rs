//! The ledger's artifacts (stored files by hash: models, derived shards, checkpoints) and
//! training checkpoints.

use super::{Checkpoint, LResult, Ledger};
use rusqlite::{params, OptionalExtension};

impl Ledger {
    /// Records the artifact now at `path`, forgetting any other that was there (an earlier
    /// attempt's file, replaced).
    pub fn put_artifact_at(&self, sha: &str, path: &str, bytes: u64) -> LResult<()> {
        self.conn.execute(
            "DELETE FROM artifacts WHERE path = ?1 AND sha != ?2",
            params![path, sha],
        )?;
        self.put_artifact(sha, path, bytes)
    }

    /// The artifact recorded at `path`, if any.
    pub fn artifact_at(&self, path: &str) -> LResult<Option<String>> {
        Ok(self
            .conn
            .query_row(
                "SELECT sha FROM artifacts WHERE path = ?1 LIMIT 1",
                [path],
                |r| r.get(0),
            )
            .optional()?)
    }

    pub fn put_artifact(&self, sha: &str, path: &str, bytes: u64) -> LResult<()> {
        self.conn.execute(
            "INSERT OR REPLACE INTO artifacts VALUES (?1, ?2, ?3)",
            params![sha, path, bytes as i64],
        )?;
        Ok(())
    }

    pub fn put_checkpoint(&self, sweep: &str, unit: &str, c: &Checkpoint) -> LResult<()> {
        self.conn.execute(
            "INSERT OR REPLACE INTO checkpoints VALUES (?1, ?2, ?3, ?4, ?5)",
            params![sweep, unit, c.0 as i64, c.1, c.2],
        )?;
        Ok(())
    }

    pub fn drop_checkpoint(&self, sweep: &str, unit: &str) -> LResult<()> {
        self.conn.execute(
            "DELETE FROM checkpoints WHERE sweep = ?1 AND unit_id = ?2",
            params![sweep, unit],
        )?;
        Ok(())
    }

    /// ((sweep, unit), checkpoint) of every unit with one.
    pub fn checkpoints(&self) -> LResult<Vec<((String, String), Checkpoint)>> {
        let mut st = self
            .conn
            .prepare("SELECT sweep, unit_id, epoch, sha, stats FROM checkpoints")?;
        let rows = st.query_map([], |r| {
            Ok((
                (r.get(0)?, r.get(1)?),
                (r.get::<_, i64>(2)? as u64, r.get(3)?, r.get(4)?),
            ))
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    pub fn forget_artifact(&self, sha: &str) -> LResult<()> {
        self.conn
            .execute("DELETE FROM artifacts WHERE sha = ?1", [sha])?;
        Ok(())
    }

    /// Forgets every artifact stored under a folder (a unit's checkpoints).
    pub fn forget_artifacts_under(&self, dir: &str) -> LResult<()> {
        self.conn.execute(
            "DELETE FROM artifacts WHERE substr(path, 1, length(?1)) = ?1",
            [dir],
        )?;
        Ok(())
    }

    pub fn artifact(&self, sha: &str) -> LResult<Option<String>> {
        Ok(self
            .conn
            .query_row("SELECT path FROM artifacts WHERE sha = ?1", [sha], |r| {
                r.get(0)
            })
            .optional()?)
    }
}
