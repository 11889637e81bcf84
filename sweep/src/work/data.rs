//! Loads the spec's dataset with the right loader.

use crate::spec::{DataKind, DataSpec};
use crate::Result;
use iscp_engine::data::{
    load_cifar10_dir, load_idx_dir, load_image_folder, synthetic, DataSplits, ImageFolderConfig,
    SyntheticConfig, FASHION_MNIST_CLASSES,
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
        DataKind::ImageFolder => {
            let cfg = ImageFolderConfig {
                resize: d.resize.unwrap_or(256),
                crop: d.crop.unwrap_or(224),
                classes: d.classes,
                per_class: d.per_class,
            };
            let test = load_image_folder(path.as_deref().expect("checked"), &cfg)?;
            // Without a training folder (imported models only) the test set stands in.
            let train = match &d.train_path {
                Some(t) => load_image_folder(t.get_ref(), &cfg)?,
                None => test.subset(&(0..test.len() as i64).collect::<Vec<_>>()),
            };
            DataSplits { train, test }
        }
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
    if let (Some(n), DataKind::Cifar10 | DataKind::Synthetic | DataKind::ImageFolder) =
        (names, d.kind)
    {
        splits.train.class_names = n.clone();
        splits.test.class_names = n;
    }
    Ok(splits)
}
