"""OUT of the targeted flow: its run lock and its resume state, as :class:`vlm_classdata.stages.Stages` markers.

``OUT/.state/download.done.json`` records the settings that shape the shards (written before downloading: a
killed run is resumed only with the same settings); ``OUT/.state/build.done.json`` the shards a build was made
from. ``OUT/.stages/`` holds one marker per checked shard. OUT folders of older versions kept this state in
``.targeted_state.json``; it is still read when the markers are missing.
"""

from __future__ import annotations

import json
from pathlib import Path

from builders.targeted.mined import Mined
from vlm_classdata.errors import UserError
from vlm_classdata.stages import RunLock, Stages, fingerprint, open_out

RUN_STATE_DIR = ".state"  # markers of the download settings and of the build's shards
STAGES_DIR = ".stages"  # shard completion markers, beside shards/ (img2dataset reads *.json there)
LEGACY_STATE_FILE = ".targeted_state.json"  # the resume state of older versions


def _legacy_state(out: Path) -> dict:
    try:
        data = json.loads((out / LEGACY_STATE_FILE).read_text())
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def _marker(out: Path, unit: str) -> dict | None:
    try:
        data = json.loads(Stages(out / RUN_STATE_DIR).path(unit).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def download_settings(out: Path) -> dict | None:
    """The settings OUT's download was started with (None: no download was started)."""
    marker = _marker(out, "download")
    if marker is not None:
        return (marker.get("info") or {}).get("settings")
    return _legacy_state(out).get("download_settings")


def record_download_settings(out: Path, settings: dict) -> None:
    """Record the settings of the download about to start."""
    Stages(out / RUN_STATE_DIR).mark("download", fingerprint(settings), {"settings": settings})


def built_from(out: Path, digest: str) -> bool:
    """True when OUT's build was made from the shards whose digest is ``digest``."""
    if _marker(out, "build") is not None:
        return Stages(out / RUN_STATE_DIR).done("build", digest) is not None
    return _legacy_state(out).get("built_from") == digest


def record_build(out: Path, digest: str) -> None:
    """Record that OUT's build is (being) made from the shards whose digest is ``digest``."""
    Stages(out / RUN_STATE_DIR).mark("build", digest)


def claim_out(out: Path, mined: Mined) -> RunLock:
    """Check OUT (a folder, not the MINED folder or inside it; OUT/mined from the same command is fine), take
    its run lock (a live run on it is one line) and remove what dead runs left (temporary files)."""
    where, source = out.resolve(), mined.path.resolve()
    if where == source or source in where.parents:
        raise UserError(f"--out {out} is the MINED folder or inside it; write the download elsewhere")
    return open_out(out, command="builders.targeted", legacy=(LEGACY_STATE_FILE, "download.json", "shards"))
