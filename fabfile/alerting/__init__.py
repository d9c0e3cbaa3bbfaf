"""Prometheus/Alertmanager HTTP API clients over SSH tunnels, and silences."""
