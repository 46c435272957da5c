"""The `lakelens` command line: thin commands over the library."""
