"""Debian's Chromium, headless, driven over the Chrome DevTools Protocol with a small client.

No browser download and no driver: Chromium is started with a debugging port, and this module talks
to one page over its websocket (``websockets``, already an Airflow dependency). It runs as a
process of a :class:`ManagedProcesses` set, so it is always stopped with everything else.

>>> with ManagedProcesses(tmp_path / "logs") as processes:  # doctest: +SKIP
...     with ChromiumPage.launch(processes, tmp_path / "profile") as page:
...         page.goto("http://127.0.0.1:8080/")
...         page.wait_for_text("Connections")
...         page.screenshot(tmp_path / "page.png")
"""

from __future__ import annotations

import base64
import itertools
import json
import os
import re
import shutil
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.sync.client import ClientConnection, connect

from benchmarks.managed_processes import ManagedProcesses, wait_until

CHROMIUM_NAMES = ("chromium", "chromium-browser")


def chromium_path() -> str | None:
    """Where Chromium is installed, if it is."""
    for name in CHROMIUM_NAMES:
        found = shutil.which(name)
        if found:
            return found
    return None


def needs_chromium() -> pytest.MarkDecorator:
    """Skip a browser test where Chromium is missing, except in CI (``XAI_BATCH_REQUIRE_SERVICES=1``),
    where a missing browser must fail the test rather than hide it."""
    return pytest.mark.skipif(
        chromium_path() is None and os.environ.get("XAI_BATCH_REQUIRE_SERVICES") != "1",
        reason="needs Debian's chromium package (make test installs it)",
    )


class ChromiumPage:
    """One browser tab: navigate, run JavaScript, type, take screenshots."""

    _launched = itertools.count(1)

    def __init__(self, socket: ClientConnection, processes: ManagedProcesses, name: str) -> None:
        self._socket = socket
        self._ids = itertools.count(1)
        self._processes = processes
        self._name = name

    @classmethod
    def launch(
        cls, processes: ManagedProcesses, profile: Path, width: int = 1280, height: int = 1400
    ) -> ChromiumPage:
        executable = chromium_path()
        if executable is None:
            raise RuntimeError("chromium is not installed (make test installs Debian's chromium package)")
        command = [
            executable,
            "--headless",
            "--no-sandbox",  # test containers run as root, where Chromium's sandbox cannot start
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--remote-debugging-address=127.0.0.1",
            "--remote-debugging-port=0",
            f"--user-data-dir={profile}",
            f"--window-size={width},{height}",
            "about:blank",
        ]
        # A name (and log) of its own: several tests may share one deployment's processes.
        name = f"chromium-{next(cls._launched)}"
        processes.start(name, command)

        def devtools_port() -> int:
            match = re.search(r"DevTools listening on ws://127\.0\.0\.1:(\d+)/", processes.log_text(name))
            return int(match.group(1)) if match else 0

        port = wait_until("Chromium's DevTools endpoint", devtools_port, 60, on_timeout=processes.log_tails)
        pages = [
            target
            for target in httpx.get(f"http://127.0.0.1:{port}/json/list", timeout=30).json()
            if target["type"] == "page"
        ]
        # Entered here (websockets wants every connection entered); the page's own exit closes it.
        socket = connect(pages[0]["webSocketDebuggerUrl"], max_size=None, open_timeout=30).__enter__()
        page = cls(socket, processes, name)
        page.send("Page.enable")
        page.send("Runtime.enable")
        return page

    def __enter__(self) -> ChromiumPage:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._socket.close()
        self._processes.stop(self._name)

    def send(self, method: str, **params: Any) -> dict[str, Any]:
        """One DevTools command and its result (events arriving meanwhile are skipped)."""
        command_id = next(self._ids)
        self._socket.send(json.dumps({"id": command_id, "method": method, "params": params}))
        while True:
            message = json.loads(self._socket.recv(timeout=60))
            if message.get("id") == command_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return dict(message.get("result", {}))

    def goto(self, url: str) -> None:
        self.send("Page.navigate", url=url)

    def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page (promises are awaited)."""
        result = self.send("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression!r} raised {result['exceptionDetails']}")
        return result["result"].get("value")

    def text(self) -> str:
        return str(self.evaluate("document.body ? document.body.innerText : ''"))

    def wait_for(self, what: str, expression: str, timeout: float = 60) -> Any:
        """Wait until a JavaScript expression is truthy in the page; its value."""
        return wait_until(what, lambda: self._safe_evaluate(expression), timeout, on_timeout=self.text)

    def wait_for_text(self, text: str, timeout: float = 60) -> None:
        self.wait_for(
            f"{text!r} on the page", f"document.body && document.body.innerText.includes({text!r})", timeout
        )

    def click(self, element: str) -> None:
        """Click the middle of the element a JavaScript expression finds, as a user's mouse does."""
        box = self.wait_for(
            f"{element} to be visible",
            f"(() => {{ const e = {element}; if (!e) return null; e.scrollIntoView({{block: 'center'}});"
            " const r = e.getBoundingClientRect(); return r.width && r.height ? [r.x + r.width / 2, r.y + r.height / 2] : null; })()",
        )
        for kind in ("mousePressed", "mouseReleased"):
            self.send("Input.dispatchMouseEvent", type=kind, x=box[0], y=box[1], button="left", clickCount=1)

    def fill(self, element: str, text: str) -> None:
        """Click into a field and type, so the page sees the same events as from a keyboard."""
        # A field that is still moving (an opening section) can miss the first click: check focus.
        for _ in range(10):
            self.click(element)
            if self.evaluate(f"document.activeElement === {element}"):
                break
            time.sleep(0.3)
        else:
            raise AssertionError(f"could not focus {element}")
        self.type_text(text)

    def type_text(self, text: str) -> None:
        self.send("Input.insertText", text=text)

    def press(self, key: str, code: int) -> None:
        for kind in ("keyDown", "keyUp"):
            self.send("Input.dispatchKeyEvent", type=kind, key=key, code=key, windowsVirtualKeyCode=code)

    def screenshot(self, path: Path) -> Path:
        data = self.send("Page.captureScreenshot", format="png", captureBeyondViewport=True)["data"]
        path.write_bytes(base64.b64decode(data))
        return path

    def _safe_evaluate(self, expression: str) -> Any:
        try:
            return self.evaluate(expression)
        except RuntimeError:  # the page is between two documents
            time.sleep(0.2)
            return None
