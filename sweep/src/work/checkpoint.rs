//! Per-epoch training checkpoints, so a prepare unit that is run again resumes from its last
//! finished epoch instead of epoch 0, with its optimiser's state, exactly:
//! `artifacts/checkpoints/<sweep>/<unit id>/epoch-<n>.{iscpt,json}` (by sweep too: two sweeps may
//! train units of the same id on one worker at once). An `.iscpm` there is an older version's
//! checkpoint (weights only).

use crate::{Result, SweepError};
use iscp_engine::model::Model;
use iscp_engine::train::EpochStats;
use iscp_engine::train_state::{load_train_state, save_train_state, OptimState};
use std::path::PathBuf;
use tch::Device;

/// A checkpoint just written.
#[derive(Debug, Clone)]
pub struct Saved {
    /// Epochs finished (the last one's index + 1).
    pub epochs_done: usize,
    /// The checkpoint file (model and optimiser state).
    pub model: PathBuf,
    pub stats_json: String,
}

/// Where a training resumes: the last checkpoint's model, optimiser and epochs.
pub struct Resumed {
    pub model: Model,
    pub optim: Option<OptimState>,
    pub stats: Vec<EpochStats>,
}

pub struct Checkpoints {
    dir: PathBuf,
}

impl Checkpoints {
    pub fn new(artifacts: &std::path::Path, unit: &iscp_proto::UnitKey) -> Self {
        Checkpoints {
            dir: artifacts
                .join("checkpoints")
                .join(unit.sweep.as_str())
                .join(unit.unit.as_str()),
        }
    }

    fn epochs(&self) -> Vec<usize> {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return vec![];
        };
        let mut v: Vec<usize> = entries
            .filter_map(|e| {
                e.ok()?
                    .file_name()
                    .to_str()?
                    .strip_prefix("epoch-")?
                    .strip_suffix(".json")?
                    .parse()
                    .ok()
            })
            .collect();
        v.sort();
        v
    }

    /// The model after the last checkpointed epoch, its optimiser's state (none in an older
    /// version's checkpoint) and the stats of every epoch up to it.
    pub fn latest(&self, device: Device) -> Result<Option<Resumed>> {
        let Some(&n) = self.epochs().last() else {
            return Ok(None);
        };
        let json = self.dir.join(format!("epoch-{n}.json"));
        let text = std::fs::read_to_string(&json).map_err(|e| SweepError::io(&json, e))?;
        let stats: Vec<EpochStats> =
            serde_json::from_str(&text).map_err(|e| SweepError::table(&json, e))?;
        let state = self.dir.join(format!("epoch-{n}.iscpt"));
        let older = self.dir.join(format!("epoch-{n}.iscpm"));
        let file = if state.exists() { state } else { older };
        let (model, optim) = load_train_state(&file, device)?;
        Ok(Some(Resumed {
            model,
            optim,
            stats,
        }))
    }

    /// How many epochs the latest checkpoint here holds (0: none; epochs count from 0).
    pub fn epochs_done(&self) -> usize {
        self.epochs().last().map_or(0, |e| e + 1)
    }

    /// Installs a checkpoint made elsewhere (another worker's attempt) after `epochs_done` epochs,
    /// unless one at least as recent is already here.
    pub fn install(
        &self,
        epochs_done: usize,
        model: &std::path::Path,
        stats_json: &str,
    ) -> Result<()> {
        if epochs_done == 0 || self.epochs_done() >= epochs_done {
            return Ok(());
        }
        let epoch = epochs_done - 1;
        std::fs::create_dir_all(&self.dir).map_err(|e| SweepError::io(&self.dir, e))?;
        let dest = self.dir.join(format!("epoch-{epoch}.iscpt"));
        std::fs::copy(model, &dest).map_err(|e| SweepError::io(model, e))?;
        let json = self.dir.join(format!("epoch-{epoch}.json"));
        std::fs::write(&json, stats_json).map_err(|e| SweepError::io(&json, e))?;
        Ok(())
    }

    /// Saves the model and optimiser after `stats.last()`'s epoch; the JSON is written last, so a
    /// checkpoint counts only once both files are whole. Older checkpoints are removed. Returns
    /// the checkpoint file and the stats JSON (None when there is nothing to save).
    pub fn save(
        &self,
        model: &Model,
        optim: &OptimState,
        stats: &[EpochStats],
    ) -> Result<Option<Saved>> {
        let Some(last) = stats.last() else {
            return Ok(None);
        };
        std::fs::create_dir_all(&self.dir).map_err(|e| SweepError::io(&self.dir, e))?;
        let file = self.dir.join(format!("epoch-{}.iscpt", last.epoch));
        save_train_state(model, optim, &file)?;
        let json = self.dir.join(format!("epoch-{}.json", last.epoch));
        let tmp = json.with_extension("json.tmp");
        let text = serde_json::to_string(stats).map_err(|e| SweepError::table(&json, e))?;
        std::fs::write(&tmp, &text)
            .and_then(|_| std::fs::rename(&tmp, &json))
            .map_err(|e| {
                let _ = std::fs::remove_file(&tmp);
                SweepError::io(&json, e)
            })?;
        for old in self.epochs().into_iter().filter(|&e| e < last.epoch) {
            let _ = std::fs::remove_file(self.dir.join(format!("epoch-{old}.json")));
            let _ = std::fs::remove_file(self.dir.join(format!("epoch-{old}.iscpt")));
            let _ = std::fs::remove_file(self.dir.join(format!("epoch-{old}.iscpm")));
        }
        Ok(Some(Saved {
            epochs_done: last.epoch + 1,
            model: file,
            stats_json: text,
        }))
    }

    /// Removes the checkpoints once the finished model is stored.
    pub fn clear(&self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
