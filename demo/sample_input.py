"""Write sample input for the example DAGs: JSONL prompts for the nightly example and shards for the fan-in.

Usage (from a checkout, in the environment Airflow runs in)::

    python demo/sample_input.py            # under $XAI_BATCH_EXAMPLE_ROOT or $AIRFLOW_HOME/xai-batch-example
    python demo/sample_input.py /some/dir  # or anywhere else (then point XAI_BATCH_EXAMPLE_ROOT there)

It writes ``input/prompts-part-*.jsonl`` (read by ``example_xai_batch_nightly``) and
``shards/shard-*.jsonl`` (read by ``example_xai_batch_fan_in``). The lines mix the three accepted
request shapes; a third of them carry no id, so the provider derives one from file and line.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import urlparse

from airflow_provider_xai_batch.uris import example_root

TOPICS = [
    "a delayed parcel",
    "a broken kettle",
    "a great hotel stay",
    "an app that keeps crashing",
    "a helpful support call",
    "a noisy neighbour",
    "a perfect birthday cake",
    "a late train",
]


def write_requests(
    folder: Path, model: str, *, files: int, per_file: int, stem: str, fail_every: int = 0
) -> int:
    """``files`` JSONL files of ``per_file`` chat requests each; every ``fail_every``-th fails on purpose.

    A failing request asks for ``max_tokens: -1``: valid input, refused by the service while it
    processes the batch, so it lands in ``failed.jsonl``.

    >>> import tempfile
    >>> write_requests(Path(tempfile.mkdtemp()), "grok-4.3", files=2, per_file=3, stem="part")
    6
    """
    folder.mkdir(parents=True, exist_ok=True)
    count = 0
    for part in range(files):
        with (folder / f"{stem}-{part}.jsonl").open("w") as out:
            for line in range(per_file):
                topic = TOPICS[(part * per_file + line) % len(TOPICS)]
                fails = fail_every > 0 and line % fail_every == fail_every - 1
                body = {
                    "model": model,
                    "max_tokens": -1 if fails else 60,
                    "messages": [{"role": "user", "content": f"Write a one-sentence review about {topic}."}],
                }
                if line % 3 == 0:  # the JSONL/OpenAI shape
                    row = {
                        "custom_id": f"{stem}{part}-{line:04d}",
                        "method": "POST",
                        "url": "/v1/chat/completions",
                        "body": body,
                    }
                elif line % 3 == 1:  # the short shape, with no id: one is derived from file and line
                    row = {"body": body}
                else:  # the native shape
                    row = {
                        "batch_request_id": f"{stem}{part}-{line:04d}",
                        "batch_request": {"chat_get_completion": body},
                    }
                out.write(json.dumps(row) + "\n")
                count += 1
    return count


def write_sample_input(root: Path, model: str = "grok-4.3") -> dict[str, int]:
    """The nightly example's input and the fan-in example's shards under ``root``; requests per folder."""
    return {
        "input": write_requests(root / "input", model, files=2, per_file=15, stem="prompts-part"),
        "shards": write_requests(root / "shards", model, files=3, per_file=5, stem="shard"),
    }


def local_root(argv: Sequence[str]) -> Path:
    """The folder named on the command line, else the examples' own root (which must be local)."""
    if argv:
        return Path(argv[0]).expanduser().resolve()
    uri = urlparse(example_root(os.environ))
    if uri.scheme != "file":
        raise SystemExit(
            f"the examples' root {example_root(os.environ)} is not local: name a folder to write"
        )
    return Path(uri.path)


def main(argv: Sequence[str]) -> int:
    root = local_root(argv)
    counts = write_sample_input(root, os.environ.get("XAI_BATCH_MODEL", "grok-4.3"))
    for folder, count in counts.items():
        print(f"wrote {count} requests under {root / folder}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
