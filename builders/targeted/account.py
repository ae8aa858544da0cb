"""The per-class account of a download: mined = downloaded + failed (by reason), from the shards' parquets."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq

from builders.targeted.errors import TargetedError
from builders.targeted.mined import Mined
from builders.targeted.reasons import failure_reason
from builders.targeted.shards import shard_name


def account(mined: Mined, shards: Path, num_shards: int) -> dict:
    """Per-class mined / downloaded / failed-by-reason from the shards' parquet files; raise if a row is lost
    or duplicated (every mined URL must be in exactly one finished shard, once)."""
    seen: Counter[str] = Counter()
    downloaded: Counter[str] = Counter()
    failed: dict[str, Counter[str]] = {cid: Counter() for cid in mined.mined}
    examples: dict[str, str] = {}
    for shard_id in range(num_shards):
        pfile = shards / f"{shard_name(shard_id)}.parquet"
        try:
            rows = pq.read_table(pfile, columns=["url", "class_id", "status", "error_message"]).to_pylist()
        except Exception as exc:
            raise TargetedError(f"{pfile}: cannot read the shard's parquet file ({exc})") from exc
        for row in rows:
            url = row["url"]
            seen[url] += 1
            cid = mined.url_class.get(url)
            if cid is None:
                raise TargetedError(f"{pfile}: url {url!r} is not in {mined.urls_file}; OUT holds another download")
            if row["class_id"] != cid:
                raise TargetedError(f"{pfile}: url {url!r} carries class {row['class_id']!r}, mined as {cid!r}")
            if row["status"] == "success":
                downloaded[cid] += 1
            else:
                reason = failure_reason(row["status"], row["error_message"])
                failed[cid][reason] += 1
                msg = str(row["error_message"] or row["status"] or "")[:200]
                examples[reason] = min(examples.get(reason, msg), msg)
    dups = [u for u, n in seen.items() if n > 1]
    if dups:
        raise TargetedError(f"{len(dups)} url(s) appear more than once in {shards}, e.g. {dups[0]} (duplicated samples)")
    lost = [u for u in mined.url_class if u not in seen]
    if lost:
        raise TargetedError(f"{len(lost)} mined url(s) are in no shard of {shards}, e.g. {lost[0]} (lost rows)")
    classes = {}
    for cid, n in mined.mined.items():
        nfailed = sum(failed[cid].values())
        if n != downloaded[cid] + nfailed:
            raise TargetedError(f"class {cid}: mined {n} != downloaded {downloaded[cid]} + failed {nfailed}")
        classes[cid] = {"class_name": mined.vocabulary[cid].name, "mined": n, "downloaded": downloaded[cid],
                        "failed": dict(sorted(failed[cid].items()))}
    reasons: Counter[str] = Counter()
    for c in failed.values():
        reasons.update(c)
    totals = {"mined": mined.rows, "downloaded": sum(downloaded.values()), "failed": sum(reasons.values()),
              "failed_reasons": dict(sorted(reasons.items()))}
    return {"classes": classes, "totals": totals, "error_examples": dict(sorted(examples.items()))}
