"""img2dataset's shards in ``OUT/shards``: their files, their check, their normalised tars, their markers.

A shard is done (:class:`vlm_classdata.stages.Stages` in ``OUT/.stages``) only when its parquet lists each URL
of its slice of ``urls.parquet`` exactly once and its tar holds one image per downloaded row.
"""

from __future__ import annotations

import hashlib
import re
import tarfile
from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq

from builders.sources.tar_samples import KEY_EXT  # WebDataset's split of a member name into key and extension
from builders.targeted.fetch import ENCODE_FORMAT
from builders.targeted.mined import Mined
from builders.targeted.state import STAGES_DIR
from builders.writers.webdataset import tar_member  # the builders' fixed header fields
from vlm_classdata.atomic import atomic_path, commit, discard
from vlm_classdata.stages import Stages, file_listing, fingerprint

_STATS_RE = re.compile(r"^(\d+)_stats\.json$")


def finished_shards(shards: Path) -> set[int]:
    """Shard ids whose ``NNNNN_stats.json`` exists (img2dataset writes it after the tar and parquet)."""
    if not shards.is_dir():
        return set()
    return {int(m.group(1)) for p in shards.iterdir() if (m := _STATS_RE.match(p.name)) and p.is_file()}


def shard_name(shard_id: int) -> str:
    return f"{shard_id:05d}"  # img2dataset's oom_shard_count=5


def normalize_tar(path: Path) -> bool:
    """Rewrite an img2dataset tar in key order with header times, owners and modes fixed (atomically), so its
    bytes do not depend on download completion order; False when it already is. Members of one key keep
    their order."""
    with tarfile.open(path, "r:") as tf:
        members = [m for m in tf.getmembers() if m.isreg()]
        keyed = []
        for i, m in enumerate(members):
            km = KEY_EXT.match(m.name)
            keyed.append(((km.group(1) if km else m.name), i, m))
        ordered = sorted(keyed, key=lambda t: (t[0], t[1]))
        if ordered == keyed and all(m.mtime == 0 and m.uid == 0 and m.gid == 0 and m.mode == 0o444
                                    and not m.uname and not m.gname for m in members):
            return False
        tmp = atomic_path(path)
        try:
            with open(tmp, "wb") as fh, tarfile.open(fileobj=fh, mode="w", format=tarfile.USTAR_FORMAT) as out:
                for _, _, m in ordered:
                    out.addfile(tar_member(m.name, m.size), tf.extractfile(m))
        except BaseException:
            discard(tmp)
            raise
    commit(tmp, path)
    return True


def shard_files(shards: Path, shard_id: int) -> list[Path]:
    """A shard's files, the stats file (img2dataset's "finished" mark) first so removing them in this order
    never leaves a finished-looking shard without its data."""
    name = shard_name(shard_id)
    return [shards / f"{name}_stats.json", shards / f"{name}.parquet", shards / f"{name}.tar"]


def shard_problem(mined: Mined, shards: Path, shard_id: int, shard_size: int) -> str | None:
    """Why a shard img2dataset calls finished is not done (None when it is): its parquet must list each URL of
    its slice of ``urls.parquet`` exactly once (img2dataset cuts the list in order), and its tar must hold one
    image per ``success`` row."""
    name = shard_name(shard_id)
    expected = list(mined.url_class)[shard_id * shard_size:(shard_id + 1) * shard_size]
    try:
        rows = pq.read_table(shards / f"{name}.parquet", columns=["url", "status"]).to_pylist()
    except Exception as exc:  # noqa: BLE001 - pyarrow raises several types for a missing or damaged file
        return f"its parquet file cannot be read ({str(exc).splitlines()[0][:120] if str(exc) else exc!r})"
    seen = Counter(r["url"] for r in rows)
    dups = [u for u, n in seen.items() if n > 1]
    if dups:
        return f"{len(dups)} url(s) appear more than once, e.g. {dups[0]} (duplicated samples)"
    lost = [u for u in expected if u not in seen]
    if lost:
        return f"{len(lost)} mined url(s) are missing, e.g. {lost[0]} (lost rows)"
    foreign = [u for u in seen if u not in set(expected)]
    if foreign:
        return f"url {foreign[0]!r} is not in this shard's part of {mined.urls_file}; OUT holds another download"
    successes = sum(1 for r in rows if r["status"] == "success")
    tar = shards / f"{name}.tar"
    try:
        with tarfile.open(tar, "r:") as tf:
            images = sum(1 for m in tf.getmembers() if m.isreg() and m.name.endswith(f".{ENCODE_FORMAT}"))
    except FileNotFoundError:
        images = 0
    except (tarfile.TarError, OSError) as exc:
        return f"its tar cannot be read ({exc})"
    if images != successes:
        return f"its tar holds {images} image(s) for {successes} downloaded row(s)"
    return None


def settle_shards(mined: Mined, out: Path, settings: dict, num_shards: int) -> dict[int, str]:
    """Mark every finished shard that checks out as done (:class:`vlm_classdata.stages.Stages`, fingerprint: the download
    settings and the shard id; info: its files' sizes and times). A finished shard that does not check out is
    removed, so the next run fetches it again, and returned as ``{shard id: problem}``. A marked shard whose
    files are unchanged is not read again."""
    shards, stages = out / "shards", Stages(out / STAGES_DIR)
    bad: dict[int, str] = {}
    for shard_id in range(num_shards):
        unit, key = f"shard-{shard_name(shard_id)}", fingerprint(settings, shard_id)
        files = [p for p in shard_files(shards, shard_id) if p.is_file()]
        info = stages.done(unit, key)
        if info is not None and info.get("files") == file_listing(files, shards):
            continue
        tar = shards / f"{shard_name(shard_id)}.tar"
        try:
            if tar.is_file():
                normalize_tar(tar)
        except (tarfile.TarError, EOFError) as exc:
            problem: str | None = f"its tar cannot be read ({exc})"
        else:
            problem = shard_problem(mined, shards, shard_id, int(settings["shard_size"]))
        if problem is None:
            stages.mark(unit, key, {"files": file_listing([p for p in files if p.is_file()], shards)})
            continue
        stages.clear(unit)
        for p in shard_files(shards, shard_id):
            p.unlink(missing_ok=True)
        bad[shard_id] = problem
    return bad


def shards_digest(shards: Path) -> str:
    """Identity of the shard tars as they are now (names, sizes, modification times)."""
    h = hashlib.sha256()
    for p in sorted(shards.glob("*.tar")):
        st = p.stat()
        h.update(f"{p.name}\x1f{st.st_size}\x1f{st.st_mtime_ns}\n".encode())
    return h.hexdigest()
