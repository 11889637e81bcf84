//! What a unit works on, in words: the setting, class (and its name), canvas, training epochs and
//! batch, decoded from the parameters a lease carries. Progress lines are built from these typed
//! fields, never by parsing text.

use crate::units::{Received, UnitKind};
use iscp_proto::v1::UnitLabel;

/// The label of a unit of `kind` whose parameters are `params_json`; `class_names` name its
/// sweep's classes (empty: unknown). None for parameters that do not decode (noop units).
pub fn label(kind: UnitKind, params_json: &str, class_names: &[String]) -> Option<UnitLabel> {
    let received = Received::decode(kind, params_json).ok()?;
    let mut l = UnitLabel {
        setting: received.setting().to_string(),
        class: -1,
        ..UnitLabel::default()
    };
    let class = |l: &mut UnitLabel, c: i64| {
        l.class = c;
        l.class_name = usize::try_from(c)
            .ok()
            .and_then(|c| class_names.get(c))
            .cloned()
            .unwrap_or_default();
    };
    match &received {
        Received::Prepare(_) => {
            // The setting travels whole in a prepare unit's parameters.
            let v: serde_json::Value = serde_json::from_str(params_json).ok()?;
            let s = &v[1]["setting"];
            let d = iscp_engine::train::TrainConfig::default();
            l.given_model = !s["model"].is_null();
            l.epochs = s["train"]["epochs"].as_u64().unwrap_or(d.epochs as u64) as u32;
            l.images_per_step = s["train"]["batch"].as_u64().unwrap_or(d.batch as u64);
        }
        Received::Derive(d) => {
            l.setting = d.setting.clone();
            l.peer = d.source.clone();
            l.images_per_step = d.batch as u64;
        }
        Received::Search(p) => {
            class(&mut l, p.class);
            l.canvas = p.canvas_kind.name().to_string();
            l.epochs = p.epochs as u32;
        }
        Received::Evaluate(p) => class(&mut l, p.class),
        Received::Baseline(p) => {
            class(&mut l, p.class);
            l.method = p.method.clone();
        }
        Received::Pictures(_) | Received::Scan(_) | Received::Audit(_) => {}
        Received::Cleanse(c) => l.epochs = c.budget.epochs as u32,
        Received::Margin(_) => {}
        Received::UapScan(u) => l.epochs = u.budget.epochs as u32,
        Received::Transfer(t) => {
            l.setting = t.from.clone();
            l.peer = t.to.clone();
        }
    }
    Some(l)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::LoadedSpec;
    use crate::units::plan;

    const SPEC: &str = r#"
name = "t"
[data]
kind = "synthetic"
classes = 3
size = 12
train = 30
test = 30
[[settings]]
name = "natural"
kind = "natural"
train = { epochs = 2, batch = 16 }
[search]
classes = "all"
canvases = [{ kind = "positive", n = 1 }, { kind = "white" }]
alphas = [0.2]
epochs = 1
sizes = [0.05]
"#;

    #[test]
    fn labels_name_setting_class_canvas_and_training() {
        let spec = LoadedSpec::parse_for_plan(SPEC, "t.toml").unwrap();
        let plans = plan(&spec, 3, 30);
        let names: Vec<String> = ["cat", "dog", "owl"].map(String::from).to_vec();
        let p = &plans[0];
        let prep = label(p.prepare.kind, &p.prepare.params_json(), &names).unwrap();
        assert_eq!(prep.setting, "natural");
        assert_eq!((prep.epochs, prep.images_per_step), (2, 16));
        assert!(!prep.given_model);
        let mut seen = Vec::new();
        for u in &p.searches {
            let l = label(u.kind, &u.params_json(), &names).unwrap();
            assert_eq!(l.class_name, names[l.class as usize]);
            seen.push((l.class, l.canvas));
        }
        seen.sort();
        seen.dedup();
        assert_eq!(seen.len(), 6, "3 classes × positive/white: {seen:?}");
        let e = &p.evaluations[1];
        let l = label(e.kind, &e.params_json(), &[]).unwrap();
        assert!(l.class >= 0 && l.class_name.is_empty(), "{l:?}");
    }
}
