"""The exceptions lakelens raises; every one says what is wrong and how to fix it."""

from __future__ import annotations

__all__ = ["ConfigError", "InvalidArgumentError", "LakelensError", "StoreError"]


class LakelensError(Exception):
    """Base class: a user-facing problem whose message is one sentence with the fix."""


class InvalidArgumentError(LakelensError, ValueError):
    """An argument passed to the SDK or the CLI has a value lakelens cannot accept."""


class ConfigError(LakelensError):
    """A setting in the environment or lakelens.yaml is invalid."""


class StoreError(LakelensError):
    """The event store cannot be opened, migrated or written."""
