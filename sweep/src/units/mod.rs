//! Units of work and their ids: a spec expands into derive-data, prepare-model, search, evaluate and
//! baseline units, and the units that finish it (pictures, scan, transfer), whose ids hash their
//! kind and parameters, so the same spec always yields the same ids. The parameters of each kind
//! are in `params`, the planners (one per unit kind) in `planners` and `finishing`.

mod finishing;
mod params;
mod planners;

pub use params::{
    AuditParams, BaselineParams, CleanseParams, DeriveParams, EvaluateParams, MarginParams,
    PicturesParams, PrepareNamed, PrepareParams, ScanParams, SearchParams, TransferParams,
    UapScanParams, UnitParams, Variant,
};
pub use planners::{plan, SettingPlan};

use serde::Serialize;
use sha2::{Digest, Sha256};

/// What a unit does: the wire's enum, with every per-kind fact (`iscp_proto`'s `unit_kind.rs`).
pub use iscp_proto::v1::UnitKind;

#[derive(Debug, Clone, PartialEq)]
pub struct Unit {
    pub id: String,
    pub kind: UnitKind,
    pub deps: Vec<String>,
    pub params: UnitParams,
}

/// The exact text a unit's id hashes: the JSON of its kind and parameters. It travels with the
/// unit (the ledger keeps it, a lease carries it), so a worker checks the id it computes.
pub fn params_json(kind: UnitKind, params: &impl Serialize) -> String {
    // The kind by its name: the same JSON as when the kind was a serde enum (ids unchanged).
    serde_json::to_string(&(kind.name(), params)).expect("parameters serialise")
}

/// A unit's id from its parameters' JSON: the first 16 hex digits of its sha256.
pub fn id_of(params_json: &str) -> String {
    hex::encode(&Sha256::digest(params_json.as_bytes())[..8])
}

/// First 16 hex digits of sha256 over the kind and canonical JSON of the parameters.
pub fn unit_id(kind: UnitKind, params: &impl Serialize) -> String {
    id_of(&params_json(kind, params))
}

impl Unit {
    /// The JSON this unit's id hashes.
    pub fn params_json(&self) -> String {
        params_json(self.kind, &self.params)
    }
}

/// A unit's parameters as a worker receives them with its lease: the same type as planned, but a
/// prepare unit's are read as its setting's name (`PrepareNamed`).
pub type Received = UnitParams<PrepareNamed>;

impl Received {
    /// Decodes `params_json` (as `params_json` wrote it) for a unit of `kind`.
    pub fn decode(kind: UnitKind, params_json: &str) -> std::result::Result<Received, String> {
        let (k, v): (String, serde_json::Value) =
            serde_json::from_str(params_json).map_err(|e| format!("unreadable parameters: {e}"))?;
        if k != kind.name() {
            return Err(format!(
                "parameters of a {} unit for a {} unit",
                k.escape_debug(),
                kind.name()
            ));
        }
        let bad = |e: serde_json::Error| format!("{} parameters: {e}", kind.name());
        Ok(match kind {
            UnitKind::DeriveData => Received::Derive(serde_json::from_value(v).map_err(bad)?),
            UnitKind::Search => Received::Search(serde_json::from_value(v).map_err(bad)?),
            UnitKind::Evaluate => Received::Evaluate(serde_json::from_value(v).map_err(bad)?),
            UnitKind::Baseline => Received::Baseline(serde_json::from_value(v).map_err(bad)?),
            UnitKind::Pictures => Received::Pictures(serde_json::from_value(v).map_err(bad)?),
            UnitKind::Scan => Received::Scan(serde_json::from_value(v).map_err(bad)?),
            UnitKind::Transfer => Received::Transfer(serde_json::from_value(v).map_err(bad)?),
            UnitKind::Cleanse => Received::Cleanse(serde_json::from_value(v).map_err(bad)?),
            UnitKind::MaxMargin => Received::Margin(serde_json::from_value(v).map_err(bad)?),
            UnitKind::UapScan => Received::UapScan(serde_json::from_value(v).map_err(bad)?),
            UnitKind::Audit => Received::Audit(serde_json::from_value(v).map_err(bad)?),
            UnitKind::PrepareModel => Received::Prepare(PrepareNamed {
                setting: v["setting"]["name"]
                    .as_str()
                    .ok_or("prepare-model parameters without a setting name")?
                    .to_string(),
            }),
            UnitKind::Noop | UnitKind::Unspecified => {
                return Err(format!("a {kind} unit has no parameters"))
            }
        })
    }

    /// The name of the setting whose model this unit runs on (a derive unit: its source
    /// setting, whose model it inverts; a transfer: the setting it evaluates on; pictures and a
    /// scan: the setting they draw or scan, without its model).
    pub fn setting(&self) -> &str {
        match self {
            Received::Derive(d) => &d.source,
            Received::Prepare(p) => &p.setting,
            Received::Search(p) => &p.setting,
            Received::Evaluate(p) => &p.setting,
            Received::Baseline(p) => &p.setting,
            Received::Pictures(p) => &p.setting,
            Received::Scan(p) => &p.setting,
            Received::Transfer(p) => &p.to,
            Received::Cleanse(p) => &p.setting,
            Received::Margin(p) => &p.setting,
            Received::UapScan(p) => &p.setting,
            // The audit reads the whole population; it names no setting.
            Received::Audit(_) => "",
        }
    }
}

/// A planned unit: its id hashes its kind and parameters (for the planners).
fn unit(kind: UnitKind, params: UnitParams, deps: Vec<String>) -> Unit {
    Unit {
        id: unit_id(kind, &params),
        kind,
        deps,
        params,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use iscp_engine::canvas::CanvasKind;
    use iscp_engine::search::Objective;

    #[test]
    fn received_parameters_decode_to_what_was_planned() {
        let p = SearchParams {
            setting: "natural".into(),
            prepare_id: "0123456789abcdef".into(),
            class: 2,
            canvas_kind: CanvasKind::White,
            canvas_rank: 0,
            alpha: 0.2,
            objective: Objective::Released,
            epochs: 5,
            batch: 4,
            lr: 0.02,
            subset_fraction: 0.2,
            seed: 1,
            variant: Variant {
                tv_beta: 0.0,
                learn_canvas: true,
            },
        };
        let planned: UnitParams = UnitParams::Search(p.clone());
        let json = params_json(UnitKind::Search, &planned);
        assert_eq!(id_of(&json), unit_id(UnitKind::Search, &planned));
        assert_eq!(
            Received::decode(UnitKind::Search, &json).unwrap(),
            Received::Search(p)
        );
        assert!(Received::decode(UnitKind::Evaluate, &json)
            .unwrap_err()
            .contains("parameters of a search unit"));
        assert!(Received::decode(UnitKind::Search, "[1,").is_err());
    }
}
