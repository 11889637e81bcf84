//! Loads the spec's dataset with the right loader.

use crate::spec::{DataKind, DataSpec};
use crate::Result;
use iscp_engine::data::{
    load_cifar10_dir, load_idx_dir, synthetic, DataSplits, SyntheticConfig, FASHION_MNIST_CLASSES,
};

/// Reads (or generates) the training and test sets the spec names.
pub fn load_data(d: &DataSpec, spec_seed: u64) -> Result<DataSplits> {
    let path = d.path.as_ref().map(|p| p.get_ref().clone());
    let names = d.class_names.clone();
    let mut splits = match d.kind {
        DataKind::FashionMnist => load_idx_dir(
            path.as_deref().expect("checked"),
            Some(names.clone().unwrap_or_else(|| {
                FASHION_MNIST_CLASSES
                    .iter()
                    .map(|s| s.to_string())
                    .collect()
            })),
        )?,
        DataKind::Idx => load_idx_dir(path.as_deref().expect("checked"), names.clone())?,
        DataKind::Cifar10 => load_cifar10_dir(path.as_deref().expect("checked"))?,
        DataKind::Synthetic => {
            let def = SyntheticConfig::default();
            synthetic(&SyntheticConfig {
                classes: d.classes.unwrap_or(def.classes),
                size: d.size.unwrap_or(def.size),
                channels: d.channels.unwrap_or(def.channels),
                train: d.train.unwrap_or(def.train),
                test: d.test.unwrap_or(def.test),
                seed: d.seed.unwrap_or(spec_seed),
            })?
        }
    };
    if let (Some(n), DataKind::Cifar10 | DataKind::Synthetic) = (names, d.kind) {
        splits.train.class_names = n.clone();
        splits.test.class_names = n;
    }
    Ok(splits)
}
