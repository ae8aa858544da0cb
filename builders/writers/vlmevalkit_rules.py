"""VLMEvalKit's rules for a custom multiple-choice TSV, as a checker, and the registration steps as a README.

The rules are those of VLMEvalKit's own loader and scorer (read from its source, ``open-compass/VLMEvalKit``):

* ``vlmeval/dataset/__init__.py:build_dataset``: a ``--data NAME`` that is not one of its datasets is read from
  ``$LMUData/NAME.tsv`` (``vlmeval/smp/file.py:LMUDataRoot``, default ``~/LMUData``); with a ``question``
  column, ``A`` and ``B`` columns and an ``image`` column it becomes a ``CustomMCQDataset``.
* ``vlmeval/smp/file.py:load``: the TSV is read with ``pandas.read_csv(path, sep="\\t")`` (default NaN parsing:
  a cell ``None``, ``NA``, ``null``, ... is missing).
* ``vlmeval/dataset/image_base.py:ImageBaseDataset.__init__``: rows whose ``image`` is NaN are dropped; an
  ``image`` of at most 64 characters is read as the ``index`` of another row; ``index`` is int when every value
  is one. ``dump_image`` writes ``$LMUData/images/NAME/<index>.png`` (``vlmeval/smp/vlm.py:
  decode_base64_to_image_file``: base64 → PIL, RGBA/P/LA → RGB, saved as PNG).
* ``vlmeval/dataset/image_mcq.py:ImageMCQDataset.build_prompt``: options are the columns ``A``..``Z`` whose cell is
  not NaN; the text is ``Hint: ..`` (when ``hint`` is not NaN), ``Question: {question}``, ``Options:`` and one
  ``{letter}. {option}`` line each, then its instruction (:func:`vlmevalkit_prompt`).
* ``ImageMCQDataset.evaluate_heuristic`` and ``vlmeval/dataset/utils/multiple_choice.py``: a reply is matched to
  an option letter and compared with ``answer`` (``mcq_vanilla_eval``); names containing ``circular``,
  ``mmbench``, ``ccbench`` or ``mmcr`` (any case) switch to circular scoring (``mcq_circular_eval``: int
  ``index``, group ``index % 1e6``); ``report_acc`` reports ``Overall`` per ``split`` and per ``l2-category`` /
  ``category`` value.
* ``vlmeval/inference.py:infer_data_job`` and ``vlmeval/smp/file.py:get_pred_file_path``: predictions land in
  ``{work_dir}/{model}/{eval id}/{model}_{NAME}.xlsx`` (``PRED_FORMAT=tsv|json`` for ``.tsv``/``.json``): every
  TSV column but ``image``, plus ``prediction``; the scores in ``..._acc.csv``.
"""

from __future__ import annotations

import base64
import binascii
import io
import math
import re
import string
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["NAME_SWITCHES", "TsvCheck", "check_name", "check_questions", "check_table", "readme_text",
           "suggested_name", "vlmevalkit_prompt"]

LETTERS = string.ascii_uppercase
NAME_SWITCHES: dict[str, str] = {
    "circular": "circular scoring", "mmbench": "circular scoring (MMBench)", "ccbench": "circular scoring",
    "mmcr": "circular scoring", "mmmu": "MMMU answer preprocessing", "mmt": "MMT per-task report",
    "mmsci": "MMSci report", "lego": "LEGO prompts and matching", "wemath": "a GPT judge by default",
    "blink": "the BLINK judge prompt",
}
"""Parts of a dataset name (lower case) that change how VLMEvalKit prompts or scores it, and what they do."""
INSTRUCTION = "Please select the correct answer from the options above. \n"
README = "README.md"


def vlmevalkit_prompt(row: dict[str, Any]) -> str:
    """The text ``ImageMCQDataset.build_prompt`` shows the model for one TSV row (NaN cells count as absent)."""
    options = {ch: row[ch] for ch in LETTERS if ch in row and not _missing(row[ch])}
    hint = row.get("hint")
    text = "" if _missing(hint) else f"Hint: {hint}\n"
    text += f"Question: {row['question']}\n"
    if options:
        text += "Options:\n" + "".join(f"{ch}. {value}\n" for ch, value in options.items()) + INSTRUCTION
    return text


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def check_name(name: str) -> list[str]:
    """Problems with a dataset name (the TSV's file name without ``.tsv``) for a plain MCQ run."""
    problems = []
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", name):
        problems.append(f"dataset name {name!r}: use letters, digits, '_', '-', '.' (it is a file name and a "
                        f"--data argument)")
    low = name.lower()
    for part, what in NAME_SWITCHES.items():
        if part in low:
            problems.append(f"dataset name {name!r} contains {part!r}, which switches VLMEvalKit to {what}")
    return problems


@dataclass
class TsvCheck:
    """The rows as VLMEvalKit reads them (``dict`` per row, NaN as float nan) and every rule they break."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    columns: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def options(self, row: dict[str, Any]) -> list[str]:
        """The row's options in letter order, as VLMEvalKit shows them."""
        return [str(row[ch]) for ch in LETTERS if ch in row and not _missing(row[ch])]


def _image_problem(value: Any) -> str | None:
    from PIL import Image  # heavy: decoding images is the only use

    if not isinstance(value, str) or len(value) <= 64:
        return "image is empty or at most 64 characters (VLMEvalKit reads that as another row's index)"
    try:
        data = base64.b64decode(value, validate=True)
        with Image.open(io.BytesIO(data)) as im:
            im = im.convert("RGB") if im.mode in ("RGBA", "P", "LA") else im
            im.save(io.BytesIO(), format="PNG")  # dump_image saves <index>.png
    except (binascii.Error, ValueError, OSError) as exc:
        return f"image does not decode to a picture VLMEvalKit can save as PNG ({type(exc).__name__}: {exc})"
    return None


def check_table(columns: Sequence[str], rows: Sequence[dict[str, Any]], decode_images: bool = True) -> TsvCheck:
    """Every rule (module docstring) a TSV breaks, given as VLMEvalKit reads it: ``frame =
    pandas.read_csv(path, sep="\\t")``, then ``frame.columns`` and ``frame.to_dict("records")`` (missing cells
    are float NaN). ``decode_images`` also decodes every image and saves it as PNG, as ``dump_image`` does."""
    out = TsvCheck(columns=[str(c) for c in columns])
    cols = set(out.columns)
    problems = out.problems
    for need in ("index", "question", "image", "answer", "A", "B"):
        if need not in cols:
            problems.append(f"no {need!r} column (CustomMCQDataset needs index, question, image, answer, A, B)")
    if problems:
        return out
    letter_cols = [c for c in out.columns if len(c) == 1 and c in LETTERS]
    if letter_cols != list(LETTERS[:len(letter_cols)]):
        problems.append(f"option columns {letter_cols} are not A, B, ... without a gap, in order")
    if "category" not in cols:
        problems.append("no 'category' column (report_acc gives per-category accuracy from it)")
    lowered = [c.lower() for c in out.columns if c not in LETTERS]
    if len(set(lowered)) != len(lowered):
        problems.append("two columns differ only in case (evaluate lower-cases every non-option column)")
    out.rows = [dict(r) for r in rows]
    seen: set[int] = set()
    for n, row in enumerate(out.rows):
        where = f"row {n} (index {row.get('index')!r})"
        index = row["index"]
        if isinstance(index, float) or not isinstance(index, int):
            problems.append(f"{where}: index is not an integer")
        elif index in seen:
            problems.append(f"{where}: index repeats (predictions and answers are keyed by it)")
        else:
            seen.add(index)
        present = [ch for ch in letter_cols if not _missing(row[ch])]
        if present != letter_cols[:len(present)] or len(present) < 2:
            problems.append(f"{where}: options {present} are not A, B, ... without a gap (at least two); a cell "
                            f"pandas reads as NaN ('None', 'NA', 'null', empty) drops its option")
        if not isinstance(row["answer"], str) or row["answer"] not in present:
            problems.append(f"{where}: answer {row['answer']!r} is not one of its option letters {present}")
        question = row["question"]
        if not isinstance(question, str) or not question.strip():
            problems.append(f"{where}: question is empty")
        elif re.search(r"(?m)^\s*\(?[A-Z][.):]\s", question):
            problems.append(f"{where}: question has a lettered option line (build_prompt adds the options)")
        if "category" in cols and _missing(row["category"]):
            problems.append(f"{where}: category is empty")
        if "split" in cols and _missing(row["split"]):
            problems.append(f"{where}: split is empty (report_acc groups rows by split)")
        if decode_images:
            bad = _image_problem(row["image"])
            if bad:
                problems.append(f"{where}: {bad}")
    return out


def check_questions(check: TsvCheck, questions: Sequence[dict[str, Any]]) -> list[str]:
    """Problems between the TSV rows and the same items' question rows (our mcq JSONL / ImageWikiQA
    benchmark rows with ``text``, ``options``, ``answer_index``): paired by ``question_id`` when the TSV has it,
    else by ``index``, else by order. For each pair the TSV shows the same options in the same order, its
    answer is the letter at ``answer_index``, and our ``text`` begins with the TSV's stem and option block."""
    problems = []
    if "question_id" in check.columns:
        ours = {str(q.get("question_id")): q for q in questions}
        pairs = [(r, ours.get(str(r["question_id"]))) for r in check.rows]
    elif all("index" in q for q in questions):
        ours = {int(q["index"]): q for q in questions}
        pairs = [(r, ours.get(r["index"])) for r in check.rows]
    else:
        if len(questions) != len(check.rows):
            return [f"{len(check.rows)} TSV rows but {len(questions)} question rows (paired by order)"]
        pairs = list(zip(check.rows, questions, strict=True))
    for row, q in pairs:
        where = f"index {row['index']!r}"
        if q is None:
            problems.append(f"{where}: no question row for this TSV row")
            continue
        options = check.options(row)
        if options != [str(o) for o in q["options"]]:
            problems.append(f"{where}: TSV options {options} differ from the question's {q['options']}")
            continue
        if row["answer"] != LETTERS[int(q["answer_index"])]:
            problems.append(f"{where}: answer {row['answer']!r} is not the letter of answer_index "
                            f"{q['answer_index']}")
        block = "\n".join(f"{ch}. {o}" for ch, o in zip(LETTERS, options, strict=False))
        if not str(q["text"]).startswith(f"{row['question']}\n{block}\n"):
            problems.append(f"{where}: the question's text does not begin with the TSV stem and its options")
    return problems


def suggested_name(prefix: str, stem: str) -> str:
    """A VLMEvalKit dataset name for ``<stem>.tsv``: ``prefix_stem``, unsafe characters as ``_``, and the name
    switches (:data:`NAME_SWITCHES`) broken up with a ``_``."""
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", f"{prefix}_{stem}").strip("_.-") or "vlmcd"
    if not name[0].isalnum():
        name = f"vlmcd_{name}"
    for part in NAME_SWITCHES:
        name = re.sub(re.escape(part), lambda m: m.group(0)[0] + "_" + m.group(0)[1:], name, flags=re.I)
    return name


def readme_text(folder: str, tsv_names: Sequence[str], questions: dict[str, str], prefix: str = "vlmcd",
                circular: bool = False) -> str:
    """The README written in ``OUT/<folder>`` beside the TSVs: what they hold and the exact steps to run and
    score them with VLMEvalKit (dataset names :func:`suggested_name` of ``prefix``). ``questions`` maps a TSV
    file name to our question file of the same rows (a path under ``OUT``). Depends on nothing else, so the
    same build writes the same bytes wherever it is."""
    lines = ["# VLMEvalKit multiple-choice TSV", "",
             "Each `<split>.tsv` is a VLMEvalKit custom MCQ dataset: `index` (int, unique), `image` (base64), "
             "`question` (the stem, no options), one column per option `A`, `B`, ... (empty past a row's last "
             "option), `answer` (the correct letter), `category` (the class name), and any other columns "
             "VLMEvalKit passes through.", "",
             "## Register and run", "",
             "VLMEvalKit (`vlmeval/dataset/__init__.py: build_dataset`) treats a `--data NAME` that is not one of "
             "its own datasets as `$LMUData/NAME.tsv`; with `question`, `A`, `B` and `image` columns it is a "
             "`CustomMCQDataset`. The file name is the dataset name (one per build: the names below are "
             "suggestions): keep to letters, digits, `_`, `-`, and "
             "avoid the parts " + ", ".join(f"`{p}`" for p in NAME_SWITCHES)
             + " (any case), which switch its prompts or scoring.", ""]
    if circular:
        lines += ["These rows show each question in several option orders (`index` = pair + k × 1000000). "
                  "A NAME containing `circular` (e.g. `NAME_circular`) makes VLMEvalKit score each group "
                  "correct only when every order is answered correctly; any other NAME scores rows one by one.", ""]
    lines += ["`OUT` is this build's folder.", "", "```bash", 'export LMUData="${LMUData:-$HOME/LMUData}"    # VLMEvalKit\'s data folder',
              'mkdir -p "$LMUData"']
    names = {t: suggested_name(prefix, Path(t).stem) for t in tsv_names}
    for tsv, name in names.items():
        lines.append(f'cp OUT/{folder}/{tsv} "$LMUData/{name}.tsv"')
    evals = [n for t, n in names.items() if Path(t).stem != "train"] or list(names.values())
    first = evals[0] if evals else "NAME"
    lines += ["cd VLMEvalKit",
              f"python run.py --data {' '.join(names.values()) or 'NAME'} --model MODEL --judge exact_matching",
              "```", "",
              "`--judge exact_matching` matches replies to letters without an API model (VLMEvalKit's default "
              "judge for MCQ is `gpt-4o-mini`). Images are decoded to `$LMUData/images/NAME/<index>.png`.", "",
              "## Results", "",
              f"`outputs/MODEL/<eval id>/MODEL_{first}.xlsx`: every TSV column but `image`, plus `prediction` "
              "(`PRED_FORMAT=tsv` or `json` before `run.py` writes `.tsv` / `.json` instead); "
              f"`MODEL_{first}_exact_matching_result.xlsx` adds `hit` per row; `MODEL_{first}_acc.csv` has "
              "`Overall` and one column per category.", "",
              "## Score with this project's answer parser", ""]
    scored = [(name, questions[tsv]) for tsv, name in names.items() if tsv in questions]
    if scored:
        lines += ["```bash"]
        lines += [f"python -m imagewikiqa evaluate outputs/MODEL/<eval id>/MODEL_{name}.xlsx --questions {q}"
                  for name, q in scored]
        lines += ["```", ""]
    else:
        lines += ["`python -m imagewikiqa evaluate RESULT --questions QUESTIONS` scores a result file against "
                  "the question rows of the same items (a builders build with `--outputs vlmevalkit,mcq` writes "
                  "them to `mcq/<split>.jsonl`).", ""]
    lines += ["Rows are matched by `question_id` when the result file has it, else by `index`. Reading `.xlsx` "
              "needs `openpyxl` (`pip install openpyxl`); `.tsv`, `.csv` and `.json` results need nothing more.",
              ""]
    return "\n".join(lines)
