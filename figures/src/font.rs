//! The font every picture's text is drawn with: DejaVu Sans (regular and bold), embedded by the
//! `dejavu` crate and registered with plotters once per process.

use plotters::style::{register_font, FontStyle};
use std::sync::OnceLock;

/// The family name plotters is asked for.
pub const FAMILY: &str = "sans-serif";

/// Registers the embedded faces (once); later calls are free.
pub fn ensure() {
    static DONE: OnceLock<()> = OnceLock::new();
    DONE.get_or_init(|| {
        // The embedded files are valid TrueType fonts: failing here is a build defect.
        register_font(FAMILY, FontStyle::Normal, dejavu::sans::regular())
            .unwrap_or_else(|_| panic!("the embedded DejaVu Sans does not load"));
        register_font(FAMILY, FontStyle::Bold, dejavu::sans::bold())
            .unwrap_or_else(|_| panic!("the embedded DejaVu Sans Bold does not load"));
    });
}
