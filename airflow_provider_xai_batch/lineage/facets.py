"""What a run reports to OpenLineage: the figures (pure) and the OpenLineage objects built from them.

OpenLineage is imported inside the builders only, when the OpenLineage provider calls them.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from airflow_provider_xai_batch.client import Batch
from airflow_provider_xai_batch.lineage.naming import dataset_name

RUN_FACET_KEY = "xai_batch"
EXTERNAL_QUERY_SOURCE = "xai"
TICKS_PER_USD = 10_000_000_000


@dataclass(frozen=True)
class BatchFigures:
    """The batch behind a run: its id and, once known, its counts and cost.

    >>> BatchFigures.from_manifest({"batch_id": "b1", "status": "completed", "total": 3, "succeeded": 2,
    ...     "failed": 1, "cancelled": 0, "cost_usd_ticks": 5_000_000_000}).cost_usd
    0.5
    """

    batch_id: str
    status: str | None = None
    total: int | None = None
    succeeded: int | None = None
    failed: int | None = None
    cancelled: int | None = None
    cost_usd_ticks: int | None = None

    @property
    def cost_usd(self) -> float | None:
        return None if self.cost_usd_ticks is None else self.cost_usd_ticks / TICKS_PER_USD

    @classmethod
    def from_manifest(cls, manifest: Mapping[str, Any]) -> BatchFigures:
        """From a results manifest: the counts of the rows written and their summed cost."""
        return cls(
            batch_id=str(manifest["batch_id"]),
            status=manifest.get("status"),
            total=manifest.get("total"),
            succeeded=manifest.get("succeeded"),
            failed=manifest.get("failed"),
            cancelled=manifest.get("cancelled"),
            cost_usd_ticks=manifest.get("cost_usd_ticks"),
        )

    @classmethod
    def from_batch(cls, batch: Batch) -> BatchFigures:
        """From the batch's own counters; the cost is only known from its results."""
        state = batch.state
        return cls(
            batch_id=batch.batch_id,
            status=batch.status.value,
            total=state.num_requests,
            succeeded=state.num_success,
            failed=state.num_error + state.num_cancelled,
            cancelled=state.num_cancelled,
        )


@dataclass(frozen=True)
class OutputFile:
    """One file a run writes, with what the manifest says about it once written."""

    uri: str
    rows: int | None = None
    size: int | None = None


@functools.cache
def _run_facet_class() -> type[Any]:
    import attr
    from openlineage.client.generated.base import RunFacet

    @attr.define
    class XAIBatchRunFacet(RunFacet):
        """The xAI batch a run worked on: id, status, counts and cost (1 tick = 1e-10 USD).

        Fields are in camel case, as OpenLineage spells facet fields.
        """

        batchId: str
        status: str | None = attr.field(default=None)
        total: int | None = attr.field(default=None)
        succeeded: int | None = attr.field(default=None)
        failed: int | None = attr.field(default=None)
        cancelled: int | None = attr.field(default=None)
        costUsdTicks: int | None = attr.field(default=None)
        costUsd: float | None = attr.field(default=None)

        # Ids and figures, never secrets: keep OpenLineage's redaction away from them.
        _additional_skip_redact = ["batchId", "status", "costUsd"]

    return XAIBatchRunFacet


def run_facets(figures: BatchFigures | None) -> dict[str, Any]:
    """The ``xai_batch`` facet and the standard ``externalQuery`` facet naming the batch."""
    if figures is None:
        return {}
    from airflow.providers.common.compat.openlineage.facet import ExternalQueryRunFacet

    facet = _run_facet_class()(
        batchId=figures.batch_id,
        status=figures.status,
        total=figures.total,
        succeeded=figures.succeeded,
        failed=figures.failed,
        cancelled=figures.cancelled,
        costUsdTicks=figures.cost_usd_ticks,
        costUsd=figures.cost_usd,
    )
    return {
        RUN_FACET_KEY: facet,
        "externalQuery": ExternalQueryRunFacet(
            externalQueryId=figures.batch_id, source=EXTERNAL_QUERY_SOURCE
        ),
    }


def operator_lineage(
    inputs: Sequence[str], outputs: Sequence[OutputFile], figures: BatchFigures | None
) -> Any:
    """The ``OperatorLineage`` the OpenLineage provider expects from ``get_openlineage_facets_on_*``."""
    from airflow.providers.common.compat.openlineage.facet import (
        InputDataset,
        OutputDataset,
        OutputStatisticsOutputDatasetFacet,
    )
    from airflow.providers.openlineage.extractors import OperatorLineage

    output_datasets = []
    for output in outputs:
        namespace, name = dataset_name(output.uri)
        statistics: dict[str, Any] = {}
        if output.rows is not None or output.size is not None:
            statistics["outputStatistics"] = OutputStatisticsOutputDatasetFacet(
                rowCount=output.rows, size=output.size
            )
        output_datasets.append(OutputDataset(namespace=namespace, name=name, outputFacets=statistics))
    return OperatorLineage(
        inputs=[InputDataset(*dataset_name(uri)) for uri in inputs],
        outputs=output_datasets,
        run_facets=run_facets(figures),
    )
