"""Ceiling: how much the emulator itself can serve, so the other benchmarks are known not to measure it.

The load comes from a minimal HTTP/1.1 client on asyncio streams (pre-built requests, keep-alive,
no parsing beyond the status line and ``Content-Length``), in its own process, so that the
emulator rather than the client runs out first. Alongside each rate, the emulator's CPU use over
the same interval: near 100 % of one core means the emulator was the limit.

- small calls: ``GET /v1/batches/{id}`` from 1, 16 and 128 concurrent connections;
- add calls: pre-packed bodies of up to 25 MB, the largest the service takes, one connection;
- results: pages of 1,000 finished results, walked by 1 and by 4 concurrent readers.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from typing import Any
from urllib.parse import urlsplit

from airflow_provider_xai_batch.emulator.process import EmulatorProcess
from benchmarks.harness import API_KEY, Row, cpu_seconds, format_table, in_child
from benchmarks.ingest import request_line

RESULTS_PAGE = 1000


class RawConnection:
    """One keep-alive HTTP/1.1 connection that sends prepared requests and reads whole answers."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or 80
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def open(self) -> RawConnection:
        self._reader, self._writer = await asyncio.open_connection(self.host, self.port, limit=1 << 24)
        return self

    def prepare(self, method: str, target: str, body: bytes = b"") -> bytes:
        head = (
            f"{method} {target} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
            f"Authorization: Bearer {API_KEY}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        )
        return head.encode() + body

    async def send(self, request: bytes) -> tuple[int, bytes]:
        assert self._reader is not None and self._writer is not None
        self._writer.write(request)
        await self._writer.drain()
        head = await self._reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        body = await self._reader.readexactly(length) if length else b""
        return status, body

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.close()


class EmulatorCPU:
    """The emulator's CPU seconds over a ``with`` block, as a share of one core."""

    def __init__(self, pid: int) -> None:
        import psutil

        self.process = psutil.Process(pid)
        self.share = 0.0

    def __enter__(self) -> EmulatorCPU:
        self._cpu = cpu_seconds(self.process)
        self._wall = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.share = (cpu_seconds(self.process) - self._cpu) / (time.perf_counter() - self._wall)


async def _small_calls(url: str, pid: int, batch_id: str, connections: int, seconds: float) -> dict[str, Any]:
    opened = [await RawConnection(url).open() for _ in range(connections)]
    request = opened[0].prepare("GET", f"/v1/batches/{batch_id}")
    calls = [0] * connections
    deadline = 0.0

    async def hammer(index: int) -> None:
        connection = opened[index]
        while time.perf_counter() < deadline:
            status, _ = await connection.send(request)
            if status != 200:
                raise RuntimeError(f"GET answered {status}")
            calls[index] += 1

    with EmulatorCPU(pid) as cpu:
        start = time.perf_counter()
        deadline = start + seconds
        await asyncio.gather(*(hammer(index) for index in range(connections)))
        elapsed = time.perf_counter() - start
    for connection in opened:
        await connection.close()
    return {"calls_per_s": sum(calls) / elapsed, "emulator_cpu": cpu.share}


def _small_calls_child(
    url: str, pid: int, batch_id: str, connections: int, seconds: float, queue: Any
) -> None:
    queue.put(asyncio.run(_small_calls(url, pid, batch_id, connections, seconds)))


def packed_bodies(count: int, prefix: str) -> list[bytes]:
    """``count`` requests as the ingest benchmark sends them, packed into add-call bodies of at most 25 MB."""
    from airflow_provider_xai_batch.client.inputs import encode_request, normalise_requests
    from airflow_provider_xai_batch.client.protocol import pack_add_calls

    requests = ({**request_line(i), "custom_id": f"{prefix}-{i:08d}"} for i in range(count))
    encoded = (
        (r["batch_request_id"], encode_request(r)) for r in normalise_requests(requests, source="bench")
    )
    return [bytes(call.body) for call in pack_add_calls(encoded, max_body_bytes=25_000_000)]


async def _adds(url: str, pid: int, batch_id: str, bodies: list[bytes]) -> dict[str, Any]:
    connection = await RawConnection(url).open()
    prepared = [connection.prepare("POST", f"/v1/batches/{batch_id}/requests", body) for body in bodies]
    with EmulatorCPU(pid) as cpu:
        start = time.perf_counter()
        for request in prepared:
            status, answer = await connection.send(request)
            if status != 200:
                raise RuntimeError(f"add answered {status}: {answer[:200]!r}")
        elapsed = time.perf_counter() - start
    await connection.close()
    size = sum(len(body) for body in bodies)
    return {
        "mb_per_s": size / 1e6 / elapsed,
        "emulator_cpu": cpu.share,
        "calls": len(bodies),
        "seconds": elapsed,
    }


def _adds_child(url: str, pid: int, batch_id: str, count: int, queue: Any) -> None:
    bodies = packed_bodies(count, f"ceiling-{time.time()}")
    queue.put(asyncio.run(_adds(url, pid, batch_id, bodies)))


async def _pages(url: str, pid: int, batch_id: str, readers: int) -> dict[str, Any]:
    import msgspec

    class Token(msgspec.Struct):
        pagination_token: str | None = None

    read_token = msgspec.json.Decoder(Token).decode
    opened = [await RawConnection(url).open() for _ in range(readers)]
    pages = [0] * readers

    async def walk(index: int) -> None:
        connection = opened[index]
        token: str | None = None
        while True:
            target = f"/v1/batches/{batch_id}/results?limit={RESULTS_PAGE}"
            if token:
                target += f"&pagination_token={token}"
            status, body = await connection.send(connection.prepare("GET", target))
            if status != 200:
                raise RuntimeError(f"results answered {status}")
            pages[index] += 1
            token = read_token(body).pagination_token
            if not token:
                return

    with EmulatorCPU(pid) as cpu:
        start = time.perf_counter()
        await asyncio.gather(*(walk(index) for index in range(readers)))
        elapsed = time.perf_counter() - start
    for connection in opened:
        await connection.close()
    return {"pages_per_s": sum(pages) / elapsed, "emulator_cpu": cpu.share}


def _pages_child(url: str, pid: int, batch_id: str, readers: int, queue: Any) -> None:
    queue.put(asyncio.run(_pages(url, pid, batch_id, readers)))


def _create_batch(url: str, name: str) -> str:
    import httpx

    answer = httpx.post(
        f"{url}/v1/batches", json={"name": name}, headers={"Authorization": f"Bearer {API_KEY}"}
    )
    answer.raise_for_status()
    batch_id: str = answer.json()["batch_id"]
    return batch_id


def run(
    seconds: float = 3.0,
    connections: tuple[int, ...] = (1, 16, 128),
    add_requests: int = 200_000,
    result_rows: int = 200_000,
    readers: tuple[int, ...] = (1, 4),
) -> list[Row]:
    flags = (
        "--processing-rate",
        "0",
        "--add-rate-limit",
        "0",
        "--create-rate-limit",
        "0",
        "--error-rate",
        "0.05",
    )
    rows: list[Row] = []
    with EmulatorProcess(API_KEY, args=flags) as emulator:
        url, pid = emulator.url, emulator.pid
        small = _create_batch(url, "ceiling-small")
        for count in connections:
            found = in_child(_small_calls_child, url, pid, small, count, seconds)
            rows.append(
                Row(
                    "ceiling",
                    f"GET batch calls/s, {count} connections",
                    found["calls_per_s"],
                    None,
                    "calls/s",
                    notes=found,
                )
            )
            rows.append(_cpu_row(f"  emulator CPU, {count} connections", found))

        target = _create_batch(url, "ceiling-adds")
        found = in_child(_adds_child, url, pid, target, add_requests)
        rows.append(
            Row(
                "ceiling",
                "add calls, pre-packed 25 MB bodies",
                add_requests / found["seconds"],
                None,
                "req/s",
                notes=found,
            )
        )
        rows.append(Row("ceiling", "add calls, pre-packed 25 MB bodies", found["mb_per_s"], None, "MB/s"))
        rows.append(_cpu_row("  emulator CPU, add calls", found))

        finished = _create_batch(url, "ceiling-results")
        in_child(_adds_child, url, pid, finished, result_rows)
        for count in readers:
            found = in_child(_pages_child, url, pid, finished, count)
            rows.append(
                Row(
                    "ceiling",
                    f"results rows/s, {count} reader{'s' if count > 1 else ''}",
                    found["pages_per_s"] * RESULTS_PAGE,
                    None,
                    "rows/s",
                    notes=found,
                )
            )
            rows.append(_cpu_row(f"  emulator CPU, {count} results readers", found))
    return rows


def _cpu_row(metric: str, found: dict[str, Any]) -> Row:
    return Row("ceiling", metric, found["emulator_cpu"] * 100, None, "% of a core")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--add-requests", type=int, default=200_000)
    parser.add_argument("--result-rows", type=int, default=200_000)
    args = parser.parse_args()
    print(format_table(run(args.seconds, add_requests=args.add_requests, result_rows=args.result_rows)))


if __name__ == "__main__":
    main()
