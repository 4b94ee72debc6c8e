"""How the stack's services find each other: scrape targets, OTLP endpoints, config addresses.

Cross-references between docker-compose.yml and the backends' config files, plus the native
run's mechanical substitution (rendered, not started) and Debian's `promtool check config`.
"""

from __future__ import annotations

import importlib
import re
import subprocess
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import pytest
import yaml

from lookout_stack.validate.checks import stack_wiring as wiring
from stack_support import IN_CI, MissingPrerequisite, require_binary
from stack_support.native import (
    NATIVE_SERVICES,
    WORKSPACE_SERVICES,
    ImageCommand,
    NativeStack,
    ServiceProcess,
    compose_argv,
    dockerfile_command,
)

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
SERVICES: dict[str, Any] = COMPOSE["services"]
PROMETHEUS_CONFIG = ROOT / "prometheus" / "prometheus.yml"
#: The config folders whose files name other services as `service:port`.
CONFIG_FILES = sorted(
    path
    for folder in wiring.CONFIG_DIRS
    for path in (ROOT / folder).rglob("*")
    if path.suffix in {".yml", ".yaml"} and path.is_file()
)
NATIVE = [name for name in NATIVE_SERVICES if name in SERVICES]


REFERENCE = wiring.service_reference(SERVICES)
# The cross-references live in `lookout validate`'s stack-wiring check (one implementation).
SCRAPE_TARGETS = wiring.scrape_targets(yaml.safe_load(PROMETHEUS_CONFIG.read_text()))


@pytest.mark.parametrize(("job", "target"), SCRAPE_TARGETS, ids=str)
def test_scrape_target_is_a_compose_service_and_port(job: str, target: str) -> None:
    """Each scrape target is `service:port` of a compose service listening on that port."""
    problem = wiring.scrape_target_problem(SERVICES, job, target)
    assert problem is None, problem


def test_every_compose_service_that_serves_metrics_is_scraped() -> None:
    """Every long-running service except the data stores, Locust and Bugsink has a scrape job.

    Bugsink exposes no Prometheus metrics (its healthcheck is its liveness); one-shot jobs
    (`restart: "no"`) are not long-running.
    """
    missing = wiring.unscraped(SERVICES, SCRAPE_TARGETS)
    assert not missing, f"no scrape job for {missing}"


APP_OTLP = wiring.otlp_variables(SERVICES)


@pytest.mark.parametrize(("service", "variable", "value"), APP_OTLP, ids=str)
def test_app_otlp_endpoint_is_the_collector(service: str, variable: str, value: str) -> None:
    """Apps send OTLP to the collector (never straight to a backend) and wait for it."""
    problem = wiring.otlp_endpoint_problem(SERVICES, service, variable, value)
    assert problem is None, problem


def test_every_app_sends_otlp() -> None:
    """Each Python service of ours (built from the uv workspace at the root) exports OTLP."""
    ours = {s for s, spec in SERVICES.items() if (spec.get("build") or {}).get("context") == "."}
    assert ours, "no service is built from this repo"
    assert ours <= {service for service, _v, _u in APP_OTLP}


@pytest.mark.parametrize("path", CONFIG_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_config_addresses_name_a_service_and_its_port(path: Path) -> None:
    """Every `service:port` a config file names is a compose service listening there."""
    problems = wiring.address_problems(SERVICES, path.read_text(encoding="utf-8"))
    assert not problems, f"{path.relative_to(ROOT)}: {problems}"


def _render(service: str, workdir: Path) -> ServiceProcess:
    """Render a service for the native run; a missing program skips (fails under CI)."""
    try:
        return NativeStack(workdir, [service]).render(service)
    except MissingPrerequisite as exc:
        if IN_CI:
            pytest.fail(str(exc))
        pytest.skip(str(exc))


@pytest.mark.parametrize("service", NATIVE)
def test_native_rendering_leaves_no_container_address_or_path(service: str, tmp_path: Path) -> None:
    """The native run rewrites every compose address, 0.0.0.0 and mount path of a service."""
    rendered = _render(service, tmp_path)
    spec = SERVICES[service]
    mounts = [str(v).split(":")[1] for v in spec.get("volumes") or []]
    texts = [" ".join(rendered.argv), *rendered.env.values()]
    texts += [
        p.read_text(encoding="utf-8")
        for p in rendered.root.rglob("*")
        if p.is_file() and p.suffix in {".yml", ".yaml"}
    ]
    names = {k: v for k, v in rendered.env.items() if k.endswith("SERVICE_NAME")}
    assert all(v in SERVICES for v in names.values()), f"{service}: renamed {names}"
    for text in texts:
        assert not REFERENCE.search(text), f"{service}: left {REFERENCE.search(text)}"
        assert "0.0.0.0" not in text, f"{service}: left 0.0.0.0 in {text[:200]!r}"
        for mount in mounts:
            assert not re.search(rf"(?<![\w.:/-]){re.escape(mount)}(?=/|\s|$|\")", text), (
                f"{service}: left container path {mount}"
            )


#: The compose spec's entrypoint/command rules, on an image with ENTRYPOINT ["relay"] CMD ["serve"].
COMPOSE_ARGV_CASES = [
    ("neither set: the image's both", {}, ["relay", "serve"]),
    ("command replaces CMD", {"command": ["serve"]}, ["relay", "serve"]),
    (
        "command as a string is shell-split",
        {"command": "check --config 'a b'"},
        ["relay", "check", "--config", "a b"],
    ),
    ("command [] empties CMD", {"command": []}, ["relay"]),
    (
        "entrypoint drops the image's CMD",
        {"entrypoint": ["python", "-m", "relay"]},
        ["python", "-m", "relay"],
    ),
    (
        "entrypoint and command",
        {"entrypoint": "python -m relay", "command": ["serve"]},
        ["python", "-m", "relay", "serve"],
    ),
    ("command null is the image's", {"command": None}, ["relay", "serve"]),
]


@pytest.mark.parametrize(
    ("spec", "expected"),
    [c[1:] for c in COMPOSE_ARGV_CASES],
    ids=[c[0] for c in COMPOSE_ARGV_CASES],
)
def test_compose_argv_combines_entrypoint_and_command_as_compose_does(
    spec: dict[str, Any], expected: list[str]
) -> None:
    """The native argv is the image's ENTRYPOINT and CMD overridden by compose's rules."""
    assert compose_argv(spec, ImageCommand(["relay"], ["serve"]), "test") == expected


def test_dockerfile_command_reads_the_final_stage_and_skips_healthcheck_cmd(tmp_path: Path) -> None:
    """ENTRYPOINT and CMD come from the last stage; a HEALTHCHECK's CMD is not the image's."""
    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text(
        'FROM python AS build\nENTRYPOINT ["builder"]\nCMD ["all"]\n'
        "FROM python\nHEALTHCHECK --interval=15s \\\n"
        '    CMD ["python", "-c", "pass"]\nENTRYPOINT ["relay"]\nCMD ["serve"]\n',
        encoding="utf-8",
    )
    assert dockerfile_command(dockerfile) == ImageCommand(["relay"], ["serve"])


def _cli_parser(program: str) -> Any:
    """Return the argparse parser behind a console script of this workspace."""
    (script,) = entry_points(group="console_scripts", name=program)
    # Each CLI builds its parser in a private `_parser()`; calling main() would run the app.
    return importlib.import_module(script.module)._parser()


@pytest.mark.parametrize("service", NATIVE)
def test_native_argv_is_what_the_container_runs(service: str, tmp_path: Path) -> None:
    """Every native service runs its program once with compose's arguments, which it accepts.

    This workspace's apps: the arguments parse with the app's own CLI parser (a doubled
    entrypoint and command, ``webhook-relay serve serve``, does not). Upstream images: the
    program followed by exactly compose's `command` (their image CMD is replaced).
    """
    rendered = _render(service, tmp_path)
    program, *args = rendered.argv
    assert Path(program).is_file(), f"{service}: {program} is not a program here"
    if service in WORKSPACE_SERVICES:
        parser = _cli_parser(Path(program).name)
        parser.exit = lambda status=0, message=None: pytest.fail(  # type: ignore[method-assign]
            f"{service}: {Path(program).name} rejects {args}: {message}"
        )
        parser.parse_args(args)
    else:
        assert len(args) == len(SERVICES[service]["command"]), f"{service}: {args}"


def test_prometheus_config_passes_promtool(tmp_path: Path) -> None:
    """Debian's `promtool check config` accepts prometheus.yml and the rule files it loads."""
    promtool = require_binary("promtool")
    rendered = _render("prometheus", tmp_path)
    config = next(a.split("=", 1)[1] for a in rendered.argv if a.startswith("--config.file="))
    result = subprocess.run(
        [str(promtool), "check", "config", config],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    rule_files = sorted((ROOT / "prometheus" / "rules").glob("*.yml"))
    for rule_file in rule_files:
        assert rule_file.name in result.stdout, f"promtool did not load {rule_file.name}"
