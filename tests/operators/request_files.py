"""Earlier name of the request builders and JSONL writers; they live in ``support`` now."""

from __future__ import annotations

from support.batch_requests import chat, expected_file_ids, explicit_id, native, openai_style, short
from support.constants import MODEL
from support.emulator import all_batches
from support.emulator import held_request_ids as batch_request_ids
from support.jsonl import write_jsonl

__all__ = [
    "MODEL",
    "all_batches",
    "batch_request_ids",
    "chat",
    "expected_file_ids",
    "explicit_id",
    "native",
    "openai_style",
    "short",
    "write_jsonl",
]
