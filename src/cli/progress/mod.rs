//! Progress for `iscp run`, `iscp watch` and `iscp submit --watch`, fed by the coordinator's
//! typed watch events: an overall bar weighted by each unit's estimated work (so its ETA means
//! something from the first minute), one line per worker slot saying in words what it runs, and a
//! line for failures. Without a terminal (or with `--quiet`) it prints one line per finished
//! stage with the same words instead of bars.

pub mod state;
pub mod words;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use iscp_proto::v1::WatchEvent;
use state::{Finished, SlotKey, Tracker};
use std::collections::{BTreeMap, HashMap};
use std::io::IsTerminal;
use std::time::{Duration, Instant};

/// A stage merges a slot's consecutive batches of one setting and kind; it is printed when the
/// slot moves on to other work, or after this long.
const STAGE_LINE_EVERY: Duration = Duration::from_secs(30);

/// Bars drawn on a terminal.
struct Bars {
    mp: MultiProgress,
    overall: ProgressBar,
    failures: Option<ProgressBar>,
    slots: BTreeMap<SlotKey, ProgressBar>,
}

pub struct View {
    tracker: Tracker,
    bars: Option<Bars>,
    /// Per slot, the stage finished so far and not yet printed.
    stages: HashMap<SlotKey, Finished>,
}

fn style(template: &str) -> ProgressStyle {
    ProgressStyle::with_template(template)
        .expect("a valid template")
        .progress_chars("=> ")
}

impl View {
    /// Bars on stderr when it is a terminal and `plain` is not asked for; lines otherwise.
    pub fn new(title: &str, plain: bool) -> View {
        let bars = (!plain && std::io::stderr().is_terminal()).then(|| {
            let mp = MultiProgress::with_draw_target(ProgressDrawTarget::stderr_with_hz(8));
            let overall = mp.add(ProgressBar::new(1));
            overall.set_style(style(
                "{prefix:>8} [{bar:30.cyan/blue}] {percent:>3}% of the work  {wide_msg}",
            ));
            overall.set_prefix(title.to_string());
            overall.enable_steady_tick(Duration::from_millis(500));
            Bars {
                mp,
                overall,
                failures: None,
                slots: BTreeMap::new(),
            }
        });
        View {
            tracker: Tracker::new(Instant::now()),
            bars,
            stages: HashMap::new(),
        }
    }

    /// The sweep's work is milliseconds timed on this machine's device (`iscp run`): the ETA starts
    /// from that estimate.
    pub fn timed_here(mut self) -> View {
        self.tracker.timed_here = true;
        self
    }

    /// Takes one event in and redraws.
    pub fn on(&mut self, e: &WatchEvent) {
        let now = Instant::now();
        // A lease to a slot that ran nothing starts a batch: the stage before it may end here.
        let starts = (e.event() == iscp_proto::v1::EventKind::Leased)
            .then(|| (e.worker.clone(), e.device.clone()))
            .filter(|k| self.tracker.slots.get(k).is_none_or(|b| b.open == 0));
        let ended = self.tracker.on(e, now);
        if let Some(f) = ended {
            self.stage_ended(f, now);
        }
        if let Some(slot) = starts {
            let moved_on = match (self.stages.get(&slot), self.tracker.slots.get(&slot)) {
                (Some(stage), Some(next)) => !same_stage(&stage.batch, next),
                _ => false,
            };
            if moved_on {
                let stage = self.stages.remove(&slot).expect("present");
                self.print_stage(&stage);
            }
        }
        use iscp_proto::v1::EventKind::{Failed, Retrying};
        if matches!(e.event(), Failed | Retrying) && !e.unit_id.is_empty() {
            let what = if e.event() == Failed {
                "failed"
            } else {
                "attempt failed, retrying"
            };
            let why = e.message.lines().next().unwrap_or_default();
            self.line(&format!("{what} {} {}: {why}", e.kind, e.unit_id));
        }
        self.flush_due(now);
        self.redraw(now);
    }

    /// Events were lost: forget what ran (see `Tracker::resync`).
    pub fn resync(&mut self) {
        self.tracker.resync();
    }

    /// Redraws the ETA and rates (between events).
    pub fn tick(&mut self) {
        let now = Instant::now();
        self.flush_due(now);
        self.redraw(now);
    }

    /// A long stage says how it goes in the log every so often.
    fn flush_due(&mut self, now: Instant) {
        let due: Vec<SlotKey> = self
            .stages
            .iter()
            .filter(|(_, f)| now.duration_since(f.batch.started) >= STAGE_LINE_EVERY)
            .map(|(k, _)| k.clone())
            .collect();
        for k in due {
            if let Some(f) = self.stages.remove(&k) {
                self.print_stage(&f);
            }
        }
    }

    /// A line above the bars (or on its own without them).
    pub fn note(&self, line: &str) {
        match &self.bars {
            Some(b) => {
                let _ = b.mp.println(line);
            }
            None => eprintln!("{line}"),
        }
    }

    /// Prints the stages not yet printed and takes the bars away.
    pub fn finish(&mut self) {
        let mut left: Vec<Finished> = self.stages.drain().map(|(_, f)| f).collect();
        left.sort_by_key(|f| f.batch.started);
        for f in &left {
            self.print_stage(f);
        }
        if let Some(b) = &self.bars {
            for s in b.slots.values() {
                s.finish_and_clear();
            }
            if let Some(f) = &b.failures {
                f.finish();
            }
            b.overall.set_position(b.overall.length().unwrap_or(0));
            b.overall.finish();
        }
    }

    /// Merges a finished batch into its slot's stage; prints the stage it ends.
    fn stage_ended(&mut self, f: Finished, now: Instant) {
        match self.stages.remove(&f.slot) {
            Some(mut stage) if same_stage(&stage.batch, &f.batch) => {
                stage.batch.units += f.batch.units;
                stage.batch.labels.extend(f.batch.labels);
                stage.took = now.duration_since(stage.batch.started);
                self.stages.insert(f.slot.clone(), stage);
            }
            Some(stage) => {
                self.print_stage(&stage);
                self.stages.insert(f.slot.clone(), f);
            }
            None => {
                self.stages.insert(f.slot.clone(), f);
            }
        }
    }

    /// A stage's line; with several slots, it names the one it ran on.
    fn print_stage(&self, f: &Finished) {
        let what = words::finished(f);
        let (worker, device) = &f.slot;
        match self.tracker.slots.len() {
            0 | 1 => self.line(&what),
            _ if device.is_empty() => self.line(&format!("{worker}: {what}")),
            _ => self.line(&format!("{worker} {device}: {what}")),
        }
    }

    /// A line with where the sweep stands: above the bars, or alone with the elapsed time.
    fn line(&self, what: &str) {
        let now = Instant::now();
        match &self.bars {
            Some(b) => {
                let _ = b.mp.println(what);
            }
            None => eprintln!(
                "[{:>7}] {what} · {}",
                words::duration(self.tracker.elapsed(now)),
                standing(&self.tracker, now, true)
            ),
        }
    }

    fn redraw(&mut self, now: Instant) {
        let Some(b) = &mut self.bars else {
            return;
        };
        let t = &self.tracker;
        const SCALE: f64 = 1000.0;
        b.overall.set_length(SCALE as u64);
        b.overall.set_position((t.fraction() * SCALE) as u64);
        let mut msg = standing(t, now, false);
        msg.push_str(&format!(", {} elapsed", words::duration(t.elapsed(now))));
        b.overall.set_message(msg);
        for (key, batch) in &t.slots {
            let bar = b.slots.entry(key.clone()).or_insert_with(|| {
                let bar = b.mp.add(ProgressBar::new(1));
                bar.set_style(style("{prefix:>8} [{bar:20.green/white}] {wide_msg}"));
                let (worker, device) = key;
                bar.set_prefix(if device.is_empty() {
                    worker.clone()
                } else {
                    format!("{worker} {device}")
                });
                bar
            });
            if batch.open == 0 {
                bar.set_length(1);
                bar.set_position(0);
                bar.set_message("waiting for work");
            } else {
                bar.set_length(batch.steps.max(1));
                bar.set_position(batch.step);
                bar.set_message(words::running(batch));
            }
        }
        if t.failed > 0 || t.retried > 0 {
            let f = b.failures.get_or_insert_with(|| {
                let f = b.mp.add(ProgressBar::new(1));
                f.set_style(style("{prefix:>8} {wide_msg}"));
                f.set_prefix("failures");
                f
            });
            f.set_message(format!(
                "{} units failed for good, {} attempts retried; last: {}",
                t.failed, t.retried, t.last_failure
            ));
        }
    }
}

/// Whether two batches are of one stage: the same kind on the same setting.
fn same_stage(a: &state::Batch, b: &state::Batch) -> bool {
    a.kind == b.kind && a.labels.first().map(|l| &l.setting) == b.labels.first().map(|l| &l.setting)
}

/// `96/146 units, 62% of the work, ETA 40s` (the bar shows the percentage itself).
fn standing(t: &Tracker, now: Instant, percent: bool) -> String {
    let eta = match t.eta(now) {
        Some(d) => format!("ETA {}", words::duration(d)),
        None => "ETA estimating".into(),
    };
    let share = if percent {
        format!(", {:.0}% of the work", t.fraction() * 100.0)
    } else {
        String::new()
    };
    format!(
        "{}/{} units{share}, {eta}",
        words::thousands(t.settled),
        words::thousands(t.total)
    )
}
