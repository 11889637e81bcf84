//! A command's `--data` argument as a spec's `[data]` table: a TOML file holding one, or a folder
//! whose kind is given (`--data-kind`) or detected from its files.

use anyhow::{bail, Context};
use std::path::Path;

/// The `[data]` table `data` names: the table of a `.toml` file, else a folder's kind and path.
pub fn data_table(data: &Path, kind: Option<&str>) -> anyhow::Result<toml::Table> {
    if data.extension().is_some_and(|e| e == "toml") {
        let text = std::fs::read_to_string(data).with_context(|| data.display().to_string())?;
        let mut file: toml::Table =
            toml::from_str(&text).with_context(|| format!("{}: not TOML", data.display()))?;
        return match file.remove("data") {
            Some(toml::Value::Table(t)) => Ok(t),
            _ => bail!("{}: no [data] table", data.display()),
        };
    }
    let kind = match kind {
        Some(k) => k,
        None if data.join("test_batch.bin").exists() => "cifar10",
        None if ["t10k-images-idx3-ubyte", "t10k-images-idx3-ubyte.gz"]
            .iter()
            .any(|f| data.join(f).exists()) =>
        {
            "idx"
        }
        None => bail!(
            "{}: no CIFAR-10 batches or IDX files found; pass --data-kind or a TOML [data] file",
            data.display()
        ),
    };
    // Absolute: a spec written with it (`iscp audit`) runs from any folder.
    let path = data
        .canonicalize()
        .with_context(|| format!("the data folder {}", data.display()))?;
    let mut t = toml::Table::new();
    t.insert("kind".into(), kind.into());
    t.insert("path".into(), path.to_string_lossy().to_string().into());
    Ok(t)
}
