"""Who may see and cancel which batch, and the cross-site checks on a cancel: pure decisions.

The page asks Airflow's auth manager the questions (:class:`Permissions` carries the answers),
and these functions decide. A batch a task of this provider recorded belongs to that task's DAG:
reading the DAG lets a user see the batch, editing it lets them cancel it. A batch no DAG recorded
(made by hand, by another tool) is for administrators only.

A cancel is a state change, so the session cookie alone must not be enough for it: a form post
carries a token derived from the session's own token (:func:`csrf_token`), and its ``Origin`` (or
``Referer``) must be this server. A call with an ``Authorization`` header is not a browser's
ambient credential and needs neither.

>>> secret = b"server-secret"
>>> token = csrf_token(secret, "session-jwt")
>>> csrf_ok(secret, "session-jwt", token), csrf_ok(secret, "another-session", token)
(True, False)
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from urllib.parse import urlsplit


@dataclass(frozen=True)
class Permissions:
    """What the auth manager said about one user and one batch.

    ``dag_id`` is the DAG that made the batch (``None``: no DAG recorded it).
    """

    dag_id: str | None
    can_read_dag: bool = False
    can_edit_dag: bool = False
    is_admin: bool = False


def may_see(permissions: Permissions) -> bool:
    """Read access to the DAG that made the batch; administrators for batches no DAG made.

    >>> may_see(Permissions("nightly", can_read_dag=True)), may_see(Permissions(None, can_read_dag=True))
    (True, False)
    """
    if permissions.dag_id is None:
        return permissions.is_admin
    return permissions.can_read_dag or permissions.is_admin


def may_cancel(permissions: Permissions) -> bool:
    """Edit access to the DAG that made the batch; administrators for batches no DAG made.

    >>> may_cancel(Permissions("nightly", can_read_dag=True)), may_cancel(Permissions("nightly", can_edit_dag=True))
    (False, True)
    """
    if permissions.dag_id is None:
        return permissions.is_admin
    return permissions.can_edit_dag or permissions.is_admin


def csrf_token(secret: bytes, session_token: str) -> str:
    """A token bound to the session: an HMAC of the session's own token under the server's secret."""
    return hmac.new(secret, b"xai-batch-cancel:" + session_token.encode(), hashlib.sha256).hexdigest()


def csrf_ok(secret: bytes, session_token: str | None, offered: str | None) -> bool:
    """Whether ``offered`` is this session's token (compared in constant time)."""
    if not session_token or not offered:
        return False
    return hmac.compare_digest(csrf_token(secret, session_token), offered)


def _origin(url: str) -> tuple[str, str] | None:
    parts = urlsplit(url)
    if not parts.scheme or not parts.netloc:
        return None
    return parts.scheme.lower(), parts.netloc.lower()


def same_origin(origin: str | None, referer: str | None, allowed: list[str]) -> bool:
    """Whether a browser's form post comes from one of the ``allowed`` origins.

    ``Origin`` decides when sent; otherwise the ``Referer``; a post with neither is refused (a
    browser sends at least one with a cross-site form post).

    >>> same_origin("http://127.0.0.1:8080", None, ["http://127.0.0.1:8080"])
    True
    >>> same_origin("https://evil.example", "http://127.0.0.1:8080/x", ["http://127.0.0.1:8080"])
    False
    >>> same_origin(None, None, ["http://127.0.0.1:8080"])
    False
    """
    wanted = {found for url in allowed if (found := _origin(url)) is not None}
    if origin and origin != "null":
        return _origin(origin) in wanted
    if referer:
        return _origin(referer) in wanted
    return False
