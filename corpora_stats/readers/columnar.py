"""Readers of columnar data: parquet files (the text column, row group by row group) and local Hugging
Face datasets (opened by :func:`vlm_classdata.local_datasets.open_local_dataset`)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from corpora_stats.readers.base import BLOCK_DOCS, NOT_UTF8, TEXT_FIELDS, ArrowBlock, Span, TextBlock
from vlm_classdata.errors import UserError, one_line
from vlm_classdata.local_datasets import open_local_dataset


def _flat_text(kind: Any) -> bool:
    """Whether an Arrow type is a plain string or binary column (the engine reads those from their buffers)."""
    import pyarrow as pa  # heavy (+ numpy): only parquet corpora need it, and they have imported it already

    return pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_binary(kind) \
        or pa.types.is_large_binary(kind)


class ColumnarReaders:
    """The parquet and Hugging Face readers of :class:`~corpora_stats.readers.corpus.Corpus`."""

    def _pick_column(self, names: list[str]) -> str | None:
        if self.text_field is not None:
            return self.text_field if self.text_field in names else None
        for name in (*TEXT_FIELDS, "conversations"):
            if name in names:
                return name
        return None

    def _no_column_error(self, path: str, names: list[str]) -> UserError:
        wanted = repr(self.text_field) if self.text_field else f"any of {', '.join(TEXT_FIELDS)}"
        return UserError(f"{path}: no text column {wanted}; columns: {', '.join(names) or '(none)'}"
                         + ("" if self.text_field else " (pass text_field)"))

    @staticmethod
    def _parquet_names(path: str) -> list[str] | None:
        """The column names of a parquet file, or None when its footer does not read."""
        import pyarrow.parquet as pq  # heavy (+ numpy, ~0.15 CPU-s): only parquet corpora need it, not txt

        try:
            return pq.read_schema(path).names
        except Exception:  # ArrowInvalid, OSError: a damaged file, reported when it is read
            return None

    def _parquet_column(self, path: str, strict: bool) -> str | None:
        import pyarrow.parquet as pq  # heavy (+ numpy, ~0.15 CPU-s): only parquet corpora need it, not txt

        try:
            names = pq.read_schema(path).names
        except Exception as exc:
            if strict:
                raise UserError(f"{path}: not a readable parquet file ({' '.join(str(exc).split())[:200]})") from None
            return None
        column = self._pick_column(names)
        if column is None and strict:
            raise self._no_column_error(path, names)
        return column

    def _arrow_values(self, arr: Any) -> list[Any]:
        """Python values of one Arrow text column chunk, one per row; a value that is not UTF-8 is ``NOT_UTF8``."""
        import pyarrow as pa  # heavy (+ numpy, ~0.15 CPU-s): only parquet / HF corpora need it, not txt

        if pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type):
            try:
                return arr.to_pylist()
            except UnicodeDecodeError:
                arr = arr.cast(pa.large_binary())
        if not (pa.types.is_binary(arr.type) or pa.types.is_large_binary(arr.type)):
            return arr.to_pylist()
        out: list[Any] = []
        for raw in arr.to_pylist():
            try:
                out.append(raw if raw is None else raw.decode("utf-8"))
            except UnicodeDecodeError:
                out.append(NOT_UTF8)
        return out

    def _column_texts(self, column: str, values: list[Any], keys: range | None = None) -> TextBlock:
        if column == "conversations" or (values and isinstance(next((v for v in values if v is not None), None),
                                                                    list)):
            values = [self._conversation_text(v) for v in values]
        return self._keep(values, keys)

    def parquet_spans(self, path: str, split_bytes: int) -> list[Span] | None:
        """Row-group spans of about ``split_bytes`` (uncompressed) each, or None to read the file whole."""
        import pyarrow.parquet as pq  # heavy (+ numpy, ~0.15 CPU-s): only parquet corpora need it, not txt

        try:
            meta = pq.ParquetFile(path).metadata
        except Exception:  # a damaged file: read whole, and reported as damaged then
            return None
        spans, first, size = [], 0, 0
        for group in range(meta.num_row_groups):
            size += meta.row_group(group).total_byte_size
            if size >= split_bytes:
                spans.append(Span(first, group + 1))
                first, size = group + 1, 0
        if first < meta.num_row_groups:
            spans.append(Span(first, meta.num_row_groups))
        return spans if len(spans) > 1 else None

    def arrow_texts(self, block: ArrowBlock) -> TextBlock:
        """An :class:`ArrowBlock` as checked texts with their keys (values counted and skipped as any others)."""
        keys = range(block.first_key, block.first_key + len(block.array))
        return self._column_texts(block.column, self._arrow_values(block.array), keys)

    def _read_parquet(self, path: str, span: Span | None = None) -> Iterator[TextBlock | ArrowBlock]:
        import pyarrow.parquet as pq  # heavy (+ numpy, ~0.15 CPU-s): only parquet corpora need it, not txt

        try:
            pf = pq.ParquetFile(path)
            column = self._pick_column(pf.schema_arrow.names)
        except Exception as exc:  # no readable footer: nothing of the file can be read
            self._damaged(path, f"not a readable parquet file ({one_line(exc)})")
            return
        if column is None:
            self.stats.skipped["no_text"] += pf.metadata.num_rows
            return
        bad: list[str] = []
        groups = range(span.start, span.stop) if span else range(pf.num_row_groups)
        first = sum(pf.metadata.row_group(g).num_rows for g in range(groups.start))  # rows are keyed by index
        for group in groups:  # a damaged row group is skipped; the others are read
            rows = 0
            try:
                for batch in pf.iter_batches(batch_size=min(self.batch_size, BLOCK_DOCS), row_groups=[group],
                                             columns=[column]):
                    values = batch.column(0)
                    if column != "conversations" and _flat_text(values.type):
                        yield ArrowBlock(values, first + rows, column)  # the engine reads its buffers
                    else:
                        keys = range(first + rows, first + rows + batch.num_rows)
                        yield self._column_texts(column, self._arrow_values(values), keys)
                    rows += batch.num_rows
            except Exception as exc:  # ArrowInvalid, OSError, ...: the rest of this row group is lost
                lost = pf.metadata.row_group(group).num_rows - rows
                bad.append(f"row group {group} ({lost:,} of its rows lost: {one_line(exc)})")
            first += pf.metadata.row_group(group).num_rows
        if bad:
            self._damaged(path, f"damaged parquet: {'; '.join(bad)}")

    @staticmethod
    def _hf_load(path: str) -> list[tuple[str, Any]]:
        """(split, dataset) pairs of a local Hugging Face dataset (streaming where ``datasets`` can)."""
        return list(open_local_dataset(path, streaming=True).items())

    @staticmethod
    def _hf_columns(ds: Any) -> list[str]:
        names = ds.column_names
        if names is None and getattr(ds, "features", None) is not None:
            names = list(ds.features)
        if names is None:  # a streaming dataset with unknown features: look at the first row
            first = next(iter(ds.take(1)), {})
            names = list(first)
        return list(names)

    def _hf_files(self, p: Path) -> list[str]:
        """Shards of a HF dataset: its arrow files when saved to disk (in split order), else the path itself."""
        if p.is_file() and p.suffix == ".parquet":
            self._column = self._parquet_column(str(p), strict=True)
            return [str(p)]
        splits = self._hf_load(str(p))
        if not splits:
            raise UserError(f"{p}: the dataset has no splits")
        names = self._hf_columns(splits[0][1])
        self._column = self._pick_column(names)
        if self._column is None:
            raise self._no_column_error(str(p), names)
        files: list[str] = []
        for _, ds in splits:
            cache = getattr(ds, "cache_files", None)
            if not cache or getattr(ds, "_indices", None) is not None:
                return [str(p)]
            files += [f["filename"] for f in cache]
        return files if len(files) > 1 and p.is_dir() else [str(p)]

    def _read_hf(self, path: str, span: Span | None = None) -> Iterator[TextBlock]:
        skipped = self.stats.skipped
        if path.endswith(".parquet") and Path(path).is_file():
            yield from self._read_parquet(path, span)
            return
        try:
            splits = self._hf_load(path)
            for _, ds in splits:
                column = self._pick_column(self._hf_columns(ds))
                if column is None:
                    skipped["no_text"] += int(getattr(ds, "num_rows", 0) or 0)
                    continue
                view = ds.select_columns([column])
                for batch in view.iter(batch_size=min(self.batch_size, BLOCK_DOCS)):
                    yield self._column_texts(column, list(batch[column]))
        except Exception as exc:  # a damaged shard: the rest of it is dropped
            self._damaged(path, f"unreadable dataset file ({one_line(exc)})")
