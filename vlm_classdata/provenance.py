"""Versions of the tool and the libraries that shape output bytes, for manifests."""

from __future__ import annotations

import sys
from importlib import metadata

TOOL_NAME = "vlm-classdata"
DEFAULT_PACKAGES = ("datasets", "pyarrow", "pillow", "webdataset", "nltk", "numpy", "polars")


def package_versions(packages: tuple[str, ...] = DEFAULT_PACKAGES) -> dict[str, str]:
    """``{"python": ..., "vlm-classdata": ..., package: version | "not installed"}``."""
    out = {"python": sys.version.split()[0]}
    for pkg in (TOOL_NAME, *packages):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = "not installed"
    return out
