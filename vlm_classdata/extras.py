"""Optional dependencies: which pip extra brings each, and the one line a command prints when one is missing.

The light core (``pip install vlm-classdata``) builds every output, counts corpora, builds, reports and scores
ImageWikiQA with a served model, and writes cards. Local models need ``[vlm]`` (torch, transformers), the
targeted image download ``[targeted]`` (img2dataset), the Ray executor ``[ray]``. A command that reaches such
code calls :func:`require` before its import, so a missing package is one :class:`UserError` line (exit 2)
that names the extra to install, never an ``ImportError`` traceback.
"""

from __future__ import annotations

import importlib.util
import sys

from vlm_classdata.errors import UserError

DISTRIBUTION = "vlm-classdata"

#: extra → the modules it must make importable (the import names, checked in this order)
EXTRAS: dict[str, tuple[str, ...]] = {
    "vlm": ("torch", "transformers", "tokenizers", "safetensors"),
    "targeted": ("img2dataset",),
    "ray": ("ray",),
}


def command_name() -> str:
    """The running command as a user typed it after ``python -m`` (``builders.verify``), else the script's
    file name, else ``this command``."""
    main = sys.modules.get("__main__")
    spec = getattr(main, "__spec__", None)
    if spec is not None and spec.name:
        return spec.name.removesuffix(".__main__")
    path = getattr(main, "__file__", None)
    return path.rsplit("/", 1)[-1] if path else "this command"


def missing_modules(extra: str) -> list[str]:
    """The modules of ``extra`` that cannot be imported here (empty when the extra is installed)."""
    if extra not in EXTRAS:
        raise ValueError(f"unknown extra {extra!r} (known: {', '.join(EXTRAS)})")
    missing = []
    for module in EXTRAS[extra]:
        parent = module.rpartition(".")[0]
        if parent and parent in missing:
            continue
        try:
            found = importlib.util.find_spec(module) is not None
        except (ImportError, ValueError):  # a parent that is not a package, or a module without a spec
            found = False
        if not found:
            missing.append(module)
    return missing


def missing_extra_line(extra: str, what: str | None = None, modules: list[str] | None = None) -> str:
    """``<what> needs the [<extra>] extra: pip install 'vlm-classdata[<extra>]' (missing: …)``."""
    what = what or command_name()
    tail = f" (missing: {', '.join(modules)})" if modules else ""
    return f"{what} needs the [{extra}] extra: pip install '{DISTRIBUTION}[{extra}]'{tail}"


def require(extra: str, what: str | None = None) -> None:
    """Raise one :class:`UserError` line naming ``extra`` unless all its modules can be imported.

    Cheap after the first call (``find_spec`` answers from ``sys.modules`` once a module is imported), so
    every optional import site calls it right before its ``import``. ``what`` names the feature or command;
    the default is the running command (:func:`command_name`)."""
    missing = missing_modules(extra)
    if missing:
        raise UserError(missing_extra_line(extra, what, missing))
