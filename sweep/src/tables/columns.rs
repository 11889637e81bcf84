//! Typed columns: how a row field's Rust type becomes an Arrow column and is read back from a part,
//! and `table_row!`, which declares a row struct whose fields are its table's columns.

use crate::{Result, SweepError};
use arrow_array::builder::{Float32Builder, ListBuilder};
use arrow_array::cast::AsArray;
use arrow_array::types::{Float32Type, Float64Type, Int64Type};
use arrow_array::{
    Array, ArrayRef, BooleanArray, Float64Array, Int64Array, ListArray, RecordBatch, StringArray,
};
use std::path::Path;
use std::sync::Arc;

/// The columns of one batch of a part, read by name; `path` names the part in errors.
pub(crate) struct Cols<'a> {
    batch: &'a RecordBatch,
    path: &'a Path,
}

impl<'a> Cols<'a> {
    pub(super) fn new(batch: &'a RecordBatch, path: &'a Path) -> Self {
        Cols { batch, path }
    }
    /// Row `i`'s value in column `name`.
    pub(super) fn get<T: Column>(&self, name: &str, i: usize) -> Result<T> {
        T::read(self, name, i)
    }
    /// Whether the part has column `name` (parts written before a column existed lack it).
    fn has(&self, name: &str) -> bool {
        self.batch.column_by_name(name).is_some()
    }
    fn col(&self, name: &str) -> Result<&'a dyn Array> {
        self.batch
            .column_by_name(name)
            .map(|c| c.as_ref())
            .ok_or_else(|| SweepError::table(self.path, format!("no column `{name}`")))
    }
    /// Column `name` as the array `cast` makes of it, or an error when it has another type.
    fn typed<A>(
        &self,
        name: &str,
        cast: impl FnOnce(&'a dyn Array) -> Option<&'a A>,
    ) -> Result<&'a A> {
        cast(self.col(name)?).ok_or_else(|| self.bad(name))
    }
    fn floats(&self, name: &str, i: usize) -> Result<Vec<f32>> {
        let list = self.typed(name, |a| a.as_list_opt::<i32>())?.value(i);
        Ok(list
            .as_primitive_opt::<Float32Type>()
            .ok_or_else(|| self.bad(name))?
            .values()
            .to_vec())
    }
    fn bad(&self, name: &str) -> SweepError {
        SweepError::table(self.path, format!("column `{name}` has an unexpected type"))
    }
}

/// The Rust type of a row field: its Arrow column, and a value read back from one.
pub(crate) trait Column: Sized {
    /// Whether the column may hold nulls (the `Option` types).
    const NULLABLE: bool;
    /// The column of `rows`' values.
    fn array<R>(rows: &[R], get: impl Fn(&R) -> &Self) -> ArrayRef;
    /// Row `i`'s value in column `name`.
    fn read(c: &Cols, name: &str, i: usize) -> Result<Self>;
}

/// `impl Column for $t`: nullable or not, its array built by `$array`, a value read by `$read`.
macro_rules! column {
    (
        $t:ty,
        $nullable:literal,
        |$rows:ident, $get:ident| $array:expr,
        |$c:ident, $name:ident, $i:ident| $read:expr $(,)?
    ) => {
        impl Column for $t {
            const NULLABLE: bool = $nullable;
            fn array<R>($rows: &[R], $get: impl Fn(&R) -> &Self) -> ArrayRef {
                Arc::new($array)
            }
            fn read($c: &Cols, $name: &str, $i: usize) -> Result<Self> {
                $read
            }
        }
    };
}

/// `Column` for a primitive type (`$array` of `$arrow` values) and its `Option`.
macro_rules! primitive_column {
    ($t:ty, $array:ty, $arrow:ty) => {
        column!(
            $t,
            false,
            |rows, get| <$array>::from_iter_values(rows.iter().map(|r| *get(r))),
            |c, name, i| Ok(c.typed(name, |a| a.as_primitive_opt::<$arrow>())?.value(i)),
        );
        column!(
            Option<$t>,
            true,
            |rows, get| rows.iter().map(|r| *get(r)).collect::<$array>(),
            |c, name, i| {
                let values = c.typed(name, |a| a.as_primitive_opt::<$arrow>())?;
                Ok(values.is_valid(i).then(|| values.value(i)))
            },
        );
    };
}

primitive_column!(i64, Int64Array, Int64Type);
primitive_column!(f64, Float64Array, Float64Type);

column!(
    String,
    false,
    |rows, get| StringArray::from_iter_values(rows.iter().map(|r| get(r).as_str())),
    |c, name, i| Ok(c
        .typed(name, |a| a.as_string_opt::<i32>())?
        .value(i)
        .to_string()),
);
column!(
    Option<String>,
    true,
    |rows, get| rows
        .iter()
        .map(|r| get(r).as_deref())
        .collect::<StringArray>(),
    |c, name, i| {
        let strings = c.typed(name, |a| a.as_string_opt::<i32>())?;
        Ok(strings.is_valid(i).then(|| strings.value(i).to_string()))
    },
);
column!(
    bool,
    false,
    |rows, get| rows.iter().map(|r| Some(*get(r))).collect::<BooleanArray>(),
    |c, name, i| Ok(c.typed(name, |a| a.as_boolean_opt())?.value(i)),
);
column!(
    Option<bool>,
    true,
    |rows, get| rows.iter().map(|r| *get(r)).collect::<BooleanArray>(),
    |c, name, i| {
        let flags = c.typed(name, |a| a.as_boolean_opt())?;
        Ok(flags.is_valid(i).then(|| flags.value(i)))
    },
);
column!(
    Vec<f32>,
    false,
    |rows, get| float_lists(rows, |r| Some(get(r).as_slice())),
    |c, name, i| c.floats(name, i),
);
column!(
    Option<Vec<f32>>,
    true,
    |rows, get| float_lists(rows, |r| get(r).as_deref()),
    |c, name, i| if c.typed(name, |a| a.as_list_opt::<i32>())?.is_null(i) {
        Ok(None)
    } else {
        c.floats(name, i).map(Some)
    },
);

/// A list-of-`f32` column, null where `get` gives none.
fn float_lists<R>(rows: &[R], get: impl Fn(&R) -> Option<&[f32]>) -> ListArray {
    let mut lists = ListBuilder::new(Float32Builder::new());
    for r in rows {
        let list = get(r);
        if let Some(v) = list {
            lists.values().append_slice(v);
        }
        lists.append(list.is_some());
    }
    lists.finish()
}

/// The column of one field of `rows` (for tables not declared by `table_row!`).
pub(crate) fn col<R, T: Column>(rows: &[R], get: impl Fn(&R) -> &T) -> ArrayRef {
    T::array(rows, get)
}

/// A batch of named columns, each nullable or not.
pub(crate) fn batch(columns: Vec<(&str, ArrayRef, bool)>) -> RecordBatch {
    RecordBatch::try_from_iter_with_nullable(columns).expect("columns of equal length")
}

/// Row `i`'s value in column `name`, or `missing` in a part written before the column existed.
pub(crate) fn read_or<T: Column>(c: &Cols, name: &str, i: usize, missing: T) -> Result<T> {
    if c.has(name) {
        T::read(c, name, i)
    } else {
        Ok(missing)
    }
}

/// A table's row type, declared by `table_row!`: rows as a batch, and a row read back.
pub(crate) trait Row: Sized {
    fn batch(rows: &[Self]) -> RecordBatch;
    fn read(c: &Cols, i: usize) -> Result<Self>;
}

/// Declares a row struct whose fields are its table's columns, in order, and implements `Row`
/// for it: each column is named after its field, typed by the field's type (`Column`) and
/// nullable when that is an `Option`. A field written `name: T = value` reads `value` from a
/// part written before the column existed.
macro_rules! table_row {
    (@read $c:ident, $i:ident, $field:ident, $ty:ty) => {
        <$ty as $crate::tables::Column>::read($c, stringify!($field), $i)?
    };
    (@read $c:ident, $i:ident, $field:ident, $ty:ty, $missing:expr) => {
        $crate::tables::read_or::<$ty>($c, stringify!($field), $i, $missing)?
    };
    (
        $(#[$meta:meta])*
        pub struct $row:ident {
            $(
                $(#[$doc:meta])*
                pub $field:ident: $ty:ty $(= $missing:expr)?
            ),* $(,)?
        }
    ) => {
        $(#[$meta])*
        pub struct $row {
            $(
                $(#[$doc])*
                pub $field: $ty,
            )*
        }

        impl $crate::tables::Row for $row {
            fn batch(rows: &[Self]) -> ::arrow_array::RecordBatch {
                $crate::tables::batch(vec![$((
                    stringify!($field),
                    <$ty as $crate::tables::Column>::array(rows, |r| &r.$field),
                    <$ty as $crate::tables::Column>::NULLABLE,
                )),*])
            }

            fn read(c: &$crate::tables::Cols, i: usize) -> $crate::Result<Self> {
                Ok($row {
                    $($field: $crate::tables::table_row!(@read c, i, $field, $ty $(, $missing)?),)*
                })
            }
        }
    };
}
pub(crate) use table_row;
