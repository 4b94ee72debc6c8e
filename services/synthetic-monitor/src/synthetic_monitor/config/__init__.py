"""Configuration: YAML files with line numbers, the journey model, loading and merging."""

from synthetic_monitor.config.loader import load_config, load_paths
from synthetic_monitor.config.model import (
    DnsStep,
    Extraction,
    HttpStep,
    Journey,
    MonitorConfig,
    SecretRef,
    Step,
    TcpStep,
    TlsOptions,
    TlsStep,
)

__all__ = [
    "DnsStep",
    "Extraction",
    "HttpStep",
    "Journey",
    "MonitorConfig",
    "SecretRef",
    "Step",
    "TcpStep",
    "TlsOptions",
    "TlsStep",
    "load_config",
    "load_paths",
]
