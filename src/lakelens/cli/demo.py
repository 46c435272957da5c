"""`lakelens demo`: record 24 hours of the glucose pipeline into a store."""

from __future__ import annotations

import typer


def demo(
    runs: int = typer.Option(
        288, "--runs", min=1, help="How many 5-minute runs to simulate (288 = 24 hours)."
    ),
    seed: int = typer.Option(
        42, "--seed", help="Random seed; the same seed records the same data."
    ),
    home: str | None = typer.Option(
        None, "--home", help="Store directory (default: $LAKELENS_HOME or ./.lakelens)."
    ),
) -> None:
    """Simulate the glucose pipeline and record it through the SDK, then print a summary.

    Example: lakelens demo --runs 288 --seed 7 --home /tmp/lakelens-demo
    """
    raise NotImplementedError
