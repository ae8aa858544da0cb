"""Scanning corpus files for ``mine``: each row's caption through the counting matcher, and per selected class
the ``per_class`` distinct URLs with the smallest seeded keys (a bounded heap per class), skips counted by
reason (see :mod:`corpora_stats.mine`)."""

from __future__ import annotations

import hashlib
import heapq
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from corpora_stats.counts_folder import CountsFolder
from corpora_stats.matcher import Matcher
from corpora_stats.mine_files import CorpusFile
from vlm_classdata import progress
from vlm_classdata.errors import one_line

SKIP_REASONS = ("missing_url", "bad_url", "empty_caption")
_URL_OK = r"(?i)^https?://[^\s/?#]+(?:[/?#]\S*)?$"


def url_key(seed: int, url: str) -> int:
    """The seeded selection key of a URL: ``sha256(f"{seed}\\x1f{url}")`` as an integer (smaller = first)."""
    return int.from_bytes(hashlib.sha256(f"{seed}\x1f{url}".encode()).digest(), "big")


@dataclass
class _Kept:
    key: int
    first: tuple[str, int]      # (corpus label, row) of the representative row
    caption: str
    form: str
    rows: int = 1               # candidate rows with this URL seen while it was kept


@dataclass
class ClassPick:
    """The ``k`` distinct URLs with the smallest keys among one class's candidates."""

    k: int
    heap: list = field(default_factory=list)      # (-key, url): the largest kept key on top
    kept: dict[str, _Kept] = field(default_factory=dict)
    matched: int = 0

    def offer(self, key: int, url: str, first: tuple[str, int], caption: str, form: str) -> None:
        self.matched += 1
        have = self.kept.get(url)
        if have is not None:
            have.rows += 1
            if first < have.first:
                have.first, have.caption, have.form = first, caption, form
            return
        if len(self.heap) < self.k:
            heapq.heappush(self.heap, (-key, url))
        elif key < -self.heap[0][0]:
            _, dropped = heapq.heapreplace(self.heap, (-key, url))
            del self.kept[dropped]
        else:
            return
        self.kept[url] = _Kept(key, first, caption, form)


_NON_UTF8 = "\0non_utf8"


def _strings(arr: Any) -> pl.Series:
    """An Arrow column as a polars string series; undecodable binary values become a marker (``non_utf8``)."""
    import pyarrow as pa  # heavy (+ numpy, ~0.15 CPU-s): only mining needs it, never a txt count

    if pa.types.is_binary(arr.type) or pa.types.is_large_binary(arr.type):
        values = []
        for raw in arr.to_pylist():
            try:
                values.append(None if raw is None else raw.decode("utf-8"))
            except UnicodeDecodeError:
                values.append(_NON_UTF8)
        return pl.Series(values, dtype=pl.Utf8)
    if not (pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type)):
        try:
            arr = arr.cast(pa.large_string())
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):  # lists, structs...: never a URL or a caption
            return pl.Series([None if v is None else str(v) for v in arr.to_pylist()], dtype=pl.Utf8)
    return pl.Series(pl.from_arrow(arr)).cast(pl.Utf8)


def _mine_batch(batch: Any, first_row: int, cf: CorpusFile, matcher: Matcher, pairs: pl.DataFrame,
                picks: dict[int, ClassPick], url_col: str, text_col: str, seed: int, stats: dict) -> None:
    skipped = stats["skipped"]
    df = pl.DataFrame({"url": _strings(batch.column(url_col)).str.strip_chars(),
                       "caption": _strings(batch.column(text_col))}).with_row_index("row", offset=first_row)
    url, cap = pl.col("url"), pl.col("caption")
    reason = (pl.when((url == _NON_UTF8) | (cap == _NON_UTF8)).then(pl.lit("non_utf8"))
              .when(url.is_null() | (url == "")).then(pl.lit("missing_url"))
              .when(~url.str.contains(_URL_OK)).then(pl.lit("bad_url"))
              .when(cap.is_null() | (cap.str.strip_chars() == "")).then(pl.lit("empty_caption")))
    df = df.with_columns(reason.alias("reason"))
    for r, k in df.group_by("reason").len().filter(pl.col("reason").is_not_null()).iter_rows():
        skipped[r] = skipped.get(r, 0) + k
    ok = df.filter(pl.col("reason").is_null())
    if ok.height == 0 or pairs.height == 0:
        return
    # the counting matcher over every form (leftmost-longest as in count), then the selected classes' forms
    hits = (matcher.matches(ok["caption"].to_list()).join(pairs, on="pat", how="inner")
            .group_by("doc", "cls").agg(pl.col("pat").min()))
    if hits.height == 0:
        return
    per_doc = hits.group_by("doc").agg(pl.len().alias("k"), pl.col("cls").first(), pl.col("pat").first())
    stats["multi_class_rows"] += per_doc.filter(pl.col("k") > 1).height
    single = per_doc.filter(pl.col("k") == 1).sort("doc")
    docs = single["doc"]
    rows, urls, caps = ok["row"].gather(docs), ok["url"].gather(docs), ok["caption"].gather(docs)
    for cls, pat, row, u, c in zip(single["cls"], single["pat"], rows, urls, caps, strict=True):
        picks[cls].offer(url_key(seed, u), u, (cf.label, int(row)), c, matcher.texts[pat])


def _mine_file(cf: CorpusFile, matcher: Matcher, pairs: pl.DataFrame, picks: dict[int, ClassPick],
               url_col: str, text_col: str, seed: int, batch_size: int, stats: dict, bar: Any) -> None:
    """Stream one file in Arrow batches of its two columns, row group by row group. A damaged file counts one
    ``read_error`` and is named in ``stats["damaged_files"]`` with the reason; its readable row groups are mined."""
    def damaged(reason: str) -> None:
        stats["skipped"]["read_error"] = stats["skipped"].get("read_error", 0) + 1
        stats["damaged_files"].append({"file": str(cf.path), "reason": reason})

    import pyarrow.parquet as pq  # heavy (+ numpy, ~0.15 CPU-s): only mining needs it, never a txt count

    try:
        pf = pq.ParquetFile(cf.path)
    except (OSError, ValueError) as exc:  # pyarrow's ArrowIOError / ArrowInvalid
        damaged(f"not a readable parquet file ({one_line(exc)})")
        return
    bad, first = [], 0
    for group in range(pf.num_row_groups):
        try:
            row = first
            for batch in pf.iter_batches(batch_size=batch_size, row_groups=[group], columns=[url_col, text_col]):
                _mine_batch(batch, row, cf, matcher, pairs, picks, url_col, text_col, seed, stats)
                row += batch.num_rows
                cf.rows += batch.num_rows
                stats["rows_scanned"] += batch.num_rows
                bar.update(batch.num_rows)
        except (OSError, ValueError) as exc:
            if isinstance(exc, ValueError) and not type(exc).__module__.startswith("pyarrow"):
                raise
            bad.append(f"row group {group} ({one_line(exc)})")
        first += pf.metadata.row_group(group).num_rows  # row numbers stay those of the file
    if bad:
        damaged(f"damaged parquet: {'; '.join(bad)}")


def scan(files: list[CorpusFile], matcher: Matcher, selected: list[dict], *, per_class: int, forms: str, url_col: str,
         text_col: str, seed: int, batch_size: int, show_progress: bool) -> tuple[dict[int, ClassPick], dict]:
    """Stream every file; → (per selected class index: its :class:`ClassPick`, scan statistics)."""
    sel_index = [c["index"] for c in selected]
    pairs = matcher.pairs.filter(pl.col("cls").is_in(sel_index))
    if forms != "all":
        pairs = pairs.filter(~pl.col("flagged"))
    picks = {i: ClassPick(per_class) for i in sel_index}
    stats: dict[str, Any] = {"rows_scanned": 0, "multi_class_rows": 0, "skipped": dict.fromkeys(SKIP_REASONS, 0),
                             "damaged_files": []}
    bar = progress.make_bar(sum(cf.total for cf in files), "mine", unit="row", disable=not show_progress)
    try:
        for cf in files:
            _mine_file(cf, matcher, pairs, picks, url_col, text_col, seed, batch_size, stats, bar)
    finally:
        bar.close()
    return picks, stats


def mined_rows(counts: CountsFolder, selected: list[dict], picks: dict[int, ClassPick],
                column: str) -> tuple[list[tuple], int, list[dict]]:
    """The ``urls.parquet`` rows (a URL kept by several classes stays with its first row's class), the
    duplicate URL count and the per-class part of the report."""
    owner: dict[str, int] = {}
    for c in selected:
        i = c["index"]
        for url, kept in picks[i].kept.items():
            j = owner.get(url)
            if j is None or kept.first < picks[j].kept[url].first:
                owner[url] = i
    rows: list[tuple] = []
    duplicates = 0
    per_class_info = []
    for c in selected:
        i = c["index"]
        entry = counts.vocab.by_index(i)
        mined = 0
        for url in sorted(picks[i].kept):
            kept = picks[i].kept[url]
            if owner[url] != i:
                duplicates += kept.rows
                continue
            duplicates += kept.rows - 1
            mined += 1
            rows.append((url, kept.caption, entry.class_id, entry.name, kept.form, kept.first[0], kept.first[1]))
        info = {"class_id": entry.class_id, "class_name": entry.name, "doc_freq": c["doc_freq"],
                "matched_rows": picks[i].matched, "mined": mined}
        if column != "doc_freq":
            info[column] = c["value"]
        per_class_info.append(info)
    return rows, duplicates, per_class_info
