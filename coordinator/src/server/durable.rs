//! Group commit: the ledger commits under the scheduler's lock without waiting for the disk
//! (SQLite WAL, `synchronous=NORMAL`: a commit is appended to the WAL file), and each call,
//! after releasing the lock, waits until one `fdatasync` of the WAL file covers its commit. Calls
//! that commit meanwhile share that sync, so N concurrent leases and completions cost one fsync,
//! and still none is answered before its change is on disk.
//!
//! Why this is durable: a WAL commit is frames appended in order with a commit marker; syncing
//! the file after commit N has been written persists every commit up to N, and SQLite's recovery
//! replays the WAL's valid frames. Checkpoints (which SQLite syncs itself) move frames into the
//! database and reuse the same WAL file, so the descriptor kept here stays the right one.

use std::fs::File;
use std::path::Path;
use std::sync::{Condvar, Mutex};

#[derive(Default)]
struct Marks {
    /// Commits written to the WAL (numbered under the scheduler's lock, in commit order).
    written: u64,
    /// Commits known to be on disk.
    synced: u64,
    /// Whether a caller is syncing now.
    syncing: bool,
    /// A sync failed: nothing more is answered as durable.
    failed: Option<String>,
}

/// The WAL file's group sync.
pub struct GroupSync {
    wal: Mutex<Option<File>>,
    path: std::path::PathBuf,
    marks: Mutex<Marks>,
    done: Condvar,
}

impl GroupSync {
    pub fn new(wal: &Path) -> GroupSync {
        GroupSync {
            wal: Mutex::new(None),
            path: wal.to_path_buf(),
            marks: Mutex::new(Marks::default()),
            done: Condvar::new(),
        }
    }

    /// Numbers a commit just written (call under the scheduler's lock, right after it).
    pub fn written(&self) -> u64 {
        let mut m = self.marks.lock().unwrap_or_else(|p| p.into_inner());
        m.written += 1;
        m.written
    }

    /// Returns once commit `seq` is on disk: joins a sync under way or runs one for every commit
    /// written so far.
    pub fn wait(&self, seq: u64) -> std::io::Result<()> {
        let mut m = self.marks.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            if let Some(e) = &m.failed {
                return Err(std::io::Error::other(e.clone()));
            }
            if m.synced >= seq {
                return Ok(());
            }
            if m.syncing {
                m = self.done.wait(m).unwrap_or_else(|p| p.into_inner());
                continue;
            }
            m.syncing = true;
            let target = m.written;
            drop(m);
            let result = self.sync();
            m = self.marks.lock().unwrap_or_else(|p| p.into_inner());
            m.syncing = false;
            match result {
                Ok(()) => m.synced = m.synced.max(target),
                Err(e) => m.failed = Some(format!("{}: {e}", self.path.display())),
            }
            self.done.notify_all();
        }
    }

    fn sync(&self) -> std::io::Result<()> {
        let mut wal = self.wal.lock().unwrap_or_else(|p| p.into_inner());
        if wal.is_none() {
            *wal = Some(File::options().read(true).write(true).open(&self.path)?);
        }
        wal.as_ref().expect("opened").sync_data()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn concurrent_waiters_share_syncs_and_all_return() {
        let dir = tempfile::tempdir().unwrap();
        let wal = dir.path().join("x-wal");
        std::fs::write(&wal, b"frames").unwrap();
        let g = std::sync::Arc::new(GroupSync::new(&wal));
        let handles: Vec<_> = (0..8)
            .map(|_| {
                let g = g.clone();
                std::thread::spawn(move || {
                    for _ in 0..20 {
                        let seq = g.written();
                        g.wait(seq).unwrap();
                        assert!(g.marks.lock().unwrap().synced >= seq);
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        assert_eq!(g.marks.lock().unwrap().written, 160);
    }

    #[test]
    fn a_missing_wal_is_an_error_not_a_durable_answer() {
        let dir = tempfile::tempdir().unwrap();
        let g = GroupSync::new(&dir.path().join("none-wal"));
        let seq = g.written();
        assert!(g.wait(seq).is_err());
        assert!(g.wait(seq).is_err(), "and stays one");
    }
}
