"""Row-file writers: a JSON array (LLaVA training), JSON Lines, and a VLMEvalKit TSV.

All three share one mechanism: every shard writes its rows as compact JSON lines to a part file
``out_dir/.parts/<writer name>/<split>-<shard:05d>.jsonl``; :meth:`Writer.finalize` streams the parts of a
split in shard order into the final file (never holding all rows in memory), commits it atomically, and only
then removes that split's parts. The three writers differ only in how a row is turned into a part line and
how part lines become the final file.
"""

from __future__ import annotations

import base64
import csv
import io
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from builders.records import Record
from builders.writers.base import ShardWriter, Writer, close_and_discard, close_and_publish
from builders.writers.vlmevalkit_rules import README, readme_text
from vlm_classdata.atomic import atomic_output, atomic_path, dumps_compact, naming, write_text_atomic
from vlm_classdata.errors import UserError

PARTS_DIR = ".parts"


def iter_part_lines(parts: list[Path]) -> Iterator[bytes]:
    """The lines of the part files, in order, without their trailing newline."""
    for part in parts:
        with open(part, "rb") as fh:
            for line in fh:
                yield line.rstrip(b"\n")


def _count_lines(path: Path) -> int:
    n = 0
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            n += chunk.count(b"\n")
    return n


class _PartShardWriter(ShardWriter):
    """Writes one shard's rows as JSON lines to its part file (temp name, then atomic commit)."""

    def __init__(self, writer: _PartsWriter, split: str, shard: int) -> None:
        self.writer = writer
        self.final = writer.part_path(split, shard)
        self.final.parent.mkdir(parents=True, exist_ok=True)
        self.tmp = atomic_path(self.final)
        self._fh: BinaryIO | None = open(self.tmp, "wb")  # noqa: SIM115 - closed in close()/abort()
        self._columns: list[str] | None = None

    def add(self, record: Record, row: dict) -> None:
        """Append one row to the part file."""
        assert self._fh is not None, "shard writer already closed"
        if self.writer.same_columns:  # fail early; finalize checks across shards
            columns = list(row)
            if self._columns is None:
                self._columns = columns
            elif columns != self._columns:
                raise ValueError(f"{self.writer.name}: row {record.key!r} has columns {columns}, "
                                 f"expected {self._columns} (all rows must have the same keys)")
        line = self.writer.part_line(record, row).encode("utf-8") + b"\n"
        with naming(self.final):
            self._fh.write(line)

    def close(self) -> list[Path]:
        """Publish the part file (empty when the shard had no rows)."""
        assert self._fh is not None, "shard writer already closed"
        fh, self._fh = self._fh, None
        return close_and_publish(fh, self.tmp, self.final)

    def abort(self) -> None:
        """Drop the temporary part file (also when closing it fails, e.g. on a full disk)."""
        fh, self._fh = self._fh, None
        close_and_discard(fh, self.tmp)


class _PartsWriter(Writer):
    """Base of the row-file writers: part files per shard, merged per split by :meth:`finalize`."""

    default_path = "{split}.out"
    option_names: tuple[str, ...] = ("path",)
    #: True when every row of a split must have the same keys in the same order
    same_columns = False

    def __init__(self, out_dir: Path, options: dict | None = None) -> None:
        super().__init__(out_dir, options)
        template = self.options.get("path", self.default_path)
        if not isinstance(template, str) or "{split}" not in template:
            raise UserError(f"{self.name}: option 'path' must be a string containing '{{split}}', got {template!r}")
        self.path_template = template

    # --- paths ---------------------------------------------------------------------------------------
    @property
    def parts_dir(self) -> Path:
        """Folder of this writer's part files."""
        return self.out_dir / PARTS_DIR / self.name

    def part_path(self, split: str, shard: int) -> Path:
        """The part file of one shard."""
        return self.parts_dir / f"{split}-{shard:05d}.jsonl"

    def final_path(self, split: str) -> Path:
        """The merged file of one split."""
        return self.out_dir / self.path_template.format(split=split)

    # --- hooks ---------------------------------------------------------------------------------------
    def part_line(self, record: Record, row: dict) -> str:
        """The part line stored for one sample (compact JSON, no newline)."""
        return dumps_compact(row)

    def write_merged(self, lines: Iterator[bytes], out: BinaryIO) -> int:
        """Write the final file from the part lines of a split; return the number of rows."""
        raise NotImplementedError

    def count_final(self, final: Path) -> int | None:
        """Rows in an already merged final file (None when it cannot be counted cheaply)."""
        return None

    def write_empty(self, final: Path) -> list[Path]:
        """What an empty split produces (default: the merge of no lines)."""
        with atomic_output(final) as tmp, open(tmp, "wb") as out:
            self.write_merged(iter(()), out)
        return [final]

    # --- contract ------------------------------------------------------------------------------------
    def shard_writer(self, split: str, shard: int, num_shards: int) -> ShardWriter:
        """A writer for one shard's part file."""
        return _PartShardWriter(self, split, shard)

    def finalize(self, shards: dict[str, int], counts: dict[str, int]) -> list[Path]:
        """Merge each split's parts in shard order into its final file, then remove the parts.

        Idempotent: when a split's parts are gone but its final file exists, the split was already
        merged and is left as is. Raises ``RuntimeError`` when the merged row count differs from
        ``counts`` or when parts are missing and there is no final file.
        """
        written: list[Path] = []
        for split in sorted(set(shards) | set(counts)):
            final = self.final_path(split)
            parts = [self.part_path(split, i) for i in range(shards.get(split, 0))]
            missing = [p for p in parts if not p.exists()]
            if missing and final.exists():
                # merged by an earlier finalize, which then removed the parts: keep it if it still matches
                n = self.count_final(final)
                if n is not None and split in counts and n != counts[split]:
                    raise RuntimeError(f"{self.name}: split {split!r}: {len(missing)} part file(s) missing and "
                                       f"{final} has {n} rows, expected {counts[split]}; re-run its shards")
                written.append(final)
            elif missing and counts.get(split, 0):
                raise RuntimeError(f"{self.name}: cannot finalize split {split!r}: "
                                   f"{len(missing)} part file(s) missing, e.g. {missing[0]}")
            elif missing:
                written.extend(self.write_empty(final))
            else:
                written.extend(self._merge_split(split, parts, final, counts.get(split)))
            self._remove_parts(split)
        for folder in (self.parts_dir, self.parts_dir.parent):
            if folder.is_dir() and not any(folder.iterdir()):
                folder.rmdir()
        return written

    def _merge_split(self, split: str, parts: list[Path], final: Path, expected: int | None) -> list[Path]:
        if not parts or all(p.stat().st_size == 0 for p in parts):
            if expected:
                raise RuntimeError(f"{self.name}: split {split!r} has no rows in its parts, expected {expected}")
            return self.write_empty(final)
        with atomic_output(final) as tmp:
            with open(tmp, "wb") as out:
                n = self.write_merged(iter_part_lines(parts), out)
            if expected is not None and n != expected:
                raise RuntimeError(f"{self.name}: split {split!r} has {n} rows in its parts, expected {expected}")
        return [final]

    def _remove_parts(self, split: str) -> None:
        """Remove every part (and left-over temporary part) of one split, stale ones included."""
        if not self.parts_dir.is_dir():
            return
        pattern = re.compile(rf"\.?{re.escape(split)}-\d{{5}}\.jsonl(\.tmp\d+)?")
        for path in self.parts_dir.iterdir():
            if pattern.fullmatch(path.name):
                path.unlink(missing_ok=True)


def _write_lines(lines: Iterator[bytes], out: BinaryIO, first: bytes = b"", between: bytes = b"",
                 end: bytes = b"") -> int:
    """Write each line, ``first`` before the first and ``between`` before each other, ``end`` after each;
    return how many."""
    n = 0
    for line in lines:
        out.write((between if n else first) + line + end)
        n += 1
    return n


class JsonArrayWriter(_PartsWriter):
    """One JSON array per split (``[\\n`` + one compact object per line joined by ``,\\n`` + ``\\n]\\n``).

    This is what LLaVA's training loader reads with ``json.load``. Option ``path`` (default
    ``"{split}.json"``, relative to the output folder). An empty split gives ``[]``.
    """

    name = "json_array"
    references_paths = True
    default_path = "{split}.json"

    def write_merged(self, lines: Iterator[bytes], out: BinaryIO) -> int:
        n = _write_lines(lines, out, first=b"[\n", between=b",\n")
        out.write(b"\n]\n" if n else b"[]\n")
        return n

    def count_final(self, final: Path) -> int | None:
        if not final.exists():
            return 0
        lines = _count_lines(final)
        return max(lines - 2, 0)  # "[" and "]" lines; "[]" alone is one line


class JsonlWriter(_PartsWriter):
    """One JSON Lines file per split (one compact object per line). Option ``path`` (default ``"{split}.jsonl"``)."""

    name = "jsonl"
    references_paths = True
    default_path = "{split}.jsonl"

    def write_merged(self, lines: Iterator[bytes], out: BinaryIO) -> int:
        return _write_lines(lines, out, end=b"\n")

    def count_final(self, final: Path) -> int | None:
        return _count_lines(final) if final.exists() else 0


def _tsv_cell(value: object) -> object:
    """A TSV cell: scalars as they are (None → empty → NaN in pandas), containers as JSON text."""
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return json.dumps(value, ensure_ascii=False)


class TsvWriter(_PartsWriter):
    """A VLMEvalKit TSV per split: the row's columns plus ``image`` (base64 of the image bytes) after ``index``.

    The header comes from the first row; every row of a split must have the same keys (``ValueError``
    otherwise). Cells with tabs, newlines or quotes are quoted CSV-style (``"..."``, quotes doubled), which
    ``pandas.read_csv(path, sep="\\t")`` — VLMEvalKit's loader — reads back exactly. Options: ``path``
    (default ``"{split}.tsv"``), ``embed_image`` (default True; False writes the rows as they are).
    An empty split writes no file (and removes a stale one). :meth:`finalize` also writes ``README.md``: the
    steps to register the TSVs with VLMEvalKit and score its results (:func:`~builders.writers.vlmevalkit_rules.
    readme_text`).
    """

    name = "tsv"
    default_path = "{split}.tsv"
    same_columns = True
    option_names = ("path", "embed_image")

    def __init__(self, out_dir: Path, options: dict | None = None) -> None:
        super().__init__(out_dir, options)
        embed = self.options.get("embed_image", True)
        if not isinstance(embed, bool):
            raise UserError(f"tsv: option 'embed_image' must be true or false, got {embed!r}")
        self.embed_image = embed

    def tsv_row(self, record: Record, row: dict) -> dict:
        """The row with the ``image`` column inserted after ``index`` (first when there is no ``index``)."""
        if not self.embed_image:
            return row
        if "image" in row:
            raise ValueError(f"tsv: row {record.key!r} already has an 'image' column")
        image = base64.b64encode(record.image_bytes).decode("ascii")
        if "index" not in row:
            return {"image": image, **row}
        out: dict = {}
        for key, value in row.items():
            out[key] = value
            if key == "index":
                out["image"] = image
        return out

    def part_line(self, record: Record, row: dict) -> str:
        return dumps_compact(self.tsv_row(record, row))

    def write_empty(self, final: Path) -> list[Path]:
        final.unlink(missing_ok=True)
        return []

    def finalize(self, shards: dict[str, int], counts: dict[str, int]) -> list[Path]:
        """Merge the splits (see :meth:`_PartsWriter.finalize`), then write ``README.md`` beside them (not in
        the returned list, which names the split files)."""
        written = super().finalize(shards, counts)
        tsvs = [p for p in written if p.suffix == ".tsv"]
        if tsvs:
            names = [p.relative_to(self.out_dir).as_posix() for p in tsvs]
            mcq = self.out_dir.parent / "mcq"  # the builders' MCQ JSONL of the same rows, when built
            questions = {n: f"OUT/mcq/{Path(n).stem}.jsonl" for n in names} if mcq.is_dir() else {}
            write_text_atomic(self.out_dir / README, readme_text(self.out_dir.name, names, questions))
        return written

    def write_merged(self, lines: Iterator[bytes], out: BinaryIO) -> int:
        text = io.TextIOWrapper(out, encoding="utf-8", newline="")
        writer = csv.writer(text, delimiter="\t", quotechar='"', quoting=csv.QUOTE_MINIMAL,
                            lineterminator="\n", doublequote=True)
        header: list[str] | None = None
        n = 0
        for line in lines:
            row = json.loads(line)
            keys = list(row)
            if header is None:
                header = keys
                writer.writerow(header)
            elif keys != header:
                raise ValueError(f"tsv: row {n} has columns {keys}, expected {header} (all rows of a split "
                                 f"must have the same keys in the same order)")
            writer.writerow([_tsv_cell(v) for v in row.values()])
            n += 1
        text.flush()
        text.detach()
        return n
