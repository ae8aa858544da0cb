"""Write paired ImageWikiQA items (:func:`imagewikiqa.assemble.pair_images`) as the three benchmark formats.

* :func:`write_llava_jsonl`: LLaVA eval JSONL (``benchmark.jsonl``) + ``images/<key>.<ext>``; the rows load
  with :func:`imagewikiqa.evaluate.load_benchmark` (and ``vlm_classdata.verification.items.load_items``).
* :func:`write_hf_parquet`: a Hugging Face dataset folder (``data/test-*.parquet`` + ``README.md``) that
  ``datasets.load_dataset(folder)`` loads offline, images decoded; written by the builders'
  :class:`~builders.writers.hf_parquet.HFParquetWriter`. Its columns follow the project's one column
  vocabulary (``id``, ``text`` full prompt, ``question`` stem, ``options``, ``answer`` letter, ``answer_index``,
  ``class_id``, ``class_name``, ``index`` = the TSV's), so :func:`write_lmms_eval_task` can ship the lmms-eval
  task ``vlmcd_imagewikiqa`` beside it (``lmms_eval/``, scored with the project's one answer parser).
* :func:`write_vlmevalkit_tsv`: VLMEvalKit's multiple-choice TSV (``index, image, question, hint, A.., answer,
  category, l2-category, split``) as its ``ImageMCQDataset`` / ``CustomMCQDataset`` reads it; written by the
  builders' :class:`~builders.writers.jsonfiles.TsvWriter` dialect.

Row ids: ``question_id = f"{qid}-{image_key}"``, plus ``f"-p{k}"`` when the items hold permutations (any
item with ``permutation > 0``); then the LLaVA rows also carry ``permutation`` and ``circular_group``
(``f"{qid}-{image_key}"``, the rows ``evaluate`` scores together). Every writer is deterministic (same
items → same bytes) and publishes each file atomically (temporary sibling, then ``os.replace``).
"""

from __future__ import annotations

import os
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path

from builders.eval_packages.lmms_tasks import FOLDER as LMMS_FOLDER
from builders.eval_packages.lmms_tasks import LmmsTask, write_task_folder
from builders.formats.mcq import letters
from builders.records import Record
from builders.writers.hf_parquet import HFParquetWriter
from builders.writers.jsonfiles import TsvWriter
from builders.writers.vlmevalkit_rules import README, readme_text
from imagewikiqa.assemble import PairedItem
from vlm_classdata.atomic import atomic_path, commit, dumps_compact, write_bytes_atomic
from vlm_classdata.errors import UserError

__all__ = ["EXPORT_FORMATS", "HF_SPLIT", "LMMS_TASK", "TSV_CIRCULAR_OFFSET", "export_all", "has_permutations",
           "llava_rows", "pair_tsv_indices", "question_id", "tsv_indices", "vlmevalkit_rows", "write_hf_parquet", "write_llava_jsonl",
           "write_lmms_eval_task", "write_vlmevalkit_tsv"]

EXPORT_FORMATS = ("llava", "hf", "vlmevalkit")
HF_SPLIT = "test"
LMMS_TASK = "vlmcd_imagewikiqa"
TSV_CIRCULAR_OFFSET = 1_000_000
"""VLMEvalKit's circular convention (MMBench): permutation ``k`` of the pair at index ``i`` has index
``i + k * TSV_CIRCULAR_OFFSET``, so ``index % TSV_CIRCULAR_OFFSET`` names the circular group."""
LLAVA_FILE = "benchmark.jsonl"
TSV_FILE = "benchmark.tsv"
CARD_SUMMARY = ("An ImageWikiQA-style multiple-choice knowledge benchmark: each row asks about the object shown "
                "in `image` without naming it; `answer` is the letter of the correct option")


def _require(items: Sequence[PairedItem], what: str) -> list[PairedItem]:
    items = list(items)
    if not items:
        raise UserError(f"{what}: no items to export (pairing kept no question)")
    return items


def has_permutations(items: Iterable[PairedItem]) -> bool:
    """True when any item shows its options in a shifted order (circular evaluation rows)."""
    return any(it.permutation for it in items)


def question_id(item: PairedItem, circular: bool) -> str:
    """``f"{qid}-{image_key}"``, plus ``f"-p{permutation}"`` when the set has permutations."""
    base = f"{item.question.qid}-{item.image_key}"
    return f"{base}-p{item.permutation}" if circular else base


def _check_unique(ids: list[str], what: str) -> None:
    dups = [i for i, n in Counter(ids).items() if n > 1]
    if dups:
        dup = dups[0]
        raise ValueError(f"{what}: row id {dup!r} occurs twice (the same question paired twice with one image)")


def _image_name(item: PairedItem) -> str:
    key, ext = item.image_key, item.image_ext.lstrip(".")
    if not key or "/" in key or "\\" in key or key.startswith(".") or not ext or "/" in ext:
        raise ValueError(f"image key {key!r} / extension {ext!r} cannot name a file")
    return f"{key}.{ext}"


def _record(item: PairedItem) -> Record:
    """The builders' record of an item's image (what their writers consume)."""
    return Record(key=item.image_key, split=HF_SPLIT, class_id=item.class_id, label=0,
                  class_name=item.question.class_name, image_bytes=item.image_bytes, image_ext=item.image_ext,
                  image_path=None)


# ----- LLaVA eval JSONL ------------------------------------------------------------------------------------
def llava_rows(items: Sequence[PairedItem], image_dir: str = "images") -> list[dict]:
    """The LLaVA eval rows of the items (``image`` relative to the JSONL's folder)."""
    circular = has_permutations(items)
    rows = []
    for it in items:
        q = it.question
        qid = question_id(it, circular)
        row = {"question_id": qid, "image": f"{image_dir}/{_image_name(it)}",
               "text": q.prompt(options=it.options), "label": it.letter, "classname": q.class_name,
               "class_id": it.class_id, "wiki": q.reference, "options": list(it.options),
               "answer_index": it.answer_index, "question_key": q.qid}
        if circular:
            row["permutation"] = it.permutation
            row["circular_group"] = f"{q.qid}-{it.image_key}"
        rows.append(row)
    _check_unique([r["question_id"] for r in rows], "llava")
    return rows


def _write_images(items: Sequence[PairedItem], folder: Path) -> None:
    """Each distinct image once (an identical existing file is left untouched)."""
    written: dict[str, bytes] = {}
    for it in items:
        name = _image_name(it)
        if name in written:
            if written[name] != it.image_bytes:
                raise ValueError(f"llava: two different images share the file name {name!r}")
            continue
        written[name] = it.image_bytes
        final = folder / name
        try:
            if final.stat().st_size == len(it.image_bytes) and final.read_bytes() == it.image_bytes:
                continue
        except FileNotFoundError:
            pass
        write_bytes_atomic(final, it.image_bytes)


def write_llava_jsonl(items: Sequence[PairedItem], out_dir: str | os.PathLike, image_dir: str = "images") -> Path:
    """Write ``out_dir/<image_dir>/<key>.<ext>`` (each image once) and ``out_dir/benchmark.jsonl``; return the
    JSONL path. Rows: question_id, image, text (:meth:`Question.prompt` with the row's options), label
    (letter), classname, class_id, wiki, options, answer_index, question_key (+ permutation, circular_group)."""
    items = _require(items, "llava")
    rel = Path(image_dir)
    if not image_dir or rel.is_absolute() or ".." in rel.parts:
        raise UserError(f"llava: image_dir must be a relative folder inside the output, got {image_dir!r}")
    out = Path(out_dir)
    rows = llava_rows(items, rel.as_posix())
    _write_images(items, out / rel)
    path = out / LLAVA_FILE
    write_bytes_atomic(path, "".join(dumps_compact(r) + "\n" for r in rows).encode("utf-8"))
    return path


# ----- Hugging Face parquet --------------------------------------------------------------------------------
def _hf_row(item: PairedItem, circular: bool, index: int) -> dict:
    q = item.question
    return {"id": question_id(item, circular), "text": q.prompt(options=item.options), "question": q.question,
            "options": list(item.options), "answer": item.letter, "answer_index": item.answer_index,
            "class_id": item.class_id, "class_name": q.class_name, "index": index, "wiki": q.reference,
            "question_key": q.qid, "permutation": item.permutation}


def write_hf_parquet(items: Sequence[PairedItem], out_dir: str | os.PathLike, rows_per_shard: int = 1000) -> Path:
    """Write a Hugging Face dataset folder: ``data/test-0000i-of-0000N.parquet`` (``image`` as ``Image()``,
    id, text (the full prompt), question (stem), options, answer letter, answer_index, class_id, class_name,
    index (the VLMEvalKit TSV's), wiki, question_key, permutation) and ``README.md`` whose YAML ``configs`` make ``datasets.load_dataset(out_dir)`` load it
    offline. Shard files of an earlier export with another shard count are removed. Returns ``out_dir``."""
    items = _require(items, "hf")
    if isinstance(rows_per_shard, bool) or not isinstance(rows_per_shard, int) or rows_per_shard < 1:
        raise UserError(f"hf: rows_per_shard must be a positive integer, got {rows_per_shard!r}")
    out = Path(out_dir)
    circular = has_permutations(items)
    _check_unique([question_id(it, circular) for it in items], "hf")
    indices = tsv_indices(items)
    writer = HFParquetWriter(out, {"card_summary": CARD_SUMMARY})
    num_shards = -(-len(items) // rows_per_shard)
    for shard in range(num_shards):
        sw = writer.shard_writer(HF_SPLIT, shard, num_shards)
        try:
            lo, hi = shard * rows_per_shard, (shard + 1) * rows_per_shard
            for it, index in zip(items[lo:hi], indices[lo:hi], strict=True):
                sw.add(_record(it), _hf_row(it, circular, index))
            sw.close()
        except BaseException:
            sw.abort()
            raise
    writer.finalize({HF_SPLIT: num_shards}, {HF_SPLIT: len(items)})
    return out


def write_lmms_eval_task(hf_dir: str | os.PathLike, folder: str | os.PathLike) -> list[Path]:
    """Write the lmms-eval task folder ``folder`` with the task :data:`LMMS_TASK` over the parquet files of
    ``hf_dir`` (a :func:`write_hf_parquet` folder), listed by paths relative to ``folder``; return its files."""
    hf, target = Path(hf_dir), Path(folder)
    pattern = re.compile(rf"{HF_SPLIT}-\d{{5}}-of-\d{{5}}\.parquet")
    files = sorted(p for p in (hf / "data").iterdir() if pattern.fullmatch(p.name))
    if not files:
        raise ValueError(f"lmms_eval: {hf} holds no {HF_SPLIT} parquet files")
    rel = tuple(Path(os.path.relpath(p, target)).as_posix() for p in files)
    return write_task_folder(target, [LmmsTask(LMMS_TASK, "mcq", HF_SPLIT, rel)])


# ----- VLMEvalKit TSV --------------------------------------------------------------------------------------
def tsv_indices(items: Sequence[PairedItem]) -> list[int]:
    """Each item's VLMEvalKit ``index`` (:func:`pair_tsv_indices` of its question and image)."""
    return pair_tsv_indices([((it.question.qid, it.image_key), it.permutation) for it in items])


def pair_tsv_indices(pairs: Sequence[tuple[tuple[str, str], int]]) -> list[int]:
    """The VLMEvalKit ``index`` of each ``((question, image), permutation)`` in export order: the pair's
    first-seen position plus ``permutation * TSV_CIRCULAR_OFFSET`` (also how ``evaluate`` finds the rows of a
    result file for a benchmark JSONL without ``index``)."""
    circular = any(perm for _, perm in pairs)
    pair_index: dict[tuple[str, str], int] = {}
    out = []
    for pair, perm in pairs:
        base = pair_index.setdefault(pair, len(pair_index))
        if circular and base >= TSV_CIRCULAR_OFFSET:
            raise ValueError(f"vlmevalkit: more than {TSV_CIRCULAR_OFFSET} question-image pairs cannot use "
                             f"VLMEvalKit's circular index convention")
        out.append(base + perm * TSV_CIRCULAR_OFFSET)
    return out


def vlmevalkit_rows(items: Sequence[PairedItem]) -> list[dict]:
    """The TSV rows without the image: index (:func:`tsv_indices`), question, hint, A.., answer, category
    (class name), l2-category (question kind, else generator), split, then question_id, question_key,
    class_id."""
    circular = has_permutations(items)
    width = max(len(it.options) for it in items)
    rows = []
    for it, index in zip(items, tsv_indices(items), strict=True):
        q = it.question
        row: dict = {"index": index, "question": q.question, "hint": None}
        for i, letter in enumerate(letters(width)):
            row[letter] = it.options[i] if i < len(it.options) else None
        row.update({"answer": it.letter, "category": q.class_name, "l2-category": q.kind or q.generator or None,
                    "split": HF_SPLIT, "question_id": question_id(it, circular), "question_key": q.qid,
                    "class_id": it.class_id})
        rows.append(row)
    _check_unique([str(r["index"]) for r in rows], "vlmevalkit")
    return rows


def write_vlmevalkit_tsv(items: Sequence[PairedItem], path: str | os.PathLike) -> Path:
    """Write VLMEvalKit's multiple-choice TSV to ``path`` (``image`` = base64 of the image bytes, after
    ``index``; cells with tabs/newlines/quotes quoted CSV-style, as ``pandas.read_csv(sep="\\t")`` reads
    them). Returns ``path``."""
    items = _require(items, "vlmevalkit")
    final = Path(path)
    if final.is_dir():
        raise UserError(f"vlmevalkit: {final} is a folder; give the TSV file path")
    writer = TsvWriter(final.parent)
    lines = (dumps_compact(writer.tsv_row(_record(it), row)).encode("utf-8")
             for it, row in zip(items, vlmevalkit_rows(items), strict=True))
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = atomic_path(final)
    try:
        with open(tmp, "wb") as out:
            writer.write_merged(lines, out)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    commit(tmp, final)
    questions = {final.name: f"OUT/llava/{LLAVA_FILE}"} if final.parent.name == "vlmevalkit" else {}
    readme = readme_text(final.parent.name, [final.name], questions, prefix="imagewikiqa",
                         circular=has_permutations(items))
    write_bytes_atomic(final.parent / README, readme.encode("utf-8"))
    return final


# ----- all ---------------------------------------------------------------------------------------------
def export_all(items: Sequence[PairedItem], out_dir: str | os.PathLike,
               formats: Sequence[str] = EXPORT_FORMATS) -> dict[str, str]:
    """Write the chosen formats under ``out_dir`` (``llava/benchmark.jsonl`` + ``llava/images/``, ``hf/``,
    ``vlmevalkit/benchmark.tsv``); ``hf`` brings the lmms-eval task folder ``lmms_eval/`` (an export without
    ``hf`` removes one left by an earlier export). Return the path of each by format name (and ``lmms_eval``)."""
    unknown = [f for f in formats if f not in EXPORT_FORMATS]
    if unknown:
        raise UserError(f"unknown export format {unknown[0]!r}; choose from {', '.join(EXPORT_FORMATS)}")
    items = _require(items, "export")
    out = Path(out_dir)
    paths: dict[str, str] = {}
    for fmt in dict.fromkeys(formats):
        if fmt == "llava":
            paths[fmt] = str(write_llava_jsonl(items, out / "llava"))
        elif fmt == "hf":
            paths[fmt] = str(write_hf_parquet(items, out / "hf"))
            write_lmms_eval_task(out / "hf", out / LMMS_FOLDER)
            paths[LMMS_FOLDER] = str(out / LMMS_FOLDER)
        else:
            paths[fmt] = str(write_vlmevalkit_tsv(items, out / "vlmevalkit" / TSV_FILE))
    if "hf" not in formats:
        write_task_folder(out / LMMS_FOLDER, [])
    return paths
