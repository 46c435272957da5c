"""In-process instrumentation: runs, assets, spans, logs, checks, metrics, profiles and usage."""

from __future__ import annotations

from lakelens.sdk._assets import AssetDefinition, Materializing, asset, record
from lakelens.sdk._logs import get_logger
from lakelens.sdk._profile import profile
from lakelens.sdk._quality import check, metric, schema
from lakelens.sdk._runs import RunContext, run
from lakelens.sdk._runtime import RT
from lakelens.sdk._spans import Span, span
from lakelens.sdk._usage import usage

__all__ = [
    "RT",
    "AssetDefinition",
    "Materializing",
    "RunContext",
    "Span",
    "asset",
    "check",
    "get_logger",
    "metric",
    "profile",
    "record",
    "run",
    "schema",
    "span",
    "usage",
]
