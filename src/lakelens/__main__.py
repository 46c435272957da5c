"""`python -m lakelens` runs the CLI."""

from lakelens.cli.main import main

main()
