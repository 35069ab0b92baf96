#!/usr/bin/env bash
# floodlab's two entry points on a fresh machine:
#   bash run.sh demo   the main job end to end on the embedded defaults (local Ray, synthetic data)
#   bash run.sh test   ruff (lint and format), mypy, then the test suite
# Both create a project-local virtual environment in .venv on first use. torch 2.13.0 is
# installed before anything else so that pip never resolves torch itself (which would pull
# a CUDA build on a CPU-only machine); the project's own range admits the installed build.
set -euo pipefail
cd "$(dirname "$0")"

PY=${PYTHON:-python3}
VENV=.venv
STAMP=$VENV/.floodlab-installed

setup() {
    if ! "$PY" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
        echo "floodlab needs Python >= 3.11; set PYTHON=/path/to/python3.11" >&2
        exit 2
    fi
    [ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
    local want
    want=$(cat pyproject.toml run.sh | "$VENV/bin/python" -c 'import hashlib,sys; print(hashlib.sha256(sys.stdin.buffer.read()).hexdigest())')
    if [ ! -f "$STAMP" ] || [ "$(cat "$STAMP")" != "$want" ]; then
        echo "Setting up $VENV (first run, a few minutes) ..." >&2
        "$VENV/bin/python" -m pip install -q --upgrade pip
        "$VENV/bin/python" -m pip install -q "torch==2.13.0"
        "$VENV/bin/python" -m pip install -q -e ".[dev]"
        echo "$want" > "$STAMP"
    fi
}

cmd=${1:-}
shift || true
case "$cmd" in
    demo)
        setup
        exec "$VENV/bin/floodlab" demo "$@"
        ;;
    test)
        setup
        # House habits first (seconds), then the suite.
        "$VENV/bin/ruff" check platform tests benchmarks
        "$VENV/bin/ruff" format --check platform tests benchmarks
        "$VENV/bin/mypy"
        exec "$VENV/bin/python" -m pytest -q "$@"
        ;;
    setup)
        setup
        ;;
    *)
        echo "usage: bash run.sh demo|test|setup [args...]" >&2
        exit 2
        ;;
esac
