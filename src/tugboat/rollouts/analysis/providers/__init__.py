"""Metric providers for AnalysisRun measurements, chosen by the key set under ``metric.provider``.

The reconciler asks :func:`for_metric` for the provider of a metric and drives it through the
:class:`~tugboat.rollouts.analysis.providers.base.MetricProvider` interface. A new data source (Datadog,
New Relic, CloudWatch...) is one module with a provider class plus one line in ``_REGISTRY``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

import httpx2 as httpx

from tugboat.kube import client as kube_client
from tugboat.rollouts.analysis.providers import base, job, prometheus, web
from tugboat.util import http1

__all__ = [
    "MeasureRequest",
    "Measurement",
    "MetricProvider",
    "ProviderError",
    "for_metric",
    "provider_kind",
    "supported_kinds",
]

MeasureRequest = base.MeasureRequest
Measurement = base.Measurement
MetricProvider = base.MetricProvider
ProviderError = base.ProviderError
provider_kind = base.provider_kind


class _Factory(Protocol):
    def __call__(
        self, metric: Mapping[str, Any], *, client: kube_client.Client, http: httpx.AsyncClient | None
    ) -> base.MetricProvider: ...


_REGISTRY: dict[str, _Factory] = {
    prometheus.KIND: prometheus.PrometheusProvider,
    web.KIND: web.WebProvider,
    job.KIND: job.JobProvider,
}


def supported_kinds() -> list[str]:
    """The provider keys Tugboat can measure with, sorted."""
    return sorted(_REGISTRY)


def for_metric(
    metric: Mapping[str, Any],
    *,
    client: kube_client.Client,
    http: httpx.AsyncClient | None = None,
    lean: http1.Pools | None = None,
) -> base.MetricProvider:
    """The provider for ``metric``, its configuration checked; :class:`ProviderError` if it has none,
    several, an unknown one or one Tugboat does not support."""
    kind = base.provider_kind(metric)
    factory = _REGISTRY.get(kind)
    if factory is None:
        raise base.ProviderError(
            f"metric {metric.get('name')!r}: unknown metric provider {kind!r} "
            f"(supported: {', '.join(supported_kinds())})"
        )
    if kind == web.KIND:
        return web.WebProvider(metric, client=client, http=http, lean=lean)
    return factory(metric, client=client, http=http)
