"""Filters: turn verification pass results (sidecars) into a filtered copy of built data.

A rule is ``ACTION:PASS[.COLUMN][QUANT]``: ``keep``/``drop`` the samples for which at least ``N`` models
(``>=N``), every model (``=all``) or any model (``=any``, the default, same as ``>=1``) that ran ``PASS`` has
the boolean ``COLUMN`` (default ``correct``) true. A model's vote is true only when its sidecar has a row for
the sample with ``status == "ok"`` and the column true; errors and missing rows never count as true (they
are counted per rule). Rules apply in order; the report counts what each rule dropped in sequence and what
it would drop alone, so it can go into the dataset card as it is.

Sidecars are ``<verify_dir>/<pass>.<model_alias>.parquet`` with at least ``sample_id``, ``status`` and the
rule's column. Filtered copies keep JSON arrays (LLaVA training files), JSONL question files and Parquet
shards (schema, key-value metadata, compression and row-group size kept) with the same relative paths.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from builders.verify.items import ID_FIELDS, row_id
from vlm_classdata.atomic import dumps_compact, write_bytes_atomic, write_with
from vlm_classdata.errors import UserError

ACTIONS = ("keep", "drop")
DEFAULT_COLUMN = "correct"
REPORT_NAME = "filter_report.json"
SIDECAR_SUFFIX = ".parquet"
_RULE = re.compile(r"(?P<target>[^<>=!]*)(?P<op>[<>=!]+)?(?P<arg>.*)", re.S)
_PASS = re.compile(r"[A-Za-z0-9_-]+")
_COLUMN = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_NUMBER = re.compile(r"[0-9]+")
_QUANT_HELP = "use >=N, =all or =any"


@dataclass(frozen=True)
class Rule:
    """One parsed rule. ``quant`` is ``">=N"`` (``=any`` becomes ``">=1"``) or ``"all"``; ``min_models`` is
    ``N`` for ``>=N`` and None for ``all``."""

    action: str
    pass_name: str
    column: str
    quant: str
    min_models: int | None

    @property
    def text(self) -> str:
        """The rule in full normalised form, e.g. ``drop:blind.correct>=1`` or ``keep:mcq.correct=all``."""
        quant = "=all" if self.min_models is None else self.quant
        return f"{self.action}:{self.pass_name}.{self.column}{quant}"


def parse_rule(text: str) -> Rule:
    """Parse ``ACTION:PASS[.COLUMN][QUANT]``; a malformed rule is a :class:`UserError`."""
    if not isinstance(text, str):
        raise UserError(f"filter rule {text!r} is not a string")
    raw = text.strip()
    usage = "expected ACTION:PASS[.COLUMN][>=N|=all|=any], e.g. drop:blind or keep:label_check>=2"
    if ":" not in raw:
        raise UserError(f"filter rule {text!r}: {usage}")
    action, rest = raw.split(":", 1)
    if action not in ACTIONS:
        raise UserError(f"filter rule {text!r}: unknown action {action!r} (use keep or drop)")
    m = _RULE.fullmatch(rest)
    target, op, arg = m["target"], m["op"], m["arg"]
    pass_name, _, column = target.partition(".")
    if "." in target and not column:
        raise UserError(f"filter rule {text!r}: empty column name after '.'; {usage}")
    column = column or DEFAULT_COLUMN
    if not _PASS.fullmatch(pass_name):
        raise UserError(f"filter rule {text!r}: bad pass name {pass_name!r}; {usage}")
    if not _COLUMN.fullmatch(column):
        raise UserError(f"filter rule {text!r}: bad column name {column!r}; {usage}")
    if op is None:
        if arg:
            raise UserError(f"filter rule {text!r}: {usage}")
        return Rule(action, pass_name, column, ">=1", 1)
    if op == "=" and arg in ("all", "any"):
        return (Rule(action, pass_name, column, "all", None) if arg == "all"
                else Rule(action, pass_name, column, ">=1", 1))
    if op == ">=":
        if re.fullmatch(r"-[0-9]+", arg) or (_NUMBER.fullmatch(arg) and int(arg) < 1):
            raise UserError(f"filter rule {text!r}: the number of models must be at least 1, got {arg}")
        if _NUMBER.fullmatch(arg):
            n = int(arg)
            return Rule(action, pass_name, column, f">={n}", n)
        raise UserError(f"filter rule {text!r}: {arg!r} after '>=' is not a whole number; {_QUANT_HELP}")
    raise UserError(f"filter rule {text!r}: bad quantifier {op + arg!r}; {_QUANT_HELP}")


# --- sidecars --------------------------------------------------------------------------------------------

def _sidecar_name(path: Path) -> tuple[str, str] | None:
    """``(pass, model alias)`` of a sidecar file name ``<pass>.<alias>.parquet``; None for other files."""
    name = path.name
    if name.startswith(".") or not name.endswith(SIDECAR_SUFFIX):
        return None
    stem = name[: -len(SIDECAR_SUFFIX)]
    pass_name, _, alias = stem.partition(".")
    if not pass_name or not alias:
        return None
    return pass_name, alias


def load_sidecars(verify_dir: str | Path) -> dict[str, dict[str, pl.DataFrame]]:
    """Every sidecar of a verify folder: pass → model alias → frame (``sample_id`` as string).

    Files not named ``<pass>.<alias>.parquet`` (and hidden/temporary files) are ignored. A sidecar that
    cannot be read, lacks ``sample_id``/``status``, or repeats or omits a sample id is a
    :class:`UserError`."""
    root = Path(verify_dir)
    if not root.is_dir():
        raise UserError(f"verify folder {str(verify_dir)!r} not found")
    out: dict[str, dict[str, pl.DataFrame]] = {}
    for path in sorted(root.iterdir()):
        parsed = _sidecar_name(path)
        if parsed is None or not path.is_file():
            continue
        pass_name, alias = parsed
        try:
            frame = pl.read_parquet(path)
        except Exception as exc:  # polars raises several error types for a bad file
            raise UserError(f"sidecar {path}: not a readable Parquet file ({type(exc).__name__})") from None
        missing = [c for c in ("sample_id", "status") if c not in frame.columns]
        if missing:
            raise UserError(f"sidecar {path} has no {missing[0]!r} column")
        frame = frame.with_columns(pl.col("sample_id").cast(pl.String))
        if frame["sample_id"].null_count():
            raise UserError(f"sidecar {path} has rows without a sample_id")
        dup = frame["sample_id"].filter(frame["sample_id"].is_duplicated())
        if len(dup):
            raise UserError(f"sidecar {path} repeats sample id {sorted(dup.to_list())[0]!r}")
        if "pass" in frame.columns:
            values = frame["pass"].cast(pl.String).unique().to_list()
            other = sorted(v for v in values if v not in (None, pass_name))
            if other:
                raise UserError(f"sidecar {path} is named for pass {pass_name!r} but has rows of pass "
                                f"{other[0]!r}")
        out.setdefault(pass_name, {})[alias] = frame
    return out


def _pass_frames(rule: Rule, sidecars: dict[str, dict[str, pl.DataFrame]]) -> dict[str, pl.DataFrame]:
    """The sidecars of the rule's pass, checked against the rule (column exists and is boolean, enough
    models for ``>=N``)."""
    frames = sidecars.get(rule.pass_name)
    if not frames:
        have = ", ".join(sorted(sidecars)) or "none"
        raise UserError(f"filter rule {rule.text}: no sidecar for pass {rule.pass_name!r} "
                        f"(passes with sidecars: {have})")
    for alias, frame in sorted(frames.items()):
        if rule.column not in frame.columns:
            raise UserError(f"filter rule {rule.text}: sidecar {rule.pass_name}.{alias} has no column "
                            f"{rule.column!r}")
        dtype = frame.schema[rule.column]
        if dtype not in (pl.Boolean, pl.Null):  # Null: every row errored, so the column was written all-null
            raise UserError(f"filter rule {rule.text}: column {rule.column!r} of sidecar "
                            f"{rule.pass_name}.{alias} is {dtype}, not boolean")
    if rule.min_models is not None and rule.min_models > len(frames):
        raise UserError(f"filter rule {rule.text}: needs {rule.min_models} models but only {len(frames)} ran "
                        f"pass {rule.pass_name!r} ({', '.join(sorted(frames))})")
    return frames


def votes(rule: Rule, sidecars: dict[str, dict[str, pl.DataFrame]]) -> pl.DataFrame:
    """Per sample id found in the pass's sidecars (sorted): ``n_models`` (models that ran the pass),
    ``n_true`` (ok rows with the column true), ``n_error`` (rows whose status is not ok), ``n_missing``
    (models without a row) and ``match`` (whether the rule's condition holds)."""
    frames = _pass_frames(rule, sidecars)
    n_models = len(frames)
    parts = []
    for _alias, frame in sorted(frames.items()):
        ok = (pl.col("status").cast(pl.String) == "ok").fill_null(False)
        is_null = frame.schema[rule.column] == pl.Null
        value = pl.lit(False) if is_null else pl.col(rule.column).fill_null(False)
        parts.append(frame.select(
            pl.col("sample_id"),
            (ok & value).cast(pl.UInt32).alias("is_true"),
            (~ok).cast(pl.UInt32).alias("is_error"),
        ))
    grouped = (pl.concat(parts).group_by("sample_id")
               .agg(pl.col("is_true").sum().alias("n_true"), pl.col("is_error").sum().alias("n_error"),
                    pl.len().alias("n_present")))
    out = grouped.select(
        pl.col("sample_id"),
        pl.lit(n_models, dtype=pl.UInt32).alias("n_models"),
        pl.col("n_true").cast(pl.UInt32),
        pl.col("n_error").cast(pl.UInt32),
        (pl.lit(n_models, dtype=pl.UInt32) - pl.col("n_present").cast(pl.UInt32)).alias("n_missing"),
    ).sort("sample_id")
    return out.with_columns(_match(rule, n_models).alias("match"))


def _match(rule: Rule, n_models: int) -> pl.Expr:
    need = n_models if rule.min_models is None else rule.min_models
    return pl.col("n_true") >= need


# --- applying rules --------------------------------------------------------------------------------------

@dataclass
class FilterResult:
    """``kept``: sample ids in input order; ``dropped``: sample id → normalised text of the first rule that
    dropped it; ``report``: counts (see :func:`apply_rules`)."""

    kept: list[str] = field(default_factory=list)
    dropped: dict[str, str] = field(default_factory=dict)
    report: dict = field(default_factory=dict)


def apply_rules(sample_ids: list[str], rules: list[Rule],
                sidecars: dict[str, dict[str, pl.DataFrame]]) -> FilterResult:
    """Apply the rules in order to ``sample_ids`` (repeated ids count once, first position kept).

    The report holds ``input``, ``kept``, ``dropped`` and per rule ``rule`` (normalised text), ``dropped`` (by
    this rule after the earlier ones), ``dropped_alone`` (by this rule alone over all input), ``models``,
    ``samples_with_errors`` and ``samples_missing`` (input samples with at least one error / missing vote).
    Input ids absent from every sidecar of a pass have only missing votes; a pass whose sidecars share no id
    with a non-empty input is a :class:`UserError` (wrong verify folder or wrong files)."""
    ids = list(dict.fromkeys(str(s) for s in sample_ids))
    base = pl.DataFrame({"sample_id": ids}, schema={"sample_id": pl.String})
    alive = pl.Series("alive", [True] * len(ids), dtype=pl.Boolean)
    first_rule: list[str | None] = [None] * len(ids)
    per_rule = []
    for rule in rules:
        table = votes(rule, sidecars)
        n_models = len(sidecars[rule.pass_name])
        joined = base.join(table, on="sample_id", how="left", maintain_order="left")
        if ids and joined["n_models"].null_count() == len(ids):
            raise UserError(f"filter rule {rule.text}: none of the {len(ids)} input samples has a result in "
                            f"the sidecars of pass {rule.pass_name!r} (wrong verify folder or input files?)")
        joined = joined.with_columns(
            pl.col("n_true").fill_null(0), pl.col("n_error").fill_null(0),
            pl.col("n_missing").fill_null(n_models),
        ).with_columns(_match(rule, n_models).alias("match"))
        match = joined["match"]
        drops = match if rule.action == "drop" else ~match
        now = alive & drops
        text = rule.text
        for i in now.arg_true().to_list():
            first_rule[i] = text
        alive = alive & ~drops
        per_rule.append({
            "rule": rule.text,
            "dropped": int(now.sum()),
            "dropped_alone": int(drops.sum()),
            "models": sorted(sidecars[rule.pass_name]),
            "samples_with_errors": int((joined["n_error"] > 0).sum()),
            "samples_missing": int((joined["n_missing"] > 0).sum()),
        })
    kept = [s for s, keep in zip(ids, alive.to_list(), strict=True) if keep]
    dropped = {s: r for s, r in zip(ids, first_rule, strict=True) if r is not None}
    report = {"input": len(ids), "kept": len(kept), "dropped": len(dropped), "rules": per_rule}
    return FilterResult(kept=kept, dropped=dropped, report=report)


# --- reading and writing data files ------------------------------------------------------------------------

def _kind(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix in (".json", ".jsonl", ".parquet"):
        return suffix[1:]
    raise UserError(f"cannot filter {path}: only .json (array), .jsonl and .parquet files are supported")


def _json_rows(path: Path) -> list[tuple[str | None, dict | None]]:
    """``(sample id, row)`` per element of a JSON array file; non-object elements give ``(None, None)`` and
    do not advance the row position (as in :func:`builders.verify.items.load_items`)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise UserError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(data, list):
        raise UserError(f"{path}: expected a JSON array of rows, got {type(data).__name__}")
    out: list[tuple[str | None, dict | None]] = []
    position = 0
    for row in data:
        if isinstance(row, dict):
            out.append((row_id(row, position), row))
            position += 1
        else:
            out.append((None, None))
    return out


def _jsonl_rows(path: Path) -> list[tuple[str | None, dict | None]]:
    """``(sample id, row)`` per non-blank line of a JSONL file, positions counted as in ``load_items``;
    malformed lines give ``(None, None)``."""
    out: list[tuple[str | None, dict | None]] = []
    position = 0
    with open(path, encoding="utf-8", errors="replace") as fh:
        for line in fh:
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except ValueError:
                out.append((None, None))
                continue
            if not isinstance(row, dict):
                out.append((None, None))
                continue
            out.append((row_id(row, position), row))
            position += 1
    return out


def _parquet_ids(path: Path) -> list[str]:
    """The sample id of each row of a Parquet file (the :func:`row_id` rule over its id columns)."""
    try:
        schema = pq.read_schema(path)
    except (OSError, pa.ArrowException) as exc:
        raise UserError(f"{path}: not a readable Parquet file ({exc})") from None
    present = [c for c in ID_FIELDS if c in schema.names]
    if not present:
        raise UserError(f"{path}: Parquet file has no id column ({', '.join(ID_FIELDS)})")
    table = pq.read_table(path, columns=present)
    columns = {c: table.column(c).to_pylist() for c in present}
    return [row_id({c: columns[c][i] for c in present}, i) for i in range(table.num_rows)]


def read_ids(path: Path) -> list[str]:
    """The sample ids of a data file in row order (malformed JSON/JSONL rows have none and are left out)."""
    kind = _kind(path)
    if kind == "parquet":
        return _parquet_ids(path)
    rows = _json_rows(path) if kind == "json" else _jsonl_rows(path)
    return [sid for sid, _ in rows if sid is not None]


def _json_array_bytes(rows: list[dict]) -> bytes:
    """Rows as :class:`builders.writers.jsonfiles.JsonArrayWriter` writes them."""
    if not rows:
        return b"[]\n"
    return ("[\n" + ",\n".join(dumps_compact(r) for r in rows) + "\n]\n").encode("utf-8")


def _jsonl_bytes(rows: list[dict]) -> bytes:
    return "".join(dumps_compact(r) + "\n" for r in rows).encode("utf-8")


def _parquet_write_options(path: Path) -> dict:
    """Compression, dictionary, statistics and row-group size of a Parquet file, to write its copy alike."""
    meta = pq.ParquetFile(path).metadata
    if meta.num_row_groups == 0:
        return {}
    group = meta.row_group(0)
    compression: dict[str, str] = {}
    dictionary: list[str] = []
    statistics: list[str] = []
    for i in range(group.num_columns):
        col = group.column(i)
        compression[col.path_in_schema] = "NONE" if col.compression == "UNCOMPRESSED" else col.compression
        if any("DICTIONARY" in e for e in col.encodings):
            dictionary.append(col.path_in_schema)
        if col.is_stats_set:
            statistics.append(col.path_in_schema)
    return {"compression": compression, "use_dictionary": dictionary, "write_statistics": statistics,
            "row_group_size": max(group.num_rows, 1)}


def _filter_parquet(src: Path, dst: Path, ids: list[str], kept: set[str]) -> tuple[int, int]:
    table = pq.read_table(src)
    mask = pl.Series(ids, dtype=pl.String).is_in(pl.Series(sorted(kept), dtype=pl.String)).to_arrow()
    out = table.filter(mask)
    options = _parquet_write_options(src)

    def write(tmp: Path) -> None:
        try:
            pq.write_table(out, tmp, **options)
        except OSError:  # disk full, no permission: not a matter of options
            raise
        except (ValueError, pa.ArrowException):  # options that this pyarrow cannot reproduce: plain write
            pq.write_table(out, tmp)

    write_with(dst, write)
    return table.num_rows, out.num_rows


def _relative(path: Path, base_dir: Path) -> Path:
    try:
        return path.resolve().relative_to(base_dir.resolve())
    except ValueError:
        raise UserError(f"input {path} is not under the base folder {base_dir}") from None


def _check_out_dir(out_dir: Path, base_dir: Path) -> None:
    if out_dir.resolve() == base_dir.resolve():
        raise UserError(f"output folder {out_dir} is the base folder: the copies would overwrite the inputs")


def filter_files(files: list[Path], out_dir: Path, base_dir: Path, result: FilterResult) -> dict[str, dict]:
    """Write a filtered copy of each file to ``out_dir/<path relative to base_dir>``: only rows whose sample
    id is in ``result.kept``, in their original order. JSON arrays are written as the json_array writer does,
    JSONL one compact row per line, Parquet with the source schema, metadata and write settings.

    Returns per relative path ``{"rows": rows in, "kept": rows out}`` (plus ``bad_rows`` when malformed
    JSON/JSONL rows were left out). Inputs are never modified; ``out_dir == base_dir`` is a
    :class:`UserError`."""
    out_dir, base_dir = Path(out_dir), Path(base_dir)
    _check_out_dir(out_dir, base_dir)
    kept = set(result.kept)
    plan: list[tuple[Path, Path, str]] = []
    seen: set[str] = set()
    for f in files:
        src = Path(f)
        if not src.is_file():
            raise UserError(f"input {str(f)!r} not found")
        kind = _kind(src)
        rel = _relative(src, base_dir)
        key = rel.as_posix()
        if key in seen:
            raise UserError(f"input {key} is named twice")
        seen.add(key)
        dst = out_dir / rel
        if dst.resolve() == src.resolve():
            raise UserError(f"filtered copy of {src} would overwrite it; choose another output folder")
        plan.append((src, dst, kind))
    counts: dict[str, dict] = {}
    for src, dst, kind in plan:
        key = _relative(src, base_dir).as_posix()
        if kind == "parquet":
            n_in, n_out = _filter_parquet(src, dst, _parquet_ids(src), kept)
            counts[key] = {"rows": n_in, "kept": n_out}
            continue
        rows = _json_rows(src) if kind == "json" else _jsonl_rows(src)
        keep = [row for sid, row in rows if sid is not None and sid in kept]
        write_bytes_atomic(dst, _json_array_bytes(keep) if kind == "json" else _jsonl_bytes(keep))
        counts[key] = {"rows": len(rows), "kept": len(keep)}
        bad = sum(1 for sid, _ in rows if sid is None)
        if bad:
            counts[key]["bad_rows"] = bad
    return dict(sorted(counts.items()))


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
    _check_out_dir(out_dir, base_dir)
    if not rules:
        raise UserError("no filter rules given")
    if not inputs:
        raise UserError("no input files given")
    parsed = [parse_rule(r) for r in rules]
    sidecars = load_sidecars(verify_dir)
    for rule in parsed:  # every rule checked against the sidecars before any data is read
        _pass_frames(rule, sidecars)
    files = [_resolve_input(Path(p), base_dir) for p in inputs]
    for f in files:
        _kind(f)
        if _relative(f, base_dir).as_posix() == REPORT_NAME:
            raise UserError(f"input {f} has the name of the filter report; rename it")
    sample_ids: list[str] = []
    for f in files:
        sample_ids.extend(read_ids(f))
    result = apply_rules(sample_ids, parsed, sidecars)
    counts = filter_files(files, out_dir, base_dir, result)
    report = {**result.report, "files": counts, "rules_text": list(rules)}
    write_bytes_atomic(out_dir / REPORT_NAME,
                 (json.dumps(report, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode("utf-8"))
    return report


def _split_of(relpath: str) -> str:
    """``mcq/val.jsonl`` → ``val``; ``hf/data/train-00000-of-00001.parquet`` → ``train``."""
    return Path(relpath).stem.split("-", 1)[0]


def write_build_meta(build: Path, out_dir: Path, report: dict, outputs: list[str]) -> None:
    """Make a filtered copy a build of its own: ``manifest.json`` (the copied outputs with counts of kept rows,
    image roots made absolute, a ``filtered`` section with the rules' counts), ``classes.json``, and each
    Hugging Face output's ``README.md`` without the source's split sizes."""
    import shutil

    import yaml

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
    write_bytes_atomic(out_dir / "manifest.json", json.dumps(manifest, indent=2, sort_keys=True).encode())
    if (build / "classes.json").is_file():
        shutil.copyfile(build / "classes.json", out_dir / "classes.json")
