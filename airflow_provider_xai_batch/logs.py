"""The one logger shape the package logs through, so any logger fits where it accepts one.

>>> import logging
>>> def report(log: LogLike) -> None:
...     log.info("%d requests", 3)
>>> report(logging.getLogger("example"))
"""

from __future__ import annotations

from typing import Any, Protocol


class LogLike(Protocol):
    """The part of a logger the package uses: a ``logging.Logger``, or an operator's ``self.log``."""

    def info(self, msg: str, /, *args: Any) -> object: ...

    def warning(self, msg: str, /, *args: Any) -> object: ...
