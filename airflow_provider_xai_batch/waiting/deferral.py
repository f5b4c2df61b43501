"""Handing a wait to the triggerer: the deferrable default and the backstop timeout."""

from __future__ import annotations

from datetime import timedelta

from airflow.providers.common.compat.sdk import conf

# The trigger yields its own ``timeout`` event at end_time; Airflow's deferral timeout is only a
# backstop for a trigger that never ran, so it fires a little later.
DEFERRAL_GRACE_SECONDS = 300.0


def default_deferrable() -> bool:
    """``[operators] default_deferrable`` from the Airflow configuration (``False`` when unset)."""
    return bool(conf.getboolean("operators", "default_deferrable", fallback=False))


def deferral_timeout(wait_seconds: float | None) -> timedelta | None:
    """Airflow's own timeout for a deferred wait of ``wait_seconds``: a little after the trigger's.

    >>> deferral_timeout(3600)
    datetime.timedelta(seconds=3900)
    """
    if wait_seconds is None:
        return None
    return timedelta(seconds=wait_seconds + DEFERRAL_GRACE_SECONDS)
