//! Files a unit makes that are not table rows (pictures): their paths, checked before anything is
//! written (a worker's path is input from the network), and their atomic write.

use crate::tables::Staged;
use crate::{Result, SweepError};
use std::path::{Path, PathBuf};

/// Files by path relative to a sweep's results folder, with their bytes.
pub type Files = Vec<(String, Vec<u8>)>;

/// Why `path` may not be a unit's output file, or None when it may: `images/`, then at most one
/// folder, every part of letters, digits, `.`, `_`, `+` and `-` (not `.` or `..`), ending `.png`.
pub fn refuse_output_path(path: &str) -> Option<String> {
    let parts: Vec<&str> = path.split('/').collect();
    let ok_part = |p: &&str| {
        !p.is_empty()
            && *p != "."
            && *p != ".."
            && !p.starts_with('.')
            && p.len() <= 200
            && p.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._+-".contains(&b))
    };
    let why = if !(2..=3).contains(&parts.len()) || parts[0] != "images" {
        "must be `images/NAME.png` or `images/FOLDER/NAME.png`"
    } else if !parts.iter().all(ok_part) {
        "may hold only letters, digits, `.`, `_`, `+` and `-`, and no part starting with `.`"
    } else if !path.ends_with(".png") {
        "must end `.png`"
    } else {
        return None;
    };
    Some(format!("output file `{}` {why}", path.escape_debug()))
}

/// An output file written and synced under a hidden temporary name beside its place: the slow
/// half of writing it, done before the scheduler's lock. Dropped unpublished, it is removed.
pub struct StagedFile(Staged);

impl StagedFile {
    /// Renames it into place, replacing another attempt's file whole; returns its folder, whose
    /// rename the caller syncs (see `tables::sync_dir`).
    pub fn publish(self) -> Result<PathBuf> {
        let dest = self.0.publish()?;
        Ok(dest
            .parent()
            .expect("checked: a folder then a name")
            .to_path_buf())
    }
}

/// Checks `path` and writes `bytes` under a temporary name unique to this call beside it, synced.
pub fn stage_output_file(root: &Path, path: &str, bytes: &[u8]) -> Result<StagedFile> {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    if let Some(why) = refuse_output_path(path) {
        return Err(SweepError::table(root, why));
    }
    let dest = root.join(path);
    let dir = dest.parent().expect("checked: a folder then a name");
    std::fs::create_dir_all(dir).map_err(|e| SweepError::io(dir, e))?;
    let name = dest.file_name().expect("checked").to_string_lossy();
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let tmp = dir.join(format!(".{name}.{}-{n}.tmp", std::process::id()));
    let staged = Staged::write(tmp, dest.clone(), bytes).map_err(|e| SweepError::io(&dest, e))?;
    Ok(StagedFile(staged))
}

/// Writes a checked output file under `root`, atomically (a temporary name, synced, renamed), so
/// another attempt's file is replaced whole.
pub fn write_output_file(root: &Path, path: &str, bytes: &[u8]) -> Result<PathBuf> {
    let dest = root.join(path);
    stage_output_file(root, path, bytes)?.publish()?;
    Ok(dest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_pictures_under_images_are_accepted() {
        for ok in [
            "images/natural-alpha0p2-released-base-best.png",
            "images/natural/class3-alpha0p2-released-tv-learned-canvas-size0p05.png",
        ] {
            assert_eq!(refuse_output_path(ok), None, "{ok}");
        }
        for bad in [
            "../escape.png",
            "images/../../escape.png",
            "images/a/b/c.png",
            "images/..",
            "images/.hidden.png",
            "/etc/passwd",
            "images//x.png",
            "images/x.txt",
            "searches/part-x.parquet",
            "images/a b.png",
            "images\\..\\x.png",
            "images",
            "",
        ] {
            assert!(refuse_output_path(bad).is_some(), "{bad} accepted");
        }
    }

    #[test]
    fn an_output_file_lands_whole_and_replaces_an_earlier_one() {
        let dir = tempfile::tempdir().unwrap();
        let p = write_output_file(dir.path(), "images/s/a.png", b"first").unwrap();
        write_output_file(dir.path(), "images/s/a.png", b"second").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"second");
        assert_eq!(std::fs::read_dir(p.parent().unwrap()).unwrap().count(), 1);
        assert!(write_output_file(dir.path(), "images/../x.png", b"no").is_err());
        // Dropped unpublished, a staged file leaves nothing behind.
        drop(stage_output_file(dir.path(), "images/s/b.png", b"never").unwrap());
        let names: Vec<_> = std::fs::read_dir(dir.path().join("images/s"))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names, ["a.png"]);
        assert!(!dir.path().join("x.png").exists());
    }
}
