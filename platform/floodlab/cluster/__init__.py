"""Ray Jobs submission to a running cluster: submit specs, list jobs, follow logs, stop."""

from floodlab.cluster.config import DEFAULT_ADDRESS, resolve_address
from floodlab.cluster.jobs import (
    JobRow,
    Submitted,
    follow_logs,
    job_logs,
    job_status,
    list_jobs,
    stop_job,
    submit,
    wait_for_job,
)

__all__ = [
    "DEFAULT_ADDRESS",
    "JobRow",
    "Submitted",
    "follow_logs",
    "job_logs",
    "job_status",
    "list_jobs",
    "resolve_address",
    "stop_job",
    "submit",
    "wait_for_job",
]
