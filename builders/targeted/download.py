"""Download ``MINED/urls.parquet`` into ``OUT/shards`` with img2dataset, check every shard, account per class.

img2dataset runs in ``incremental`` mode: a finished shard is never fetched again. A shard it finished that does
not check out is removed and the run stops with :class:`DownloadIncomplete` (the next run fetches it again).
"""

from __future__ import annotations

import math
import os
import time
from pathlib import Path

from builders.targeted.account import account
from builders.targeted.errors import DownloadIncomplete, TargetedError
from builders.targeted.fetch import ENCODE_FORMAT, call_img2dataset
from builders.targeted.mined import Mined, load_mined
from builders.targeted.options import DownloadOptions
from builders.targeted.shards import finished_shards, settle_shards, shard_name
from builders.targeted.state import claim_out, download_settings, record_download_settings
from vlm_classdata.atomic import write_json_atomic
from vlm_classdata.errors import UserError


def download(mined_dir: str | os.PathLike, out_dir: str | os.PathLike, options: DownloadOptions,
             progress: bool = True) -> dict:
    """Download under OUT's run lock and return the per-class account (also written to ``OUT/download.json``);
    the returned dict also has ``"run"`` (shards fetched by this call, seconds), which the file does not."""
    options.validate()
    mined = load_mined(mined_dir)
    out = Path(out_dir).expanduser()
    with claim_out(out, mined):
        return download_claimed(mined, out, options, progress)


def _check_settings(mined: Mined, out: Path, settings: dict) -> None:
    """Record the settings that shape the shards; OUT holding a download made with others is refused."""
    shards = out / "shards"
    old = download_settings(out)
    if old is not None and old != settings:
        diff = ", ".join(f"{k} {old.get(k)} → {v}" for k, v in settings.items() if old.get(k) != v)
        raise UserError(f"{out} holds a download made with other settings ({diff}); use a new --out")
    if old is None and shards.exists() and any(shards.iterdir()):
        raise UserError(f"{shards} is not empty and was not made by this command; use a new --out")
    record_download_settings(out, settings)  # before downloading: a killed run is resumed only with these settings


def _check_finished(mined: Mined, out: Path, settings: dict, num_shards: int) -> None:
    """Raise unless every shard finished and checks out (those that do not are removed)."""
    shards = out / "shards"
    finished = finished_shards(shards)
    unfinished = sorted(set(range(num_shards)) - finished)
    if unfinished:
        names = ", ".join(shard_name(s) for s in unfinished[:5]) + (" ..." if len(unfinished) > 5 else "")
        raise DownloadIncomplete(f"{len(unfinished)} of {num_shards} shards did not finish ({names}); "
                                 "run the same command again to resume")
    extra = sorted(s for s in finished if s >= num_shards)
    if extra:
        raise TargetedError(f"{shards} holds shard {shard_name(extra[0])} beyond the {num_shards} this list makes")
    bad = settle_shards(mined, out, settings, num_shards)
    if bad:
        first = min(bad)
        raise DownloadIncomplete(
            f"{len(bad)} of {num_shards} shards failed and were removed: shard {shard_name(first)}: {bad[first]}"
            + (f"; also {', '.join(shard_name(s) for s in sorted(bad)[1:6])}" if len(bad) > 1 else "")
            + "; run the same command again to fetch them again")


def download_claimed(mined: Mined, out: Path, options: DownloadOptions, progress: bool) -> dict:
    """:func:`download` with the MINED folder loaded, the options checked and OUT's run lock held."""
    shards = out / "shards"
    settings = {"urls_sha256": mined.urls_sha256, "rows": mined.rows, "shard_size": int(options.shard_size),
                "image_size": int(options.image_size), "resize_mode": options.resize_mode,
                "encode_format": ENCODE_FORMAT}
    _check_settings(mined, out, settings)
    num_shards = math.ceil(mined.rows / options.shard_size)
    t0 = time.time()
    todo = sorted(set(range(num_shards)) - finished_shards(shards))
    if todo:
        call_img2dataset(mined, shards, None if progress else out / "img2dataset.log",
                         image_size=int(options.image_size), resize_mode=options.resize_mode,
                         processes_count=int(options.processes), thread_count=int(options.threads),
                         timeout=options.timeout, retries=int(options.retries),
                         number_sample_per_shard=int(options.shard_size))
    _check_finished(mined, out, settings, num_shards)
    summary = {**account(mined, shards, num_shards), "shards": num_shards, "image_size": int(options.image_size),
               "resize_mode": options.resize_mode, "shard_size": int(options.shard_size),
               "encode_format": ENCODE_FORMAT, "urls_sha256": mined.urls_sha256}
    write_json_atomic(out / "download.json", summary)
    return {**summary, "run": {"shards_fetched": [shard_name(s) for s in todo],
                               "seconds": round(time.time() - t0, 3)}}
