//! The in-memory dataset type shared by every loader.

use crate::{EngineError, Result};
use tch::{Kind, Tensor};

/// Images (N×C×H×W, float32 in [0,1], on the CPU) with int64 labels and class names.
#[derive(Debug)]
pub struct Dataset {
    pub images: Tensor,
    pub labels: Tensor,
    pub class_names: Vec<String>,
}

/// A training and a test set over the same classes.
#[derive(Debug)]
pub struct DataSplits {
    pub train: Dataset,
    pub test: Dataset,
}

impl Dataset {
    /// Builds a dataset, checking shapes, value range and labels.
    pub fn new(images: Tensor, labels: Tensor, class_names: Vec<String>) -> Result<Self> {
        let size = images.size();
        if size.len() != 4 {
            return Err(EngineError::Invalid(format!(
                "images must be N×C×H×W, got shape {size:?}"
            )));
        }
        if labels.size() != [size[0]] {
            return Err(EngineError::Invalid(format!(
                "{} images but labels of shape {:?}",
                size[0],
                labels.size()
            )));
        }
        let ds = Dataset {
            images: images.to_kind(Kind::Float),
            labels: labels.to_kind(Kind::Int64),
            class_names,
        };
        if let Some(&bad) = ds
            .labels_vec()
            .iter()
            .find(|&&l| l < 0 || l as usize >= ds.class_names.len())
        {
            return Err(EngineError::Invalid(format!(
                "label {bad} outside the {} classes",
                ds.class_names.len()
            )));
        }
        Ok(ds)
    }

    pub fn len(&self) -> usize {
        self.images.size()[0] as usize
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn num_classes(&self) -> usize {
        self.class_names.len()
    }

    /// (C, H, W) of one image.
    pub fn image_shape(&self) -> [i64; 3] {
        let s = self.images.size();
        [s[1], s[2], s[3]]
    }

    pub fn labels_vec(&self) -> Vec<i64> {
        Vec::<i64>::try_from(&self.labels).unwrap_or_default()
    }

    /// The rows at `indices` (a copy).
    pub fn subset(&self, indices: &[i64]) -> Dataset {
        let idx = Tensor::from_slice(indices);
        Dataset {
            images: self.images.index_select(0, &idx),
            labels: self.labels.index_select(0, &idx),
            class_names: self.class_names.clone(),
        }
    }

    /// Default names `0`, `1`, … for `n` classes.
    pub fn numbered_classes(n: usize) -> Vec<String> {
        (0..n).map(|i| i.to_string()).collect()
    }
}
