//! The limits a spec is held to at submit, before anything is sized by it: counts, image sizes,
//! list lengths, the bytes of the data a worker holds, and the units and bytes of the plan the
//! coordinator keeps. Each refusal names the key and the limit (docs/reference/limits.md lists
//! them; a test keeps that page and these constants in step).

/// Classes of a dataset (ImageNet-21k has about 21,000).
pub const MAX_CLASSES: usize = 100_000;
/// Classes of generated shapes (`data.kind = "synthetic"`).
pub const SYNTHETIC_CLASSES: std::ops::RangeInclusive<usize> = 2..=10;
/// Side of a generated image, in pixels.
pub const SYNTHETIC_SIDE: std::ops::RangeInclusive<usize> = 8..=1024;
/// `data.resize` and `data.crop` of an image folder, in pixels.
pub const MAX_IMAGE_SIDE: usize = 4096;
/// Training or test images of one dataset.
pub const MAX_IMAGES: u64 = 20_000_000;
/// Bytes of the images a worker holds in memory (training plus test set, as 32-bit floats).
pub const MAX_DATA_BYTES: u64 = 64 << 30;
/// Entries of one list key (sizes, alphas, tv_betas, uap_eps, canvases, class_names, archs, ...).
pub const MAX_LIST: usize = 1_000;
/// Canvases of one kind (`search.canvases[].n`).
pub const MAX_CANVASES: usize = 10_000;
/// Models of one sweep: settings after `targets` expansion plus the population's.
pub const MAX_MODELS: u64 = 100_000;
/// Units of one sweep's plan (the coordinator is measured at 1,000,000).
pub const MAX_UNITS: u64 = 2_000_000;
/// Estimated bytes the coordinator holds for one sweep's plan (unit parameters and indexes).
pub const MAX_PLAN_BYTES: u64 = 8 << 30;
/// Epochs of training, a search or Neural Cleanse.
pub const MAX_EPOCHS: usize = 100_000;
/// Images in one batch (training, search, derive, Neural Cleanse).
pub const MAX_BATCH: usize = 65_536;
/// Images in one evaluation forward pass (`run.eval_batch`).
pub const MAX_EVAL_BATCH: usize = 1 << 20;
/// Units a worker leases at once (`run.batch_searches`).
pub const MAX_BATCH_SEARCHES: usize = 4_096;
/// libtorch threads (`run.threads`).
pub const MAX_THREADS: usize = 1_024;
/// Gradient steps of one derived image (`derive.steps`).
pub const MAX_DERIVE_STEPS: usize = 1_000_000;
/// MM-BD's random starts per class (its images go through the model together, per chunk of classes).
pub const MAX_MARGIN_STARTS: usize = 256;
/// MM-BD's ascent steps.
pub const MAX_MARGIN_STEPS: usize = 1_000_000;
/// Characters of a class or setting name.
pub const MAX_NAME_CHARS: usize = 200;
/// Bytes of a file a spec names that the coordinator reads itself (a population's manifest).
pub const MAX_MANIFEST_BYTES: u64 = 16 << 20;
/// `*.pt` files in a population's `given` folder.
pub const MAX_GIVEN_FILES: usize = 100_000;
/// Side of a BadNets trigger, in pixels.
pub const TRIGGER_SIDE: std::ops::RangeInclusive<i64> = 1..=16;

/// Every limit with its name and value as the reference page writes them (`limits.md`).
pub fn table() -> Vec<(&'static str, String)> {
    let r = |r: &std::ops::RangeInclusive<usize>| format!("{}–{}", r.start(), r.end());
    vec![
        ("MAX_CLASSES", MAX_CLASSES.to_string()),
        ("SYNTHETIC_CLASSES", r(&SYNTHETIC_CLASSES)),
        ("SYNTHETIC_SIDE", r(&SYNTHETIC_SIDE)),
        ("MAX_IMAGE_SIDE", MAX_IMAGE_SIDE.to_string()),
        ("MAX_IMAGES", MAX_IMAGES.to_string()),
        ("MAX_DATA_BYTES", MAX_DATA_BYTES.to_string()),
        ("MAX_LIST", MAX_LIST.to_string()),
        ("MAX_CANVASES", MAX_CANVASES.to_string()),
        ("MAX_MODELS", MAX_MODELS.to_string()),
        ("MAX_UNITS", MAX_UNITS.to_string()),
        ("MAX_PLAN_BYTES", MAX_PLAN_BYTES.to_string()),
        ("MAX_EPOCHS", MAX_EPOCHS.to_string()),
        ("MAX_BATCH", MAX_BATCH.to_string()),
        ("MAX_EVAL_BATCH", MAX_EVAL_BATCH.to_string()),
        ("MAX_BATCH_SEARCHES", MAX_BATCH_SEARCHES.to_string()),
        ("MAX_THREADS", MAX_THREADS.to_string()),
        ("MAX_DERIVE_STEPS", MAX_DERIVE_STEPS.to_string()),
        ("MAX_NAME_CHARS", MAX_NAME_CHARS.to_string()),
        ("MAX_MANIFEST_BYTES", MAX_MANIFEST_BYTES.to_string()),
        ("MAX_GIVEN_FILES", MAX_GIVEN_FILES.to_string()),
        (
            "TRIGGER_SIDE",
            format!("{}–{}", TRIGGER_SIDE.start(), TRIGGER_SIDE.end()),
        ),
    ]
}

/// Why a name cannot be shown as it is: empty, too long, or with control characters (terminal
/// escapes, tabs and newlines would reach progress bars, logs and PNG text chunks raw).
pub fn refuse_display_name(name: &str) -> Option<String> {
    if name.trim().is_empty() {
        return Some("is empty".into());
    }
    if name.chars().count() > MAX_NAME_CHARS {
        return Some(format!("is longer than {MAX_NAME_CHARS} characters"));
    }
    if name.chars().any(char::is_control) {
        return Some(format!(
            "`{}` has control characters (tabs, newlines, escapes)",
            name.escape_debug()
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_reference_page_lists_every_limit_with_its_value() {
        let page = include_str!("../../../docs/reference/limits.md");
        for (name, value) in super::table() {
            let row = format!("| `{name}` | {value} |");
            assert!(
                page.contains(&row),
                "docs/reference/limits.md lacks `{row}`"
            );
        }
    }

    #[test]
    fn names_with_control_characters_are_refused() {
        use super::refuse_display_name as r;
        assert!(r("T-shirt/top").is_none());
        assert!(r("\u{1b}[31mred").is_some());
        assert!(r("a\tb").is_some());
        assert!(r("a\nb").is_some());
        assert!(r(" ").is_some());
        assert!(r(&"x".repeat(201)).is_some());
    }
}
