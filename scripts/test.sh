#!/usr/bin/env bash
# The test command (README: `make test`): lint, type checks, then the whole pytest suite against a real
# Kafka broker and a throwaway PostgreSQL cluster that the tests start themselves.
set -euo pipefail
venv="${1:-.venv}"
bin="$venv/bin"
bash "$(dirname "$0")/system-deps.sh"
echo "test: ruff"
"$bin/ruff" check clickmuncher gateway streams sinks api tests bench
"$bin/ruff" format --check clickmuncher gateway streams sinks api tests bench
echo "test: mypy --strict"
"$bin/mypy"
echo "test: import layers"
"$bin/lint-imports"
echo "test: pytest"
"$bin/python" -m pytest -q -p no:cacheprovider
