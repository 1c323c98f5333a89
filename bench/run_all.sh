#!/usr/bin/env bash
# `make bench`: the five benchmarks, one after the other, each starting its own broker (and PostgreSQL).
# Figures and ratios are printed, then one table of all of them; docs/benchmarks.md records the latest ones.
set -euo pipefail
venv="${1:-.venv}"
py="$venv/bin/python"
command -v wrk >/dev/null || { echo "bench: installing wrk"; apt-get install -y -q wrk >/dev/null; }
summary="$(mktemp)"
export CLICKMUNCHER_BENCH_SUMMARY="$summary"
echo "== bench/gateway"; "$py" -m bench.gateway.run
echo "== bench/streams"; "$py" -m bench.streams.run
echo "== bench/streams poison"; "$py" -m bench.streams.poison
echo "== bench/sink"; "$py" -m bench.sink.run
echo "== bench/sink poison"; "$py" -m bench.sink.poison
echo "== bench/memory"; "$py" -m bench.memory.run
echo "== bench/api"; "$py" -m bench.api.run
echo "== summary (docs/benchmarks.md holds the latest recorded figures)"
"$py" -m bench.summary "$summary"
rm -f "$summary"
