#!/usr/bin/env bash
# The one test command (`make test`): sets up what a fresh machine lacks, lints, runs every
# test that can run here. Safe to run again; it installs only what is missing.
#   scripts/test.sh            everything
#   scripts/test.sh --lint     set-up and lint only
#   scripts/test.sh -- ARGS    set-up, lint, then pytest ARGS instead of the full suite
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }
fail() { printf '\nFAILED: %s\n' "$*" >&2; exit 1; }

lint_only=0
pytest_args=()
while [ $# -gt 0 ]; do
  case "$1" in
    --lint) lint_only=1 ;;
    --) shift; pytest_args=("$@"); break ;;
    *) fail "unknown argument '$1' (see the header of scripts/test.sh)" ;;
  esac
  shift
done

# --- set-up: uv, Python dependencies, Debian's Prometheus and Alertmanager -----------------
export PATH="$HOME/.local/bin:$PATH"
if ! command -v uv >/dev/null 2>&1; then
  step "installing uv (not found on PATH)"
  python3 -m pip install --quiet --user uv || fail "could not install uv: install it by hand (pip install uv) and run again"
fi

missing=()
command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
command -v amtool >/dev/null 2>&1 || missing+=(prometheus-alertmanager)
# Headless Chromium for the status page and storefront tests, and the driver Selenium uses.
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v chromedriver >/dev/null 2>&1 || missing+=(chromium-driver)
# Node.js and npm build the storefront's browser bundle (demo-app/web).
command -v npm >/dev/null 2>&1 || missing+=(nodejs npm)
if [ ${#missing[@]} -gt 0 ]; then
  step "installing Debian packages: ${missing[*]}"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq || fail "apt-get update failed: check the machine's Debian sources"
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" \
    || fail "could not install ${missing[*]}: install them with apt-get and run again"
fi

step "syncing Python dependencies (uv.lock)"
uv sync --all-packages --locked --quiet || fail "uv.lock is out of date with a pyproject.toml: run 'uv lock' and commit it"

# --- the storefront's browser bundle: npm ci and esbuild, only when something changed ---------
web=demo-app/web
bundle=demo-app/src/lookout_demo/storefront/static/dist
lock_sha=$(sha256sum "$web/package-lock.json" | cut -d' ' -f1)
if [ "$(cat "$web/node_modules/.lookout-lock.sha256" 2>/dev/null)" != "$lock_sha" ]; then
  step "npm ci (demo-app/web: package-lock.json changed or node_modules missing)"
  (cd "$web" && npm ci --no-audit --no-fund --loglevel=error) || fail "npm ci failed in $web"
  echo "$lock_sha" > "$web/node_modules/.lookout-lock.sha256"
fi
source_sha=$(cat "$web/package-lock.json" "$web/build.mjs" "$web"/src/*.js | sha256sum | cut -d' ' -f1)
if [ ! -f "$bundle/manifest.json" ] \
   || [ "$(cat "$web/node_modules/.lookout-bundle.sha256" 2>/dev/null)" != "$source_sha" ]; then
  step "building the storefront bundle (esbuild, source maps, debug ids)"
  # Never an upload from here: the tests upload to their own Bugsink (SENTRY_* of the shell unset).
  (cd "$web" && env -u SENTRY_URL -u SENTRY_AUTH_TOKEN npm run --silent build) || fail "the storefront bundle did not build (npm run build in $web)"
  echo "$source_sha" > "$web/node_modules/.lookout-bundle.sha256"
fi

# --- lint ------------------------------------------------------------------------------------
step "ruff (lint, format)"
uv run ruff check .
uv run ruff format --check .
step "mypy (src/ of every package)"
srcdirs=()
for d in demo-app/src services/*/src libs/*/src; do [ -d "$d" ] && srcdirs+=("$d"); done
uv run mypy "${srcdirs[@]}"
step "lookout validate (compose schema and rules, key schemas, dashboard lint, generated files, yamllint, promtool, amtool, real Loki and Tempo, hadolint)"
uv run lookout validate
[ "$lint_only" -eq 1 ] && exit 0

# --- tests -----------------------------------------------------------------------------------
step "pytest: unit, integration and e2e tiers (compose tests skip without a Docker engine)"
mkdir -p test-artifacts
set +e
if [ ${#pytest_args[@]} -gt 0 ]; then
  uv run pytest "${pytest_args[@]}"
else
  uv run pytest --junitxml=test-artifacts/junit.xml
fi
rc=$?
set -e
# pytest exits 5 when it collected nothing: that is a broken selection, not a pass.
[ "$rc" -eq 5 ] && fail "pytest collected no tests: check the paths and -m/-k selection"
exit "$rc"
