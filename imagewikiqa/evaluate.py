"""Score a model's replies to an ImageWikiQA-style multiple-choice benchmark.

Benchmark rows are read with :func:`vlm_classdata.verification.items.load_items` (the released ImageWikiQA rows
``image, text, label, wiki, classname`` and our LLaVA-eval rows with ``question_id, options,
answer_index, ...`` alike); every reply is read with :func:`vlm_classdata.answers.parse_choice`, the project's one
multiple-choice parser. An item is correct when the parsed option index equals its ``answer_index``.

Predictions (:func:`load_predictions`), by file:

* JSONL, one row per answered item: its reply is the first of :data:`REPLY_FIELDS` present (LLaVA
  ``model_vqa`` answers keep the reply in ``text``); a row may also be a bare JSON string (matched by position).
* lmms-eval ``--log_samples`` JSONL (``<date>_samples_<task>.jsonl``, rows with ``doc_id`` and
  ``filtered_resps``/``resps``; lmms-eval's ``evaluator.py`` builds them and ``loggers/evaluation_tracker.py:
  save_results_samples`` writes them, 0.7 dropping ``doc``): the reply is ``filtered_resps`` (first string when
  a list), the item is the ``doc``'s id when the row keeps ``doc``, else the benchmark row at position
  ``doc_id`` (the task's documents in file order).
* VLMEvalKit result tables (``<model>_<dataset>.xlsx``, or ``.tsv``/``.csv`` with ``PRED_FORMAT=tsv``, ``.json``
  with ``PRED_FORMAT=json``): every TSV column plus ``prediction``; ``.xlsx`` needs ``openpyxl``.
* a ``builders.verify`` sidecar parquet (``sample_id``, ``reply``, ``status``).

A prediction row names its item (:class:`BenchmarkKeys`) by ``question_id`` or ``id`` equal to a benchmark id,
else by ``index`` equal to a benchmark row's ``index`` (builders MCQ rows carry the VLMEvalKit ``index``; for
ImageWikiQA rows without one it is derived as :func:`imagewikiqa.exports.vlmevalkit_rows` numbers them), else by
:func:`vlm_classdata.verification.items.row_id` (``question_id``, ``id``, ``index``, else ``row000000``, ...).

Definitions used in the report (:func:`evaluate`):

* ``accuracy`` (strict): correct / scored items; an item without a prediction (``missing``) or without a
  parsed answer (refusal, ambiguous, unknown, error) scores 0.
* ``accuracy_predicted``: correct / items with a prediction (missing items excluded).
* ``accuracy_answered``: correct / items whose reply parsed to an option.
* ``no_answer``: predicted items whose reply gave no option, by ``how`` (``refusal``, ``ambiguous``,
  ``unknown``, ``error`` = sidecar error row or a row without a reply), rate over predicted items.
* distinct question: the row's ``question_key`` when it has one, else the question stem (the text before
  the lettered options, :func:`builders.formats.mcq.parse_options`) plus the class name. The released file's
  2000 rows hold 771 distinct questions (some asked of two images). ``macro_accuracy`` is the mean over
  distinct questions of their rows' strict accuracy.
* circular evaluation, when any row has a ``permutation`` or ``circular_group`` field: a circular group is the
  row's ``circular_group`` when given, else its distinct-question key plus its image, i.e. the same question
  about the same image with its options in different orders. A group counts correct only when every row
  of it is answered correctly (a missing row makes it wrong).
* ``accuracy_ci95``: percentile bootstrap over items of the strict accuracy (:data:`BOOTSTRAP_RESAMPLES`
  resamples, numpy generator seeded with :data:`BOOTSTRAP_SEED`).
"""

from __future__ import annotations

import csv
import importlib.util
import json
import math
import string
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from imagewikiqa.exports import pair_tsv_indices
from vlm_classdata.answers import parse_choice, parse_options
from vlm_classdata.atomic import write_bytes_atomic
from vlm_classdata.errors import UserError
from vlm_classdata.verification.items import Item, load_items, row_id

__all__ = [
    "BOOTSTRAP_RESAMPLES", "BOOTSTRAP_SEED", "NO_ANSWER_HOWS", "REPLY_FIELDS", "TABLE_SUFFIXES", "BenchmarkItem",
    "BenchmarkKeys", "ItemResult", "Predictions", "bootstrap_ci", "evaluate", "evaluate_files", "load_benchmark",
    "load_predictions", "score_items", "summary_text", "write_per_class_csv", "write_report",
]

REPLY_FIELDS = ("prediction", "answer", "response", "output", "text")
"""Fields of a prediction row holding the model's reply, first present wins."""
NO_ANSWER_HOWS = ("refusal", "ambiguous", "unknown", "error")
"""Ways a predicted item ends without a parsed option (``error``: sidecar error row or no reply)."""
TABLE_SUFFIXES = (".xlsx", ".csv", ".tsv")
"""Prediction files read as tables (VLMEvalKit results: ``index``, ``prediction``, ...)."""
LMMS_REPLY_FIELDS = ("filtered_resps", "resps")
BOOTSTRAP_RESAMPLES = 1000
BOOTSTRAP_SEED = 0
NO_CLASS = "(none)"


# ----- inputs ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class BenchmarkItem:
    """A benchmark item plus the grouping fields :class:`Item` does not keep."""

    item: Item
    question_group: str  # the distinct question (question_key, else class name + stem)
    circular_group: str | None  # set only when the benchmark has permutations
    class_name: str
    permutation: int | None = None
    row: dict = field(default_factory=dict, compare=False, hash=False)  # the benchmark row as read
    position: int = -1  # the row's position among the questions file's rows (lmms-eval's doc_id)


def _index_key(value: Any) -> str | None:
    """An ``index`` value as a canonical string (``5``, ``"5"``, ``5.0`` → ``"5"``), None when it is none."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, float):
        return str(int(value)) if math.isfinite(value) and value.is_integer() else None
    text = str(value).strip()
    if text.endswith(".0") and text[:-2].lstrip("-").isdigit():
        text = text[:-2]
    return text or None


@dataclass(frozen=True)
class BenchmarkKeys:
    """How prediction rows name benchmark items: ids, ``index`` values and row positions → sample id."""

    ids: frozenset[str]
    by_index: dict[str, str]
    by_position: dict[int, str]

    @classmethod
    def of(cls, items: list[BenchmarkItem]) -> BenchmarkKeys:
        """The keys of a loaded benchmark (``index`` derived for ImageWikiQA rows that lack it)."""
        by_index = {k: b.item.sample_id for b in items if (k := _index_key(b.row.get("index"))) is not None}
        if not by_index:
            by_index = _derived_iwqa_index(items)
        return cls(frozenset(b.item.sample_id for b in items), by_index,
                   {b.position: b.item.sample_id for b in items})

    def resolve(self, row: dict) -> str | None:
        """The sample id a prediction (or lmms-eval ``doc``) row names, None when it names none of ours."""
        for key in ("question_id", "id"):
            value = row.get(key)
            if value is not None and str(value) in self.ids:
                return str(value)
        index = _index_key(row.get("index"))
        if index is not None:
            return self.by_index.get(index, index if index in self.ids else None)
        return None


def _derived_iwqa_index(items: list[BenchmarkItem]) -> dict[str, str]:
    """ImageWikiQA LLaVA rows (``question_key`` + ``image``): the VLMEvalKit ``index`` their export gave them,
    the (question, image) pair's order plus the permutation offset (:func:`imagewikiqa.exports.pair_tsv_indices`)."""
    if not items or any(not b.row.get("question_key") or not b.row.get("image") for b in items):
        return {}
    ordered = sorted(items, key=lambda b: b.position)
    indices = pair_tsv_indices([((str(b.row["question_key"]), str(b.row["image"])), b.permutation or 0)
                                for b in ordered])
    return {str(i): b.item.sample_id for i, b in zip(indices, ordered, strict=True)}


@dataclass
class Predictions:
    """Replies by sample id (None: a prediction without a usable reply), plus what was odd in the file."""

    replies: dict[str, str | None]
    n_rows: int = 0
    duplicates: int = 0
    errors: int = 0  # sidecar rows whose status is not ok, and rows without a reply
    kind: str = "jsonl"  # jsonl, lmms-eval, vlmevalkit, json, sidecar


def jsonl_rows(path: Path, what: str) -> Iterator[tuple[int, Any]]:
    """``(line number, parsed value)`` of every non-blank line; malformed JSON is one UserError line."""
    if not path.is_file():
        raise UserError(f"{what} {str(path)!r} not found")
    with open(path, encoding="utf-8", errors="replace") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                yield n, json.loads(line)
            except ValueError:
                raise UserError(f"{what} {path}:{n}: not valid JSON") from None


def load_predictions(path: str | Path, items: list[BenchmarkItem] | None = None) -> Predictions:
    """Read predictions (module docstring: JSONL, lmms-eval samples, VLMEvalKit tables, sidecar parquet).

    With the benchmark's ``items``, rows are matched by :class:`BenchmarkKeys`; without, by
    :func:`row_id` (lmms-eval rows by ``row{doc_id:06d}``). A repeated id keeps its first row and is counted
    in ``duplicates``."""
    p = Path(path)
    if not p.is_file():
        raise UserError(f"predictions {str(path)!r} not found")
    keys = BenchmarkKeys.of(items) if items is not None else None
    suffix = p.suffix.lower()
    if suffix == ".parquet":
        kind, pairs = "sidecar", _sidecar_pairs(p)
    elif suffix in TABLE_SUFFIXES or suffix == ".xls":
        kind, pairs = "vlmevalkit", _table_pairs(p, keys)
    elif suffix == ".json":
        kind, pairs = "json", _row_pairs(_json_array(p), p, keys)
    else:
        rows = list(jsonl_rows(p, "predictions"))
        first = next((r for _, r in rows if isinstance(r, dict)), None)
        if first is not None and "doc_id" in first and any(k in first for k in LMMS_REPLY_FIELDS):
            kind, pairs = "lmms-eval", _lmms_pairs(rows, p, keys)
        else:
            kind, pairs = "jsonl", list(_jsonl_pairs(rows, p, keys))
    out = Predictions(replies={}, kind=kind)
    for sid, reply in pairs:
        out.n_rows += 1
        if sid in out.replies:
            out.duplicates += 1
            continue
        if reply is None:
            out.errors += 1
        out.replies[sid] = reply
    return out


def _key(row: dict, position: int, keys: BenchmarkKeys | None) -> str:
    found = keys.resolve(row) if keys is not None else None
    return found if found is not None else row_id(row, position)


def _jsonl_pairs(rows: list[tuple[int, Any]], path: Path,
                 keys: BenchmarkKeys | None) -> Iterator[tuple[str, str | None]]:
    for position, (n, row) in enumerate(rows):
        if isinstance(row, str):
            yield f"row{position:06d}", row
            continue
        if not isinstance(row, dict):
            raise UserError(f"predictions {path}:{n}: expected a JSON object per line")
        reply = next((row[k] for k in REPLY_FIELDS if k in row), None)
        yield _key(row, position, keys), reply if isinstance(reply, str) else None


def _row_pairs(rows: list[dict], path: Path, keys: BenchmarkKeys | None) -> list[tuple[str, str | None]]:
    """Pairs of a VLMEvalKit table or JSON array: the reply in ``prediction`` (else :data:`REPLY_FIELDS`)."""
    if rows and not any(k in rows[0] for k in REPLY_FIELDS):
        raise UserError(f"predictions {path} has no 'prediction' column (a VLMEvalKit result file has the "
                        f"TSV's columns plus 'prediction')")
    out = []
    for position, row in enumerate(rows):
        reply = next((row[k] for k in REPLY_FIELDS if k in row), None)
        out.append((_key(row, position, keys), reply if isinstance(reply, str) else None))
    return out


def _json_array(path: Path) -> list[dict]:
    try:
        data = json.loads(path.read_text(encoding="utf-8", errors="replace"))
    except ValueError:
        raise UserError(f"predictions {path}: not valid JSON (expected a list of rows, e.g. VLMEvalKit's "
                        f"PRED_FORMAT=json result; JSON Lines files end in .jsonl)") from None
    if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
        raise UserError(f"predictions {path}: expected a JSON list of objects")
    return data


def _table_pairs(path: Path, keys: BenchmarkKeys | None) -> list[tuple[str, str | None]]:
    """A VLMEvalKit result table, every cell read as text (a reply ``None`` or ``NA`` stays a reply):
    ``.tsv``/``.csv`` as VLMEvalKit's ``dump`` writes them (every cell quoted), ``.xlsx`` through openpyxl."""
    suffix = path.suffix.lower()
    if suffix == ".xls":
        raise UserError(f"predictions {path}: .xls is not read; save it as .xlsx, .tsv or .csv")
    if suffix == ".xlsx" and importlib.util.find_spec("openpyxl") is None:  # polars reads .xlsx through it
        raise UserError(f"predictions {path}: reading .xlsx needs openpyxl (pip install openpyxl), or rerun "
                        f"VLMEvalKit with PRED_FORMAT=tsv to get a .tsv result")
    try:
        if suffix == ".xlsx":
            import polars as pl  # heavy: only .xlsx predictions need it (through openpyxl)

            frame = pl.read_excel(path, engine="openpyxl", infer_schema_length=0)
            columns, rows = frame.columns, frame.to_dicts()
        else:
            with open(path, encoding="utf-8", errors="replace", newline="") as f:
                reader = csv.DictReader(f, delimiter="\t" if suffix == ".tsv" else ",")
                rows = list(reader)
                columns = list(reader.fieldnames or [])
    except Exception as exc:  # any unreadable file is the user's
        raise UserError(f"predictions {path}: not a readable {suffix[1:]} table ({type(exc).__name__})") from None
    if "prediction" not in columns:
        raise UserError(f"predictions {path} has no 'prediction' column (a VLMEvalKit result file has the "
                        f"TSV's columns plus 'prediction')")
    if not any(c in columns for c in ("index", "question_id", "id")):
        raise UserError(f"predictions {path} has no 'index' column to match rows by")
    return _row_pairs(rows, path, keys)


def _lmms_reply(row: dict) -> str | None:
    for field_name in LMMS_REPLY_FIELDS:
        value = row.get(field_name)
        while isinstance(value, list) and value:  # [[reply]] per request and repeat; first one counts
            value = value[0]
        if isinstance(value, str):
            return value
    return None


def _lmms_pairs(rows: list[tuple[int, Any]], path: Path,
                keys: BenchmarkKeys | None) -> list[tuple[str, str | None]]:
    out = []
    for n, row in rows:
        if not isinstance(row, dict):
            raise UserError(f"predictions {path}:{n}: expected a JSON object per line")
        doc_id = row.get("doc_id")
        if isinstance(doc_id, bool) or not isinstance(doc_id, int) or doc_id < 0:
            raise UserError(f"predictions {path}:{n}: doc_id {doc_id!r} is not a row number (lmms-eval samples)")
        doc = row.get("doc")
        sid = keys.resolve(doc) if keys is not None and isinstance(doc, dict) else None
        if sid is None and isinstance(doc, dict) and keys is None:
            sid = next((str(doc[k]) for k in ("question_id", "id", "index") if doc.get(k) is not None), None)
        if sid is None:
            sid = keys.by_position.get(doc_id, f"doc_id {doc_id}") if keys is not None else f"row{doc_id:06d}"
        out.append((sid, _lmms_reply(row)))
    return out


def _sidecar_pairs(path: Path) -> list[tuple[str, str | None]]:
    import polars as pl  # heavy: only a verify sidecar (.parquet) needs it

    try:
        frame = pl.read_parquet(path)
    except Exception as exc:  # any unreadable file is the user's
        raise UserError(f"predictions {path}: not a readable Parquet file ({type(exc).__name__})") from None
    for col in ("sample_id", "reply"):
        if col not in frame.columns:
            raise UserError(f"predictions {path} has no {col!r} column (expected a builders.verify sidecar)")
    status = (frame["status"].cast(pl.String).to_list() if "status" in frame.columns
              else ["ok"] * frame.height)
    out = []
    for sid, reply, st in zip(frame["sample_id"].cast(pl.String).to_list(),
                              frame["reply"].cast(pl.String).to_list(), status, strict=True):
        if sid is None:
            raise UserError(f"predictions {path} has rows without a sample_id")
        out.append((sid, reply if st == "ok" and isinstance(reply, str) else None))
    return out


def question_stem(question: str) -> str:
    """The question without its lettered option block (and trailing instruction), whitespace-trimmed."""
    return parse_options(question)[0].strip()


def load_benchmark(path: str | Path) -> tuple[list[BenchmarkItem], Counter]:
    """The benchmark's items with their grouping fields, and ``reason → count`` of rows load_items skipped.

    Malformed JSON is a :class:`UserError` (row positions, hence position ids, would shift)."""
    p = Path(path)
    raw: dict[str, dict] = {}
    positions: dict[str, int] = {}
    for position, (n, row) in enumerate(jsonl_rows(p, "questions")):
        if not isinstance(row, dict):
            raise UserError(f"questions {p}:{n}: expected a JSON object per line")
        raw.setdefault(row_id(row, position), row)
        positions.setdefault(row_id(row, position), position)
    loaded = load_items(p)
    circular = any("permutation" in r or "circular_group" in r for r in raw.values())
    out = []
    for item in loaded.items:
        row = raw[item.sample_id]
        cls = str(item.class_name or item.class_id or NO_CLASS)
        key = row.get("question_key")
        group = str(key) if key is not None and str(key) != "" else f"{cls} :: {question_stem(item.question)}"
        circ = None
        if circular:
            given = row.get("circular_group")
            circ = str(given) if given is not None else f"{group} @ {row.get('image')}"
        perm = row.get("permutation")
        out.append(BenchmarkItem(item, group, circ, cls, int(perm) if isinstance(perm, int) else None, row,
                                 positions[item.sample_id]))
    return out, loaded.skipped


# ----- scoring ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ItemResult:
    """One benchmark item's outcome. ``how``: parse_choice's ``how``, ``error`` or ``missing``."""

    bench: BenchmarkItem
    predicted: bool
    index: int | None
    letter: str | None
    how: str
    correct: bool


def score_items(items: list[BenchmarkItem], preds: Predictions) -> list[ItemResult]:
    """Parse every item's reply (items without options or answer are left out)."""
    out = []
    for b in items:
        it = b.item
        if not it.options or it.answer_index is None:
            continue
        if it.sample_id not in preds.replies:
            out.append(ItemResult(b, False, None, None, "missing", False))
            continue
        reply = preds.replies[it.sample_id]
        if reply is None:
            out.append(ItemResult(b, True, None, None, "error", False))
            continue
        parsed = parse_choice(reply, list(it.options))
        out.append(ItemResult(b, True, parsed.index, parsed.letter, parsed.how,
                              parsed.index is not None and parsed.index == it.answer_index))
    return out


def bootstrap_ci(correct: np.ndarray, resamples: int = BOOTSTRAP_RESAMPLES,
                 seed: int = BOOTSTRAP_SEED) -> list[float]:
    """Percentile 95% interval of the mean of a 0/1 vector over item resamples (seeded, deterministic)."""
    if correct.size == 0:
        return [0.0, 0.0]
    rng = np.random.default_rng(seed)
    means = correct[rng.integers(0, correct.size, size=(resamples, correct.size))].mean(axis=1)
    lo, hi = np.percentile(means, [2.5, 97.5])
    return [round(float(lo), 6), round(float(hi), 6)]


def _ratio(num: int, den: int) -> float:
    return round(num / den, 6) if den else 0.0


def _letter(i: int) -> str:
    return string.ascii_uppercase[i] if i < 26 else str(i)


def _stats(rs: list[ItemResult]) -> dict[str, Any]:
    n = len(rs)
    correct = sum(r.correct for r in rs)
    answered = sum(r.index is not None for r in rs)
    return {"n": n, "correct": correct, "answered": answered, "accuracy": _ratio(correct, n),
            "accuracy_answered": _ratio(correct, answered)}


def _circular(results: list[ItemResult]) -> dict[str, Any] | None:
    groups: dict[str, list[ItemResult]] = defaultdict(list)
    for r in results:
        if r.bench.circular_group is not None:
            groups[r.bench.circular_group].append(r)
    if not groups:
        return None
    n_correct = sum(all(r.correct for r in g) for g in groups.values())
    # consistent: every row answered and the same option text chosen whatever the order
    consistent = sum(all(r.index is not None for r in g)
                     and len({r.bench.item.options[r.index] for r in g}) == 1 for g in groups.values())
    sizes = Counter(len(g) for g in groups.values())
    first = [r for r in results if r.bench.permutation == 0]
    return {
        "n_groups": len(groups), "correct": n_correct, "accuracy": _ratio(n_correct, len(groups)),
        "consistent": consistent, "consistency": _ratio(consistent, len(groups)),
        "group_sizes": {str(k): sizes[k] for k in sorted(sizes)},
        "accuracy_permutation0": _ratio(sum(r.correct for r in first), len(first)) if first else None,
        "definition": "group = circular_group field, else distinct question + image; correct only if "
                      "every row (option order) of the group is answered correctly",
    }


def evaluate(items: list[BenchmarkItem], preds: Predictions, skipped: Counter | None = None) -> dict[str, Any]:
    """The report (see the module docstring for every definition). Raises :class:`UserError` when no
    prediction id is a benchmark id."""
    ids = {b.item.sample_id for b in items}
    matched = sum(sid in ids for sid in preds.replies)
    if not items:
        raise UserError("the questions file has no items")
    if matched == 0:
        bench_ex = items[0].item.sample_id
        pred_ex = next(iter(preds.replies), None)
        raise UserError(f"no prediction id matches a benchmark id (benchmark ids like {bench_ex!r}, "
                        f"prediction ids like {pred_ex!r})")
    results = score_items(items, preds)
    if not results:
        raise UserError("the questions file has no multiple-choice items (options and answer)")
    n = len(results)
    predicted = [r for r in results if r.predicted]
    n_correct = sum(r.correct for r in results)
    n_answered = sum(r.index is not None for r in results)
    hows = Counter(r.how for r in results)
    no_ans = {h: sum(1 for r in predicted if r.how == h) for h in NO_ANSWER_HOWS}

    by_class: dict[str, list[ItemResult]] = defaultdict(list)
    by_question: dict[str, list[ItemResult]] = defaultdict(list)
    for r in results:
        by_class[r.bench.class_name].append(r)
        by_question[r.bench.question_group].append(r)
    per_question = [{"key": k, "classname": by_question[k][0].bench.class_name, **_stats(by_question[k])}
                    for k in sorted(by_question)]
    q_acc = [q["accuracy"] for q in per_question]

    gold = Counter(_letter(r.bench.item.answer_index) for r in results)
    pred = Counter(r.letter for r in results if r.letter is not None)
    letters = sorted(set(gold) | set(pred))
    vec = np.array([r.correct for r in results], dtype=np.float64)
    return {
        "n_items": n,
        "n_predictions": preds.n_rows,
        "matched_predictions": matched,
        "unmatched_predictions": len(preds.replies) - matched,
        "duplicate_predictions": preds.duplicates,
        "unscorable_items": len(items) - n,
        "benchmark_skipped": dict(sorted((skipped or Counter()).items())),
        "predicted": len(predicted),
        "missing": n - len(predicted),
        "missing_rate": _ratio(n - len(predicted), n),
        "answered": n_answered,
        "correct": n_correct,
        "accuracy": _ratio(n_correct, n),
        "accuracy_ci95": bootstrap_ci(vec),
        "bootstrap": {"resamples": BOOTSTRAP_RESAMPLES, "seed": BOOTSTRAP_SEED, "unit": "item"},
        "accuracy_predicted": _ratio(n_correct, len(predicted)),
        "accuracy_answered": _ratio(n_correct, n_answered),
        "no_answer": {"count": sum(no_ans.values()), "rate": _ratio(sum(no_ans.values()), len(predicted)),
                      "by_how": no_ans},
        "parse_how": dict(sorted(hows.items())),
        "per_class": {c: _stats(by_class[c]) for c in sorted(by_class)},
        "distinct_questions": {
            "count": len(by_question),
            "macro_accuracy": round(float(np.mean(q_acc)), 6) if q_acc else 0.0,
            "all_rows_correct": sum(q["correct"] == q["n"] for q in per_question),
            "rows_per_question": dict(sorted(Counter(str(q["n"]) for q in per_question).items())),
            "definition": "question_key if present, else classname + question stem (text before the options)",
        },
        "per_question": per_question,
        "letters": {"gold": {x: gold.get(x, 0) for x in letters}, "predicted": {x: pred.get(x, 0) for x in letters},
                    "gold_rate": {x: _ratio(gold.get(x, 0), n) for x in letters},
                    "predicted_rate": {x: _ratio(pred.get(x, 0), n_answered) for x in letters}},
        "circular": _circular(results),
    }


def evaluate_files(predictions: str | Path, questions: str | Path) -> dict[str, Any]:
    """:func:`evaluate` on files: a benchmark JSONL and predictions (any kind :func:`load_predictions` reads)."""
    items, skipped = load_benchmark(questions)
    preds = load_predictions(predictions, items)
    report = evaluate(items, preds, skipped)
    report["files"] = {"questions": str(questions), "predictions": str(predictions)}
    report["predictions_kind"] = preds.kind
    return report


# ----- outputs ---------------------------------------------------------------------------------------------
def write_report(report: dict[str, Any], path: str | Path) -> None:
    """The report as JSON (sorted keys, indented, trailing newline), written atomically."""
    write_bytes_atomic(Path(path), (json.dumps(report, sort_keys=True, indent=2, ensure_ascii=False) + "\n")
                       .encode("utf-8"))


def write_per_class_csv(report: dict[str, Any], path: str | Path) -> None:
    """``classname,n,correct,answered,accuracy,accuracy_answered``, one row per class, sorted by name."""
    cols = ["n", "correct", "answered", "accuracy", "accuracy_answered"]
    with open(path, "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(["classname", *cols])
        for name, s in report["per_class"].items():
            w.writerow([name, *(s[c] for c in cols)])


def worst_classes(report: dict[str, Any], k: int = 5) -> list[tuple[str, dict]]:
    """The ``k`` classes with the lowest strict accuracy (more items first on ties, then by name)."""
    return sorted(report["per_class"].items(), key=lambda kv: (kv[1]["accuracy"], -kv[1]["n"], kv[0]))[:k]


def summary_text(report: dict[str, Any]) -> str:
    """A short human summary of a report."""
    r = report
    na = r["no_answer"]
    lines = [
        f"items {r['n_items']}: accuracy {r['accuracy']:.2%} (95% CI {r['accuracy_ci95'][0]:.2%}-"
        f"{r['accuracy_ci95'][1]:.2%}), {r['correct']} correct",
        f"answered {r['answered']}: accuracy over answered {r['accuracy_answered']:.2%}; "
        f"missing {r['missing']}, unmatched predictions {r['unmatched_predictions']}",
        f"no answer {na['count']} ({na['rate']:.2%} of predicted): "
        + ", ".join(f"{h} {c}" for h, c in na["by_how"].items()),
        f"distinct questions {r['distinct_questions']['count']}: macro accuracy "
        f"{r['distinct_questions']['macro_accuracy']:.2%}",
        "letters gold " + " ".join(f"{k}:{v}" for k, v in r["letters"]["gold"].items())
        + " | predicted " + " ".join(f"{k}:{v}" for k, v in r["letters"]["predicted"].items()),
    ]
    c = r.get("circular")
    if c:
        lines.append(f"circular: {c['correct']}/{c['n_groups']} groups all correct ({c['accuracy']:.2%}), "
                     f"consistency {c['consistency']:.2%}")
    lines.append("worst classes: " + "; ".join(f"{name} {s['accuracy']:.0%} ({s['correct']}/{s['n']})"
                                               for name, s in worst_classes(r)))
    return "\n".join(lines)
