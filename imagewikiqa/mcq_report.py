"""The quality report of a builders MCQ output (:func:`mcq_quality_report`).

Builders MCQ outputs (``python -m builders.imagenet_qa --outputs mcq`` → ``mcq/<split>.jsonl``, or an
``mcq_hf`` folder; :func:`is_builders_mcq`) get their own report, :func:`mcq_quality_report`: every row is one
item (one image; the same class recurs with other distractors), so there are no distinct questions, and leak and
duplicate checks do not apply (the answer IS the class name, and two classes' items may offer the same options).
It reports items, classes, distractor modes, answer letters, the blind baselines of :mod:`imagewikiqa.quality`, the learned solvers
(their question stem is a class-independent template, so they effectively see the options only; on a seeded
sample of :data:`MAX_LEARNED_ITEMS` items when larger; without :mod:`vlm_classdata.blind`'s answer prior, which on
class-name options measures the class-held-out split, not the data: with it, a 4-way random build of 1000
classes scored 74% blind, without it chance), and the distractor relation histogram and the items with
a second correct option, recomputed by :func:`vlm_classdata.distractors.distractor_report` against the build's class list
(:func:`mcq_class_list`). Targets: letters balanced within one, best learned solver ≤ chance + 5 points, no
second correct option, every option found in the class list.
"""

from __future__ import annotations

import random
import statistics
from collections import Counter, defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from builders.formats.mcq import MAX_LETTERS, letters
from imagewikiqa.debias import blind_longest_accuracy, blind_shortest_accuracy
from imagewikiqa.evaluate import jsonl_rows, question_stem
from imagewikiqa.quality import learned_baselines, round6, sorted_counts, target_check
from imagewikiqa.records import Question
from vlm_classdata.answers import parse_options
from vlm_classdata.blind import DEFAULT_MARGIN, chance, mcq_items
from vlm_classdata.distractors import distractor_policy, distractor_report
from vlm_classdata.errors import UserError
from vlm_classdata.lexicon import normalize
from vlm_classdata.vocabulary import ClassVocabulary

MCQ_KIND = "builders_mcq"
"""``report["kind"]`` of a report on a builders MCQ output (reports on question sets have no ``kind``)."""
MCQ_MARKERS = ("option_class_ids", "distractor_mode")
"""Fields only builders MCQ rows carry (:meth:`builders.formats.mcq.MCQExample.distractor_fields`)."""
MCQ_HF_COLUMNS = ("id", "class_id", "option_class_ids")
"""The mcq_hf parquet columns the report needs besides ``options`` + ``answer_index`` (the flat columns) or, in
builds made before the column vocabulary, ``messages`` (``image`` is never read)."""
DEFAULT_SPLITS = ("validation", "val")
"""The split an ``mcq_hf`` report reads when none is named: the first of these present, else the only one."""
OPTIONS_ONLY = ("every stem is a template shared by several classes, so the learned solvers effectively "
                "see the options only")
NO_ANSWER_PRIOR = ("off, with the hashed n-grams (option identity): every option is a class name and the "
                   "answer of its own class's items only, so under class-held-out folds the correct option "
                   "would be the one never seen as an answer")
MAX_LEARNED_ITEMS = 5000
"""Largest number of items the learned solvers are trained on; larger outputs use a seeded sample."""


def is_builders_mcq(path: str | Path) -> bool:
    """Whether ``path`` is a builders MCQ output: an ``mcq_hf`` folder (``data/*.parquet``), or a JSONL whose
    first row carries one of :data:`MCQ_MARKERS`, or a ``category`` ending in ``_mcq`` without ImageWikiQA's
    ``wiki``/``question_key``. Anything else (the released ImageWikiQA rows, ours) is a question set."""
    p = Path(path)
    if p.is_dir():
        return any((p / "data").glob("*.parquet"))
    for _, row in jsonl_rows(p, "benchmark"):
        if not isinstance(row, dict):
            return False
        if any(k in row for k in MCQ_MARKERS):
            return True
        return (str(row.get("category", "")).endswith("_mcq") and "wiki" not in row and "question_key" not in row)
    return False


def _check_mcq_row(row: Any) -> str | None:
    """Why a builders MCQ row cannot be reported on (a skip reason), or None."""
    if not isinstance(row, dict):
        return "not_an_object"
    options = row.get("options")
    if not isinstance(options, list) or len(options) < 2 or not all(isinstance(o, str) for o in options):
        return "fewer_than_2_options"
    index = row.get("answer_index")
    if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < len(options):
        return "answer_index_not_an_option"
    if not str(row.get("class_id") or ""):
        return "no_class_id"
    ids = row.get("option_class_ids")
    if ids is not None and (not isinstance(ids, list) or len(ids) != len(options)):
        return "option_class_ids_not_one_per_option"
    answer = row.get("answer", row.get("label"))  # builds before the column vocabulary: label = the letter
    if len(options) <= MAX_LETTERS and isinstance(answer, str) and len(answer) == 1 and answer != letters(
            len(options))[index]:
        return "answer_disagrees_with_answer_index"
    return None


def _hf_row(row: dict) -> dict:
    """An mcq_hf parquet row as the JSONL row the builders write: the flat columns renamed (``id`` →
    ``question_id``), or, in a build made before the column vocabulary, the options parsed from the user text."""
    if "options" in row:
        out = {k: v for k, v in row.items() if k != "id"}
        return {"question_id": row.get("id"), **out}
    turns = {m.get("role"): m.get("content") or [] for m in row.get("messages") or []}
    text = next((c.get("text") for c in turns.get("user", []) if c.get("type") == "text"), None) or ""
    answer = next((c.get("text") for c in turns.get("assistant", []) if c.get("type") == "text"), None) or ""
    stem, options = parse_options(text)
    if not options:  # more than 26 options: "- name" lines, the answer is the name
        options = [ln[2:].strip() for ln in text.split("\n") if ln.startswith("- ")]
    if len(options) <= MAX_LETTERS and answer in letters(len(options)):
        index: int | None = letters(len(options)).index(answer)
    else:
        index = options.index(answer) if answer in options else None
    return {"question_id": row.get("id"), "text": text, "answer": answer, "class_id": row.get("class_id"),
            "class_name": row.get("class_name"), "options": options, "answer_index": index,
            **{k: row[k] for k in ("option_class_ids", "distractor_mode", "distractor_pool_size") if k in row}}


def _hf_split_files(folder: Path, split: str | None) -> tuple[str, list[Path]]:
    files = sorted((folder / "data").glob("*.parquet"))
    splits = sorted({f.name.split("-", 1)[0] for f in files})
    if split is None:
        preferred = [s for s in DEFAULT_SPLITS if s in splits]
        if len(splits) > 1 and not preferred:
            raise UserError(f"{folder}: splits {', '.join(splits)}; choose one with --split")
        split = preferred[0] if preferred else splits[0]
    chosen = [f for f in files if f.name.split("-", 1)[0] == split]
    if not chosen:
        raise UserError(f"{folder}: no split {split!r} (it has {', '.join(splits)})")
    return split, chosen


def read_builders_mcq(path: str | Path, split: str | None = None) -> tuple[list[dict], Counter]:
    """The usable rows of a builders MCQ output and ``reason → count`` of the rows skipped
    (:func:`_check_mcq_row` reasons). ``path``: ``mcq/<split>.jsonl``, or an ``mcq_hf`` folder (``split``:
    which of its splits; default ``validation`` or ``val`` when present, else its only one). Malformed JSON or an unreadable
    parquet file is one :class:`UserError` line naming the file."""
    p = Path(path)
    skipped: Counter = Counter()
    rows: list[dict] = []
    if p.is_dir():
        _, files = _hf_split_files(p, split)
        raw = []
        for f in files:
            try:
                names = pq.read_schema(f).names
                missing = [c for c in MCQ_HF_COLUMNS if c not in names]
                if not ({"options", "answer_index"} <= set(names) or "messages" in names):
                    missing.append("options")
                if missing:
                    raise UserError(f"{f}: not an mcq_hf file (no column {', '.join(missing)})")
                table = pq.read_table(f, columns=[c for c in names if c != "image"])
            except (pa.ArrowException, OSError) as exc:
                raise UserError(f"{f}: cannot read parquet ({exc})") from None
            raw += [_hf_row(r) for r in table.to_pylist()]
    else:
        raw = [row for _, row in jsonl_rows(p, "benchmark")]
    for row in raw:
        reason = _check_mcq_row(row)
        if reason:
            skipped[reason] += 1
        else:
            rows.append(row)
    return rows, skipped


def mcq_class_list(path: str | Path, classes: str | None = None) -> tuple[ClassVocabulary, str]:
    """The class list the distractors are checked against, and where it came from: ``classes`` when given
    (a bundled name or a file), else ``classes.json`` of the build (beside ``mcq/`` or ``mcq_hf/``), else
    the bundled ``imagenet1k``."""
    if classes:
        return ClassVocabulary.load(classes), f"--classes {classes}"
    p = Path(path)
    beside = (p.parent if p.is_dir() else p.parent.parent) / "classes.json"
    if beside.is_file():
        return ClassVocabulary.load(beside), str(beside)
    return ClassVocabulary.bundled("imagenet1k"), "imagenet1k (bundled; no classes.json beside the build)"


def _position(k: int, i: int) -> str:
    """The label of answer position ``i`` of ``k``: its letter, or its 1-based number beyond 26 options."""
    return letters(k)[i] if k <= MAX_LETTERS else str(i + 1)


def _mcq_positions(items: Sequence[Question]) -> tuple[dict[str, int], int, dict[str, dict[str, int]]]:
    by_k: dict[int, Counter] = defaultdict(Counter)
    for q in items:
        by_k[len(q.options)][_position(len(q.options), q.answer_index)] += 1
    per_k = {str(k): {_position(k, i): by_k[k].get(_position(k, i), 0) for i in range(k)} for k in sorted(by_k)}
    spread = max((max(c.values()) - min(c.values()) for c in per_k.values()), default=0)
    overall: Counter = Counter()
    for c in by_k.values():
        overall.update(c)
    width = max(by_k, default=0)
    return {_position(width, i): overall.get(_position(width, i), 0) for i in range(width)}, spread, per_k


def _mcq_blind(items: Sequence[Question], letter_counts: dict[str, int]) -> dict[str, Any]:
    n = len(items)
    top = min(letter_counts, key=lambda x: (-letter_counts[x], list(letter_counts).index(x)), default=None)
    return {"n": n, "random": round6(sum(1 / len(q.options) for q in items) / n) if n else 0.0,
            "longest": round6(blind_longest_accuracy(items)), "shortest": round6(blind_shortest_accuracy(items)),
            "letter_prior": {"letter": top, "accuracy": round6(letter_counts[top] / n) if n and top else 0.0}}


def _sample(items: list[Question], cap: int, seed: int) -> list[Question]:
    if len(items) <= cap:
        return items
    keep = sorted(random.Random(seed).sample(range(len(items)), cap))
    return [items[i] for i in keep]


def mcq_quality_report(rows: Sequence[dict], vocab: ClassVocabulary, *, skipped: Counter | None = None,
                       class_list: str = "", meta: dict | None = None, targets: dict | None = None,
                       learned: bool = True, max_learned: int = MAX_LEARNED_ITEMS, seed: int = 0) -> dict[str, Any]:
    """The quality report of a builders MCQ output (one item per row; see the module docstring).

    Reports size, classes, distractor modes, stems, answer letters, blind baselines (random, longest,
    shortest, letter prior), the learned blind solvers (:func:`learned_baselines`; over a seeded sample of
    ``max_learned`` items when there are more) and :func:`vlm_classdata.distractors.distractor_report` recomputed
    against ``vocab`` (``class_list``: where it came from). Targets: ``letters_balanced`` (max − min ≤ 1 per
    option count), ``learned_blind`` (best solver ≤ chance + 5 points), ``no_second_correct`` (0 items with
    an option that is also correct) and ``all_options_checked`` (every option and answer in ``vocab``: else
    the second-correct count is incomplete); ``targets`` overrides ``max_letter_spread``/``max_learned``.
    ``learned_blind`` fails with value None when the solvers could not be trained (too few items or classes):
    a shortcut that was not measured is not ruled out."""
    goals = {"max_letter_spread": 1, **(targets or {})}
    items = [Question(qid=str(r.get("question_id") or i), class_id=str(r["class_id"]),
                      class_name=str(r.get("class_name") or r["class_id"]),
                      question=question_stem(str(r.get("text") or "")), options=list(r["options"]),
                      answer_index=r["answer_index"], kind=str(r.get("distractor_mode") or ""))
             for i, r in enumerate(rows)]
    per_class = Counter(q.class_id for q in items)
    sizes = sorted(per_class.values())
    overall, spread, per_k = _mcq_positions(items)
    stem_classes: dict[str, set[str]] = defaultdict(set)
    for q in items:
        stem_classes[normalize(q.question)].add(q.class_id)
    options_only = len(per_class) > 1 and all(len(c) > 1 for c in stem_classes.values())
    checks = {"letters_balanced": target_check(spread, goals["max_letter_spread"], spread <= goals["max_letter_spread"])}
    sample = _sample(items, max_learned, seed)
    learned_block = (learned_baselines(sample, seed=seed, answer_prior=False) if learned
                     else {"skipped": "not requested (learned=False)"})
    limit = goals.get("max_learned", round(chance(mcq_items(sample)) + DEFAULT_MARGIN, 6))
    checks["learned_blind"] = target_check(None, limit, False)  # not measured is not passed
    if "solvers" in learned_block:
        learned_block["sample"] = f"{len(sample)} of {len(items)} items" if len(sample) < len(items) else "all"
        learned_block["sees"] = OPTIONS_ONLY if options_only else "question stem and options"
        learned_block["answer_prior"] = NO_ANSWER_PRIOR
        best = max(v["accuracy"] for v in learned_block["solvers"].values())
        checks["learned_blind"] = target_check(best, limit, best <= limit + 1e-9)
    dist = distractor_report(rows, distractor_policy(vocab))
    dist["class_list"] = class_list
    checks["no_second_correct"] = target_check(dist["items_with_second_correct"], 0, dist["items_with_second_correct"] == 0)
    unchecked = dist["unknown_options"] + dist["answer_missing"]
    checks["all_options_checked"] = target_check(unchecked, 0, unchecked == 0)
    skip = Counter(skipped or {})
    return {
        "kind": MCQ_KIND,
        "n_items": len(items),
        "skipped": {"total": sum(skip.values()), "by_reason": dict(sorted(skip.items(), key=lambda kv: (-kv[1], kv[0])))},
        "classes": len(per_class),
        "items_per_class": {"min": sizes[0] if sizes else 0, "median": statistics.median(sizes) if sizes else 0,
                            "max": sizes[-1] if sizes else 0},
        "options_per_item": {k: sum(per_k[k].values()) for k in per_k},
        "distractor_modes": sorted_counts([q.kind for q in items]),
        "stems": {"distinct": len(stem_classes), "options_only": options_only},
        "letters": overall,
        "letters_by_options": per_k,
        "blind_baselines": _mcq_blind(items, overall),
        "learned_baselines": learned_block,
        "distractors": dist,
        "targets": {**checks, "passes": all(c["pass"] for c in checks.values())},
        "meta": dict(meta or {}),
    }
