"""Which requests fail, decided once when a request is admitted.

A request marked ``[[fail-transient]]`` fails the first time its content is seen and succeeds when
resubmitted; otherwise a seeded draw per (batch, request) fails ``error_rate`` of them, the same
way on every run with the same seed.
"""

from __future__ import annotations

import hashlib

from airflow_provider_xai_batch.emulator.config import EmulatorConfig
from airflow_provider_xai_batch.emulator.payloads import PreparedRequest
from airflow_provider_xai_batch.emulator.store import FAILS_BY_RATE, SUCCEEDS

PROCESSING_ERROR = "Internal error while processing the request"
CANCELLED_ERROR = "Batch cancelled"


class OutcomeDecider:
    """Decides each admitted request's outcome code.

    >>> from .payloads import prepare_request
    >>> body = {"chat_get_completion": {"model": "m", "messages": [{"role": "user", "content": "x"}]}}
    >>> request = prepare_request("r1", body, supported_models={"m"})
    >>> OutcomeDecider().decide(EmulatorConfig(error_rate=0.0), "batch_1", request) == SUCCEEDS
    True
    """

    def __init__(self) -> None:
        # (request id, content digest) of [[fail-transient]] requests that already failed once.
        self._failed_transiently: set[tuple[str, bytes]] = set()

    def reset(self) -> None:
        """Forget which transient failures already happened."""
        self._failed_transiently.clear()

    def decide(self, config: EmulatorConfig, batch_id: str, request: PreparedRequest) -> int:
        """``SUCCEEDS`` or ``FAILS_BY_RATE`` (answered with ``PROCESSING_ERROR``) for one request."""
        request_id = request.batch_request_id
        if request.fails_transiently:
            key = (request_id, request.digest)
            if key not in self._failed_transiently:
                self._failed_transiently.add(key)
                return FAILS_BY_RATE
        rate = config.error_rate
        if rate <= 0:
            return SUCCEEDS
        digest = hashlib.blake2b(f"{config.seed}\0{batch_id}\0{request_id}".encode(), digest_size=8)
        draw = int.from_bytes(digest.digest(), "big") / 2**64
        return FAILS_BY_RATE if draw < rate else SUCCEEDS
