//! Pictures a person reads, from plain data (no torch): labelled grids of patterns (`grid`),
//! plots of PW (`plots`, with plotters), and a sweep's HTML report (`page`). Text is drawn with
//! DejaVu Sans, embedded in the binary (`font`), so a worker needs no fonts installed.

pub mod font;
pub mod grid;
pub mod page;
pub mod plots;
mod png_out;

pub use grid::{Cell, Grid, Rgb, Row};

/// What can go wrong drawing: a plotters backend error (a font that does not load, a size
/// impossible to draw) or a template that does not render. Neither is the input's fault, so
/// neither is retried differently: callers report them as internal errors.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("drawing {what}: {message}")]
    Draw { what: String, message: String },
    #[error("rendering the report page: {0}")]
    Template(String),
}

impl Error {
    pub(crate) fn draw(what: &str, e: impl std::fmt::Display) -> Error {
        Error::Draw {
            what: what.to_string(),
            message: e.to_string(),
        }
    }
}

pub type Result<T> = std::result::Result<T, Error>;
