"""The two extra environments scripts/setup.sh makes beside the development one, for tests that run a command in
them: the consumers environment (webdataset 1.x, lmms-eval over the development packages) and the light core
(the project's wheel without extras).

Each helper returns the environment's python, or skips the test with the reason; under CI (``CI=true``) a missing
environment fails the test instead, since there setup.sh has made both.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
CONSUMERS_ENV = "VLMCD_CONSUMERS_PYTHON"
CORE_ENV = "VLMCD_CORE_PYTHON"


def in_ci() -> bool:
    """True where the CI runner runs the suite (``CI`` set to true, 1 or yes)."""
    return os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")


def _python(variable: str, folder: str, what: str) -> str:
    """``$variable`` when set, else ``REPO/folder/bin/python``; a missing one skips (fails under CI)."""
    given = os.environ.get(variable)
    path = Path(given) if given else REPO / folder / "bin" / "python"
    if path.is_file() and os.access(path, os.X_OK):
        return str(path)
    reason = (f"{what} not found at {path}: run scripts/setup.sh (make setup), or point {variable} at "
              "its python")
    if in_ci():
        pytest.fail(reason)
    pytest.skip(reason)


def consumers_python() -> str:
    """The consumers environment's python (``.venv-consumers``, or ``$VLMCD_CONSUMERS_PYTHON``)."""
    return _python(CONSUMERS_ENV, ".venv-consumers", "the consumers environment")


def core_python() -> str:
    """The light core environment's python (``.venv-core``, or ``$VLMCD_CORE_PYTHON``)."""
    return _python(CORE_ENV, ".venv-core", "the light core environment")


def clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without ``PYTHONPATH`` / ``PYTHONHOME`` (so a command runs what its own
    environment installed, not this checkout), plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    env.update(extra)
    return env
