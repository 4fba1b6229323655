"""Logs, counters, EMF, /healthz /readyz /metrics, malloc arenas."""
