//! Progress bars for long work: an overall bar over units and a bar for the current stage
//! (training steps, search steps), with rates and ETA. Plain log lines when stderr is no terminal.

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use std::time::Duration;

pub struct Progress {
    mp: MultiProgress,
    overall: ProgressBar,
    stage: ProgressBar,
}

impl Progress {
    pub fn new(total_units: u64) -> Progress {
        let mp = MultiProgress::new();
        let overall = mp.add(ProgressBar::new(total_units));
        overall.set_style(
            ProgressStyle::with_template(
                "{prefix:>8} [{bar:40.cyan/blue}] {pos}/{len} units  {per_sec}  ETA {eta}  {msg}",
            )
            .expect("template")
            .progress_chars("=> "),
        );
        overall.set_prefix("overall");
        let stage = mp.add(ProgressBar::new(1));
        stage.set_style(
            ProgressStyle::with_template(
                "{prefix:>8} [{bar:40.green/white}] {pos}/{len} {msg}  {per_sec}  ETA {eta}",
            )
            .expect("template")
            .progress_chars("=> "),
        );
        overall.enable_steady_tick(Duration::from_millis(250));
        Progress { mp, overall, stage }
    }

    /// A progress object that draws nothing (tests, benchmarks).
    pub fn hidden() -> Progress {
        let p = Progress::new(0);
        p.mp.set_draw_target(indicatif::ProgressDrawTarget::hidden());
        p
    }

    /// Starts a new stage of `len` steps.
    pub fn stage(&self, prefix: &str, message: &str, len: u64) {
        self.stage.reset();
        self.stage.set_prefix(prefix.to_string());
        self.stage.set_message(message.to_string());
        self.stage.set_length(len.max(1));
        self.stage.set_position(0);
    }

    /// Moves the stage bar to `pos` of `len`.
    pub fn stage_step(&self, pos: u64, len: u64) {
        self.stage.set_length(len.max(1));
        self.stage.set_position(pos);
    }

    pub fn stage_position(&self, pos: u64) {
        self.stage.set_position(pos);
    }

    pub fn set_total(&self, units: u64) {
        self.overall.set_length(units);
    }

    pub fn unit_done(&self) {
        self.overall.inc(1);
    }

    /// Prints a line above the bars (or to stderr when bars are hidden).
    pub fn println(&self, line: &str) {
        if self.mp.is_hidden() {
            eprintln!("{line}");
        } else {
            let _ = self.mp.println(line);
        }
    }

    pub fn finish(&self) {
        self.stage.finish_and_clear();
        self.overall.finish();
    }
}
