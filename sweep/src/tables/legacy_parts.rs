//! Parts of `scan` and `transfer` that a version before protocol 3 wrote on the coordinator, named
//! by group (`part-natural-alpha0p2-released-base.parquet`, `part-a-to-b.parquet`); version 3
//! names them by the unit that wrote them, so the old ones would repeat every row.

use crate::{Result, SweepError};
use std::path::Path;

/// Removes the parts in `table_dir` not named by a unit id (16 lowercase hex digits); returns how
/// many it removed.
pub fn remove_group_named_parts(table_dir: &Path) -> Result<usize> {
    let Ok(entries) = std::fs::read_dir(table_dir) else {
        return Ok(0);
    };
    let mut removed = 0;
    for entry in entries {
        let entry = entry.map_err(|e| SweepError::io(table_dir, e))?;
        let name = entry.file_name().to_string_lossy().to_string();
        let Some(stem) = name
            .strip_prefix("part-")
            .and_then(|n| n.strip_suffix(".parquet"))
        else {
            continue;
        };
        let unit_named = stem.len() == 16
            && stem
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        if !unit_named {
            std::fs::remove_file(entry.path()).map_err(|e| SweepError::io(entry.path(), e))?;
            removed += 1;
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_group_named_parts_go() {
        let dir = tempfile::tempdir().unwrap();
        for n in [
            "part-natural-alpha0p2-released-base.parquet",
            "part-0123456789abcdef.parquet",
            "notes.txt",
        ] {
            std::fs::write(dir.path().join(n), b"x").unwrap();
        }
        assert_eq!(remove_group_named_parts(dir.path()).unwrap(), 1);
        assert!(dir.path().join("part-0123456789abcdef.parquet").exists());
        assert!(dir.path().join("notes.txt").exists());
        assert_eq!(
            remove_group_named_parts(&dir.path().join("none")).unwrap(),
            0
        );
    }
}
