//! A unit's state in the scheduler and the ledger: one enum, written to SQLite by name.

use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ToSql, ToSqlOutput, ValueRef};

/// Where a unit stands. Done, failed and cancelled are terminal (a failed unit can be retried
/// by `retry-failed`, which makes it pending again).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UnitState {
    Pending,
    Leased,
    Done,
    Failed,
    Cancelled,
}

impl UnitState {
    pub fn as_str(self) -> &'static str {
        match self {
            UnitState::Pending => "pending",
            UnitState::Leased => "leased",
            UnitState::Done => "done",
            UnitState::Failed => "failed",
            UnitState::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<UnitState> {
        [
            UnitState::Pending,
            UnitState::Leased,
            UnitState::Done,
            UnitState::Failed,
            UnitState::Cancelled,
        ]
        .into_iter()
        .find(|x| x.as_str() == s)
    }

    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            UnitState::Done | UnitState::Failed | UnitState::Cancelled
        )
    }
}

impl std::fmt::Display for UnitState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl ToSql for UnitState {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::from(self.as_str()))
    }
}

impl FromSql for UnitState {
    fn column_result(v: ValueRef<'_>) -> FromSqlResult<Self> {
        let s = v.as_str()?;
        UnitState::parse(s).ok_or_else(|| FromSqlError::Other(format!("unit state `{s}`").into()))
    }
}
