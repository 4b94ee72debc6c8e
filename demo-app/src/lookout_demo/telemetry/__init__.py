"""Telemetry set-up: traces, metrics and logs."""
