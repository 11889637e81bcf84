//! The units that finish a sweep, from the parts their lease carries: a setting's pictures (PNG
//! files), its backdoor scan, and transfers of its best patterns to another setting's model.

use super::{encode, Executor, Failure, Outcome, Output, SpecCtx};
use iscp_engine::data::DataSplits;
use iscp_proto::v1::{FailureReason, LeasedUnit};
use iscp_proto::Table;
use iscp_sweep::audit::{describe, run_audit};
use iscp_sweep::scan::{scan_batch, verdict};
use iscp_sweep::spec::SettingSpec;
use iscp_sweep::tables::{audit_batch, detection_batch};
use iscp_sweep::units::{AuditParams, PicturesParams, Received, ScanParams, TransferParams};
use iscp_sweep::work::{
    detect_setting, draw_comparisons, draw_setting, guarded, scan_setting, transfer_batch,
    transfer_rows, Inputs,
};

impl Executor {
    /// A pictures, scan, transfer or audit unit.
    pub(super) fn finishing(
        &mut self,
        ctx: &SpecCtx,
        data: &DataSplits,
        u: &LeasedUnit,
    ) -> Outcome {
        let (setting, received) = Self::resolve(ctx, u)?;
        let inputs = self.inputs(u);
        match &received {
            Received::Pictures(p) => self.pictures(ctx, data, &inputs, p),
            Received::Scan(p) => self.scan(data, &inputs, u, setting, p),
            Received::Audit(p) => self.audit(&inputs, u, p),
            Received::Transfer(p) => self.transfer(ctx, data, &inputs, u, setting, p),
            _ => Err(Failure::new(
                FailureReason::VersionSkew,
                "not a pictures, scan, transfer or audit unit",
            )),
        }
    }

    /// Where the unit reads the parts of the units it depends on.
    fn inputs(&self, u: &LeasedUnit) -> Inputs {
        match &self.parts {
            Some(source) => {
                let (source, sweep) = (source.clone(), u.sweep.clone());
                Inputs::fetched(Box::new(move |table, unit| source(&sweep, table, unit)))
            }
            // An executor without a coordinator (tests) reads nothing.
            None => Inputs::new(std::iter::empty()),
        }
    }

    /// A pictures unit: the setting's own pictures and its comparisons, as PNG files.
    fn pictures(
        &self,
        ctx: &SpecCtx,
        data: &DataSplits,
        inputs: &Inputs,
        p: &PicturesParams,
    ) -> Outcome {
        let files = guarded(|| {
            let experiment = ctx.spec.spec.name.get_ref();
            let mut f = draw_setting(inputs, experiment, p, &data.test)?;
            f.extend(draw_comparisons(inputs, experiment, p, &data.test)?);
            Ok(f)
        })?;
        self.note(format!("{}: {} pictures", p.setting, files.len()));
        Ok(Output {
            files,
            ..Output::default()
        })
    }

    /// A scan unit: the setting's best patterns scanned for a backdoor (and its detection row when
    /// the unit names searches).
    fn scan(
        &self,
        data: &DataSplits,
        inputs: &Inputs,
        u: &LeasedUnit,
        setting: &SettingSpec,
        p: &ScanParams,
    ) -> Outcome {
        let groups = guarded(|| scan_setting(inputs, &p.setting, &p.evaluations, p.size))?;
        let mut rows = Vec::new();
        for (group, scan) in groups {
            self.note(format!("scan {group}: {}", verdict(&scan)));
            rows.extend(scan);
        }
        if rows.is_empty() {
            return Err(Failure::new(
                FailureReason::InvalidInput,
                format!(
                    "setting `{}` has no best pattern at the scan size {}",
                    p.setting, p.size
                ),
            ));
        }
        let mut out = Output::part(encode(Table::Scan, &scan_batch(&rows))?);
        if !p.searches.is_empty() {
            let shape = data.test.image_shape();
            let row = guarded(|| detect_setting(inputs, &u.unit_id, setting, p, shape))?;
            if let Some(row) = row {
                out.parts
                    .push(encode(Table::Detection, &detection_batch(&[row]))?);
            }
        }
        Ok(out)
    }

    /// An audit unit: the whole population of models, audited; the rows it computes itself (the
    /// per-class readings, the combined detector's) go to `detection` under the unit's id.
    fn audit(&self, inputs: &Inputs, u: &LeasedUnit, p: &AuditParams) -> Outcome {
        let mut out = guarded(|| run_audit(inputs, p))?;
        for line in describe(&out.rows) {
            self.note(format!("audit: {line}"));
        }
        let mut parts = vec![encode(Table::Audit, &audit_batch(&out.rows))?];
        if !out.derived.is_empty() {
            for r in &mut out.derived {
                r.unit_id = u.unit_id.clone();
            }
            parts.push(encode(Table::Detection, &detection_batch(&out.derived))?);
        }
        Ok(Output {
            parts,
            files: out.files,
            ..Output::default()
        })
    }

    /// A transfer unit: a setting's best patterns measured on another setting's model.
    fn transfer(
        &mut self,
        ctx: &SpecCtx,
        data: &DataSplits,
        inputs: &Inputs,
        u: &LeasedUnit,
        setting: &SettingSpec,
        p: &TransferParams,
    ) -> Outcome {
        self.model_for(ctx, data, setting, &p.to_prepare_id, &u.model_sha256)?;
        let ev = self.evaluator(ctx, data);
        let rows =
            guarded(|| transfer_rows(inputs, &p.from, &p.to, &p.evaluations, &ev, &data.test))?;
        if rows.is_empty() {
            return Err(Failure::new(
                FailureReason::Internal,
                format!("no best pattern of `{}` came with the lease", p.from),
            ));
        }
        let finite: Vec<f64> = rows
            .iter()
            .map(|r| r.ratio)
            .filter(|r| r.is_finite())
            .collect();
        self.note(format!(
            "transfer {} → {}: {} patterns, mean PW ratio {:.3}",
            p.from,
            p.to,
            rows.len(),
            finite.iter().sum::<f64>() / finite.len().max(1) as f64
        ));
        Ok(Output::part(encode(
            Table::Transfer,
            &transfer_batch(&rows),
        )?))
    }
}
