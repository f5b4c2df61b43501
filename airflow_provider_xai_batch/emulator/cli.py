"""``xai-batch-emulator``: serve the emulated Batch API until SIGINT or SIGTERM."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from collections.abc import Sequence
from types import FrameType
from typing import Any

from airflow_provider_xai_batch.emulator.config import FAULT_KINDS, EmulatorConfig
from airflow_provider_xai_batch.emulator.server import EmulatorServer

API_KEY_ENV = "XAI_EMULATOR_API_KEY"

# (flag, config field, type, help). Defaults come from EmulatorConfig, so they cannot drift.
_KNOBS: tuple[tuple[str, str, type, str], ...] = (
    (
        "--processing-rate",
        "processing_rate",
        float,
        "requests finished per second in each batch; 0 = at once",
    ),
    ("--error-rate", "error_rate", float, "fraction of requests that fail while processing (0..1)"),
    ("--latency-ms", "latency_ms", float, "milliseconds added to every answer"),
    ("--seed", "seed", int, "seed for which requests fail and which calls meet random faults"),
    ("--fault-rate", "fault_rate", float, "fraction of calls hit by a random fault (0..1)"),
    ("--fault-kinds", "fault_kinds", str, f"comma-separated kinds of random faults: {','.join(FAULT_KINDS)}"),
    ("--slow-ms", "slow_ms", float, "latency of a 'slow' random fault"),
    ("--create-rate-limit", "create_rate_limit", int, "batch creations per window; 0 = unlimited"),
    ("--create-rate-window", "create_rate_window_seconds", float, "batch creation window in seconds"),
    ("--add-rate-limit", "add_rate_limit", int, "add-requests calls per rolling window; 0 = unlimited"),
    ("--add-rate-window", "add_rate_window_seconds", float, "add-requests window in seconds"),
    ("--max-request-bytes", "max_request_bytes", int, "largest single request"),
    ("--max-add-call-bytes", "max_add_call_bytes", int, "largest add-requests call body (413 above)"),
    ("--max-file-requests", "max_file_requests", int, "most requests in one JSONL input file"),
    ("--max-file-bytes", "max_file_bytes", int, "largest JSONL input file"),
    ("--file-ingest-seconds", "file_ingest_seconds", float, "how long a file batch shows zero counters"),
    ("--supported-models", "supported_models", str, "comma-separated models that accept batch work"),
    ("--batch-ttl-days", "batch_ttl_days", int, "days until a batch expires"),
    ("--media-ttl-seconds", "media_ttl_seconds", float, "seconds an image or video URL stays valid"),
    ("--media-base-url", "media_base_url", str, "address media URLs point at; empty = the emulator's own"),
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="xai-batch-emulator",
        description="A local stand-in for xAI's Batch API, for tests, demos and CI.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default: loopback only)")
    parser.add_argument("--port", type=int, default=8787, help="port to bind; 0 picks a free one")
    parser.add_argument("--api-key", default=None, help=f"the key clients must send (or set {API_KEY_ENV})")
    defaults = EmulatorConfig()
    for flag, name, kind, text in _KNOBS:
        default = getattr(defaults, name)
        shown = ",".join(default) if isinstance(default, tuple) else default
        parser.add_argument(flag, dest=name, type=kind, default=None, help=f"{text} (default: {shown})")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Parse arguments, serve until SIGINT or SIGTERM, return the exit status.

    ``main(["--port", "0", "--api-key", "k", "--processing-rate", "5"])`` prints
    ``xai-batch-emulator listening on http://127.0.0.1:<port>``, serves, and returns 0 once
    signalled; without an API key (flag or ``XAI_EMULATOR_API_KEY``) it returns 2 at once.
    """
    parser = build_parser()
    args = parser.parse_args(list(argv) if argv is not None else None)
    api_key = args.api_key or os.environ.get(API_KEY_ENV, "")
    if not api_key:
        print(f"xai-batch-emulator: an API key is required (--api-key or {API_KEY_ENV})", file=sys.stderr)
        return 2
    knobs: dict[str, Any] = {
        name: getattr(args, name) for _, name, _, _ in _KNOBS if getattr(args, name) is not None
    }
    try:
        server = EmulatorServer(api_key=api_key, host=args.host, port=args.port, **knobs)
    except ValueError as error:
        print(f"xai-batch-emulator: {error}", file=sys.stderr)
        return 2
    stop = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        try:
            server.start()
        except OSError as error:
            print(f"xai-batch-emulator: cannot listen on {args.host}:{args.port}: {error}", file=sys.stderr)
            return 1
        print(f"xai-batch-emulator listening on {server.url}", flush=True)
        # A timed wait keeps the main thread responsive to signals on every platform.
        while not stop.wait(0.5):
            pass
        server.stop()
        return 0
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


if __name__ == "__main__":
    sys.exit(main())
