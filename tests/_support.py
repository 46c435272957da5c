"""Plumbing the test modules share (importable from every test directory: pyproject's pytest
`pythonpath`). With `--import-mode=importlib` one directory's conftest cannot import another's,
so tests that reuse another directory's fixtures or a bench load it by path."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType


def load_module(name: str, path: Path) -> ModuleType:
    """The module at `path`, registered as `name` (dataclasses look their module up there);
    loaded once per process."""
    loaded = sys.modules.get(name)
    if loaded is not None and getattr(loaded, "__file__", None) == str(path):
        return loaded
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module
