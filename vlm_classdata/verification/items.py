"""Items to verify: the question rows of a build (``eval_open``/``mcq`` JSONL) or any LLaVA-eval-style JSONL.

A row becomes an :class:`Item` with a stable ``sample_id`` (see :func:`row_id`), the image path resolved
against the build's image root, the question text, the class and, for multiple choice, the options and the
correct index. Our rows name the target ``answer`` (letter or class name) and carry ``label`` as the int class
index into the build's ``classes.json``. The released ImageWikiQA rows (``image, text, label, wiki, classname``)
load the same way: there ``label`` is a one-letter string, the answer letter, and the options are read back from
the lettered block in ``text``. Malformed lines and repeated ids are
counted with a reason, never dropped silently.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from vlm_classdata.answers import parse_options
from vlm_classdata.errors import UserError, read_user_json
from vlm_classdata.vocabulary import ClassVocabulary

ID_FIELDS = ("question_id", "id", "index")


def row_id(row: dict, position: int) -> str:
    """The sample id of a row: ``question_id``, ``id`` or ``index`` (first present), else ``row{position:06d}``
    (0-based line number among the file's rows). The same rule serves items, sidecars and filtered copies."""
    for key in ID_FIELDS:
        value = row.get(key)
        if value is not None and str(value) != "":
            return str(value)
    return f"row{position:06d}"


@dataclass(frozen=True)
class Item:
    """One question to put to a model."""

    sample_id: str
    split: str
    image: str | None  # absolute path, or None when the row names no image
    question: str  # the full prompt text as built (MCQ text includes its option block)
    class_id: str | None = None
    class_name: str | None = None
    answer: str | None = None  # the row's target: class name (open) or letter (lettered MCQ)
    options: tuple[str, ...] = ()
    answer_index: int | None = None
    option_class_ids: tuple[str, ...] = ()  # class id of every option when the row names them (our mcq rows)

    @property
    def label(self) -> str | None:
        """The former name of :attr:`answer` (kept for callers written before the column vocabulary)."""
        return self.answer


@dataclass
class ItemSet:
    """Items in input order plus what could not be read (``skipped``: reason → count, ``examples``)."""

    items: list[Item] = field(default_factory=list)
    skipped: Counter = field(default_factory=Counter)
    examples: dict[str, str] = field(default_factory=dict)

    def skip(self, reason: str, detail: str) -> None:
        """Count one unusable row; keep the first detail per reason."""
        self.skipped[reason] += 1
        self.examples.setdefault(reason, detail)


def jsonl_objects(path: Path) -> Iterator[tuple[int, dict | None]]:
    """``(line number, row)`` per non-blank line of a JSONL file; ``row`` is None for a line that is not a JSON
    object. Row positions (see :func:`row_id`) count the objects only."""
    with open(path, encoding="utf-8", errors="replace") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except ValueError:
                yield n, None
                continue
            yield n, row if isinstance(row, dict) else None


def _resolve_image(value: object, image_root: Path | None, image_prefix: str) -> str | None:
    if not isinstance(value, str) or not value:
        return None
    rel = value
    if image_prefix and rel.startswith(image_prefix.rstrip("/") + "/"):
        rel = rel[len(image_prefix.rstrip("/")) + 1:]
    path = Path(rel)
    if not path.is_absolute() and image_root is not None:
        path = image_root / path
    return str(path)


def _item(row: dict, position: int, split: str, image_root: Path | None, image_prefix: str,
          vocab: ClassVocabulary | None) -> Item:
    text = row.get("text", row.get("question"))
    if not isinstance(text, str) or not text.strip():
        raise ValueError("no_question")
    options = row.get("options")
    answer_index = row.get("answer_index")
    label = row.get("label")
    answer = row.get("answer")
    if answer is None and isinstance(label, str):  # a released ImageWikiQA row: its label is the answer letter
        answer = label
    answer = None if answer is None else str(answer)
    if options is None:
        _, parsed = parse_options(text)
        options = parsed
        if parsed and answer is not None and len(answer) == 1 and answer.isalpha():
            answer_index = ord(answer.upper()) - ord("A")
            if answer_index >= len(parsed):
                raise ValueError("label_not_an_option")
    class_id = row.get("class_id")
    class_name = row.get("class_name", row.get("classname"))
    if vocab is not None:
        if class_id is None and type(label) is int:  # our rows: label is the class index into classes.json
            if not 0 <= label < len(vocab):
                raise ValueError("unknown_class")
            class_id = vocab.by_index(label).class_id
        if class_id is None and class_name:
            entry = vocab.by_name(str(class_name))
            class_id = entry.class_id if entry else None
        if class_id is not None and class_id not in vocab:
            raise ValueError("unknown_class")
        if class_id is not None and class_name is None:
            class_name = vocab[class_id].name
    return Item(
        sample_id=row_id(row, position), split=split,
        image=_resolve_image(row.get("image"), image_root, image_prefix), question=text,
        class_id=None if class_id is None else str(class_id), class_name=class_name, answer=answer,
        options=tuple(str(o) for o in options or ()),
        answer_index=None if answer_index is None else int(answer_index),
        option_class_ids=tuple(str(c) for c in row.get("option_class_ids") or ()),
    )


def load_items(path: str | Path, image_root: str | Path | None = None, image_prefix: str = "",
               split: str | None = None, vocab: ClassVocabulary | None = None,
               into: ItemSet | None = None) -> ItemSet:
    """Read a JSONL file of question rows into ``into`` (or a new :class:`ItemSet`).

    Image paths are joined to ``image_root`` (default: the file's folder) after removing ``image_prefix``.
    With ``vocab``, rows naming a class by name get its id and unknown classes are skipped."""
    p = Path(path)
    if not p.is_file():
        raise UserError(f"input {str(path)!r} not found")
    root = Path(image_root) if image_root is not None else p.parent
    out = into if into is not None else ItemSet()
    seen = {it.sample_id for it in out.items}
    split = split or p.stem
    position = 0
    for n, row in jsonl_objects(p):
        if row is None:
            out.skip("bad_json", f"{p.name}:{n}")
            continue
        try:
            item = _item(row, position, split, root, image_prefix, vocab)
        except ValueError as exc:
            out.skip(str(exc), f"{p.name}:{n}")
            continue
        finally:
            position += 1
        if item.sample_id in seen:
            out.skip("duplicate_id", f"{p.name}:{n} {item.sample_id}")
            continue
        seen.add(item.sample_id)
        out.items.append(item)
    return out


def build_vocabulary(build_dir: str | Path) -> ClassVocabulary:
    """The vocabulary a build used: its ``classes.json``, else the bundled list its manifest names."""
    build = Path(build_dir)
    classes = build / "classes.json"
    if classes.is_file():
        return ClassVocabulary.load(classes)
    manifest = read_user_json(build / "manifest.json", "build manifest")
    return ClassVocabulary.load(manifest.get("vocabulary", {}).get("dataset", ""))


def load_build(build_dir: str | Path, output: str, splits: list[str] | None = None,
               vocab: ClassVocabulary | None = None) -> ItemSet:
    """The items of one JSONL output (``eval_open``, ``mcq``) of a build folder, split by split."""
    build = Path(build_dir)
    manifest = read_user_json(build / "manifest.json", "build manifest")
    info = manifest.get("outputs", {}).get(output)
    if info is None:
        have = ", ".join(k for k, v in manifest.get("outputs", {}).items() if v.get("writer") == "jsonl")
        raise UserError(f"build {build} has no {output!r} output (question outputs here: {have or 'none'})")
    if info.get("writer") != "jsonl":
        raise UserError(f"output {output!r} is not question JSONL; use eval_open or mcq")
    root = info.get("image_root")
    image_root = None if root is None else (build / root if not Path(root).is_absolute() else Path(root))
    files = [build / f for f in info.get("files", []) if f.endswith(".jsonl")]
    wanted = set(splits) if splits else None
    if wanted:
        missing = wanted - {f.stem for f in files}
        if missing:
            raise UserError(f"output {output!r} has no split {sorted(missing)[0]!r}")
        files = [f for f in files if f.stem in wanted]
    out = ItemSet()
    for f in files:
        load_items(f, image_root, info.get("image_prefix", ""), f.stem, vocab, into=out)
    return out
