"""The final outcome of each request across rounds, streamed in request-id order.

Every round's results come sorted by ``batch_request_id`` (the service's order). A request sent in
rounds 0 and 1 appears in both; its final outcome is the one of the latest round, and its number of
attempts is how many rounds it appears in. Merging the sorted streams keeps memory flat however
large round 0 is.

>>> rounds = [
...     iter([RoundRow("a", 0, "ok-a"), RoundRow("b", 0, "failed-b"), RoundRow("c", 0, "ok-c")]),
...     iter([RoundRow("b", 1, "ok-b")]),
... ]
>>> [(o.request_id, o.row, o.attempts) for o in merge_rounds(rounds)]
[('a', 'ok-a', 1), ('b', 'ok-b', 2), ('c', 'ok-c', 1)]
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Iterator
from typing import Any, NamedTuple


class RoundRow(NamedTuple):
    """One result row of one round: the request id, the round number, and the row itself."""

    request_id: str
    round_number: int
    row: Any


class FinalOutcome(NamedTuple):
    """A request's last result and the number of rounds it was sent in."""

    request_id: str
    row: Any
    attempts: int
    round_number: int


class ResultsOutOfOrderError(ValueError):
    """A round's results did not come sorted by request id, so they cannot be merged in one pass."""


def _checked(rows: Iterable[RoundRow]) -> Iterator[RoundRow]:
    previous: str | None = None
    for row in rows:
        if previous is not None and row.request_id <= previous:
            if row.request_id == previous:
                continue  # a page boundary served twice: the row is already counted
            raise ResultsOutOfOrderError(
                f"results of round {row.round_number} are not sorted by request id "
                f"({row.request_id!r} came after {previous!r})"
            )
        previous = row.request_id
        yield row


def merge_rounds(rounds: Iterable[Iterable[RoundRow]]) -> Iterator[FinalOutcome]:
    """Merge the rounds' sorted result streams into one final outcome per request, in id order."""
    merged = heapq.merge(
        *(_checked(rows) for rows in rounds), key=lambda item: (item.request_id, item.round_number)
    )
    current: RoundRow | None = None
    attempts = 0
    for item in merged:
        if current is not None and item.request_id != current.request_id:
            yield FinalOutcome(current.request_id, current.row, attempts, current.round_number)
            attempts = 0
        current = item
        attempts += 1
    if current is not None:
        yield FinalOutcome(current.request_id, current.row, attempts, current.round_number)
