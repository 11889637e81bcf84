//! The derive-data unit and its use: rebuilding a shard of the training set by representation
//! inversion (D_R / D_NR), and assembling the shards into the training set a model trains on.

use crate::tables::{read_derived_rows, DerivedRow};
use crate::units::DeriveParams;
use crate::{Result, SweepError};
use iscp_engine::data::Dataset;
use iscp_engine::model::Model;
use iscp_engine::rng::{mix, Rng};
use iscp_engine::robust_data::{invert_representations, representation_distance, InversionConfig};
use iscp_engine::EngineError;
use std::path::Path;
use tch::{Device, Kind, Tensor};

/// The training row image `index` starts from: another image, drawn from the seed and the index
/// alone (so any shard size gives the same starts).
pub fn start_index(index: usize, train: usize, seed: u64) -> usize {
    if train < 2 {
        return index;
    }
    let offset = 1 + Rng::new(mix(&[seed, 0xD1E7, index as u64])).below(train - 1);
    (index + offset) % train
}

/// Rebuilds training images `start..start + count` on `model` (the source setting's), in chunks
/// of `batch`; `progress(step, total)` counts inversion steps over the whole shard.
pub fn derive_shard(
    unit_id: &str,
    p: &DeriveParams,
    model: &Model,
    train: &Dataset,
    device: Device,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<Vec<DerivedRow>> {
    let n = train.len();
    if p.start + p.count > n {
        return Err(EngineError::Invalid(format!(
            "shard {}..{} lies outside the {n} training images",
            p.start,
            p.start + p.count
        ))
        .into());
    }
    let [c, h, w] = train.image_shape();
    let labels = train.labels_vec();
    let cfg = InversionConfig {
        steps: p.steps,
        step_size: p.step_size,
    };
    let chunks: Vec<Vec<usize>> = (p.start..p.start + p.count)
        .collect::<Vec<_>>()
        .chunks(p.batch.max(1))
        .map(|c| c.to_vec())
        .collect();
    let total = chunks.len() * p.steps;
    let mut rows = Vec::with_capacity(p.count);
    for (k, chunk) in chunks.iter().enumerate() {
        let starts: Vec<usize> = chunk.iter().map(|&i| start_index(i, n, p.seed)).collect();
        let pick = |idx: &[usize]| {
            let idx: Vec<i64> = idx.iter().map(|&i| i as i64).collect();
            train
                .images
                .index_select(0, &Tensor::from_slice(&idx))
                .to_device(device)
        };
        let (targets, from) = (pick(chunk), pick(&starts));
        let before = representation_distance(model, &from, &targets)?;
        let rebuilt = invert_representations(model, &targets, &from, &cfg, &mut |s, _| {
            progress(k * p.steps + s, total)
        })?;
        let after = representation_distance(model, &rebuilt, &targets)?;
        let pixels = Vec::<f32>::try_from(
            rebuilt
                .to_device(Device::Cpu)
                .to_kind(Kind::Float)
                .flatten(0, -1),
        )
        .map_err(EngineError::from)?;
        let per = (c * h * w) as usize;
        for (j, &i) in chunk.iter().enumerate() {
            rows.push(DerivedRow {
                unit_id: unit_id.to_string(),
                setting: p.setting.clone(),
                source_setting: p.source.clone(),
                index: i as i64,
                label: labels[i],
                start_index: starts[j] as i64,
                distance_start: before[j],
                distance_end: after[j],
                image: pixels[j * per..(j + 1) * per].to_vec(),
                channels: c,
                height: h,
                width: w,
            });
        }
    }
    Ok(rows)
}

/// The training set a derived setting trains on: the rows of its shards' part files, in order.
pub fn assemble_derived(parts: &[impl AsRef<Path>], class_names: Vec<String>) -> Result<Dataset> {
    let mut pixels = Vec::new();
    let mut labels = Vec::new();
    let mut shape = None;
    for part in parts {
        let part = part.as_ref();
        let mut rows = read_derived_rows(part)?;
        rows.sort_by_key(|r| r.index);
        for r in rows {
            let s = [r.channels, r.height, r.width];
            if *shape.get_or_insert(s) != s || r.image.len() as i64 != s.iter().product::<i64>() {
                return Err(SweepError::table(
                    part,
                    format!("image {} has shape {s:?}, unlike the others", r.index),
                ));
            }
            pixels.extend_from_slice(&r.image);
            labels.push(r.label);
        }
    }
    let Some([c, h, w]) = shape else {
        return Err(EngineError::Invalid("the derived training set is empty".into()).into());
    };
    let n = labels.len() as i64;
    Ok(Dataset::new(
        Tensor::from_slice(&pixels).view([n, c, h, w]),
        Tensor::from_slice(&labels),
        class_names,
    )?)
}
