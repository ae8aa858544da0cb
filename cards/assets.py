"""The card's sections that link to files they write under ``repo_folder/assets/``: the structure (one real
example row and its image), class coverage (rows per class, class-name frequency in corpora) and the
quality report of QA sets (correct-answer letters). Each returns ``(markdown, names of the files written)``;
every file is written atomically."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
from PIL import Image, UnidentifiedImageError

from cards.collect import split_files
from cards.facts import CardFacts, CorpusCounts
from cards.markdown import median, num
from cards.plots import MAX_LISTED, plot_class_counts, plot_class_frequency, plot_letters
from cards.templating import render
from imagewikiqa.report import report_markdown
from vlm_classdata.atomic import write_bytes_atomic
from vlm_classdata.images import EXT_BY_FORMAT

ASSET_NAMES = ("class_counts.png", "letters.png", "class_frequency.png")


# ----- the structure and its example row ---------------------------------------------------------------------
def feature_type(feature: Any) -> str:
    """A ``datasets`` feature in words (``string``, ``image``, ``list of string``, ``class label (...)``)."""
    from datasets import ClassLabel, LargeList, List, Sequence, Value  # heavy: only the card writer needs it
    from datasets import Image as ImageFeature  # heavy: only the card writer needs it

    if isinstance(feature, Value):
        return feature.dtype
    if isinstance(feature, ImageFeature):
        return "image"
    if isinstance(feature, ClassLabel):
        shown = ", ".join(feature.names[:3]) + (", …" if feature.num_classes > 3 else "")
        return f"class label ({feature.num_classes} names: {shown})"
    if isinstance(feature, (List, LargeList, Sequence)):
        return f"list of {feature_type(feature.feature)}"
    if isinstance(feature, dict):
        return "{" + ", ".join(f"{k}: {feature_type(v)}" for k, v in feature.items()) + "}"
    return type(feature).__name__


def _image_ext(data: bytes) -> str:
    try:
        with Image.open(io.BytesIO(data)) as im:
            fmt = im.format or ""
    except (UnidentifiedImageError, OSError, ValueError):
        return "bin"
    return EXT_BY_FORMAT.get(fmt) or fmt.lower() or "bin"


def structure(facts: CardFacts, repo: Path, assets_dir: str, info: dict) -> tuple[str, list[str]]:
    """Features, splits and the first row of the first shard (its image written as ``example.<ext>``);
    ``info``: :func:`cards.metadata.data_info` of ``repo``."""
    files = split_files(repo, info, list(facts.split_counts))
    first = files[next(iter(files))][0]
    batch = next(pq.ParquetFile(first).iter_batches(batch_size=1), None)
    context: dict[str, Any] = {
        "features": [(f"`{k}`", feature_type(v)) for k, v in info["features"].items()],
        "splits": [(s, num(info["splits"][s]["num_examples"]), len(files[s])) for s in files],
        "row_json": None, "assets_dir": assets_dir, "first_file": first.relative_to(repo).as_posix(),
        "class_id": None, "class_name": None, "example_image": None}
    written = []
    if batch is not None and batch.num_rows:
        row = batch.to_pylist()[0]
        image = row.pop("image", None)
        images = row.pop("images", None)  # TRL's list column (the hf output): its one image
        if image is None and isinstance(images, list) and images:
            image = images[0]
        if isinstance(row.get("class_id"), str):
            context.update(class_id=row["class_id"], class_name=facts.name(row["class_id"]))
        if isinstance(image, dict) and image.get("bytes"):
            name = f"example.{_image_ext(image['bytes'])}"
            write_bytes_atomic(repo / assets_dir / name, image["bytes"])
            written.append(name)
            context["example_image"] = name
        context["row_json"] = json.dumps(row, indent=2, ensure_ascii=False, default=str)
    return render("structure.md.j2", **context), written


# ----- class coverage --------------------------------------------------------------------------------------
def corpus_rows(facts: CardFacts, corpus: CorpusCounts) -> tuple[list[dict], list[dict]]:
    """A corpus's count rows of this dataset's classes (all its rows when none of them has a row here) and,
    of those, the never-mentioned ones in class id order."""
    rows = [r for r in corpus.rows if r["class_id"] in facts.class_counts] or corpus.rows
    return rows, sorted((r for r in rows if r["mentions"] == 0), key=lambda r: r["class_id"])


def _corpus_context(facts: CardFacts, corpus: CorpusCounts) -> dict[str, Any]:
    rows, never = corpus_rows(facts, corpus)
    ranked = sorted(rows, key=lambda r: (-r["mentions"], r["class_id"]))

    def listed(part: list[dict]) -> str:
        return ", ".join(f"{facts.name(r['class_id'])} ({num(r['mentions'])})" for r in part)

    return {"name": corpus.name, "documents": corpus.documents, "own_classes": rows is not corpus.rows,
            "n_rows": len(rows), "never_count": len(never), "median": median(sorted(r["mentions"] for r in rows)),
            "all_ranked": listed(ranked) if len(ranked) <= 10 else None, "most": listed(ranked[:5]),
            "least": listed(ranked[::-1][:5]),
            "never": ", ".join(facts.name(r["class_id"]) for r in never[:10]) + (", …" if len(never) > 10 else "")
            if never else ""}


def coverage(facts: CardFacts, repo: Path, assets_dir: str, paper: str) -> tuple[str, list[str]]:
    """Rows per class (a plot, a table up to 30 classes) and, with corpora counts, class-name frequency in
    each corpus (a plot for the first); ``paper``: the link of the paper on frequency and accuracy."""
    written: list[str] = []
    counts = facts.class_counts
    values = sorted(counts.values())
    context: dict[str, Any] = {"class_rows": None, "assets_dir": assets_dir, "num_classes": facts.num_classes,
                               "paper_zhang": paper}
    if counts:
        write_bytes_atomic(repo / assets_dir / "class_counts.png", plot_class_counts(counts, facts.class_names))
        written.append("class_counts.png")
        context.update(n_present=len(counts), min_rows=values[0], median_rows=median(values), max_rows=values[-1],
                       class_rows=[(c, facts.name(c), counts[c]) for c in counts] if len(counts) <= MAX_LISTED
                       else [])
    for i, corpus in enumerate(facts.corpora):
        if i == 0:
            write_bytes_atomic(repo / assets_dir / "class_frequency.png",
                               plot_class_frequency(corpus.name, corpus_rows(facts, corpus)[0], facts.class_names))
            written.append("class_frequency.png")
    meta = facts.corpora_meta
    lexicon = meta.lexicon if facts.corpora and meta is not None and meta.lexicon.to_obj() else None
    text = render("coverage.md.j2", corpora=[_corpus_context(facts, c) for c in facts.corpora], lexicon=lexicon,
                  method=meta.method if meta is not None else None, **context)
    return text, written


# ----- the quality report of a QA set ------------------------------------------------------------------------
def quality(facts: CardFacts, repo: Path, assets_dir: str) -> tuple[str, list[str]]:
    """The build's quality report (:func:`imagewikiqa.report.report_markdown`, headings one level down) and
    the correct-letter plot placed before its blind baselines."""
    report = facts.quality
    if not report:
        return "", []
    body = report_markdown(report.to_obj()).splitlines()
    if body and body[0].startswith("# "):
        body = body[1:]
    lines = render("quality.md.j2").splitlines() + [("#" + line) if line.startswith("#") else line for line in body]
    written = []
    if report.letters:
        write_bytes_atomic(repo / assets_dir / "letters.png", plot_letters(report.letters))
        written.append("letters.png")
        after = next((i for i, line in enumerate(lines) if line.startswith("### Blind baselines")), len(lines))
        lines[after - 1:after - 1] = render("letters.md.j2", assets_dir=assets_dir).split("\n")
    return "\n".join(lines), written
