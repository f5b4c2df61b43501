"""The batches pages as HTML, rendered on the server from plain values: no script, no build step.

Every value from the service or the database goes through :func:`html.escape`; a batch named
``<script>`` shows as text.

>>> from airflow_provider_xai_batch.client import Batch, BatchState
>>> from airflow_provider_xai_batch.waiting.progress import batch_figures
>>> bar = progress_bar(batch_figures(Batch(batch_id="b", state=BatchState(num_requests=4, num_pending=2, num_success=2))))
>>> 'width:50.0%' in bar
True
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from html import escape
from typing import Any
from urllib.parse import quote, urlencode

from airflow_provider_xai_batch.waiting.progress import BatchFigures, format_cost, format_duration

STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:1.5rem;color:#1f2933;background:#fff}
h1{font-size:1.4rem;margin:0 0 1rem}h2{font-size:1.1rem;margin:1.5rem 0 .5rem}
table{border-collapse:collapse;width:100%;font-size:.9rem}
th,td{text-align:left;padding:.45rem .6rem;border-bottom:1px solid #e4e7eb;vertical-align:middle}
th{background:#f5f7fa;font-weight:600}
a{color:#0b63c4;text-decoration:none}a:hover{text-decoration:underline}
.bar{display:flex;width:12rem;height:.8rem;background:#e4e7eb;border-radius:.4rem;overflow:hidden}
.bar span{display:block;height:100%}
.ok{background:#2f9e44}.err{background:#e03131}.cxl{background:#868e96}
.state{padding:.1rem .5rem;border-radius:.8rem;font-size:.8rem;background:#e4e7eb}
.state.processing,.state.validating{background:#d0ebff}.state.completed{background:#d3f9d8}
.state.failed,.state.expired{background:#ffe3e3}.state.cancelled{background:#e9ecef}
.muted{color:#7b8794}.figures td:first-child{width:14rem;color:#52606d}
form.inline{display:inline}
button{background:#c92a2a;color:#fff;border:0;border-radius:.3rem;padding:.4rem .9rem;cursor:pointer}
select,input{padding:.25rem}.nowrap{white-space:nowrap}.pager a{margin-right:1rem}.note{color:#52606d;font-size:.85rem}
"""


@dataclass(frozen=True)
class BatchView:
    """One batch as a page shows it."""

    figures: BatchFigures
    name: str | None
    age_seconds: float | None
    made_by: str | None
    page_url: str
    run_url: str | None = None


def _page(title: str, body: str, *, refresh: int | None = None) -> str:
    meta = f'<meta http-equiv="refresh" content="{refresh}">' if refresh else ""
    return (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8">{meta}'
        f"<title>{escape(title)}</title><style>{STYLE}</style></head><body>{body}</body></html>"
    )


def progress_bar(figures: BatchFigures) -> str:
    """A bar split into succeeded, failed and cancelled shares of the total."""
    total = figures.total or 1
    parts = []
    for count, css, label in (
        (figures.succeeded, "ok", "succeeded"),
        (figures.failed, "err", "failed"),
        (figures.cancelled, "cxl", "cancelled"),
    ):
        if count:
            width = round(100.0 * count / total, 1)
            parts.append(f'<span class="{css}" style="width:{width}%" title="{count:,} {label}"></span>')
    return f'<div class="bar">{"".join(parts)}</div>'


def _done(figures: BatchFigures) -> str:
    percent = f" ({figures.percent:.1f}%)" if figures.percent is not None else ""
    return (
        f"{figures.done:,}/{figures.total:,}{percent}"
        f'<div class="muted">{figures.succeeded:,} ok · {figures.failed:,} failed · '
        f"{figures.cancelled:,} cancelled</div>"
    )


def _left(figures: BatchFigures) -> str:
    if figures.seconds_left is None:
        return '<span class="muted">—</span>'
    return f"about {format_duration(figures.seconds_left)}"


def _cost(figures: BatchFigures) -> str:
    return format_cost(figures.cost_usd) if figures.cost_usd is not None else '<span class="muted">—</span>'


def _age(seconds: float | None) -> str:
    return format_duration(seconds) if seconds is not None else '<span class="muted">—</span>'


def _state(figures: BatchFigures) -> str:
    return f'<span class="state {escape(figures.status)}">{escape(figures.status)}</span>'


def _made_by(view: BatchView) -> str:
    if view.made_by is None:
        return '<span class="muted">not made by a DAG</span>'
    if view.run_url:
        return f'<a href="{escape(view.run_url)}" target="_top">{escape(view.made_by)}</a>'
    return escape(view.made_by)


def list_page(
    views: Sequence[BatchView],
    *,
    conn_id: str,
    connections: Sequence[str],
    page: int,
    has_next: bool,
    base: str,
    file_id: str | None = None,
    hidden: int = 0,
) -> str:
    """The batches of one connection, newest first, one page of them."""
    options = "".join(
        f'<option value="{escape(name)}"{" selected" if name == conn_id else ""}>{escape(name)}</option>'
        for name in connections
    )
    chooser = (
        f'<form method="get" action="{escape(base)}/">Connection <select name="conn_id">{options}</select> '
        '<button type="submit" style="background:#0b63c4">Show</button></form>'
    )
    rows = "".join(
        "<tr>"
        f'<td><a href="{escape(view.page_url)}">{escape(view.name or view.figures.batch_id)}</a>'
        f'<div class="muted">{escape(view.figures.batch_id)}</div></td>'
        f"<td>{_state(view.figures)}</td>"
        f"<td>{progress_bar(view.figures)}</td>"
        f"<td>{_done(view.figures)}</td>"
        f'<td class="nowrap">{_age(view.age_seconds)}</td>'
        f'<td class="nowrap">{_left(view.figures)}</td>'
        f'<td class="nowrap">{_cost(view.figures)}</td>'
        f"<td>{_made_by(view)}</td>"
        "</tr>"
        for view in views
    )
    if not rows:
        rows = '<tr><td colspan="8" class="muted">No batches to show.</td></tr>'
    query: dict[str, Any] = {"conn_id": conn_id}
    if file_id:
        query["file_id"] = file_id
    pager = []
    if page > 1:
        pager.append(
            f'<a href="{escape(base)}/?{escape(urlencode({**query, "page": page - 1}))}">← newer</a>'
        )
    if has_next:
        pager.append(
            f'<a href="{escape(base)}/?{escape(urlencode({**query, "page": page + 1}))}">older →</a>'
        )
    narrowed = f'<p class="note">Batches made from file {escape(file_id)}.</p>' if file_id else ""
    not_shown = (
        f'<p class="note">{hidden} batch(es) on this page are not shown: you may not read the DAG that made them.</p>'
        if hidden
        else ""
    )
    body = (
        f"<h1>xAI batches</h1>{chooser}{narrowed}"
        "<table><thead><tr><th>Batch</th><th>State</th><th>Progress</th><th>Done</th><th>Age</th>"
        "<th>Time left</th><th>Cost so far</th><th>Made by</th></tr></thead>"
        f'<tbody>{rows}</tbody></table><p class="pager">{"".join(pager)}</p>{not_shown}'
    )
    return _page("xAI batches", body, refresh=15)


def batch_page(
    view: BatchView,
    *,
    conn_id: str,
    base: str,
    can_cancel: bool,
    csrf: str | None,
    export: dict[str, Any] | None,
    message: str | None = None,
) -> str:
    """One batch: its figures, its requests by state, its results when exported, a Cancel button."""
    figures = view.figures
    rate = f"{figures.rate:,.1f} requests/s" if figures.rate is not None else "measured from the next look"
    rows = [
        ("Batch id", escape(figures.batch_id)),
        ("Name", escape(view.name or "")),
        ("Connection", escape(conn_id)),
        ("State", _state(figures)),
        ("Progress", progress_bar(figures)),
        ("Done", _done(figures)),
        ("Requests by state", _by_state(figures)),
        ("Age", _age(view.age_seconds)),
        ("Rate", escape(rate)),
        ("Time left", _left(figures)),
        ("Cost so far", _cost(figures)),
        ("Made by", _made_by(view)),
    ]
    if export is not None:
        rows.append(("Output folder", escape(str(export.get("folder", "")))))
        rows.append(("Manifest", escape(str(export.get("manifest_uri", "")))))
        rows.append(
            (
                "Results written",
                escape(
                    f"{export.get('succeeded', 0):,} succeeded, {export.get('failed', 0):,} failed "
                    f"({export.get('cancelled', 0):,} cancelled)"
                ),
            )
        )
    table = "".join(f"<tr><td>{label}</td><td>{value}</td></tr>" for label, value in rows)
    action = ""
    terminal = figures.status in ("completed", "cancelled", "failed", "expired")
    if can_cancel and not terminal and csrf is not None:
        target = f"{base}/batches/{quote(figures.batch_id, safe='')}/cancel"
        action = (
            f'<form class="inline" method="post" action="{escape(target)}">'
            f'<input type="hidden" name="conn_id" value="{escape(conn_id)}">'
            f'<input type="hidden" name="csrf_token" value="{escape(csrf)}">'
            '<button type="submit">Cancel batch</button></form>'
        )
    elif not terminal:
        action = '<p class="note">You may not cancel this batch.</p>'
    notice = f'<p class="note"><strong>{escape(message)}</strong></p>' if message else ""
    back = f'<p><a href="{escape(base)}/?{escape(urlencode({"conn_id": conn_id}))}">← all batches</a></p>'
    body = (
        f"{back}<h1>{escape(view.name or figures.batch_id)}</h1>{notice}"
        f'<table class="figures">{table}</table><h2></h2>{action}'
    )
    return _page(f"xAI batch {figures.batch_id}", body, refresh=None if terminal else 15)


def _by_state(figures: BatchFigures) -> str:
    return (
        f"pending {figures.pending:,} · succeeded {figures.succeeded:,} · failed {figures.failed:,} · "
        f"cancelled {figures.cancelled:,}"
    )


def message_page(title: str, text: str) -> str:
    """A short page for a refusal or an error."""
    return _page(title, f"<h1>{escape(title)}</h1><p>{escape(text)}</p>")
