"""The batches pages: a small FastAPI app the API server mounts under ``/xai-batch`` (Airflow 3.1+).

Routes (HTML for the browser, JSON under ``/api`` for scripts):

- ``GET /?conn_id=xai_default&page=1[&file_id=...]``: the connection's batches, newest first.
- ``GET /batches/{batch_id}?conn_id=...``: one batch, with its results when exported.
- ``POST /batches/{batch_id}/cancel``: cancel it (a form field ``csrf_token`` or a bearer token).
- ``GET /api/batches``, ``GET /api/batches/{batch_id}``: the same figures as JSON.

Every call is authorised here, on the server, through Airflow's auth manager: the caller is
whoever Airflow's own API would see (the ``Authorization: Bearer`` JWT, else the UI's ``_token``
cookie); no token, no page (401). The batch's DAG (see :mod:`.records`) decides what the user
may see and cancel (:mod:`.access`). The API key stays in the server: the pages show figures only.

Imported by the API server of Airflow 3.1+ only (see :mod:`.batches`).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from datetime import time as dt_time
from typing import Any
from urllib.parse import parse_qs, quote, urlencode, urlsplit

from airflow.api_fastapi.core_api.security import GetUserDep
from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from airflow_provider_xai_batch.client import Batch
from airflow_provider_xai_batch.client.errors import XAIError, XAINotFoundError
from airflow_provider_xai_batch.hooks.xai import XAIBatchHook
from airflow_provider_xai_batch.links import PAGE_PREFIX, batch_page_path
from airflow_provider_xai_batch.plugins import access, records, render
from airflow_provider_xai_batch.waiting.progress import RateMemory, batch_figures

PAGE_SIZE = 20
# The list reads the whole account to sort it newest first; past this many it shows the newest read.
MAX_LISTED = 5_000
DEFAULT_CONN_ID = XAIBatchHook.default_conn_name
SESSION_COOKIE = "_token"  # Airflow's UI keeps its JWT in this cookie

# First sighting of each batch in this API server, so a page can tell a rate and a time left.
_rates = RateMemory()


def _auth_manager() -> Any:
    from airflow.api_fastapi.app import get_auth_manager

    return get_auth_manager()


def _base() -> str:
    from airflow.configuration import conf

    # Only the path: the pages link within the server that served them.
    return urlsplit(conf.get("api", "base_url", fallback="") or "").path.rstrip("/")


def _secret() -> bytes:
    from airflow.configuration import conf

    secret = conf.get("api", "secret_key", fallback="") or conf.get("api_auth", "jwt_secret", fallback="")
    return str(secret).encode()


def xai_connections() -> list[str]:
    """The ``xai`` connections the server knows: in the database and in ``AIRFLOW_CONN_*`` variables."""
    found = {DEFAULT_CONN_ID}
    for key, value in os.environ.items():
        if not key.startswith("AIRFLOW_CONN_"):
            continue
        text = value.strip()
        kind = None
        if text.startswith("{"):
            try:
                kind = json.loads(text).get("conn_type")
            except (ValueError, AttributeError):
                kind = None
        elif "://" in text:
            kind = text.split("://", 1)[0]
        if kind == "xai":
            found.add(key[len("AIRFLOW_CONN_") :].lower())
    try:
        from airflow.models.connection import Connection
        from airflow.utils.session import create_session
        from sqlalchemy import select

        with create_session() as session:
            found.update(session.scalars(select(Connection.conn_id).where(Connection.conn_type == "xai")))
    except Exception:  # no database to read: the variables and the default still work
        pass
    return sorted(found)


def _check_conn(conn_id: str) -> str:
    if conn_id not in xai_connections():
        raise HTTPException(status_code=404, detail=f"No xai connection {conn_id!r}")
    return conn_id


@contextmanager
def _hook(conn_id: str) -> Iterator[XAIBatchHook]:
    hook = XAIBatchHook(xai_conn_id=conn_id)
    try:
        yield hook
    except XAINotFoundError as error:
        raise HTTPException(status_code=404, detail="No such batch") from error
    except XAIError as error:
        raise HTTPException(status_code=502, detail=f"The xAI service answered: {error}") from error
    finally:
        hook.close()


class _Judge:
    """The auth manager's answers for one user, asked once per DAG per request."""

    def __init__(self, user: Any) -> None:
        self.user = user
        self.manager = _auth_manager()
        self._dags: dict[tuple[str, str], bool] = {}
        self._admin: bool | None = None

    def _dag(self, method: str, dag_id: str) -> bool:
        key = (method, dag_id)
        if key not in self._dags:
            from airflow.api_fastapi.auth.managers.models.resource_details import DagDetails

            self._dags[key] = bool(
                self.manager.is_authorized_dag(method=method, details=DagDetails(id=dag_id), user=self.user)
            )
        return self._dags[key]

    @property
    def is_admin(self) -> bool:
        # No single "admin" question exists across auth managers: an administrator may edit every
        # DAG, the connections and the configuration.
        if self._admin is None:
            manager, user = self.manager, self.user
            self._admin = bool(
                manager.is_authorized_dag(method="PUT", user=user)
                and manager.is_authorized_connection(method="PUT", user=user)
                and manager.is_authorized_configuration(method="PUT", user=user)
            )
        return self._admin

    def permissions(self, made: records.MadeBy | None) -> access.Permissions:
        if made is None:
            return access.Permissions(None, is_admin=self.is_admin)
        return access.Permissions(
            made.dag_id,
            can_read_dag=self._dag("GET", made.dag_id),
            can_edit_dag=self._dag("PUT", made.dag_id),
        )


def _age(batch: Batch, made: records.MadeBy | None, now: datetime) -> float | None:
    # The service may give the creation time as a date only: then the moment the creating task
    # recorded the batch (seconds after creating it) is the better clock; else the date's midnight.
    created = batch.create_time
    date_only = created is not None and created.timetz().replace(tzinfo=None) == dt_time()
    if (created is None or date_only) and made is not None and made.recorded_at is not None:
        recorded = made.recorded_at
        created = recorded if recorded.tzinfo else recorded.replace(tzinfo=timezone.utc)
    return (now - created).total_seconds() if created is not None else None


def _run_url(made: records.MadeBy | None) -> str | None:
    if made is None:
        return None
    path = f"{_base()}/dags/{quote(made.dag_id, safe='')}/runs/{quote(made.run_id, safe='')}/tasks/{quote(made.task_id, safe='')}"
    return path + (f"/mapped/{made.map_index}" if made.map_index >= 0 else "")


def _view(batch: Batch, conn_id: str, made: records.MadeBy | None, now: datetime) -> render.BatchView:
    figures = batch_figures(batch, _rates.rate(batch, now=time.time()))
    return render.BatchView(
        figures=figures,
        name=batch.name,
        age_seconds=_age(batch, made, now),
        made_by=made.label if made is not None else None,
        page_url=_base() + batch_page_path(batch.batch_id, conn_id),
        run_url=_run_url(made),
    )


def _view_json(view: render.BatchView, permissions: access.Permissions) -> dict[str, Any]:
    return {
        **view.figures.to_dict(),
        "name": view.name,
        "age_seconds": view.age_seconds,
        "made_by": view.made_by,
        "dag_id": permissions.dag_id,
        "page_url": view.page_url,
        "may_cancel": access.may_cancel(permissions),
    }


def _newest_first(batches: list[Batch]) -> list[Batch]:
    # Creation times may be dates only: equal ones keep the service's own order (newest first).
    oldest = datetime.min.replace(tzinfo=timezone.utc)
    return sorted(batches, key=lambda batch: batch.create_time or oldest, reverse=True)


def _listing(
    user: Any, conn_id: str, page: int, file_id: str | None
) -> tuple[list[tuple[render.BatchView, access.Permissions]], bool, int]:
    with _hook(conn_id) as hook:
        batches = []
        for batch in hook.iter_batches():
            batches.append(batch)
            if len(batches) >= MAX_LISTED:
                break
    if file_id:
        batches = [batch for batch in batches if batch.input_file_id == file_id]
    made = records.link_records({batch.batch_id for batch in batches})
    judge = _Judge(user)
    now = datetime.now(timezone.utc)
    visible: list[tuple[Batch, access.Permissions]] = []
    hidden = 0
    for batch in _newest_first(batches):
        permissions = judge.permissions(made.get(batch.batch_id))
        if access.may_see(permissions):
            visible.append((batch, permissions))
        else:
            hidden += 1
    start = (page - 1) * PAGE_SIZE
    chosen = visible[start : start + PAGE_SIZE]
    views = [(_view(batch, conn_id, made.get(batch.batch_id), now), perms) for batch, perms in chosen]
    return views, start + PAGE_SIZE < len(visible), hidden


def _one(user: Any, conn_id: str, batch_id: str) -> tuple[Batch, records.MadeBy | None, access.Permissions]:
    made = records.link_records({batch_id}).get(batch_id)
    permissions = _Judge(user).permissions(made)
    if not access.may_see(permissions):  # the same answer whether or not the batch exists
        raise HTTPException(status_code=403, detail="You may not see this batch")
    with _hook(conn_id) as hook:
        batch = hook.get_batch(batch_id)
    return batch, made, permissions


def _session_token(request: Request) -> str | None:
    return request.cookies.get(SESSION_COOKIE)


def _has_bearer(request: Request) -> bool:
    return request.headers.get("authorization", "").lower().startswith("bearer ")


def _allowed_origins(request: Request) -> list[str]:
    from airflow.configuration import conf

    origins = [f"{request.url.scheme}://{request.headers.get('host', request.url.netloc)}"]
    configured = conf.get("api", "base_url", fallback="") or ""
    if configured:
        origins.append(configured)
    return origins


def create_app() -> FastAPI:
    """The app the plugin mounts; Airflow's API server must be running it (it reads its auth manager)."""
    app = FastAPI(title="xAI batches", docs_url=None, redoc_url=None, openapi_url=None)

    @app.get("/", response_class=HTMLResponse)
    def batches_page(
        user: GetUserDep, conn_id: str = DEFAULT_CONN_ID, page: int = 1, file_id: str | None = None
    ) -> HTMLResponse:
        _check_conn(conn_id)
        page = max(1, page)
        views, has_next, hidden = _listing(user, conn_id, page, file_id)
        html = render.list_page(
            [view for view, _ in views],
            conn_id=conn_id,
            connections=xai_connections(),
            page=page,
            has_next=has_next,
            base=_base() + PAGE_PREFIX,
            file_id=file_id,
            hidden=hidden,
        )
        return HTMLResponse(html)

    @app.get("/api/batches")
    def batches_json(
        user: GetUserDep, conn_id: str = DEFAULT_CONN_ID, page: int = 1, file_id: str | None = None
    ) -> JSONResponse:
        _check_conn(conn_id)
        views, has_next, hidden = _listing(user, conn_id, max(1, page), file_id)
        return JSONResponse(
            {
                "batches": [_view_json(view, perms) for view, perms in views],
                "has_next": has_next,
                "hidden": hidden,
            }
        )

    @app.get("/batches/{batch_id}", response_class=HTMLResponse)
    def batch_page(
        batch_id: str,
        request: Request,
        user: GetUserDep,
        conn_id: str = DEFAULT_CONN_ID,
        cancelled: int = 0,
    ) -> HTMLResponse:
        _check_conn(conn_id)
        batch, made, permissions = _one(user, conn_id, batch_id)
        token = _session_token(request)
        view = _view(batch, conn_id, made, datetime.now(timezone.utc))
        html = render.batch_page(
            view,
            conn_id=conn_id,
            base=_base() + PAGE_PREFIX,
            can_cancel=access.may_cancel(permissions),
            csrf=access.csrf_token(_secret(), token) if token else None,
            export=records.recorded_export(batch_id),
            message="Cancel requested." if cancelled else None,
        )
        return HTMLResponse(html)

    @app.get("/api/batches/{batch_id}")
    def batch_json(batch_id: str, user: GetUserDep, conn_id: str = DEFAULT_CONN_ID) -> JSONResponse:
        _check_conn(conn_id)
        batch, made, permissions = _one(user, conn_id, batch_id)
        view = _view(batch, conn_id, made, datetime.now(timezone.utc))
        return JSONResponse({**_view_json(view, permissions), "export": records.recorded_export(batch_id)})

    @app.post("/batches/{batch_id}/cancel")
    async def cancel(batch_id: str, request: Request, user: GetUserDep) -> Response:
        form = {key: values[0] for key, values in parse_qs((await request.body()).decode()).items()}
        conn_id = form.get("conn_id") or request.query_params.get("conn_id") or DEFAULT_CONN_ID
        from_browser = not _has_bearer(request)
        if from_browser:
            # The session cookie rides along on any site's form post: demand proof it is ours.
            if not access.same_origin(
                request.headers.get("origin"), request.headers.get("referer"), _allowed_origins(request)
            ):
                raise HTTPException(status_code=403, detail="Cross-site request refused")
            if not access.csrf_ok(_secret(), _session_token(request), form.get("csrf_token")):
                raise HTTPException(status_code=403, detail="Missing or stale form token: reload the page")
        return await _run_sync(_cancel, user, conn_id, batch_id, from_browser)

    return app


async def _run_sync(function: Any, *args: Any) -> Response:
    from starlette.concurrency import run_in_threadpool

    return await run_in_threadpool(function, *args)


def _cancel(user: Any, conn_id: str, batch_id: str, from_browser: bool) -> Response:
    _check_conn(conn_id)
    made = records.link_records({batch_id}).get(batch_id)
    permissions = _Judge(user).permissions(made)
    if not access.may_cancel(permissions):
        raise HTTPException(status_code=403, detail="You may not cancel this batch")
    with _hook(conn_id) as hook:
        batch = hook.cancel_batch(batch_id)
    if from_browser:
        target = f"{_base()}{PAGE_PREFIX}/batches/{quote(batch_id, safe='')}?{urlencode({'conn_id': conn_id, 'cancelled': 1})}"
        return RedirectResponse(target, status_code=303)
    return JSONResponse(batch.to_xcom())
