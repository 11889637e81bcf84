//! Crash markers: a unit that kills its worker (an abort inside libtorch, a failed allocation, a
//! stack overflow, a bus error) is recorded as a crash of that unit and counted toward its own
//! failures, instead of passing for an anonymous lease expiry that is retried forever.
//!
//! Before a compute thread runs a batch it writes `running-<pid>-<slot>.json` in the cache,
//! naming the units and their leases; the file goes when they return. A handler for SIGABRT,
//! SIGBUS, SIGFPE and SIGILL renames every live marker to `crashed-...json` (a rename is
//! async-signal-safe) and lets the signal kill the process as before. The next worker (or the
//! next `iscp run`) on the same cache reports the units of `crashed-` markers as failed; a
//! `running-` marker of a process that is gone without a signal (SIGKILL, a power cut) names no
//! culprit and is dropped: its leases expire as before.

use iscp_proto::v1::LeasedUnit;
use serde::{Deserialize, Serialize};
use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicPtr, AtomicUsize, Ordering};

/// A unit that was running when its process crashed, with the lease it held.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Crashed {
    pub sweep: String,
    pub unit_id: String,
    pub kind: String,
    pub lease_id: String,
    pub attempt: u64,
    pub worker_id: String,
    pub device: String,
}

impl Crashed {
    /// The failure recorded for it.
    pub fn message(&self, signal: &str) -> String {
        format!(
            "crashed: the worker process died ({signal}) while running this {} unit on {} \
             (an abort or a failed allocation inside libtorch, or a bug); counted as a failed \
             attempt",
            self.kind, self.device
        )
    }
}

/// The marker paths of one slot, as the signal handler reads them.
struct Paths {
    running: CString,
    crashed: CString,
}

const SLOTS: usize = 64;
static MARKERS: [AtomicPtr<Paths>; SLOTS] = [const { AtomicPtr::new(std::ptr::null_mut()) }; SLOTS];
static NEXT_SLOT: AtomicUsize = AtomicUsize::new(0);

fn folder(cache: &Path) -> PathBuf {
    cache.join("running")
}

/// One compute thread's marker.
pub struct Marker {
    running: PathBuf,
}

impl Marker {
    /// The marker of a new compute slot on `device` (its handler installed once per process).
    pub fn new(cache: &Path, device: &str) -> Marker {
        let dir = folder(cache);
        let _ = std::fs::create_dir_all(&dir);
        let slot = NEXT_SLOT.fetch_add(1, Ordering::SeqCst);
        let tag: String = device
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .collect();
        let name = format!("{}-{slot}-{tag}.json", std::process::id());
        let running = dir.join(format!("running-{name}"));
        let crashed = dir.join(format!("crashed-{name}"));
        if slot < SLOTS {
            let paths = Box::new(Paths {
                running: CString::new(running.as_os_str().as_bytes()).unwrap_or_default(),
                crashed: CString::new(crashed.as_os_str().as_bytes()).unwrap_or_default(),
            });
            // Leaked on purpose: the handler may read it until the process ends.
            MARKERS[slot].store(Box::into_raw(paths), Ordering::SeqCst);
            install_handler();
        }
        Marker { running }
    }

    /// Names the units about to run (best effort: a marker that cannot be written only loses the
    /// crash's attribution).
    pub fn start(&self, worker_id: &str, device: &str, units: &[LeasedUnit]) {
        let list: Vec<Crashed> = units
            .iter()
            .map(|u| Crashed {
                sweep: u.sweep.clone(),
                unit_id: u.unit_id.clone(),
                kind: u.kind().name().to_string(),
                lease_id: u.lease_id.clone(),
                attempt: u.attempt,
                worker_id: worker_id.to_string(),
                device: device.to_string(),
            })
            .collect();
        if let Ok(text) = serde_json::to_string(&list) {
            let _ = std::fs::write(&self.running, text);
        }
    }

    /// The units returned: nothing to attribute any more.
    pub fn finish(&self) {
        let _ = std::fs::remove_file(&self.running);
    }
}

/// The units of every crashed process's markers under `cache`, each marker removed once read;
/// markers of processes that ended without a crash are removed too. Markers of live processes
/// (another worker sharing the cache) are left alone.
pub fn take_crashed(cache: &Path) -> Vec<Crashed> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(folder(cache)) else {
        return out;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().to_string();
        let (crashed, rest) = match name.split_once('-') {
            Some(("crashed", rest)) => (true, rest),
            Some(("running", rest)) => (false, rest),
            _ => continue,
        };
        let pid = rest.split('-').next().and_then(|p| p.parse::<u32>().ok());
        let alive = pid.is_some_and(|p| {
            p == std::process::id() || Path::new("/proc").join(p.to_string()).exists()
        });
        if alive {
            continue;
        }
        if crashed {
            // A marker is small and written by this program; a larger one is not read.
            let text = std::fs::metadata(e.path())
                .ok()
                .filter(|m| m.len() < 16 << 20)
                .and_then(|_| std::fs::read_to_string(e.path()).ok());
            if let Some(units) = text.and_then(|t| serde_json::from_str::<Vec<Crashed>>(&t).ok()) {
                out.extend(units);
            }
        }
        let _ = std::fs::remove_file(e.path());
    }
    out
}

extern "C" fn on_fatal_signal(sig: libc::c_int) {
    for m in &MARKERS {
        let p = m.load(Ordering::SeqCst);
        if !p.is_null() {
            // SAFETY: `p` came from Box::into_raw and is never freed; rename is
            // async-signal-safe and fails harmlessly when the slot has no running marker.
            unsafe { libc::rename((*p).running.as_ptr(), (*p).crashed.as_ptr()) };
        }
    }
    // SAFETY: restores the default action and raises the signal again, so the process dies
    // exactly as it would have without this handler (core dump, exit status).
    unsafe {
        libc::signal(sig, libc::SIG_DFL);
        libc::raise(sig);
    }
}

fn install_handler() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        for sig in [libc::SIGABRT, libc::SIGBUS, libc::SIGFPE, libc::SIGILL] {
            // SAFETY: the handler only renames files and re-raises (async-signal-safe calls).
            unsafe {
                let mut action: libc::sigaction = std::mem::zeroed();
                action.sa_sigaction = on_fatal_signal as *const () as usize;
                action.sa_flags = libc::SA_RESETHAND;
                libc::sigemptyset(&mut action.sa_mask);
                libc::sigaction(sig, &action, std::ptr::null_mut());
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markers_of_crashed_processes_are_read_once_and_others_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let d = folder(dir.path());
        std::fs::create_dir_all(&d).unwrap();
        let unit = Crashed {
            sweep: "s".into(),
            unit_id: "u".into(),
            kind: "search".into(),
            lease_id: "l".into(),
            attempt: 2,
            worker_id: "w".into(),
            device: "cpu".into(),
        };
        let text = serde_json::to_string(&vec![unit.clone()]).unwrap();
        // pid 0 never names a live process in /proc.
        std::fs::write(d.join("crashed-0-0-cpu.json"), &text).unwrap();
        std::fs::write(d.join("running-0-1-cpu.json"), &text).unwrap();
        let mine = d.join(format!("crashed-{}-0-cpu.json", std::process::id()));
        std::fs::write(&mine, &text).unwrap();
        assert_eq!(take_crashed(dir.path()), vec![unit]);
        assert!(take_crashed(dir.path()).is_empty(), "read twice");
        assert!(mine.exists(), "a live process's marker was taken");
    }

    #[test]
    fn a_slot_marker_is_written_and_removed() {
        let dir = tempfile::tempdir().unwrap();
        let m = Marker::new(dir.path(), "cuda:0");
        m.start("w", "cuda:0", &[LeasedUnit::default()]);
        assert!(m.running.exists());
        m.finish();
        assert!(!m.running.exists());
    }
}
