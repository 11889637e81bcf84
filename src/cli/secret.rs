//! Tokens read from files (`--token-file`), so that a secret never stands on a command line where
//! `ps` shows it: the file must be readable by its owner only (mode 0600 or stricter).

use anyhow::{bail, Context};
use std::path::Path;

/// The token in `path`: its first line, trimmed. Refused when the file has any permission bit
/// for its group or others (0600 and 0400 pass), or is empty.
pub fn read_token_file(path: &Path) -> anyhow::Result<String> {
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::metadata(path).with_context(|| format!("reading {}", path.display()))?;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        bail!(
            "{}: a token file must be readable by its owner only (mode {mode:03o}; run `chmod 600 {}`)",
            path.display(),
            path.display()
        );
    }
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let token = text.lines().next().unwrap_or_default().trim().to_string();
    if token.is_empty() {
        bail!("{}: the token file is empty", path.display());
    }
    Ok(token)
}

/// The token: from `--token-file` (or `ISCP_TOKEN_FILE`) when given, else `--token` (or
/// `ISCP_TOKEN`). The file wins, so that an `ISCP_TOKEN` left in a batch job's environment
/// does not stand in the way of the file its script names.
pub fn token(
    inline: &Option<String>,
    file: &Option<std::path::PathBuf>,
) -> anyhow::Result<Option<String>> {
    match (file, inline) {
        (Some(f), _) => read_token_file(f).map(Some),
        (None, t) => Ok(t.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn a_token_file_must_be_private_and_not_empty() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("token");
        std::fs::write(&p, "s3cret\n").unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = read_token_file(&p).unwrap_err().to_string();
        assert!(e.contains("chmod 600"), "{e}");
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(read_token_file(&p).unwrap(), "s3cret");
        std::fs::write(&p, "  \n").unwrap();
        assert!(read_token_file(&p)
            .unwrap_err()
            .to_string()
            .contains("empty"));
    }
}
