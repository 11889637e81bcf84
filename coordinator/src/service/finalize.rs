//! A sweep whose units are all settled is finished: its pictures, scan and transfers were units
//! too (leased, fenced, retried like the others), so the coordinator only records the fact and
//! sends the `finished` event. It never loads a model.

use super::grpc::Service;

impl Service {
    /// Marks every sweep that has become complete as finished.
    pub(super) fn finalize_ready(&self) {
        if let Err(e) = self.core().finish_complete() {
            tracing::error!("finishing sweeps: {e}");
        }
    }
}
