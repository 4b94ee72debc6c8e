"""SLOs as code: slo/slos.yaml -> Prometheus recording rules, burn-rate alerts, promtool tests.

``lookout slo build`` writes prometheus/rules/slo.yml and prometheus/tests/slo.test.yml from
the one file that holds the targets; ``lookout slo verify`` fails when they are stale. The
sub-command lives in ``lookout_stack.slo.command``.
"""

from lookout_stack.slo.command import generate, register
from lookout_stack.slo.errors import SloConfigError, SloConfigErrors, SloError
from lookout_stack.slo.loader import LoadedSlos, load_slos, parse_slos

__all__ = [
    "LoadedSlos",
    "SloConfigError",
    "SloConfigErrors",
    "SloError",
    "generate",
    "load_slos",
    "parse_slos",
    "register",
]
