"""Analysis: pure functions that read the store and return plain data; no printing.

One module per view (`summary`, ...); import from the module, e.g.
`from lakelens.analysis.summary import summary`. Nothing is imported here, so a module that
needs only one view does not pay for the others.
"""
