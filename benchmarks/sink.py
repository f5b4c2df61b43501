"""A minimal HTTP/1.1 server that takes add calls and answers ``{}`` at once: the ingest's second target.

The emulator parses every add-call body it receives, which takes a core and sets the pace of
both the provider and its baseline. This server only reads each body and counts the requests in
it (one scan for ``"batch_request_id"`` in C), so what is left to measure is the sender's own cost.

``GET /count`` answers ``{"requests": N, "calls": M}``; anything else gets ``{}``.

>>> with sink_process() as url:  # doctest: +SKIP
...     httpx.post(url + "/v1/batches/b1/requests", content=b'{"batch_requests":[]}')
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator

_MARKER = b'"batch_request_id"'


class _Counts:
    requests = 0
    calls = 0


async def _serve_connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            request_line, _, header_block = head.partition(b"\r\n")
            length = 0
            for line in header_block.split(b"\r\n"):
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            body = await reader.readexactly(length) if length else b""
            if request_line.startswith(b"GET /count"):
                answer = json.dumps({"requests": _Counts.requests, "calls": _Counts.calls}).encode()
            else:
                if body:
                    _Counts.requests += body.count(_MARKER)
                    _Counts.calls += 1
                answer = b"{}"
            writer.write(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
                % (len(answer), answer)
            )
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        writer.close()


async def _main(port: int) -> None:
    # A large read buffer: add-call bodies are tens of MB and arrive as fast as loopback allows.
    server = await asyncio.start_server(_serve_connection, "127.0.0.1", port, limit=1 << 20)
    bound = server.sockets[0].getsockname()[1]
    print(f"sink listening on http://127.0.0.1:{bound}", flush=True)
    async with server:
        await server.serve_forever()


@contextlib.contextmanager
def sink_process() -> Iterator[str]:
    """Run the sink in its own process on a free loopback port; yield its URL."""
    # Run by its path: it needs nothing but the standard library, wherever the caller runs from.
    command = [sys.executable, os.path.abspath(__file__), "--port", "0"]
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True) as process:
        try:
            assert process.stdout is not None
            match = re.search(r"(http://\S+)", process.stdout.readline())
            if not match:
                raise RuntimeError("the sink did not start")
            yield match.group(1)
        finally:
            process.terminate()
            process.wait(timeout=10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=0)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_main(parser.parse_args().port))


if __name__ == "__main__":
    main()
