//! What progress knows of a sweep, from its watch events alone: the units each worker slot runs
//! (grouped into the batch they were leased in), how far each got, the sweep's work done and in
//! all, and the ETA that follows. No drawing here: `View` draws it, tests read it.

use iscp_proto::v1::{EventKind, UnitLabel, WatchEvent};
use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

/// A worker's slot: the worker's name and the slot's device (empty when not known, as for units
/// leased before the coordinator restarted).
pub type SlotKey = (String, String);

/// A unit the sweep's events say is running.
#[derive(Debug, Clone)]
struct Running {
    slot: SlotKey,
    work: u64,
    /// Its step fraction, 0 to 1.
    done: f64,
}

/// The units a slot was leased together, and how their steps go.
#[derive(Debug, Clone)]
pub struct Batch {
    pub kind: String,
    pub labels: Vec<UnitLabel>,
    /// Units leased in the batch, and those still running.
    pub units: usize,
    pub open: usize,
    pub started: Instant,
    pub step: u64,
    pub steps: u64,
    /// The first step reported, and when: rates count from there (the first step includes
    /// loading the model and the data).
    first: Option<(Instant, u64)>,
    /// The last step reported, and when.
    last: Option<(Instant, u64)>,
}

impl Batch {
    fn new(kind: &str, now: Instant) -> Batch {
        Batch {
            kind: kind.to_string(),
            labels: Vec::new(),
            units: 0,
            open: 0,
            started: now,
            step: 0,
            steps: 0,
            first: None,
            last: None,
        }
    }

    /// Steps per second since the first step reported (None until two reports).
    pub fn steps_per_s(&self) -> Option<f64> {
        let ((t0, s0), (t1, s1)) = (self.first?, self.last?);
        let dt = t1.duration_since(t0).as_secs_f64();
        (dt > 0.0 && s1 > s0).then(|| (s1 - s0) as f64 / dt)
    }
}

/// A batch that ended: all its units done or failed.
#[derive(Debug, Clone)]
pub struct Finished {
    pub slot: SlotKey,
    pub batch: Batch,
    pub took: Duration,
}

/// The sweep as its events tell it.
#[derive(Debug)]
pub struct Tracker {
    pub total: u64,
    pub settled: u64,
    pub failed: u64,
    /// Failed attempts that will be retried, seen since the watch started.
    pub retried: u64,
    pub last_failure: String,
    pub work_total: u64,
    work_settled: u64,
    running: HashMap<String, Running>,
    pub slots: BTreeMap<SlotKey, Batch>,
    started: Instant,
    /// The work done when the first event came, and when (the rate counts from there).
    origin: Option<(Instant, f64)>,
    pub finished: bool,
    /// The units' work is milliseconds on this machine's device (a local run's coordinator timed
    /// its models): until some of it was done, the ETA is the estimate itself.
    pub timed_here: bool,
}

impl Tracker {
    pub fn new(now: Instant) -> Tracker {
        Tracker {
            total: 0,
            settled: 0,
            failed: 0,
            retried: 0,
            last_failure: String::new(),
            work_total: 0,
            work_settled: 0,
            running: HashMap::new(),
            slots: BTreeMap::new(),
            started: now,
            origin: None,
            finished: false,
            timed_here: false,
        }
    }

    pub fn elapsed(&self, now: Instant) -> Duration {
        now.duration_since(self.started)
    }

    /// Takes one event in; returns the batch it ended, if any.
    pub fn on(&mut self, e: &WatchEvent, now: Instant) -> Option<Finished> {
        self.total = e.total;
        self.settled = e.done + e.failed;
        self.failed = e.failed;
        if e.work_total > 0 {
            self.work_total = e.work_total;
            self.work_settled = e.work_done;
        }
        self.finished |= e.finished || e.event() == EventKind::Finished;
        if self.origin.is_none() && self.work_total > 0 {
            self.origin = Some((now, self.work_done()));
        }
        match e.event() {
            EventKind::Leased => {
                self.leased(e, now);
                None
            }
            EventKind::Progress => {
                self.progress(e, now);
                None
            }
            EventKind::Done | EventKind::Failed | EventKind::HandedBack => {
                if e.event() == EventKind::Failed {
                    self.last_failure = failure_line(e);
                }
                self.ended(&e.unit_id, now)
            }
            EventKind::Retrying => {
                if !e.unit_id.is_empty() {
                    self.retried += 1;
                    self.last_failure = failure_line(e);
                }
                self.ended(&e.unit_id, now)
            }
            EventKind::Cancelled | EventKind::Submitted => {
                // Counts changed wholesale; units running on now report again or end.
                None
            }
            EventKind::Status => {
                // The sweep as it is (the watch began, or events were dropped): what ran is
                // forgotten, and units still running re-join at their next progress.
                self.resync();
                None
            }
            _ => None,
        }
    }

    /// Forgets the running units and closes every slot's batch (events were lost): the units
    /// still running re-join at their next progress event.
    pub fn resync(&mut self) {
        self.running.clear();
        for b in self.slots.values_mut() {
            b.open = 0;
        }
    }

    fn leased(&mut self, e: &WatchEvent, now: Instant) {
        let slot = (e.worker.clone(), e.device.clone());
        // A batch is what a slot was leased while it ran nothing.
        let b = self
            .slots
            .entry(slot.clone())
            .or_insert_with(|| Batch::new(&e.kind, now));
        if b.open == 0 {
            *b = Batch::new(&e.kind, now);
        }
        b.units += 1;
        b.open += 1;
        if let Some(l) = &e.label {
            b.labels.push(l.clone());
        }
        self.running.insert(
            e.unit_id.clone(),
            Running {
                slot,
                work: e.unit_work,
                done: 0.0,
            },
        );
    }

    fn progress(&mut self, e: &WatchEvent, now: Instant) {
        if !self.running.contains_key(&e.unit_id) {
            // A unit leased before the watch started: its steps say where it runs and what it
            // is, and it joins its slot's batch as if leased now.
            self.leased(e, now);
        }
        let r = self.running.get_mut(&e.unit_id).expect("just recorded");
        if e.steps > 0 {
            r.done = (e.step as f64 / e.steps as f64).clamp(0.0, 1.0);
        }
        let Some(b) = self.slots.get_mut(&r.slot) else {
            return;
        };
        (b.step, b.steps) = (e.step, e.steps);
        if b.first.is_none() {
            b.first = Some((now, e.step));
        }
        b.last = Some((now, e.step));
    }

    fn ended(&mut self, unit: &str, now: Instant) -> Option<Finished> {
        let r = self.running.remove(unit)?;
        let b = self.slots.get_mut(&r.slot)?;
        b.open = b.open.saturating_sub(1);
        (b.open == 0).then(|| Finished {
            slot: r.slot.clone(),
            took: now.duration_since(b.started),
            batch: b.clone(),
        })
    }

    /// Work done: settled units whole, running ones by their step fraction.
    pub fn work_done(&self) -> f64 {
        let running: f64 = self.running.values().map(|r| r.work as f64 * r.done).sum();
        (self.work_settled as f64 + running).min(self.work_total as f64)
    }

    /// The fraction of the sweep's work done, 0 to 1.
    pub fn fraction(&self) -> f64 {
        if self.work_total == 0 {
            return if self.total == 0 {
                0.0
            } else {
                self.settled as f64 / self.total as f64
            };
        }
        self.work_done() / self.work_total as f64
    }

    /// The time left at the rate work got done since the watch started; None until some work was
    /// measured (half a second at least), zero when nothing is left. When the work is timed here
    /// (`timed_here`), the estimate itself until 5% of the work was done.
    pub fn eta(&self, now: Instant) -> Option<Duration> {
        let left = self.work_total as f64 - self.work_done();
        if self.finished || (self.total > 0 && self.settled >= self.total) || left <= 0.0 {
            return Some(Duration::ZERO);
        }
        let estimate = (self.timed_here && self.work_total > 0)
            .then(|| Duration::from_secs_f64((left / 1e3).min(1e8)));
        let Some((t0, w0)) = self.origin else {
            return estimate;
        };
        let dt = now.duration_since(t0).as_secs_f64();
        let dw = self.work_done() - w0;
        if dt < 0.5 || dw <= 0.0 || (estimate.is_some() && dw < 0.05 * self.work_total as f64) {
            return estimate;
        }
        Some(Duration::from_secs_f64((left * dt / dw).min(1e8)))
    }
}

fn failure_line(e: &WatchEvent) -> String {
    let first = e.message.lines().next().unwrap_or_default();
    format!("{} {}: {first}", e.kind, e.unit_id)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(kind: EventKind, unit: &str, work: u64) -> WatchEvent {
        WatchEvent {
            event: kind.into(),
            unit_id: unit.into(),
            kind: "search".into(),
            worker: "w".into(),
            device: "cpu".into(),
            unit_work: work,
            total: 3,
            work_total: 400,
            ..Default::default()
        }
    }

    #[test]
    fn work_and_eta_follow_steps_and_settled_units() {
        let t0 = Instant::now();
        let mut t = Tracker::new(t0);
        // A long unit (300) and two short ones (50 each), leased in two batches.
        t.on(&ev(EventKind::Leased, "a", 300), t0);
        assert!(t.eta(t0).is_none(), "nothing measured yet");
        // Timed here, the work is milliseconds: the estimate until 5% of it is done.
        t.timed_here = true;
        assert_eq!(t.eta(t0), Some(Duration::from_secs_f64(0.4)));
        t.timed_here = false;
        let mut p = ev(EventKind::Progress, "a", 300);
        (p.step, p.steps) = (1, 3);
        let t1 = t0 + Duration::from_secs(10);
        t.on(&p, t1);
        assert!((t.work_done() - 100.0).abs() < 1e-9);
        // 100 of work in 10 s: 300 left take 30 s.
        let eta = t.eta(t1).unwrap().as_secs_f64();
        assert!((eta - 30.0).abs() < 1e-6, "{eta}");
        let mut d = ev(EventKind::Done, "a", 300);
        (d.done, d.work_done) = (1, 300);
        let f = t.on(&d, t0 + Duration::from_secs(30)).expect("batch ended");
        assert_eq!((f.batch.units, f.took.as_secs()), (1, 30));
        assert!((t.fraction() - 0.75).abs() < 1e-9);
        for u in ["b", "c"] {
            t.on(&ev(EventKind::Leased, u, 50), t0 + Duration::from_secs(30));
        }
        assert_eq!(t.slots[&("w".into(), "cpu".into())].units, 2);
        let mut d = ev(EventKind::Done, "b", 50);
        (d.done, d.work_done) = (2, 350);
        assert!(t.on(&d, t0 + Duration::from_secs(31)).is_none(), "c runs");
        assert!(t.eta(t0 + Duration::from_secs(31)).unwrap() > Duration::ZERO);
        let mut d = ev(EventKind::Done, "c", 50);
        (d.done, d.work_done) = (3, 400);
        assert!(t.on(&d, t0 + Duration::from_secs(32)).is_some());
        assert_eq!(t.eta(t0 + Duration::from_secs(32)), Some(Duration::ZERO));
    }

    #[test]
    fn a_status_event_forgets_units_whose_end_was_dropped() {
        let t0 = Instant::now();
        let mut t = Tracker::new(t0);
        t.on(&ev(EventKind::Leased, "a", 100), t0);
        t.on(&ev(EventKind::Leased, "b", 100), t0);
        // a's Done was dropped; the stream says so with a status event.
        t.on(&ev(EventKind::Status, "", 0), t0);
        let slot = ("w".to_string(), "cpu".to_string());
        assert_eq!(t.slots[&slot].open, 0, "no ghost keeps the slot busy");
        assert!(t.work_done() < 1e-9);
        // b is still running: it re-joins at its next step, in a batch of its own.
        let mut p = ev(EventKind::Progress, "b", 100);
        (p.step, p.steps) = (1, 2);
        t.on(&p, t0 + Duration::from_secs(1));
        assert_eq!((t.slots[&slot].units, t.slots[&slot].open), (1, 1));
        assert!((t.work_done() - 50.0).abs() < 1e-9);
        assert!(t
            .on(&ev(EventKind::Done, "b", 100), t0 + Duration::from_secs(2))
            .is_some());
    }
}
