"""The MINED folder (written by ``python -m corpora_stats mine``), read and checked."""

from __future__ import annotations

import hashlib
import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from corpora_stats.mine import URL_COLUMNS as MINED_COLUMNS  # the MINED contract, written there
from vlm_classdata.errors import UserError, read_user_json
from vlm_classdata.vocabulary import ClassVocabulary


@dataclass
class Mined:
    """A validated MINED folder."""

    path: Path
    urls_file: Path
    vocabulary: ClassVocabulary
    report: dict
    url_class: dict[str, str]  # url -> class_id
    mined: dict[str, int]  # class_id -> rows, in vocabulary order
    urls_sha256: str

    @property
    def rows(self) -> int:
        return len(self.url_class)


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def load_mined(mined_dir: str | os.PathLike) -> Mined:
    """Read and check a MINED folder; any problem is one :class:`UserError` line."""
    root = Path(mined_dir).expanduser()
    urls_file = root / "urls.parquet"
    if not root.is_dir():
        raise UserError(f"MINED folder {str(mined_dir)!r} not found")
    if not urls_file.is_file():
        raise UserError(f"{root}: no urls.parquet (write it with python -m corpora_stats mine)")
    try:
        table = pq.read_table(urls_file)
    except Exception as exc:  # pyarrow raises several types for a damaged file
        raise UserError(f"{urls_file}: not a readable parquet file ({str(exc).splitlines()[0][:120]})") from None
    missing = [c for c in MINED_COLUMNS if c not in table.column_names]
    if missing:
        raise UserError(f"{urls_file}: missing column(s) {', '.join(missing)}; expected {', '.join(MINED_COLUMNS)}")
    for col in MINED_COLUMNS:
        typ = table.schema.field(col).type
        ok = pa.types.is_integer(typ) if col == "row" else (pa.types.is_string(typ) or pa.types.is_large_string(typ))
        if not ok:
            raise UserError(f"{urls_file}: column {col!r} has type {typ}, expected {'int64' if col == 'row' else 'string'}")
    if table.num_rows == 0:
        raise UserError(f"{urls_file}: no rows to download")
    urls = table.column("url").to_pylist()
    class_ids = table.column("class_id").to_pylist()
    if any(not u for u in urls):
        raise UserError(f"{urls_file}: {sum(1 for u in urls if not u)} row(s) without a url")
    if any(not c for c in class_ids):
        raise UserError(f"{urls_file}: {sum(1 for c in class_ids if not c)} row(s) without a class_id")
    dup = [u for u, n in Counter(urls).items() if n > 1]
    if dup:
        raise UserError(f"{urls_file}: {len(dup)} duplicate url(s), e.g. {dup[0]}; URLs must be unique")

    classes_file = root / "classes.json"
    data = read_user_json(classes_file, "MINED class list")
    if not isinstance(data, dict) or not isinstance(data.get("classes"), list):
        raise UserError(f"{classes_file}: expected the vocabulary JSON {{\"dataset\", \"classes\": [...]}}")
    try:
        vocab = ClassVocabulary.load(classes_file)  # as the build reads it
    except (KeyError, TypeError) as exc:
        raise UserError(f"{classes_file}: malformed class entry ({exc})") from None
    unknown = sorted({c for c in class_ids if c not in vocab})
    if unknown:
        raise UserError(f"{urls_file}: {len(unknown)} class id(s) not in classes.json, e.g. {unknown[0]!r}")
    report = read_user_json(root / "mine_report.json", "MINED report")
    if not isinstance(report, dict):
        raise UserError(f"{root / 'mine_report.json'}: expected a JSON object")
    counts = Counter(class_ids)
    chosen = {c.get("class_id") for c in report.get("classes") or [] if isinstance(c, dict)}
    mined = {cid: counts[cid] for cid in vocab.ids if cid in counts or cid in chosen}  # chosen, none found: 0
    return Mined(root, urls_file, vocab, report, dict(zip(urls, class_ids, strict=True)), mined,
                 _sha256_file(urls_file))
