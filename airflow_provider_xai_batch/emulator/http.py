"""The HTTP adapter: an asyncio server on ``h11`` speaking the wire contract.

Built on ``h11`` rather than a framework because faults need control a framework hides: dropping a
connection before or after a call is applied, and adding latency to one answer while other
connections carry on. Calls with large bodies are handled in worker threads, so a 25 MB add call
does not stall the loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from http import HTTPStatus
from urllib.parse import parse_qs, unquote

import h11

from airflow_provider_xai_batch.emulator.faults import FaultDecision, FaultPlan
from airflow_provider_xai_batch.emulator.handlers import (
    Answer,
    ApiHandlers,
    Incoming,
    error_answer,
    injected_error_answer,
)
from airflow_provider_xai_batch.emulator.request_log import BODY_EXCERPT_BYTES, LoggedRequest, RequestLog
from airflow_provider_xai_batch.emulator.routes import RouteMatch, resolve
from airflow_provider_xai_batch.emulator.state import BatchService

log = logging.getLogger("airflow_provider_xai_batch.emulator")

READ_SIZE = 1 << 20
# Small calls are answered on the loop itself (a thread hand-off would cost more than the work);
# calls with big bodies, whose parsing takes a while, go to a worker thread.
INLINE_BODY_BYTES = 256 << 10
# Multipart framing around an uploaded file is small; this is ample.
UPLOAD_OVERHEAD_BYTES = 1 << 20
# Oversized bodies are read and discarded (so the client sees the 413), up to this much; beyond it the
# connection is closed instead of reading on.
DISCARD_LIMIT_BYTES = 512 << 20


class EmulatorApp:
    """Serves one connection at a time per task: parse, fault, dispatch, answer.

    >>> from .config import EmulatorConfig
    >>> app = EmulatorApp(BatchService(EmulatorConfig()), FaultPlan(), RequestLog())
    >>> app.body_limit(resolve("POST", "/v1/batches/b/requests"))
    25000000
    """

    def __init__(self, service: BatchService, faults: FaultPlan, request_log: RequestLog) -> None:
        self.service = service
        self.faults = faults
        self.request_log = request_log
        self.handlers = ApiHandlers(service, faults, request_log)

    def body_limit(self, match: RouteMatch) -> int:
        config = self.service.config
        if match.name == "add_requests":
            return config.max_add_call_bytes
        if match.name == "upload_file":
            return config.max_file_bytes + UPLOAD_OVERHEAD_BYTES
        return config.max_other_body_bytes

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Answer requests on one keep-alive connection until either side closes it."""
        connection = h11.Connection(h11.SERVER)
        try:
            while True:
                event = await _next_event(connection, reader, writer)
                if not isinstance(event, h11.Request):
                    return
                if not await self._exchange(connection, reader, writer, event):
                    return
                if connection.our_state is not h11.DONE or connection.their_state is not h11.DONE:
                    return
                connection.start_next_cycle()
        except h11.RemoteProtocolError as error:
            with contextlib.suppress(h11.LocalProtocolError, ConnectionError):
                await _send(
                    connection, writer, error_answer(error.error_status_hint, "Malformed HTTP request")
                )
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        except Exception as error:
            # A fault of the emulator itself: answer 500 if the exchange still allows it, log one line.
            log.warning("a connection failed inside the emulator: %s: %s", type(error).__name__, error)
            with contextlib.suppress(Exception):
                await _send(connection, writer, error_answer(500, "Internal error encountered"), close=True)
        finally:
            writer.close()

    async def _exchange(
        self,
        connection: h11.Connection,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        head: h11.Request,
    ) -> bool:
        """One request and its answer; ``False`` when the connection must end."""
        target = head.target.decode("latin-1")
        raw_path, _, raw_query = target.partition("?")
        headers = [(name.decode("latin-1"), value.decode("latin-1")) for name, value in head.headers]
        request = Incoming(
            method=head.method.decode("ascii"),
            path=unquote(raw_path),
            query=parse_qs(raw_query),
            headers={name.lower(): value for name, value in headers},
        )
        match = resolve(request.method, request.path)
        limit = self.body_limit(match)
        entry = LoggedRequest(request.method, target, headers, b"", 0, route=match.name)
        self.request_log.append(entry)

        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > max(limit, DISCARD_LIMIT_BYTES):
            # Too big to bother reading: answer at once and close, as a front proxy would.
            if match.is_api and match.name is not None:
                self.faults.record_call(match.name)
                self.faults.record_answer(match.name, 413)
            entry.status = 413
            await _send(connection, writer, _too_large(limit), close=True)
            return False
        body = await _read_body(connection, reader, writer, limit)
        if body is None:
            return False
        content, size = body
        request.body = content
        entry.body_excerpt, entry.body_size = content[:BODY_EXCERPT_BYTES], size

        decision: FaultDecision | None = None
        if match.is_api and match.name is not None:
            self.faults.record_call(match.name)
            decision = self.faults.decide(match.name)
        if decision is not None and decision.latency_ms:
            await asyncio.sleep(decision.latency_ms / 1000)
        if decision is not None and decision.drop == "before":
            self.faults.record_drop(str(match.name))
            _abort(writer)
            return False

        if decision is not None and decision.status is not None:
            answer = injected_error_answer(decision.status)
        elif size > limit:
            answer = _too_large(limit)
        elif match.name is None:
            answer = _no_route(request.method, request.path, match.allowed_methods)
        elif size > INLINE_BODY_BYTES:
            answer = await asyncio.to_thread(self.handlers.handle, match.name, match.params, request)
        else:
            answer = self.handlers.handle(match.name, match.params, request)

        if decision is not None and decision.drop == "after":
            self.faults.record_drop(str(match.name))
            _abort(writer)
            return False
        if match.is_api and self.service.config.latency_ms:
            await asyncio.sleep(self.service.config.latency_ms / 1000)
        if match.is_api and match.name is not None:
            self.faults.record_answer(match.name, answer.status)
        entry.status = answer.status
        await _send(connection, writer, answer, head_only=request.method == "HEAD")
        return True


class HTTPServer:
    """The listening socket and its connections; ``close()`` ends them all promptly."""

    def __init__(self, app: EmulatorApp, host: str = "127.0.0.1", port: int = 0) -> None:
        self.app = app
        self.host = host
        self.port = port
        self._server: asyncio.base_events.Server | None = None
        self._connections: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()
        self._closing = False

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._closing:
            _abort(writer)
            return
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        self._writers.add(writer)
        try:
            await self.app.serve(reader, writer)
        finally:
            self._connections.discard(task)
            self._writers.discard(writer)

    async def close(self) -> None:
        self._closing = True
        server = self._server
        if server is not None:
            # Stop accepting first, but keep the server open while connections accepted a moment ago
            # get their transport (creating one fails once the server is closed, leaking the socket);
            # their handlers then see the flag and end them.
            loop = asyncio.get_running_loop()
            for sock in server.sockets:
                loop.remove_reader(sock.fileno())
            for _ in range(10):
                await asyncio.sleep(0)
            server.close()
        for writer in list(self._writers):
            _abort(writer)
        # Aborted transports end their handlers by themselves; cancelling is only the last resort.
        if self._connections:
            _, stuck = await asyncio.wait(list(self._connections), timeout=2.0)
            for task in stuck:
                task.cancel()
        if self._server is not None:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._server.wait_closed(), timeout=2.0)


async def _next_event(
    connection: h11.Connection, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> object:
    while True:
        event = connection.next_event()
        if event is not h11.NEED_DATA:
            return event
        if connection.they_are_waiting_for_100_continue:
            # curl waits for this before sending a large body.
            writer.write(connection.send(h11.InformationalResponse(status_code=100, headers=[])) or b"")
        connection.receive_data(await reader.read(READ_SIZE))


async def _read_body(
    connection: h11.Connection, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, limit: int
) -> tuple[bytes, int] | None:
    """The whole body (joined once), or an empty one with the real size when it is over ``limit``."""
    chunks: list[bytes] = []
    size = 0
    while True:
        event = await _next_event(connection, reader, writer)
        if isinstance(event, h11.Data):
            size += len(event.data)
            if size <= limit:
                chunks.append(event.data)
            elif chunks:
                chunks.clear()
            if size > DISCARD_LIMIT_BYTES:
                return None
        elif isinstance(event, h11.EndOfMessage):
            return (b"".join(chunks) if size <= limit else b""), size
        else:
            return None


async def _send(
    connection: h11.Connection,
    writer: asyncio.StreamWriter,
    answer: Answer,
    *,
    close: bool = False,
    head_only: bool = False,
) -> None:
    headers = [
        ("content-type", answer.content_type),
        ("content-length", str(len(answer.body))),
        ("server", "xai-batch-emulator"),
    ]
    if close:
        headers.append(("connection", "close"))
    try:
        reason = HTTPStatus(answer.status).phrase
    except ValueError:
        reason = ""
    writer.write(
        connection.send(h11.Response(status_code=answer.status, headers=headers, reason=reason)) or b""
    )
    # Passthrough hands the body to the transport without another copy of a large file. The answer
    # to a HEAD request has the headers of the full answer and no body (RFC 9110, 9.3.2).
    if not head_only:
        for chunk in connection.send_with_data_passthrough(h11.Data(data=answer.body)) or []:
            writer.write(chunk)
    writer.write(connection.send(h11.EndOfMessage()) or b"")
    await writer.drain()


def _abort(writer: asyncio.StreamWriter) -> None:
    # An abrupt end with nothing sent: what a client sees when a proxy or the network fails.
    transport = writer.transport
    if not transport.is_closing():
        transport.abort()


def _too_large(limit: int) -> Answer:
    return error_answer(413, f"Request body exceeds the limit of {limit} bytes")


def _no_route(method: str, path: str, allowed: tuple[str, ...]) -> Answer:
    if allowed:
        return error_answer(405, f"Method {method} is not allowed on {path}; use {', '.join(allowed)}")
    return error_answer(404, f"No such route: {method} {path}")
