//! Scheduler errors as gRPC statuses: the kind of failure decides the code a worker retries on.

use crate::scheduler::SchedulerError;
use tonic::Status;

impl From<SchedulerError> for Status {
    fn from(e: SchedulerError) -> Status {
        if e.is_out_of_space() {
            // Not transient to the worker: it reports the unit failed (its attempt counts) after
            // a few tries instead of resending forever.
            tracing::error!("out of space: {e}");
            return Status::resource_exhausted(format!("coordinator out of space: {e}"));
        }
        match &e {
            SchedulerError::Stale(_) => Status::failed_precondition(e.to_string()),
            SchedulerError::NotFound(_) => Status::not_found(e.to_string()),
            SchedulerError::Invalid(_) => Status::invalid_argument(e.to_string()),
            SchedulerError::Sweep(iscp_sweep::SweepError::Spec { .. }) => {
                Status::invalid_argument(e.to_string())
            }
            _ => Status::internal(e.to_string()),
        }
    }
}
