"""User aliases of classes: ``{class_id: [alias, ...]}`` from a dict, a JSON file or a TSV file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from vlm_classdata.errors import UserError, read_user_json
from vlm_classdata.vocabulary import ClassVocabulary


def load_aliases(aliases: str | Path | dict[str, Any], vocab: ClassVocabulary) -> dict[str, list[str]]:
    """``{class_id: [alias, ...]}`` from a dict, a ``.json`` file of that shape, or any other file as TSV
    (``class_id<TAB>alias``, more aliases in more columns; blank lines and ``#`` comments skipped).
    Unknown class ids raise :class:`UserError`."""
    if isinstance(aliases, dict):
        data: Any = aliases
        where = "aliases"
    else:
        path = Path(aliases).expanduser()
        where = f"aliases file {str(aliases)!r}"
        if path.suffix.lower() == ".json":
            data = read_user_json(path, "aliases file")
        else:
            if not path.is_file():
                raise UserError(f"{where} not found")
            data = {}
            try:
                lines = path.read_text(encoding="utf-8").splitlines()
            except UnicodeDecodeError:
                raise UserError(f"{where}: not UTF-8 text") from None
            for n, line in enumerate(lines, start=1):
                if not line.strip() or line.lstrip().startswith("#"):
                    continue
                cid, *names = line.split("\t")
                names = [a.strip() for a in names if a.strip()]
                if not names:
                    raise UserError(f"{where} line {n}: expected 'class_id<TAB>alias[<TAB>alias...]'")
                data.setdefault(cid.strip(), []).extend(names)
    if not isinstance(data, dict):
        raise UserError(f"{where}: expected an object {{class_id: [alias, ...]}}")
    out: dict[str, list[str]] = {}
    for cid, value in data.items():
        values = [value] if isinstance(value, str) else value
        if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
            raise UserError(f"{where}: aliases of {cid!r} must be a string or a list of strings")
        out[str(cid)] = values
    unknown = [c for c in out if c not in vocab]
    if unknown:
        raise UserError(f"{where}: unknown class ids for {vocab.dataset}: {', '.join(unknown[:5])}"
                        + (f" (+{len(unknown) - 5} more)" if len(unknown) > 5 else ""))
    return out
