"""Waiting for a batch, decided once for every way of waiting.

- :mod:`.events`: the event contract (statuses, payload) and what an event means for the task.
- :mod:`.poller`: given a batch or an error, whether the wait is over, how long to sleep, or
  whether to read the connection again.
- :mod:`.progress`: when a wait logs progress, and the line (done/total, percent, rate, time left).
- :mod:`.deferral`: the deferrable default and Airflow's backstop timeout for a deferred wait.

The trigger (async, in the triggerer), the sensor's poke and the one-task operator's own loop all
call these, so they cannot drift apart. Nothing here does I/O (the deferrable default reads
Airflow's configuration).
"""

from __future__ import annotations

from airflow_provider_xai_batch.waiting.deferral import (
    DEFERRAL_GRACE_SECONDS,
    default_deferrable,
    deferral_timeout,
)
from airflow_provider_xai_batch.waiting.events import (
    EVENT_STATUSES,
    batch_event,
    describe_batch,
    event_outcome,
    outcome_of,
)
from airflow_provider_xai_batch.waiting.poller import (
    DEFAULT_MAX_TRANSIENT_ERRORS,
    DEFAULT_OUTAGE_TOLERANCE,
    DEFAULT_POLL_INTERVAL,
    TRANSIENT_ERRORS,
    BatchPoller,
    PollStep,
    check_error_budget,
    transient_backoff,
)
from airflow_provider_xai_batch.waiting.progress import (
    DEFAULT_PROGRESS_INTERVAL,
    BatchFigures,
    ProgressLog,
    RateMemory,
    batch_figures,
    cost_so_far_usd,
    progress_line,
)

__all__ = [
    "DEFAULT_MAX_TRANSIENT_ERRORS",
    "DEFAULT_OUTAGE_TOLERANCE",
    "DEFAULT_POLL_INTERVAL",
    "DEFAULT_PROGRESS_INTERVAL",
    "DEFERRAL_GRACE_SECONDS",
    "EVENT_STATUSES",
    "TRANSIENT_ERRORS",
    "BatchFigures",
    "BatchPoller",
    "PollStep",
    "ProgressLog",
    "RateMemory",
    "batch_event",
    "batch_figures",
    "check_error_budget",
    "cost_so_far_usd",
    "default_deferrable",
    "deferral_timeout",
    "describe_batch",
    "event_outcome",
    "outcome_of",
    "progress_line",
    "transient_backoff",
]
