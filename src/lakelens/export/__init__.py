"""Text formats lakelens writes for other tools: Graphviz, Mermaid, Prometheus, Grafana."""
