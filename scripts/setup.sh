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

# venv DIR: a fresh virtual environment at DIR unless one is there
venv() {
  if [ ! -x "$1/bin/python" ]; then
    echo "[setup] creating $1"
    "$PY" -m venv "$1"
    "$1/bin/python" -m pip install -q -U pip
  fi
}
# stamped DIR TEXT: true when DIR was set up from TEXT (a recipe, or hashes of what the install reads) already
stamped() { [ -f "$1/.installed-$(printf '%s' "$2" | sha1sum | cut -c1-12)" ]; }
stamp() { rm -f "$1"/.installed-*; touch "$1/.installed-$(printf '%s' "$2" | sha1sum | cut -c1-12)"; }

# 1. the development environment: everything (all extras + the test tools), the project editable
venv "$VENV"
# the stamp covers what the install builds: a changed pyproject, setup.py or engine source re-installs
recipe=$(cat pyproject.toml setup.py corpora_stats/_engine.pyx | sha1sum)
if ! stamped "$VENV" "$recipe"; then
  echo "[setup] installing torch==2.13.0 (CPU) and the project with all extras (compiling the counting engine)"
  "$VENV/bin/python" -m pip install -q torch==2.13.0
  "$VENV/bin/python" -m pip install -q -e '.[all,dev]'
  stamp "$VENV" "$recipe"
fi
# byte-compile the project's own modules (pip does it for installed packages, not for an editable install; where
# PYTHONDONTWRITEBYTECODE is set, every command would otherwise recompile them at start); up-to-date files are skipped
"$VENV/bin/python" -m compileall -q -j 0 vlm_classdata corpora_stats builders imagewikiqa cards scripts tests >/dev/null
# the same for pytest's assertion-rewritten test modules: pytest reads its cached rewrite even where
# PYTHONDONTWRITEBYTECODE is set, but never writes one there, so every xdist worker of every run would rewrite
# all test modules again (~3 s each); a collection without the variable writes them once (stale ones are redone)
env -u PYTHONDONTWRITEBYTECODE "$VENV/bin/python" -m pytest --collect-only -q -p no:cacheprovider >/dev/null 2>&1 || true

# 2. the light core, as a user gets it: a real (not editable) install of a built wheel, no extras. Its stamp covers
# the packages' files too, since the installed copy does not follow the work tree.
CORE=${CORE_VENV:-.venv-core}
venv "$CORE"
recipe=$(cat pyproject.toml setup.py README.md; find vlm_classdata corpora_stats builders imagewikiqa cards -type f \
         ! -name '*.pyc' ! -name '*.so' ! -name '*.c' -print0 | sort -z | xargs -0 sha1sum)
if ! stamped "$CORE" "$recipe"; then
  echo "[setup] installing the light core into $CORE (a wheel build: no extras, no torch)"
  "$CORE/bin/python" -m pip install -q .
  stamp "$CORE" "$recipe"
fi

# 3. the consumers environment: the development environment's packages (a .pth adds its site-packages, after
# this environment's own) plus the consumers that cannot share it: webdataset 1.x (the development environment
# keeps 0.2.x, whose wids module the tests use) and lmms-eval with what its tasks and its result table import (pytablewriter). --no-deps: lmms-eval
# pins versions (of transformers, datasets, ...) that the tasks used here do not need.
CONSUMERS=${CONSUMERS_VENV:-.venv-consumers}
CONSUMER_PACKAGES="webdataset==1.0.2 lmms-eval==0.7.3 filelock<4"
CONSUMER_DEPS="loguru sacrebleu evaluate tenacity pytablewriter"
venv "$CONSUMERS"
base_site=$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
own_site=$("$CONSUMERS/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
base_site=$(cd "$base_site" && pwd -P)
recipe="$base_site $CONSUMER_PACKAGES $CONSUMER_DEPS; setuptools from $VENV"
if ! stamped "$CONSUMERS" "$recipe"; then
  echo "[setup] installing the consumers (webdataset 1.x, lmms-eval) into $CONSUMERS"
  # addsitedir, not a plain path line: it also runs the .pth files there (the editable project's among them)
  echo "import site; site.addsitedir('$base_site')" > "$own_site/_vlmcd_base_venv.pth"
  # the venv's own old setuptools would hide the development environment's (torch asks for a recent one)
  "$CONSUMERS/bin/python" -m pip uninstall -q -y setuptools
  # what lmms-eval's tasks import first, then lmms-eval itself without its pins (pip then checks no pins)
  # shellcheck disable=SC2086
  "$CONSUMERS/bin/python" -m pip install -q $CONSUMER_DEPS
  # shellcheck disable=SC2086
  "$CONSUMERS/bin/python" -m pip install -q --no-deps $CONSUMER_PACKAGES
  stamp "$CONSUMERS" "$recipe"
fi
