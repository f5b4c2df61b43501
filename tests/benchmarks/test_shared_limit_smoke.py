"""The shared-limit benchmark runs end to end at a tiny size and reports both sides of each count.

No timing is asserted (the machine may be busy): only that each figure was measured for today's
pacing and the shared pacing, and that no request was lost on either side.
"""

from __future__ import annotations

import pytest

from benchmarks import shared_limit

pytestmark = pytest.mark.slow


def test_shared_limit_reports_rate_429s_and_losses_before_and_after() -> None:
    rows = shared_limit.run(limit=5, window=1.0, windows=2, counts=(2,))
    by_metric = {row.metric.split(": ", 1)[1].split(" (")[0]: row for row in rows}
    assert set(by_metric) == {"rate / allowed", "share of calls answered 429", "requests lost"}
    rate = by_metric["rate / allowed"]
    assert rate.ours > 0 and rate.baseline is not None and rate.baseline > 0
    for variant in ("before", "after"):
        measured = rate.notes[variant]
        assert measured["sent"] > 0
        assert measured["in_batch"] == measured["sent"]
        assert measured["calls"] == measured["sent"] + measured["refused"]
    assert by_metric["requests lost"].ours == 0 and by_metric["requests lost"].baseline == 0
