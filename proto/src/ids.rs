//! Typed ids shared by the coordinator and the workers: a sweep's name, a unit's id, the two
//! together (every unit is named by its sweep and its id), and content hashes. Newtypes over
//! `String` with `Borrow<str>`, so maps keyed by them are looked up with a `&str` without
//! allocating (as Ballista's `string_id!`).

use std::borrow::Borrow;
use std::fmt;

macro_rules! string_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
        pub struct $name(String);

        impl $name {
            pub fn new(s: impl Into<String>) -> Self {
                $name(s.into())
            }
            pub fn as_str(&self) -> &str {
                &self.0
            }
            pub fn into_string(self) -> String {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl Borrow<str> for $name {
            fn borrow(&self) -> &str {
                &self.0
            }
        }

        impl std::ops::Deref for $name {
            type Target = str;
            fn deref(&self) -> &str {
                &self.0
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl From<&str> for $name {
            fn from(s: &str) -> Self {
                $name(s.to_string())
            }
        }

        impl From<String> for $name {
            fn from(s: String) -> Self {
                $name(s)
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.0 == other
            }
        }
    };
}

string_id!(
    /// A sweep's name (the spec's `name`): the folder its results live in.
    SweepName
);
string_id!(
    /// A unit's id: the hash of its kind and parameters (the same in every sweep that plans it).
    UnitId
);
string_id!(
    /// A sha256 in lowercase hex: a model, checkpoint or shard artifact, or a spec's text.
    Sha256
);

/// A unit as the scheduler and the workers name it: two sweeps may hold units of the same id
/// (the same spec under two names, or an extended copy), and never disturb each other.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct UnitKey {
    pub sweep: SweepName,
    pub unit: UnitId,
}

impl UnitKey {
    pub fn new(sweep: impl Into<SweepName>, unit: impl Into<UnitId>) -> Self {
        UnitKey {
            sweep: sweep.into(),
            unit: unit.into(),
        }
    }
}

impl fmt::Display for UnitKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.sweep, self.unit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{HashMap, HashSet};

    #[test]
    fn ids_are_looked_up_by_str_and_keys_keep_sweeps_apart() {
        let mut m: HashMap<UnitId, u32> = HashMap::new();
        m.insert(UnitId::new("abc"), 1);
        assert_eq!(m.get("abc"), Some(&1));
        let a = UnitKey::new("sweep-a", "abc");
        let b = UnitKey::new("sweep-b", "abc");
        assert_ne!(a, b);
        let set: HashSet<UnitKey> = [a.clone(), b].into_iter().collect();
        assert_eq!(set.len(), 2);
        assert_eq!(a.to_string(), "sweep-a/abc");
    }
}

/// Why `name` may not name a folder (a sweep, a setting), or None when it may: 1 to 128 letters,
/// digits, `-`, `_` or `.`, starting with a letter or digit (so never `.`, `..` or hidden).
pub fn refuse_folder_name(name: &str) -> Option<&'static str> {
    let ok = (1..=128).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        && name.as_bytes()[0].is_ascii_alphanumeric();
    (!ok).then_some(
        "use 1 to 128 letters, digits, `-`, `_` or `.`, starting with a letter or digit (it names a folder)",
    )
}

/// Whether `s` is a sha256 in lowercase hex.
pub fn is_sha256(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

#[cfg(test)]
mod name_tests {
    use super::*;

    #[test]
    fn folder_names_cannot_climb_or_hide() {
        for ok in ["smoke", "fashion-mnist", "a.b_c-1", "0"] {
            assert_eq!(refuse_folder_name(ok), None, "{ok}");
        }
        for bad in [
            "",
            ".",
            "..",
            ".hidden",
            "a/b",
            "a\\b",
            "-x",
            "a b",
            &"x".repeat(129),
        ] {
            assert!(refuse_folder_name(bad).is_some(), "{bad}");
        }
        assert!(is_sha256(&"ab".repeat(32)));
        assert!(!is_sha256(&"AB".repeat(32)) && !is_sha256("../x"));
    }
}
