"""Reading the sidecars of a verify folder: ``<verify_dir>/<pass>.<model_alias>.parquet``, checked, by pass and model.

A sidecar has at least ``sample_id`` and ``status`` and one row per sample; files with other names are not
sidecars."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from vlm_classdata.errors import UserError

SIDECAR_SUFFIX = ".parquet"


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
