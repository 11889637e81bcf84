//! Free space of the filesystem a run writes to: a run whose disk is full and that has stopped
//! moving ends with the path and the reason instead of waiting forever.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::time::Duration;

/// Below this many free bytes a run cannot record results (a ledger page, a part, a model).
pub const NEARLY_FULL: u64 = 1 << 20;

/// How long a run on a nearly full disk may go without any event before it is given up.
pub const STALL: Duration = Duration::from_secs(30);

/// Bytes an unprivileged writer may still use on the filesystem holding `path` (its nearest
/// existing ancestor); None when it cannot be asked.
pub fn free_bytes(path: &Path) -> Option<u64> {
    let existing = path.ancestors().find(|p| p.exists())?;
    let c = CString::new(existing.as_os_str().as_bytes()).ok()?;
    // SAFETY: `c` is a valid NUL-terminated path and `st` a zeroed statvfs the call fills.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statvfs(c.as_ptr(), &mut st) } != 0 {
        return None;
    }
    Some(st.f_bavail as u64 * st.f_frsize as u64)
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_free_space_of_a_real_folder_is_known() {
        let dir = std::env::temp_dir();
        assert!(super::free_bytes(&dir).is_some_and(|b| b > 0));
        assert!(super::free_bytes(&dir.join("not/there/yet")).is_some());
    }
}
