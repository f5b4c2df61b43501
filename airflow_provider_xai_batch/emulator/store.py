"""Compact storage of one batch's requests and their lazy, clock-driven processing.

Columns (arrays and byte strings) instead of one object per request keep a batch of a million
requests to about 320 bytes each, and leave the garbage collector almost nothing to scan: ids live
in tuples (one per add call), which the collector stops tracking once it has seen them.

Processing is a single queue: requests finish in submission order, ``1 / rate`` seconds apart,
never before they were added. Nothing runs in the background: ``advance(until=now)`` works out
what has finished whenever someone looks.
"""

from __future__ import annotations

from array import array
from bisect import bisect_right
from collections.abc import Iterator, Sequence

from airflow_provider_xai_batch.emulator.payloads import KINDS, PreparedRequest, request_cost

# Outcome codes kept per request, one byte each.
SUCCEEDS = 0
FAILS_BY_RATE = 1
FAILS_FIXED = 2

PENDING = "pending"
SUCCEEDED = "succeeded"
FAILED = "failed"
CANCELLED = "cancelled"

_DIGEST = 16
_KIND_CODES = {kind: code for code, kind in enumerate(KINDS)}


class RequestStore:
    """The requests of one batch, in submission order.

    >>> from .payloads import prepare_request
    >>> store = RequestStore()
    >>> body = {"chat_get_completion": {"model": "m", "messages": [{"role": "user", "content": "x"}]}}
    >>> store.extend([prepare_request("a", body, supported_models={"m"})], added_at=0.0, outcomes=[SUCCEEDS])
    >>> store.advance(until=0.5, rate=1.0)
    >>> store.state_at(0)
    'pending'
    >>> store.advance(until=1.0, rate=1.0)
    >>> (store.state_at(0), store.finish_time(0))
    ('succeeded', 1.0)
    """

    def __init__(self) -> None:
        self._count = 0
        self._id_chunks: list[tuple[str, ...]] = []
        self._chunk_starts = array("Q")
        self._index: dict[str, int] = {}
        self._digests = bytearray()
        self._added_at = array("d")
        self._finished_at = array("d")
        self._kinds = bytearray()
        self._models = array("H")
        self._model_names: list[str] = []
        self._model_codes: dict[str, int] = {}
        self._snippets = bytearray()
        self._snippet_ends = array("Q")
        self._prompt_tokens = array("L")
        self._image_counts = bytearray()
        self._b64_images = bytearray()
        self._outcomes = bytearray()
        self._costs = array("q")
        self._fixed_errors: dict[int, str] = {}
        # Progress of the processing queue.
        self.done = 0
        self.num_error = 0
        self.cost_ticks = 0
        self._busy_until = 0.0
        self._last_rate: float | None = None
        self._last_advance = 0.0
        self.cancelled_at: float | None = None
        # Ids in sorted order, extended lazily: results are listed by id.
        self._sorted: tuple[str, ...] = ()

    def __len__(self) -> int:
        return self._count

    def id_at(self, position: int) -> str:
        chunk = bisect_right(self._chunk_starts, position) - 1
        return self._id_chunks[chunk][position - self._chunk_starts[chunk]]

    def _ids_from(self, position: int) -> Iterator[str]:
        if position >= self._count:
            return
        chunk = bisect_right(self._chunk_starts, position) - 1
        yield from self._id_chunks[chunk][position - self._chunk_starts[chunk] :]
        for ids in self._id_chunks[chunk + 1 :]:
            yield from ids

    # -- adding -----------------------------------------------------------------------------------

    def position(self, batch_request_id: str) -> int | None:
        return self._index.get(batch_request_id)

    def digest_at(self, position: int) -> bytes:
        return bytes(self._digests[position * _DIGEST : (position + 1) * _DIGEST])

    def extend(
        self, requests: Sequence[PreparedRequest], *, added_at: float, outcomes: Sequence[int]
    ) -> None:
        """Admit requests with new ids; ``outcomes[i]`` says whether request i succeeds once processed."""
        if not requests:
            return
        self._chunk_starts.append(self._count)
        self._id_chunks.append(tuple(request.batch_request_id for request in requests))
        for request, outcome in zip(requests, outcomes, strict=True):
            position = self._count
            self._count += 1
            self._index[request.batch_request_id] = position
            self._digests += request.digest
            self._added_at.append(added_at)
            self._kinds.append(_KIND_CODES[request.kind])
            self._models.append(self._model_code(request.model))
            self._snippets += request.snippet.encode()
            self._snippet_ends.append(len(self._snippets))
            self._prompt_tokens.append(request.prompt_tokens)
            self._image_counts.append(request.image_count)
            self._b64_images.append(1 if request.b64_images else 0)
            if request.fixed_error is not None:
                outcome = FAILS_FIXED
                self._fixed_errors[position] = request.fixed_error
            self._outcomes.append(outcome)
            cost = 0
            if outcome == SUCCEEDS:
                cost = request_cost(request.kind, request.prompt_tokens, request.snippet, request.image_count)
            self._costs.append(cost)

    def _model_code(self, model: str) -> int:
        code = self._model_codes.get(model)
        if code is None:
            code = len(self._model_names)
            self._model_names.append(model)
            self._model_codes[model] = code
        return code

    # -- processing ------------------------------------------------------------------------------

    def advance(self, *, until: float, rate: float) -> None:
        """Finish every request whose turn in the queue has ended by ``until``."""
        if self.cancelled_at is not None:
            return
        if self._last_rate is not None and rate != self._last_rate:
            # A new rate applies from the last moment anyone looked, not retroactively.
            self._busy_until = max(self._busy_until, self._last_advance)
        self._last_rate = rate
        self._last_advance = max(self._last_advance, until)
        start = self.done
        total = self._count
        if start >= total:
            return
        finished = self._finished_at
        added = self._added_at
        position = start
        busy = self._busy_until
        if rate <= 0:
            # Instant processing: a request finishes when added, or when the queue freed up.
            while position < total and added[position] < busy:
                finished.append(busy)
                position += 1
            # Additions are in clock order, so the rest finish exactly when added (bulk copy).
            cut = bisect_right(added, until, position, total)
            finished.extend(added[position:cut])
            if cut > position:
                busy = max(busy, added[cut - 1])
            position = cut
        else:
            step = 1.0 / rate
            while position < total:
                begin = added[position]
                if begin < busy:
                    begin = busy
                end = begin + step
                if end > until:
                    break
                finished.append(end)
                busy = end
                position += 1
        self._busy_until = busy
        if position > start:
            outcomes = self._outcomes[start:position]
            self.num_error += (position - start) - outcomes.count(SUCCEEDS)
            self.cost_ticks += sum(self._costs[start:position])
            self.done = position

    def cancel(self, at: float) -> None:
        """Stop the queue: whatever has not finished by now is cancelled."""
        if self.cancelled_at is None:
            self.cancelled_at = at

    # -- reading ---------------------------------------------------------------------------------

    @property
    def num_cancelled(self) -> int:
        return self._count - self.done if self.cancelled_at is not None else 0

    @property
    def num_pending(self) -> int:
        return 0 if self.cancelled_at is not None else self._count - self.done

    @property
    def num_success(self) -> int:
        return self.done - self.num_error

    def state_at(self, position: int) -> str:
        if position < self.done:
            return SUCCEEDED if self._outcomes[position] == SUCCEEDS else FAILED
        return CANCELLED if self.cancelled_at is not None else PENDING

    def finish_time(self, position: int) -> float | None:
        if position < self.done:
            return self._finished_at[position]
        return self.cancelled_at

    def added_at(self, position: int) -> float:
        return self._added_at[position]

    def kind_at(self, position: int) -> str:
        return KINDS[self._kinds[position]]

    def model_at(self, position: int) -> str:
        return self._model_names[self._models[position]]

    def snippet_at(self, position: int) -> str:
        begin = self._snippet_ends[position - 1] if position else 0
        return self._snippets[begin : self._snippet_ends[position]].decode()

    def prompt_tokens_at(self, position: int) -> int:
        return self._prompt_tokens[position]

    def image_count_at(self, position: int) -> int:
        return self._image_counts[position]

    def b64_images_at(self, position: int) -> bool:
        return bool(self._b64_images[position])

    def fixed_error_at(self, position: int) -> str | None:
        return self._fixed_errors.get(position)

    def sorted_ids(self) -> tuple[str, ...]:
        """All ids in sorted order; sorts only what arrived since the last call."""
        if len(self._sorted) < self._count:
            merged = list(self._sorted)
            merged += sorted(self._ids_from(len(self._sorted)))
            # Two sorted runs: Timsort merges them in linear time.
            merged.sort()
            self._sorted = tuple(merged)
        return self._sorted

    def finished_after(self, after_id: str | None) -> Iterator[tuple[str, int]]:
        """``(id, position)`` of finished requests in id order, starting after ``after_id``."""
        ordered = self.sorted_ids()
        begin = 0 if after_id is None else bisect_right(ordered, after_id)
        index = self._index
        everything_finished = self.cancelled_at is not None or self.done == self._count
        for item in range(begin, len(ordered)):
            request_id = ordered[item]
            position = index[request_id]
            if everything_finished or position < self.done:
                yield request_id, position

    def after(self, after_id: str | None) -> int:
        """Submission position just after ``after_id`` (0 for none)."""
        if after_id is None:
            return 0
        position = self._index.get(after_id)
        if position is None:
            raise KeyError(after_id)
        return position + 1
