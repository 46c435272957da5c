"""The glucose pipeline that `lakelens demo` records: example instrumentation and sample data."""

from __future__ import annotations

from lakelens.demo.runner import DemoResult, run_demo

__all__ = ["DemoResult", "run_demo"]
