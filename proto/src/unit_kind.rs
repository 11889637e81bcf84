//! What a unit does, named once: one `UnitKind` (the wire's enum) carries every per-kind fact
//! from the wire to the scheduler and the worker: its name, the tables it writes, whether it
//! finishes a sweep, whether it goes one per lease.

use crate::v1;

impl v1::UnitKind {
    /// Every kind a unit can have (`noop` last).
    pub const ALL: [v1::UnitKind; 13] = [
        v1::UnitKind::DeriveData,
        v1::UnitKind::PrepareModel,
        v1::UnitKind::Search,
        v1::UnitKind::Evaluate,
        v1::UnitKind::Baseline,
        v1::UnitKind::Pictures,
        v1::UnitKind::Scan,
        v1::UnitKind::Transfer,
        v1::UnitKind::Cleanse,
        v1::UnitKind::MaxMargin,
        v1::UnitKind::UapScan,
        v1::UnitKind::Audit,
        v1::UnitKind::Noop,
    ];

    /// Every kind a spec plans, in plan order: all but `noop` (the coordinator's benchmark).
    pub const PLANNED: [v1::UnitKind; 12] = {
        let mut out = [v1::UnitKind::Noop; 12];
        let mut i = 0;
        while i < out.len() {
            out[i] = Self::ALL[i];
            i += 1;
        }
        out
    };

    /// The kind's name in the ledger, the tables and messages (`prepare-model`, …).
    pub fn name(self) -> &'static str {
        match self {
            Self::Unspecified => "unspecified",
            Self::DeriveData => "derive-data",
            Self::PrepareModel => "prepare-model",
            Self::Search => "search",
            Self::Evaluate => "evaluate",
            Self::Baseline => "baseline",
            Self::Pictures => "pictures",
            Self::Scan => "scan",
            Self::Transfer => "transfer",
            Self::Cleanse => "cleanse",
            Self::MaxMargin => "max-margin",
            Self::UapScan => "uap-scan",
            Self::Audit => "audit",
            Self::Noop => "noop",
        }
    }

    /// The kind named `name`.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.name() == name)
    }

    /// The result tables a unit of this kind may write; the first one it must write.
    pub fn tables(self) -> &'static [crate::Table] {
        use crate::Table as T;
        match self {
            Self::DeriveData => &[T::Derived],
            Self::PrepareModel => &[T::Models, T::Training],
            Self::Search => &[T::Searches],
            Self::Evaluate => &[T::Patterns],
            Self::Baseline => &[T::Baselines],
            Self::Scan => &[T::Scan, T::Detection],
            Self::Transfer => &[T::Transfer],
            Self::Cleanse | Self::MaxMargin | Self::UapScan => &[T::Detection],
            Self::Audit => &[T::Audit, T::Detection],
            // Pictures are files (`OutputFile`), not table rows.
            Self::Pictures | Self::Noop | Self::Unspecified => &[],
        }
    }

    /// A unit that finishes a sweep from the parts of the units it depends on: ready once they
    /// are all settled and at least one of them succeeded.
    pub fn finishing(self) -> bool {
        matches!(
            self,
            Self::Pictures | Self::Scan | Self::Transfer | Self::Audit
        )
    }

    /// Long units go one per lease, so that idle workers can take the others.
    pub fn one_per_lease(self) -> bool {
        matches!(self, Self::PrepareModel | Self::DeriveData)
    }
}

impl std::fmt::Display for v1::UnitKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::v1::UnitKind;

    #[test]
    fn names_parse_back_and_specs_plan_all_but_noop() {
        for k in UnitKind::ALL {
            assert_eq!(UnitKind::parse(k.name()), Some(k));
        }
        assert_eq!(UnitKind::parse("unspecified"), None);
        assert!(!UnitKind::PLANNED.contains(&UnitKind::Noop));
        assert_eq!(UnitKind::PLANNED.len() + 1, UnitKind::ALL.len());
    }
}
