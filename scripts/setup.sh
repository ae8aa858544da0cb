#!/usr/bin/env bash
# Idempotent set-up on a fresh Debian machine: system WordNet 3.0, a virtualenv in .venv, the project.
# Re-running is cheap: each step is skipped when its result is already there.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
PY=${PYTHON:-python3}

if [ ! -f /usr/share/wordnet/data.noun ] || [ ! -f /usr/share/wordnet/index.sense ]; then
  if [ "$(id -u)" = 0 ]; then
    echo "[setup] installing WordNet 3.0 (Debian wordnet-base, wordnet-sense-index)"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wordnet-base wordnet-sense-index >/dev/null
  else
    echo "[setup] WordNet 3.0 missing: run 'sudo apt-get install wordnet-base wordnet-sense-index'" >&2
  fi
fi

if [ ! -x "$VENV/bin/python" ]; then
  echo "[setup] creating $VENV"
  "$PY" -m venv "$VENV"
  "$VENV/bin/python" -m pip install -q -U pip
fi
# the stamp covers what the install builds: a changed pyproject, setup.py or engine source re-installs
stamp="$VENV/.installed-$(cat pyproject.toml setup.py corpora_stats/_engine.pyx | sha1sum | cut -c1-12)"
if [ ! -f "$stamp" ]; then
  echo "[setup] installing torch==2.13.0 (CPU) and the project (compiling the counting engine)"
  "$VENV/bin/python" -m pip install -q torch==2.13.0
  "$VENV/bin/python" -m pip install -q -e '.[dev,ray]'
  rm -f "$VENV"/.installed-*
  touch "$stamp"
fi
# byte-compile the project's own modules (pip does it for installed packages, not for an editable install; where
# PYTHONDONTWRITEBYTECODE is set, every command would otherwise recompile them at start); up-to-date files are skipped
"$VENV/bin/python" -m compileall -q -j 0 vlm_classdata corpora_stats builders imagewikiqa cards scripts tests >/dev/null
