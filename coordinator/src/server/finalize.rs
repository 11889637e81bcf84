//! A sweep whose units are all settled is finished: its pictures, scan and transfers were units
//! too (leased, fenced, retried like the others). The coordinator then writes the sweep's report
//! from its results folder (`iscp_sweep::report`: the tables and pictures already there, the
//! failures it recorded) on a thread of its own, outside the scheduler's lock, and only then
//! records the fact and sends the `finished` event, so that whoever waits for it finds the
//! page. It never loads a model.

use super::service::Service;

impl Service {
    /// Reports on, then finishes, every sweep that has become complete.
    pub(super) fn finalize_ready(&self) {
        let due = match self.scheduler().reports_due() {
            Ok(d) => d,
            Err(e) => {
                tracing::error!("finishing sweeps: {e}");
                return;
            }
        };
        if due.is_empty() {
            return;
        }
        let svc = self.clone();
        std::thread::spawn(move || {
            for (sweep, root) in due {
                // A sweep with no results folder (noop units) has nothing to report.
                let has_results = iscp_sweep::report::is_experiment(&root);
                // A report that cannot be written (an error, even a panic in drawing) must not
                // keep the sweep unfinished.
                let write = || {
                    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        iscp_sweep::report::write_report(&root, &sweep)
                    }))
                };
                let page = match has_results.then(write) {
                    None => None,
                    Some(Ok(Ok(p))) => Some(p),
                    Some(Ok(Err(e))) => {
                        tracing::warn!("the report of sweep {sweep}: {e}");
                        None
                    }
                    Some(Err(_)) => {
                        tracing::error!("the report of sweep {sweep} panicked");
                        None
                    }
                };
                if let Err(e) = svc.scheduler().finish_reported(&sweep, page.as_deref()) {
                    tracing::error!("finishing sweep {sweep}: {e}");
                }
                svc.wake();
            }
        });
    }
}
