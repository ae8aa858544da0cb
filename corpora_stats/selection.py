"""Which classes ``mine`` mines: a selection rule over a counts folder's table.

Rules (``rule``): ``least:N`` the N usable classes with the lowest value (ties: class order); ``below:T``
the usable classes with value < T; ``classes:ID,ID`` or ``classes:@file`` (ids, or exact display names;
one or more per line, ``#`` comments). The value is the counts table's ``column`` (default ``doc_freq``).
A class is usable when it has a form allowed by the forms policy; unusable classes the rule would otherwise
have picked are reported as excluded (reason ``no_usable_form``) and not mined.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from corpora_stats.count import FORMS_POLICIES
from corpora_stats.counts_folder import CountsFolder
from vlm_classdata.errors import UserError
from vlm_classdata.lexicon import Lexicon
from vlm_classdata.vocabulary import ClassVocabulary

RULE_KINDS = ("least", "below", "classes")


# ----- rules -----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Rule:
    """A parsed selection rule (see the module docstring)."""

    kind: str
    spec: str
    n: int | None = None
    threshold: float | None = None
    ids: tuple[str, ...] = ()
    file: str | None = None

    def to_json(self) -> dict:
        out: dict[str, Any] = {"kind": self.kind, "spec": self.spec}
        if self.kind == "least":
            out["n"] = self.n
        elif self.kind == "below":
            out["threshold"] = self.threshold
        else:
            out["class_ids"] = list(self.ids)
            if self.file is not None:
                out["file"] = self.file
        return out


def parse_rule(spec: str, vocab: ClassVocabulary) -> Rule:
    """``least:N`` | ``below:T`` | ``classes:ID,ID`` | ``classes:@file`` → :class:`Rule` (UserError if bad)."""
    kind, sep, arg = str(spec).partition(":")
    kind, arg = kind.strip().lower(), arg.strip()
    if not sep or kind not in RULE_KINDS or not arg:
        raise UserError(f"bad selection rule {spec!r}: expected least:N, below:T, classes:ID,ID or classes:@FILE")
    if kind == "least":
        try:
            n = int(arg)
        except ValueError:
            n = 0
        if n < 1:
            raise UserError(f"bad selection rule {spec!r}: N must be a positive integer")
        return Rule("least", spec, n=n)
    if kind == "below":
        try:
            threshold = float(arg)
        except ValueError:
            raise UserError(f"bad selection rule {spec!r}: T must be a number") from None
        return Rule("below", spec, threshold=int(threshold) if threshold.is_integer() else threshold)
    where, file = f"selection rule {spec!r}", None
    if arg.startswith("@"):
        file = arg[1:]
        path = Path(file).expanduser()
        if not path.is_file():
            raise UserError(f"class file {file!r} of {where} not found")
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise UserError(f"class file {file!r}: unreadable ({exc})") from None
        items = [x.strip() for line in text.splitlines() for x in line.split("#", 1)[0].split(",")]
        where = f"class file {file!r}"
    else:
        items = [x.strip() for x in arg.split(",")]
    ids: list[str] = []
    unknown: list[str] = []
    for item in (x for x in items if x):
        if item in vocab:
            cid = item
        else:
            entry = vocab.by_name(item)
            if entry is None:
                unknown.append(item)
                continue
            cid = entry.class_id
        if cid not in ids:
            ids.append(cid)
    if unknown:
        raise UserError(f"{where}: unknown class(es) {', '.join(unknown[:5])}"
                        + (f" (+{len(unknown) - 5} more)" if len(unknown) > 5 else ""))
    if not ids:
        raise UserError(f"{where} names no class")
    return Rule("classes", spec, ids=tuple(sorted(ids, key=lambda c: vocab[c].index)), file=file)


# ----- selection -----------------------------------------------------------------------------------
def _usable(lexicon: Lexicon, forms: str) -> set[str]:
    return {f.class_id for f in lexicon.forms if f.text and (forms == "all" or not f.flags)}


def check_forms(forms: str) -> None:
    """Refuse a forms policy ``count`` does not know."""
    if forms not in FORMS_POLICIES:
        raise UserError(f"--forms must be one of {', '.join(FORMS_POLICIES)}, not {forms!r}")


def select(counts: CountsFolder, rule: Rule, column: str, forms: str) -> list[dict]:
    """The classes ``rule`` picks from ``counts`` by ``column``, in vocabulary order.

    Each: ``{"class_id", "class_name", "index", "doc_freq", "value"`` (of ``column``) ``, "excluded"}`` where
    ``excluded`` is None for a class to mine, or the reason it is not mined (``no_usable_form``).
    """
    table = counts.table
    if column not in table.columns or not table[column].dtype.is_numeric():
        numeric = [c for c in table.columns if table[c].dtype.is_numeric()]
        raise UserError(f"counts table has no numeric column {column!r}; it has {', '.join(numeric)}")
    usable = _usable(counts.lexicon, forms)
    rows = [{"class_id": cid, "class_name": name, "index": i, "doc_freq": int(df), "value": value}
            for i, (cid, name, df, value) in enumerate(zip(table["class_id"], table["class_name"],
                                                           table["doc_freq"], table[column], strict=True))]
    for r in rows:
        r["value"] = 0 if r["value"] is None else r["value"]
    if rule.kind == "least":
        ranked = sorted(rows, key=lambda r: (r["value"], r["index"]))
        picked, kept = [], 0
        for r in ranked:
            if kept == rule.n:
                break
            picked.append(r)
            kept += r["class_id"] in usable
    elif rule.kind == "below":
        picked = [r for r in rows if r["value"] < rule.threshold]
    else:
        wanted = set(rule.ids)
        picked = [r for r in rows if r["class_id"] in wanted]
    out = []
    for r in sorted(picked, key=lambda r: r["index"]):
        value = r["value"]
        out.append({**r, "value": int(value) if float(value).is_integer() else float(value),
                    "excluded": None if r["class_id"] in usable else "no_usable_form"})
    return out
