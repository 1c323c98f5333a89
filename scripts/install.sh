#!/usr/bin/env bash
# Creates the virtualenv and installs clickmuncher with its dev extras.
set -euo pipefail
venv="${1:-.venv}"
python="${PYTHON:-python3}"
if [ ! -x "$venv/bin/python" ]; then
  echo "install: creating virtualenv $venv"
  "$python" -m venv "$venv"
fi
"$venv/bin/python" -m pip install -q --upgrade pip
echo "install: pip install -e .[dev]"
"$venv/bin/python" -m pip install -q -e ".[dev]"
