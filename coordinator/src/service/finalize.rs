//! Finishing a sweep on the coordinator once all its units are terminal: pictures, scan and
//! transfer, on a thread of their own (they use libtorch), then the `finished` event.

use super::grpc::Service;
use iscp_sweep::progress::Progress;
use iscp_sweep::spec::LoadedSpec;
use iscp_sweep::work::{finish_spec, Layout};

impl Service {
    /// Starts finishing every sweep that has become complete.
    pub(super) fn finalize_ready(&self) {
        let ready = self.core().take_finishable();
        for (sweep, spec_sha) in ready {
            let svc = self.clone();
            std::thread::spawn(move || {
                let message = svc.finish_one(&sweep, &spec_sha);
                if let Err(e) = svc.core().set_finalized(&sweep, message) {
                    tracing::error!("sweep {sweep}: {e}");
                }
                svc.wake();
            });
        }
    }

    fn finish_one(&self, sweep: &str, spec_sha: &str) -> String {
        let (file, source) = match self.core().spec_of(spec_sha) {
            Ok(s) => s,
            Err(e) => return format!("no spec: {e}"),
        };
        if source.is_empty() {
            return "finished".into();
        }
        let layout = Layout {
            root: self.core().results_root(sweep),
        };
        let out = LoadedSpec::parse_for_plan(&source, &file)
            .and_then(|spec| finish_spec(&spec, &layout, &Progress::hidden()));
        match out {
            Ok(f) => format!(
                "finished: {} pictures, {} transfers in {}",
                f.pictures,
                f.transfers,
                layout.root.display()
            ),
            Err(e) => {
                tracing::warn!("sweep {sweep}: finishing failed: {e}");
                format!("finished, but pictures and scan failed: {e}")
            }
        }
    }
}
