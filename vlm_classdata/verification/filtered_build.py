"""A filtered copy of a build: the data files by the rules (:func:`run_filter`, with ``filter_report.json``) and the
build's own files made to describe the copy (:func:`write_build_meta`); :func:`filter_build` is the ``filter``
command's whole flow."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import yaml

from vlm_classdata.atomic import write_bytes_atomic
from vlm_classdata.errors import UserError, read_user_json
from vlm_classdata.records.build_manifest import FilteredManifest
from vlm_classdata.records.verification import FilterReport
from vlm_classdata.stages import open_out
from vlm_classdata.verification.filtered_files import (
    check_not_base,
    file_kind,
    filter_files,
    read_ids,
    relative_path,
)
from vlm_classdata.verification.rules import apply_rules, parse_rule, pass_frames
from vlm_classdata.verification.sidecars import load_sidecars

REPORT_NAME = "filter_report.json"


def _resolve_input(path: Path, base_dir: Path) -> Path:
    """An input as named (absolute or relative to the working folder), else relative to ``base_dir``."""
    candidates = [path] if path.is_absolute() else [path, base_dir / path]
    for c in candidates:
        if c.is_file():
            return c
    raise UserError(f"input {str(path)!r} not found (also looked under {base_dir})")


def run_filter(inputs: list[Path], base_dir: Path, verify_dir: Path, rules: list[str], out_dir: Path) -> dict:
    """Filter ``inputs`` (files under ``base_dir``) by ``rules`` over the sidecars in ``verify_dir``, write
    the copies under ``out_dir`` and ``out_dir/filter_report.json``; return that report (the
    :func:`apply_rules` report plus ``files`` and ``rules_text``, the rules as given)."""
    base_dir, out_dir = Path(base_dir), Path(out_dir)
    if not base_dir.is_dir():
        raise UserError(f"base folder {str(base_dir)!r} not found")
    check_not_base(out_dir, base_dir)
    if not rules:
        raise UserError("no filter rules given")
    if not inputs:
        raise UserError("no input files given")
    parsed = [parse_rule(r) for r in rules]
    sidecars = load_sidecars(verify_dir)
    for rule in parsed:  # every rule checked against the sidecars before any data is read
        pass_frames(rule, sidecars)
    files = [_resolve_input(Path(p), base_dir) for p in inputs]
    for f in files:
        file_kind(f)
        if relative_path(f, base_dir).as_posix() == REPORT_NAME:
            raise UserError(f"input {f} has the name of the filter report; rename it")
    sample_ids: list[str] = []
    for f in files:
        sample_ids.extend(read_ids(f))
    result = apply_rules(sample_ids, parsed, sidecars)
    counts = filter_files(files, out_dir, base_dir, result)
    report = {**result.report, "files": counts, "rules_text": list(rules)}
    FilterReport.model_validate(report).write(out_dir / REPORT_NAME)
    return report


def _split_of(relpath: str) -> str:
    """``mcq/val.jsonl`` → ``val``; ``hf/data/train-00000-of-00001.parquet`` → ``train``."""
    return Path(relpath).stem.split("-", 1)[0]


def write_build_meta(build: Path, out_dir: Path, report: dict, outputs: list[str]) -> None:
    """Make a filtered copy a build of its own: ``manifest.json`` (the copied outputs with counts of kept rows,
    image roots made absolute, a ``filtered`` section with the rules' counts), ``classes.json``, and each
    Hugging Face output's ``README.md`` without the source's split sizes."""
    manifest = json.loads((build / "manifest.json").read_text())
    kept_outputs = {}
    for name in outputs:
        info = dict(manifest["outputs"][name])
        copied = {f: c for f, c in report["files"].items() if f.startswith(info["dir"] + "/")}
        info["files"] = sorted(copied)
        counts: dict[str, int] = {}
        for f, c in copied.items():
            counts[_split_of(f)] = counts.get(_split_of(f), 0) + c["kept"]
        info["counts"] = dict(sorted(counts.items()))
        root = info.get("image_root")
        if root is not None and not Path(root).is_absolute():
            info["image_root"] = str((build / root).resolve())
        readme = build / info["dir"] / "README.md"
        if info.get("writer") == "hf_parquet" and readme.is_file():
            _, front, _body = readme.read_text(encoding="utf-8").split("---\n", 2)
            meta = yaml.safe_load(front)
            meta.get("dataset_info", {}).pop("splits", None)
            text = (f"---\n{yaml.safe_dump(meta, sort_keys=False, allow_unicode=True)}---\n"
                    f"Filtered copy of {build.name}/{info['dir']}: kept {report['kept']} of {report['input']} "
                    f"samples by {', '.join(report['rules_text'])} (see ../filter_report.json).\n")
            write_bytes_atomic(out_dir / info["dir"] / "README.md", text.encode())
            info["files"] = sorted([*info["files"], f"{info['dir']}/README.md"])
        kept_outputs[name] = info
    manifest["outputs"] = kept_outputs
    manifest["filtered"] = {"from": str(build.resolve()), "input": report["input"], "kept": report["kept"],
                            "rules": report["rules"]}
    FilteredManifest.model_validate(manifest).write(out_dir / "manifest.json")
    if (build / "classes.json").is_file():
        shutil.copyfile(build / "classes.json", out_dir / "classes.json")


def _build_files(build: Path, manifest: dict, outputs: set[str] | None) -> tuple[list[Path], list[str]]:
    """The JSON, JSONL and Parquet files of the build's outputs (all such outputs, or those named) and the names of
    those outputs."""
    files, names = [], []
    for name, info in sorted(manifest.get("outputs", {}).items()):
        if outputs is not None and name not in outputs:
            continue
        if info.get("writer") in ("json_array", "jsonl", "hf_parquet"):
            names.append(name)
            files += [build / f for f in info["files"] if f.endswith((".json", ".jsonl", ".parquet"))]
    if outputs is not None and (missing := outputs - set(manifest.get("outputs", {}))):
        raise UserError(f"build {build} has no output {sorted(missing)[0]!r}")
    if not files:
        raise UserError("no JSON, JSONL or parquet outputs to filter")
    return files, names


def filter_build(build: Path, rules: list[str], out: Path, verify_dir: Path | None = None,
                 outputs: set[str] | None = None) -> dict:
    """The ``filter`` command: a filtered copy of the build's outputs (``outputs``, default every JSON/JSONL/Parquet
    one) under ``out``, a build of its own, by ``rules`` over the sidecars in ``verify_dir`` (default
    ``BUILD/verify``). The rules are checked before ``out`` is made; ``out`` is locked while it is written.
    Returns the filter report."""
    build = Path(build)
    manifest = read_user_json(build / "manifest.json", "build manifest")
    files, names = _build_files(build, manifest, outputs)
    verify_dir = Path(verify_dir) if verify_dir else build / "verify"
    for rule in rules:  # a mistyped rule is one line before the output folder is made
        parse_rule(rule)
    with open_out(out, inputs=[build, verify_dir], command="builders.verify filter"):
        report = run_filter(files, build, verify_dir, rules, Path(out))
        write_build_meta(build, Path(out), report, names)
    return report
