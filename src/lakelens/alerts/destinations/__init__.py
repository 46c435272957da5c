"""Alert destinations. Built-ins register through the `lakelens.destinations` entry point
group, exactly as a third-party destination would (see pyproject.toml)."""

from lakelens.alerts.destinations.base import (
    AlertMessage,
    DeliveryResult,
    Destination,
    DestinationConfigError,
    create_destination,
    destination_types,
    mask_secret,
    mask_url,
)

__all__ = [
    "AlertMessage",
    "DeliveryResult",
    "Destination",
    "DestinationConfigError",
    "create_destination",
    "destination_types",
    "mask_secret",
    "mask_url",
]
