"""Distractor strength in the numbers: a model's multiple-choice accuracy with random versus hard distractors.

Weak (random) distractors inflate multiple-choice scores; a build made with ``--distractors hard`` (WordNet-nearest
valid classes) asks the same images with strong ones. Each ``mcq``/``blind`` sidecar row joins the build's question
rows by sample id (:func:`~vlm_classdata.verification.items.row_id`); the row's ``distractor_mode`` says how its
distractors were drawn (a build whose rows lack it: the manifest's ``tasks.mcq.distractors``).

The comparison is PAIRED: per pass × model, accuracy over the images answered (status ok) under both modes, so a
``--limit`` run or a failed image on one side cannot tilt it. ``gap`` = random − hard accuracy (how much the easy
distractors inflate the score). Inputs that cannot be compared are a one-line :class:`UserError`: a sidecar whose
sample ids or answers are not its build's, one model name with two model paths, one mode given twice, a sample id
that is another image in the other build, no shared images.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from vlm_classdata.errors import UserError, read_user_json
from vlm_classdata.verification.items import jsonl_objects, row_id
from vlm_classdata.verification.sidecars import load_sidecars

MODES = ("random", "hard")
MCQ_PASSES = ("mcq", "blind")


@dataclass(frozen=True)
class BuildRow:
    """What the comparison needs of one multiple-choice question row of a build."""

    mode: str | None
    image: str | None
    answer_index: int | None


def build_mcq_rows(build_dir: str | Path) -> dict[str, BuildRow]:
    """Sample id → :class:`BuildRow` over every multiple-choice JSONL output (task ``mcq``) of a build folder."""
    build = Path(build_dir)
    manifest = read_user_json(build / "manifest.json", "build manifest")
    fallback = manifest.get("tasks", {}).get("mcq", {}).get("distractors")
    out: dict[str, BuildRow] = {}
    for name, info in sorted(manifest.get("outputs", {}).items()):
        if info.get("writer") != "jsonl" or info.get("task") != "mcq":
            continue
        for rel in info.get("files", []):
            path = build / rel
            if not path.is_file():
                raise UserError(f"build {build}: output {name!r} file {rel} is missing")
            position = 0
            for _, row in jsonl_objects(path):
                if row is None:
                    continue
                sid = row_id(row, position)
                position += 1
                index = row.get("answer_index")
                out.setdefault(sid, BuildRow(row.get("distractor_mode") or fallback, row.get("image"),
                                             None if index is None else int(index)))
    if not out:
        raise UserError(f"build {build} has no multiple-choice (mcq) JSONL output")
    return out


def strength_sources(builds: list[str] | None, verify_dirs: list[str] | None) -> list[tuple[Path, Path]]:
    """``(verify folder, build folder)`` pairs from the ``summary`` options: ``--build`` alone reads
    ``BUILD/verify``; ``--verify-dir`` alone needs its build as parent folder; both pair up in order."""
    builds, verify_dirs = builds or [], verify_dirs or []
    if not builds and not verify_dirs:
        raise UserError("give --build or --verify-dir")
    if builds and verify_dirs:
        if len(builds) != len(verify_dirs):
            raise UserError(f"{len(builds)} --build but {len(verify_dirs)} --verify-dir: give one verify folder "
                            "per build, in the same order")
        pairs = [(Path(v), Path(b)) for v, b in zip(verify_dirs, builds, strict=True)]
    elif builds:
        pairs = [(Path(b) / "verify", Path(b)) for b in builds]
    else:
        pairs = []
        for v in verify_dirs:
            parent = Path(v).resolve().parent
            if not (parent / "manifest.json").is_file():
                raise UserError(f"verify folder {v} is not inside a build: give --build for each --verify-dir")
            pairs.append((Path(v), parent))
    seen: set[Path] = set()
    for verify, _ in pairs:
        if verify.resolve() in seen:
            raise UserError(f"verify folder {verify} is given twice")
        seen.add(verify.resolve())
    return pairs


def _model_path(verify_dir: Path, pass_name: str, alias: str) -> str | None:
    path = verify_dir / f"{pass_name}.{alias}.json"
    try:
        return json.loads(path.read_text(encoding="utf-8")).get("model_path")
    except (OSError, ValueError, AttributeError):
        return None


def _moded(frame: pl.DataFrame, rows: dict[str, BuildRow], where: str, build: Path) -> pl.DataFrame:
    """The sidecar's rows with their build row's mode and image; a sidecar that is not this build's is an error."""
    ids = frame["sample_id"].to_list()
    unknown = [s for s in ids if s not in rows]
    if unknown:
        raise UserError(f"{where}: {len(unknown)} sample ids are not mcq rows of build {build} "
                        f"(e.g. {unknown[0]!r}); is it that build's sidecar?")
    if "answer_index" in frame.columns:
        for sid, idx in zip(ids, frame["answer_index"].to_list(), strict=True):
            if idx is not None and rows[sid].answer_index is not None and idx != rows[sid].answer_index:
                raise UserError(f"{where}: sample {sid!r} has answer {idx} but build {build} says "
                                f"{rows[sid].answer_index}; the build was remade after this sidecar")
    modes = [rows[s].mode for s in ids]
    bad = sorted({str(m) for m in modes if m not in MODES})
    if bad:
        raise UserError(f"build {build} records distractor mode {bad[0]} for its mcq rows, not random or hard")
    return frame.select("sample_id", "status", "correct").with_columns(
        pl.Series("mode", modes, pl.String), pl.Series("image", [rows[s].image for s in ids], pl.String))


def distractor_strength(sources: list[tuple[str | Path, str | Path]],
                        passes: tuple[str, ...] = MCQ_PASSES) -> list[dict]:
    """Per pass × model with both modes: ``{pass, model, items, random, hard, gap, random_correct,
    hard_correct}`` over the images answered under both modes (accuracies rounded to 6 places).

    ``sources``: ``(verify folder, build folder)`` pairs (see :func:`strength_sources`). Pass × model pairs seen
    under one mode only are left out; see the module docstring for the inputs that are errors."""
    parts: dict[tuple[str, str], dict[str, pl.DataFrame]] = {}
    where_of: dict[tuple[str, str, str], str] = {}
    paths: dict[str, tuple[str, str]] = {}
    for verify_dir, build_dir in sources:
        verify, build = Path(verify_dir), Path(build_dir)
        sidecars = {p: m for p, m in load_sidecars(verify).items() if p in passes}
        rows = build_mcq_rows(build) if sidecars else {}
        for pass_name, by_model in sidecars.items():
            for alias, frame in by_model.items():
                where = str(verify / f"{pass_name}.{alias}.parquet")
                model_path = _model_path(verify, pass_name, alias)
                if model_path is not None:
                    seen = paths.setdefault(alias, (model_path, where))
                    if seen[0] != model_path:
                        raise UserError(f"model name {alias!r} is {seen[0]} in {seen[1]} but {model_path} in "
                                        f"{where}; give each model one --alias")
                moded = _moded(frame, rows, where, build)
                for mode in moded["mode"].unique().to_list():
                    key = (pass_name, alias, mode)
                    if key in where_of:
                        raise UserError(f"{pass_name}[{alias}] has {mode} distractors in both {where_of[key]} and "
                                        f"{where}; give one build per distractor mode")
                    where_of[key] = where
                    parts.setdefault((pass_name, alias), {})[mode] = moded.filter(pl.col("mode") == mode)
    out = []
    for (pass_name, alias), by_mode in sorted(parts.items()):
        if set(by_mode) != set(MODES):
            continue
        ok = {m: f.filter(pl.col("status") == "ok").select("sample_id", "image", pl.col("correct").alias(m))
              for m, f in by_mode.items()}
        both = ok["random"].join(ok["hard"], on="sample_id", how="inner", suffix="_hard")
        clash = both.filter(pl.col("image") != pl.col("image_hard"))
        if clash.height:
            raise UserError(f"{pass_name}[{alias}]: sample {clash['sample_id'][0]!r} is image "
                            f"{clash['image'][0]} with random but {clash['image_hard'][0]} with hard distractors; "
                            "build both modes from the same images")
        if not both.height:
            raise UserError(f"{pass_name}[{alias}]: the random and hard sidecars share no answered sample; build "
                            "both modes from the same images")
        n = both.height
        r, h = int(both["random"].sum()), int(both["hard"].sum())
        out.append({"pass": pass_name, "model": alias, "items": n, "random_correct": r, "hard_correct": h,
                    "random": round(r / n, 6), "hard": round(h / n, 6), "gap": round((r - h) / n, 6)})
    return out


def strength_table(rows: list[dict]) -> list[str]:
    """The ``summary`` command's comparison: a title, a header and one line per pass × model."""
    if not rows:
        return ["distractor strength: no pass × model was verified with both random and hard distractors"]
    lines = ["distractor strength (paired: images answered under both modes; gap = random - hard)",
             f"{'pass':<12} {'model':<24} {'items':>7} {'random':>8} {'hard':>8} {'gap':>8}"]
    lines += [f"{s['pass']:<12} {s['model']:<24} {s['items']:>7} {s['random']:>8.3f} {s['hard']:>8.3f} "
              f"{s['gap']:>+8.3f}" for s in rows]
    return lines
