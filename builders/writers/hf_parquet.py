"""A Hugging Face dataset folder: Parquet shards with an image column, plus a README with configs/features.

Layout::

    out_dir/data/<split>-<shard:05d>-of-<num_shards:05d>.parquet
    out_dir/README.md     (YAML front matter: configs + dataset_info; ``datasets.load_dataset(out_dir)``)

Each Parquet file stores the ``datasets.Features`` in its Arrow schema metadata, so images decode to PIL and
``label`` is a ``ClassLabel`` when class names are given. The image column is either ``image`` (``Image()``, one
image per row) or ``images`` (``List(Image())`` holding the row's one image: the form TRL reads from 0.22 on). Image bytes are written as they are (never
re-encoded) and uncompressed (already-compressed images gain ~0.1 % from zstd at 4x the write/read time);
the other columns use zstd.

The ``datasets`` library is needed only to turn inferred column types into ``Features``. Its import costs
~0.5 s per process, so the schema is worked out once in the parent (:meth:`HFParquetWriter.prepare`, given a
representative row) and travels to the workers with the writer; a shard whose rows infer other column types
falls back to computing its schema with ``datasets`` in the worker (same bytes, only slower).
"""

from __future__ import annotations

import io
import re
import tempfile
from array import array
from itertools import accumulate
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from builders.records import Record
from builders.writers.base import ShardWriter, Writer, close_and_discard, close_and_publish
from vlm_classdata.atomic import atomic_path, naming, write_text_atomic
from vlm_classdata.errors import UserError

IMAGE_COLUMN = "image"
IMAGES_COLUMN = "images"
IMAGE_COLUMNS = (IMAGE_COLUMN, IMAGES_COLUMN)  # the column names the writer fills (option ``image_column``)
_IMAGE_TYPE = pa.struct([pa.field("bytes", pa.binary()), pa.field("path", pa.string())])  # datasets' Image()
_MAX_BINARY = 2 ** 31 - 1  # bytes one pa.binary() array can hold
_SPLIT_NAME = re.compile(r"\w+(\.\w+)*")


def _fill_nulls(t: pa.DataType) -> pa.DataType:
    """Replace null types (a field that was None in every inferred row) by string, recursively."""
    if pa.types.is_null(t):
        return pa.string()
    if pa.types.is_struct(t):
        return pa.struct([f.with_type(_fill_nulls(f.type)) for f in t])
    if pa.types.is_large_list(t):
        return pa.large_list(t.value_field.with_type(_fill_nulls(t.value_type)))
    if pa.types.is_list(t):
        return pa.list_(t.value_field.with_type(_fill_nulls(t.value_type)))
    return t


def infer_columns(rows: list[dict]) -> pa.Schema:
    """Arrow types of the rows' columns other than ``image``/``images`` (null-only fields as string); pyarrow
    only."""
    others = [{k: v for k, v in row.items() if k not in IMAGE_COLUMNS} for row in rows]
    inferred = pa.Table.from_pylist(others).schema
    return pa.schema([f.with_type(_fill_nulls(f.type)) for f in inferred])


def _features(inferred: pa.Schema, class_names: list[str] | None, image_column: str = IMAGE_COLUMN):
    from datasets import ClassLabel, Features, Image, List  # heavy: workers reuse the schemas the parent made

    image = Image() if image_column == IMAGE_COLUMN else List(Image())
    features = Features({image_column: image, **Features.from_arrow_schema(inferred)})
    if class_names is not None and "label" in features:
        features["label"] = ClassLabel(names=list(class_names))
    return features


def _image_column(schema: pa.Schema) -> tuple[str, bool] | None:
    """``(name, is_list)`` of the schema's ``image`` (``Image()``) or ``images`` (list of ``Image()``) column."""
    for name in IMAGE_COLUMNS:
        if name in schema.names:
            t = schema.field(name).type
            if t == _IMAGE_TYPE:
                return name, False
            if pa.types.is_list(t) and t.value_type == _IMAGE_TYPE:
                return name, True
    return None


def rows_to_table(rows: list[dict], schema: pa.Schema) -> pa.Table:
    """``pa.Table.from_pylist(rows, schema=schema)``, faster: the ``image`` (or ``images`` list) column is
    assembled from the image bytes with one copy into one buffer (pyarrow's conversion copies them twice as it
    grows its buffer); the other columns are converted by pyarrow. Falls back to ``from_pylist`` for other image
    types or > 2 GB."""
    names = schema.names
    found = _image_column(schema)
    if found is None:
        return pa.Table.from_pylist(rows, schema=schema)
    column, is_list = found
    cells = [row.get(column) for row in rows]
    if is_list and not all(type(cell) is list for cell in cells):
        return pa.Table.from_pylist(rows, schema=schema)
    images = [im for cell in cells for im in cell] if is_list else cells
    if not all(type(im) is dict and type(im.get("bytes")) is bytes and type(im.get("path")) is str
               for im in images):
        return pa.Table.from_pylist(rows, schema=schema)
    blobs = [im["bytes"] for im in images]
    offsets = array("i", [0])
    ends = list(accumulate(map(len, blobs)))
    if ends and ends[-1] > _MAX_BINARY:
        return pa.Table.from_pylist(rows, schema=schema)
    offsets.extend(ends)
    data = pa.Array.from_buffers(pa.binary(), len(blobs), [None, pa.py_buffer(offsets), pa.py_buffer(b"".join(blobs))])
    paths = pa.array([im["path"] for im in images], pa.string())
    image = pa.StructArray.from_arrays([data, paths], fields=list(_IMAGE_TYPE))
    if is_list:
        starts = pa.array([0, *accumulate(map(len, cells))], pa.int32())
        image = pa.ListArray.from_arrays(starts, image, type=schema.field(column).type)
    other_schema = pa.schema([f for f in schema if f.name != column])
    others = pa.Table.from_pylist([{k: v for k, v in row.items() if k != column} for row in rows],
                                  schema=other_schema)
    return pa.Table.from_arrays([image if name == column else others.column(name) for name in names],
                                schema=schema)


def _leaf_paths(schema: pa.Schema) -> list[str]:
    """Parquet leaf column paths of an Arrow schema (e.g. ``messages.list.element.role``)."""
    buf = io.BytesIO()
    pq.ParquetWriter(buf, schema).close()
    pschema = pq.ParquetFile(io.BytesIO(buf.getvalue())).schema
    return [pschema.column(i).path for i in range(len(pschema))]


def _is_image_bytes(leaf: str) -> bool:
    """Whether a Parquet leaf path holds image bytes (``image.bytes``, ``images.list.element.bytes``)."""
    parts = leaf.split(".")
    return parts[0] in IMAGE_COLUMNS and parts[-1] == "bytes"


class _ParquetShardWriter(ShardWriter):
    """Buffers ``row_group_size`` rows, writes them as one row group; commits the file in :meth:`close`."""

    def __init__(self, writer: HFParquetWriter, split: str, shard: int, num_shards: int) -> None:
        self.writer = writer
        self.final = writer.shard_path(split, shard, num_shards)
        self.tmp = atomic_path(self.final)
        self._rows: list[dict] = []
        self._schema: pa.Schema | None = None
        self._pq: pq.ParquetWriter | None = None

    def add(self, record: Record, row: dict) -> None:
        """Buffer one sample; write a row group when the buffer is full."""
        self._rows.append(self.writer.arrow_row(record, row))
        if len(self._rows) >= self.writer.row_group_size:
            self._flush()

    def _flush(self) -> None:
        if not self._rows:
            return
        if self._pq is None:
            self._schema = self.writer.schema_for(self._rows)
            leaves = _leaf_paths(self._schema)
            plain = [c for c in leaves if not _is_image_bytes(c)]
            self.final.parent.mkdir(parents=True, exist_ok=True)
            with naming(self.final):
                self._pq = pq.ParquetWriter(
                    self.tmp, self._schema,
                    compression={c: ("NONE" if _is_image_bytes(c) else "ZSTD") for c in leaves},
                    use_dictionary=plain, write_statistics=plain)
        try:
            table = rows_to_table(self._rows, self._schema)
        except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
            raise ValueError(f"hf_parquet: rows of {self.final.name} do not match the columns inferred from its "
                             f"first rows ({exc}); every row must have the same field types") from exc
        with naming(self.final):
            self._pq.write_table(table, row_group_size=len(self._rows))
        self._rows = []

    def close(self) -> list[Path]:
        """Publish the shard's Parquet file; a shard without rows writes (and keeps) no file."""
        self._flush()
        if self._pq is None:
            self.final.unlink(missing_ok=True)
            return []
        pq_writer, self._pq = self._pq, None
        return close_and_publish(pq_writer, self.tmp, self.final)

    def abort(self) -> None:
        """Drop the temporary file (also when closing it fails, e.g. on a full disk)."""
        pq_writer, self._pq = self._pq, None
        close_and_discard(pq_writer, self.tmp)


CARD_SUMMARY = "Image classification data as a Hugging Face dataset"


class HFParquetWriter(Writer):
    """Parquet shards + README that ``datasets.load_dataset(out_dir)`` loads.

    Options: ``class_names`` (list: ``label`` becomes a ``ClassLabel``; rows without ``label`` get
    ``record.label``), ``config_name`` (default ``"default"``), ``row_group_size`` (default 256),
    ``card_summary`` (the README's one-line description, default :data:`CARD_SUMMARY`), ``image_column``
    (``"image"``, the default: one ``Image()`` per row; ``"images"``: a ``List(Image())`` holding the row's
    image, as TRL's vision data reads it). The image is ``{bytes, path: "<key>.<ext>"}`` (stored once); a row's
    own ``image``/``images`` field (a path in LLaVA rows) is replaced by it. An empty split writes no Parquet file and is left out of the configs.
    """

    name = "hf_parquet"
    option_names = ("class_names", "config_name", "row_group_size", "card_summary", "image_column")
    #: imported by shard writers (pyarrow imports pandas on its first array conversion, ~0.2 s)
    worker_modules = ("pyarrow.parquet", "pandas")

    def __init__(self, out_dir: Path, options: dict | None = None) -> None:
        super().__init__(out_dir, options)
        names = self.options.get("class_names")
        if names is not None and (not isinstance(names, (list, tuple)) or not all(isinstance(n, str) for n in names)
                                  or len(set(names)) != len(names)):
            raise UserError("hf_parquet: option 'class_names' must be a list of distinct strings")
        self.class_names: list[str] | None = list(names) if names is not None else None
        self.config_name = self.options.get("config_name", "default")
        if not isinstance(self.config_name, str) or not self.config_name:
            raise UserError(f"hf_parquet: option 'config_name' must be a non-empty string, got {self.config_name!r}")
        size = self.options.get("row_group_size", 256)
        if not isinstance(size, int) or isinstance(size, bool) or size < 1:
            raise UserError(f"hf_parquet: option 'row_group_size' must be a positive integer, got {size!r}")
        self.row_group_size = size
        self.card_summary = str(self.options.get("card_summary", CARD_SUMMARY))
        self.image_column = self.options.get("image_column", IMAGE_COLUMN)
        if self.image_column not in IMAGE_COLUMNS:
            raise UserError(f"hf_parquet: option 'image_column' must be one of {', '.join(IMAGE_COLUMNS)}, "
                            f"got {self.image_column!r}")
        self._schemas: list[tuple[pa.Schema, pa.Schema]] = []  # (inferred columns, full schema), see prepare

    @property
    def data_dir(self) -> Path:
        """Folder of the Parquet files."""
        return self.out_dir / "data"

    def shard_path(self, split: str, shard: int, num_shards: int) -> Path:
        """The Parquet file of one shard."""
        return self.data_dir / f"{split}-{shard:05d}-of-{num_shards:05d}.parquet"

    def arrow_row(self, record: Record, row: dict) -> dict:
        """The row as written: the image column first (an ``image`` struct or an ``images`` list of it), then
        the row's fields (its own ``image``/``images`` dropped)."""
        image = {"bytes": record.image_bytes, "path": f"{record.key}.{record.image_ext}"}
        out: dict = {self.image_column: image if self.image_column == IMAGE_COLUMN else [image]}
        out.update((k, v) for k, v in row.items() if k not in IMAGE_COLUMNS)
        if self.class_names is not None:
            out.setdefault("label", record.label)
            if not isinstance(out["label"], int) or not 0 <= out["label"] < len(self.class_names):
                raise ValueError(f"hf_parquet: label {out['label']!r} of {record.key!r} is not an index into "
                                 f"the {len(self.class_names)} class names")
        return out

    def schema_for(self, rows: list[dict]) -> pa.Schema:
        """The Arrow schema (with the ``huggingface`` features metadata) of a shard, from its first rows.

        Looked up by the rows' inferred column types among the schemas already worked out (in this process
        or, via :meth:`prepare`, in the parent); only a new combination of types needs ``datasets``."""
        inferred = infer_columns(rows)
        for known, schema in self._schemas:
            if known.equals(inferred):
                return schema
        schema = _features(inferred, self.class_names, self.image_column).arrow_schema
        self._schemas.append((inferred, schema))
        return schema

    def prepare(self, record: Record, row: dict) -> None:
        """Work out the schema of rows like ``row`` now (call it in the parent before the shards are written,
        so that workers need not import ``datasets``); ``record`` may hold empty image bytes."""
        self.schema_for([self.arrow_row(record, row)])

    def shard_writer(self, split: str, shard: int, num_shards: int) -> ShardWriter:
        """A writer for one Parquet shard."""
        if not _SPLIT_NAME.fullmatch(split):
            raise UserError(f"hf_parquet: split name {split!r} is not a valid Hugging Face split name")
        return _ParquetShardWriter(self, split, shard, num_shards)

    def split_files(self, split: str, num_shards: int) -> list[Path]:
        """This build's Parquet files of a split, in shard order; stale files of other builds are removed."""
        pattern = re.compile(rf"(\.)?{re.escape(split)}-(\d{{5}})-of-(\d{{5}})\.parquet(\.tmp\d+)?")
        keep = []
        if not self.data_dir.is_dir():
            return keep
        for path in sorted(self.data_dir.iterdir()):
            m = pattern.fullmatch(path.name)
            if not m:
                continue
            if m.group(1) or m.group(4) or int(m.group(3)) != num_shards or int(m.group(2)) >= num_shards:
                path.unlink(missing_ok=True)  # temp left by a crash, or a shard of an earlier build
            else:
                keep.append(path)
        return keep

    def finalize(self, shards: dict[str, int], counts: dict[str, int]) -> list[Path]:
        """Check the shards (same schema, row counts) and write ``README.md``; return it."""
        from datasets import Features  # heavy: see the module docstring

        splits: dict[str, tuple[int, int]] = {}
        schema: pa.Schema | None = None
        first: Path | None = None
        for split in sorted(set(shards) | set(counts)):
            files = self.split_files(split, shards.get(split, 0))
            n = size = 0
            for path in files:
                file_schema = pq.read_schema(path)
                if schema is None:
                    schema, first = file_schema, path
                elif not file_schema.equals(schema, check_metadata=True):
                    raise ValueError(f"hf_parquet: {path.name} has columns {file_schema.names} / types that differ "
                                     f"from {first.name}; all rows of all splits must share one schema")
                meta = pq.read_metadata(path)
                n += meta.num_rows
                size += sum(meta.row_group(i).total_byte_size for i in range(meta.num_row_groups))
            if split in counts and n != counts[split]:
                raise RuntimeError(f"hf_parquet: split {split!r} has {n} rows in {len(files)} Parquet file(s), "
                                   f"expected {counts[split]}")
            if n:
                splits[split] = (n, size)
        features = Features.from_arrow_schema(schema) if schema is not None else None
        readme = self.out_dir / "README.md"
        write_text_atomic(readme, dataset_card(features, splits, self.config_name, self.card_summary))
        return [readme]

    def verify(self, counts: dict[str, int]) -> None:
        """Load the finished folder with ``datasets`` and check the split sizes (see :func:`verify`)."""
        verify(self.out_dir, counts, config_name=self.config_name, image_column=self.image_column)


def card_data(features, splits: dict[str, tuple[int, int]], config_name: str = "default",
              download_size: int | None = None, dataset_size: int | None = None):
    """A ``huggingface_hub.DatasetCardData`` with ``configs`` (``data/<split>-*`` files per split) and
    ``dataset_info`` (features, split sizes and the optional totals) of one config; empty without features
    or splits.

    ``splits`` maps each non-empty split to ``(num_examples, num_bytes)``; ``num_bytes`` is the uncompressed
    Parquet data size (``datasets`` only checks ``num_examples`` but requires both).
    """
    from datasets.info import DatasetInfo, DatasetInfosDict  # heavy: only finalize needs these
    from datasets.splits import SplitDict, SplitInfo  # heavy: only finalize needs it
    from datasets.utils.metadata import MetadataConfigs  # heavy: only finalize needs it
    from huggingface_hub import DatasetCardData  # heavy: only finalize needs it

    card = DatasetCardData()
    if features is not None and splits:
        data_files = [{"split": s, "path": f"data/{s}-*"} for s in splits]
        MetadataConfigs({config_name: {"data_files": data_files}}).to_dataset_card_data(card)
        split_dict = SplitDict()
        for s, (n, size) in splits.items():
            split_dict.add(SplitInfo(name=s, num_examples=n, num_bytes=size))
        info = DatasetInfo(features=features, splits=split_dict, download_size=download_size,
                           dataset_size=dataset_size)
        DatasetInfosDict({config_name: info}).to_dataset_card_data(card)
    return card


def dataset_card(features, splits: dict[str, tuple[int, int]], config_name: str = "default",
                 summary: str = CARD_SUMMARY) -> str:
    """README text: YAML front matter (:func:`card_data`: ``configs`` with ``data/<split>-*`` files,
    ``dataset_info``) + one line (``summary`` and the split sizes); ``splits`` as for :func:`card_data`."""
    yaml = card_data(features, splits, config_name).to_yaml().strip()
    head = f"---\n{yaml}\n---\n" if yaml and yaml != "{}" else ""
    sizes = ", ".join(f"{s}: {n}" for s, (n, _) in splits.items()) or "no rows"
    return f"{head}\n{summary} ({sizes}).\n"


def verify(out_dir: str | Path, counts: dict[str, int], config_name: str | None = None,
           cache_dir: str | Path | None = None, image_column: str = IMAGE_COLUMN) -> None:
    """Load ``out_dir`` with ``datasets.load_dataset`` and check every split's size against ``counts``.

    Splits with a count of 0 must be absent. Also decodes the first image of each split (``image_column``:
    ``"image"``, or ``"images"`` whose first row must hold one image). The Arrow cache
    goes to ``cache_dir`` (default: a temporary folder removed afterwards, so the user's cache is not
    filled). Raises ``RuntimeError`` with the differences on a mismatch.
    """
    from datasets import load_dataset  # heavy: only the check of a finished folder needs it

    with tempfile.TemporaryDirectory(prefix="hf_verify_") as tmp:
        try:
            ds = load_dataset(str(out_dir), name=config_name, cache_dir=str(cache_dir or tmp))
        except Exception as exc:
            raise RuntimeError(f"hf_parquet: {out_dir} does not load with datasets: {exc}") from exc
        got = {split: ds[split].num_rows for split in ds}
        want = {split: n for split, n in counts.items() if n}
        if got != want:
            raise RuntimeError(f"hf_parquet: {out_dir} loads with split sizes {got}, expected {want}")
        for split in ds:
            image = ds[split][0][image_column]
            if image_column == IMAGES_COLUMN:
                image = image[0] if isinstance(image, list) and len(image) == 1 else None
            if not hasattr(image, "size"):
                raise RuntimeError(f"hf_parquet: the image column of split {split!r} does not decode to an image")
